-- Message content is TOAST-compressed with lz4 instead of pglz: pglz_compress was a visible
-- part of the back-end's CPU time per stored message (tests/bench/profile.sh), and lz4 writes
-- and reads several times faster. Only new values are affected. A server built without lz4
-- (or older than PostgreSQL 14) keeps pglz.
DO $$
BEGIN
    ALTER TABLE content_chunks ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'lz4 is not available here: message content stays pglz-compressed';
END
$$;
