package push

import (
	"context"
	"database/sql"
)

// Event types raised by the push pipeline.
const (
	EventMessageSent      = "message.sent"
	EventMessageDelivered = "message.delivered"
	EventMessageFailed    = "message.failed"
	// EventMessageUnconfirmed: WeChat accepted the send but no receipt
	// came within push.receipt_timeout. A late receipt still follows with
	// message.delivered or message.failed.
	EventMessageUnconfirmed = "message.unconfirmed"
)

// EventSink records an event inside the transaction that caused it, so the
// event exists if and only if its change was committed;
// *webhook.Publisher is one.
type EventSink interface {
	PublishTx(ctx context.Context, tx *sql.Tx, eventType, account string, data any) error
}
