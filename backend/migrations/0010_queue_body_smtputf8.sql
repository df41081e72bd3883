-- What a queued message was declared as on the way in, kept for the way out: RFC 6152
-- BODY= ('' when not given, '7BIT', '8BITMIME', 'BINARYMIME') and RFC 6531 SMTPUTF8.
ALTER TABLE outbound_queue ADD COLUMN body text NOT NULL DEFAULT '';
ALTER TABLE outbound_queue ADD COLUMN smtputf8 boolean NOT NULL DEFAULT false;
