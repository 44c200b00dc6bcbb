-- A send in flight (internal/push): in_flight_at is set just before a call
-- to WeChat that WeChat does not de-duplicate (subscription and
-- customer-service messages) and cleared with its outcome. A recipient
-- found with it set was cut off mid-call by a crash: the message may have
-- arrived, so it is not sent again.

-- +goose Up
ALTER TABLE push_recipients ADD COLUMN in_flight_at DATETIME;

-- +goose Down
ALTER TABLE push_recipients DROP COLUMN in_flight_at;
