-- Recipients awaiting a receipt (internal/push, the receipt sweep): a sent
-- recipient whose receipt has not come within push.receipt_timeout becomes
-- unconfirmed (reason receipt_missing), a final status a late receipt may
-- still upgrade. The partial index keeps the periodic scan of sent rows
-- cheap however many finished rows the table holds.

-- +goose Up
CREATE INDEX push_recipients_awaiting_receipt ON push_recipients (sent_at) WHERE status = 'sent';

-- +goose Down
DROP INDEX push_recipients_awaiting_receipt;
