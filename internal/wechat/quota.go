package wechat

import "time"

// BeijingTime is China Standard Time (UTC+8, no daylight saving time), the
// zone WeChat's days are counted in: API quotas and the force_refresh
// budget reset at Beijing midnight.
var BeijingTime = time.FixedZone("CST", 8*3600)

// QuotaDay is the Beijing date of t (2006-01-02), the day WeChat counts a
// call's quota against.
func QuotaDay(t time.Time) string { return t.In(BeijingTime).Format("2006-01-02") }
