package push

import (
	"context"
	"time"
)

// Resolver finds the openids of people in an account's app;
// *follower.Store is one.
type Resolver interface {
	// OpenIDsByUnionID returns the account's openid of each unionid it
	// knows.
	OpenIDsByUnionID(ctx context.Context, account string, unionids []string) (map[string]string, error)
	// OpenIDsByExternalID returns the openids bound to each external id in
	// the account (several when a business user bound several phones).
	OpenIDsByExternalID(ctx context.Context, account string, externalIDs []string) (map[string][]string, error)
	// Subscribed returns the follow state of the openids the account knows
	// as followers (absent: never seen).
	Subscribed(ctx context.Context, account string, openids []string) (map[string]bool, error)
	// OpenIDsWithTag returns the subscribed followers carrying a WeChat
	// user tag.
	OpenIDsWithTag(ctx context.Context, account string, tagID int64) ([]string, error)
	// SubscribedOpenIDs returns up to limit subscribed followers.
	SubscribedOpenIDs(ctx context.Context, account string, limit int) ([]string, error)
}

// WindowChecker tells whose customer-service window (48 hours after a
// message, a minute after a follow, scan or click) is open; the inbound
// log knows, and *msglog.Windows is one.
type WindowChecker interface {
	OpenWindows(ctx context.Context, account string, openids []string, now time.Time) (map[string]bool, error)
}
