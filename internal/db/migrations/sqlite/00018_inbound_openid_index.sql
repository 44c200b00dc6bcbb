-- A follower's pushes are found by openid alone: an openid belongs to one
-- account, and an index on (openid) is kept in (openid, id) order, which is
-- what a follower's history (newest first) and the customer-service window
-- (from the first id of the window on) read. The index it replaces also
-- held the account and received_at: entries about twice as wide, so every
-- push (from followers all over the index) cost more to log.

-- +goose Up
DROP INDEX inbound_messages_account_openid_received_at;
CREATE INDEX inbound_messages_openid ON inbound_messages (openid);

-- +goose Down
DROP INDEX inbound_messages_openid;
CREATE INDEX inbound_messages_account_openid_received_at ON inbound_messages (account, openid, received_at);
