-- An outbound recipient's status is one of three words, mapped to DeliveryStatus in one place
-- (store/queue.rs); the database holds to it too.
ALTER TABLE outbound_recipients
    ADD CONSTRAINT outbound_recipients_status CHECK (status IN ('pending', 'delivered', 'failed'));
