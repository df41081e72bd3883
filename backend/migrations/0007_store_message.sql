-- One message of one chunk into (at most) one mailbox, in one statement — the common case
-- of inbound mail — so it needs no explicit transaction: the submission claim, the content
-- and its chunk, the mailbox's counters (with the quota check) and its message row.
--   * The token was claimed before: nothing is stored; `earlier` is that delivery's queue id.
--   * The mailbox would go over quota: SQLSTATE BHQ01, and the whole statement rolls back.
--   * p_account = 0: content only (the caller adds mailboxes or queue entries after it, in
--     its own transaction).
CREATE FUNCTION store_message(p_token text, p_queue_id text, p_size bigint, p_data bytea,
                              p_account bigint, p_total bigint, p_prefix bytea,
                              OUT content_id bigint, OUT uid bigint, OUT earlier text)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_token <> '' THEN
        INSERT INTO submissions (token, queue_id) VALUES (p_token, p_queue_id)
            ON CONFLICT (token) DO NOTHING;
        IF NOT FOUND THEN
            SELECT s.queue_id INTO earlier FROM submissions s WHERE s.token = p_token;
            RETURN;
        END IF;
    END IF;
    INSERT INTO contents (size, chunks) VALUES (p_size, 1) RETURNING id INTO content_id;
    INSERT INTO content_chunks (content_id, seq, data) VALUES (content_id, 0, p_data);
    IF p_account <> 0 THEN
        UPDATE accounts
           SET used_bytes = used_bytes + p_total, message_count = message_count + 1,
               next_uid = next_uid + 1
         WHERE id = p_account
           AND (quota_bytes IS NULL OR used_bytes + p_total <= quota_bytes)
        RETURNING next_uid - 1 INTO uid;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'mailbox % is over quota', p_account USING ERRCODE = 'BHQ01';
        END IF;
        INSERT INTO messages (account_id, uid, content_id, prefix, size)
            VALUES (p_account, uid, content_id, p_prefix, p_total);
    END IF;
END
$$;
