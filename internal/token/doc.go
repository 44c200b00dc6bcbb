// Package token is wxgate's access_token broker, the account's 中控: the
// one place that fetches, stores, refreshes and hands out access_tokens,
// so that neither several gateway instances nor the business's other
// services invalidate each other's tokens.
//
// A Broker serves one account. Its token lives in the tokens table (value,
// expiry, version) and in memory behind an atomic pointer: Token is a
// pointer load and a clock read, with no lock and no I/O.
//
// Modes. stable_token (the default) is WeChat's POST /cgi-bin/stable_token:
// asking again while the token has more than 5 minutes left returns the
// same token, and WeChat rotates it only in its last 5 minutes, the old one
// staying valid until its own expiry. The classic /cgi-bin/token issues a
// new token on every call (2000 a day) and keeps the previous one valid
// for 5 more minutes. Stable and classic tokens are separate at WeChat and
// have separate rows here.
//
// Schedule. A background loop (Run) refreshes when the token has
// RefreshMargin left. In stable mode the margin is capped at 4m30s: asking
// earlier than the last 5 minutes only returns the same token, so the
// default margin is 4 minutes, inside WeChat's rotation window with 30 s
// to spare for clock skew, and still minutes before the old token expires.
// If WeChat hands back the same token anyway (our clock runs ahead) the
// row's expiry is corrected and the loop asks again 15 s later. Failed
// refreshes back off from 5 s to 1 min. The loop also re-reads the row at
// least every minute, so an instance picks up a token another instance
// fetched. Callers only wait on a refresh when the token in memory has
// less than 10 s left, which the background loop prevents in the common
// case.
//
// One refresher. A refresh first re-reads the row; only if the token there
// is missing, due or the rejected one does it take the refresh lease
// (db.Leases, named token:<app_id>:<mode>): one upsert that succeeds only
// when the lease is free, expired or already ours, atomic on SQLite and
// PostgreSQL. The holder re-reads the row once more, calls WeChat, and in
// one transaction releases the lease (fenced on the holder: a lease lost
// meanwhile stores nothing) and writes the new token, version+1. Instances that
// lose the lease poll the row with short backoff (10 ms growing to 250 ms)
// until the winner's token appears, or report the winner's error, recorded
// in the row, instead of calling WeChat themselves. Within an instance
// concurrent callers are coalesced with singleflight, so a thousand
// goroutines on three instances cause one upstream call.
//
// Compare-and-refresh. wechat.Client calls Invalidate(failedToken) on
// 40001, 40014 and 42001 and retries once. Invalidate does nothing when
// the failed token is no longer the current one, adopts a newer token
// from the database when there is one, and otherwise asks WeChat. In
// stable mode that is first a normal stable_token call (which picks up a
// token rotated elsewhere without invalidating anyone); only if WeChat
// hands back the very token it just rejected, and that token is rejected
// again, is force_refresh used: at most 20 a day (Beijing day, counted in
// the row for all instances) and 30 s apart.
//
// Circuit breaker. Refreshes stop for a while (1 min, doubling to 30 min)
// when fetching a token fails for a reason retrying cannot fix (40164 IP
// not in the whitelist, 40125 wrong AppSecret, 40013, 45009 quota, …) or
// when a token fetched in answer to a rejection is rejected too (someone
// else is refreshing the account's token). Token and Invalidate then
// return a *BreakerOpenError that says why and until when; a still valid
// token keeps being served meanwhile.
//
// Secrets. Neither the AppSecret nor a token value is ever logged or put in
// an error.
package token
