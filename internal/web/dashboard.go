package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/token"
)

// dashboardRoutes registers the dashboard pages.
func (c *Console) dashboardRoutes() {
	c.page("GET /admin/dashboard", c.dashboardPage)
}

// dashboardRange is a stretch of time the dashboard sums up.
type dashboardRange struct {
	Name  string // "24h" or "7d", the range= value
	Step  time.Duration
	Steps int
}

var dashboardRanges = []dashboardRange{
	{Name: "24h", Step: time.Hour, Steps: 24},
	{Name: "7d", Step: 24 * time.Hour, Steps: 7},
}

// dashboardView is one account's figures over one range.
type dashboardView struct {
	Account  string
	Range    string
	Ranges   []string
	Accounts []config.Account
	Since    time.Time

	Callbacks msglog.Stats
	Sends     push.Stats
	// Statuses are the recipient states in a fixed order, with their counts.
	Statuses []statusCount
	// Following is the follower count now; Gained and Lost count the
	// subscribe and unsubscribe events of the range.
	Following, Gained, Lost int64
	Net                     string

	HasToken  bool
	Token     token.Status
	TokenLeft int64 // minutes; 0 when there is no token
	History   token.History
	// Fetches are the token fetches of the range (all instances).
	Fetches token.FetchCounts

	Chart barChart
}

type statusCount struct {
	Status string
	Count  int64
}

func (c *Console) dashboardPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := dashboardView{Account: q.Get("account"), Range: q.Get("range"), Accounts: c.opts.Accounts}
	for _, dr := range dashboardRanges {
		v.Ranges = append(v.Ranges, dr.Name)
	}
	rng := dashboardRanges[0]
	for _, dr := range dashboardRanges {
		if dr.Name == v.Range {
			rng = dr
		}
	}
	v.Range = rng.Name
	if _, ok := c.accountNamed(v.Account); !ok {
		v.Account = ""
		if len(c.opts.Accounts) > 0 {
			v.Account = c.opts.Accounts[0].Name
		}
	}
	if v.Account == "" {
		c.render(w, r, http.StatusOK, "dashboard", "dashboard.title", v, nil)
		return
	}

	// Steps end with the current hour (or Beijing day), so the newest bar
	// is the one still filling.
	now := c.now()
	end := now.Truncate(time.Hour).Add(time.Hour)
	if rng.Step == 24*time.Hour {
		local := now.In(consoleZone)
		end = time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, consoleZone)
	}
	b := db.Buckets{Since: end.Add(-time.Duration(rng.Steps) * rng.Step), Step: rng.Step, Count: rng.Steps}
	v.Since = b.Since
	ctx := r.Context()
	var err error
	if c.opts.Messages != nil {
		if v.Callbacks, err = c.opts.Messages.Stats(ctx, v.Account, b); err != nil {
			c.fail(w, r, err)
			return
		}
		for _, tc := range v.Callbacks.ByType {
			switch tc.Type {
			case "event:subscribe":
				v.Gained = tc.Count
			case "event:unsubscribe":
				v.Lost = tc.Count
			}
		}
	}
	v.Net = fmt.Sprintf("%+d", v.Gained-v.Lost)
	if c.opts.Push != nil {
		if v.Sends, err = c.opts.Push.Stats(ctx, v.Account, b); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	for _, s := range messageStatuses {
		v.Statuses = append(v.Statuses, statusCount{Status: s, Count: v.Sends.ByStatus[s]})
	}
	if c.opts.Followers != nil {
		if v.Following, err = c.opts.Followers.Count(ctx, v.Account, true); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if c.opts.Tokens != nil {
		v.Token, v.HasToken = c.opts.Tokens.Status(v.Account)
		if v.HasToken {
			if !v.Token.ExpiresAt.IsZero() {
				v.TokenLeft = max(int64(v.Token.ExpiresAt.Sub(now)/time.Minute), 1)
			}
			if v.History, _, err = c.opts.Tokens.History(ctx, v.Account); err != nil {
				c.fail(w, r, err)
				return
			}
			v.Fetches = v.History.Fetches24h
			if rng.Step == 24*time.Hour {
				v.Fetches = v.History.Fetches7d
			}
		}
	}
	l := lang(r)
	v.Chart = newBarChart(b, []chartSeries{
		{Name: c.text(l, "dashboard.series_callbacks"), Class: "s1", Values: v.Callbacks.PerStep},
		{Name: c.text(l, "dashboard.series_sends"), Class: "s2", Values: v.Sends.PerStep},
	}, rng.Step)
	c.render(w, r, http.StatusOK, "dashboard", "dashboard.title", v, nil)
}

// barChart is an SVG bar chart laid out here, so the page draws it
// without any script: groups of bars per step, a scale and time labels.
type barChart struct {
	Width, Height int
	Left, Bottom  int
	Bars          []chartBar
	Grid          []chartLine
	Labels        []chartLabel
	Legend        []chartSeries
}

type chartSeries struct {
	Name   string
	Class  string
	Values []int64
}

type chartBar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type chartLine struct {
	Y     int
	Label string
}

type chartLabel struct {
	X     int
	Label string
}

const (
	chartWidth  = 720
	chartHeight = 220
	chartLeft   = 60
	chartRight  = 8
	chartTop    = 10
	chartBottom = 190
)

func newBarChart(b db.Buckets, series []chartSeries, step time.Duration) barChart {
	ch := barChart{Width: chartWidth, Height: chartHeight, Left: chartLeft, Bottom: chartBottom, Legend: series}
	var peak int64
	for _, s := range series {
		for _, n := range s.Values {
			peak = max(peak, n)
		}
	}
	top := niceCeiling(peak)
	plotH := chartBottom - chartTop
	for i := 0; i <= 2; i++ {
		val := top * int64(i) / 2
		ch.Grid = append(ch.Grid, chartLine{Y: chartBottom - int(val*int64(plotH)/top), Label: strconv.FormatInt(val, 10)})
	}
	group := float64(chartWidth-chartLeft-chartRight) / float64(b.Count)
	barW := int(group * 0.8 / float64(len(series)))
	labelEvery := 1
	format := "01-02"
	if step < 24*time.Hour {
		labelEvery, format = 3, "15:00"
	}
	for i := 0; i < b.Count; i++ {
		x0 := chartLeft + int(float64(i)*group+group*0.1)
		at := b.Start(i).In(consoleZone).Format(format)
		for si, s := range series {
			var n int64
			if i < len(s.Values) {
				n = s.Values[i]
			}
			h := int(n * int64(plotH) / top)
			if n > 0 && h < 1 {
				h = 1
			}
			ch.Bars = append(ch.Bars, chartBar{X: x0 + si*barW, Y: chartBottom - h, W: max(barW-1, 1), H: h,
				Class: s.Class, Title: fmt.Sprintf("%s · %s %d", at, s.Name, n)})
		}
		if i%labelEvery == 0 {
			ch.Labels = append(ch.Labels, chartLabel{X: x0 + barW*len(series)/2, Label: at})
		}
	}
	return ch
}

// niceCeiling is the smallest of 1, 2, 5 × 10ⁿ (and at least 4, so an
// idle account still gets a scale) not below n.
func niceCeiling(n int64) int64 {
	if n <= 4 {
		return 4
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// dashboardTexts are the dashboard pages' texts.
var dashboardTexts = texts{
	"dashboard.title":            {"概览", "Dashboard"},
	"dashboard.account":          {"账号", "Account"},
	"dashboard.range":            {"时间范围", "Range"},
	"dashboard.range.24h":        {"最近 24 小时", "Last 24 hours"},
	"dashboard.range.7d":         {"最近 7 天", "Last 7 days"},
	"dashboard.since":            {"自 %s 起", "Since %s"},
	"dashboard.no_account":       {"还没有配置账号。", "No account is configured."},
	"dashboard.callbacks":        {"收到的推送", "Pushes received"},
	"dashboard.replied":          {"被动回复 %d 条", "%d answered with a reply"},
	"dashboard.duplicates":       {"拒绝的重复推送", "Duplicates refused"},
	"dashboard.duplicates_sub":   {"微信 5 秒未收到应答会重试，重复的只回答一次", "WeChat retries after 5 s without an answer; each push is handled once"},
	"dashboard.sends":            {"发送的消息（接收人）", "Sends (recipients)"},
	"dashboard.delivered":        {"已送达 %d", "%d delivered"},
	"dashboard.followers":        {"关注中的粉丝", "Followers"},
	"dashboard.net":              {"净增 %s（关注 %d，取消 %d）", "net %s (%d followed, %d left)"},
	"dashboard.chart":            {"推送与发送", "Pushes and sends"},
	"dashboard.chart_hint":       {"每根柱子是一个小时（7 天视图为一天，北京时间）；把鼠标停在柱子上看数字。", "One bar per hour (per day on the 7-day view, China time); hover a bar for its number."},
	"dashboard.series_callbacks": {"收到推送", "pushes received"},
	"dashboard.series_sends":     {"发送", "sends"},
	"dashboard.by_type":          {"推送类型", "Kinds of push"},
	"dashboard.type":             {"类型", "Kind"},
	"dashboard.count":            {"数量", "Count"},
	"dashboard.by_status":        {"发送状态", "Send states"},
	"dashboard.failures":         {"失败原因", "Why sends did not arrive"},
	"dashboard.reason":           {"原因", "Reason"},
	"dashboard.no_failures":      {"没有失败。", "No failure."},
	"dashboard.token":            {"access_token", "access_token"},
	"dashboard.token_left":       {"约 %d 分钟后过期", "expires in about %d min"},
	"dashboard.token_none":       {"尚未获取", "not fetched yet"},
	"dashboard.token_paused":     {"已暂停刷新，直到 %s：%s", "refresh paused until %s: %s"},
	"dashboard.token_refreshes":  {"当前令牌获取于 %s", "current token fetched at %s"},
	"dashboard.token_fetches":    {"%s获取令牌次数：", "%s, token fetches: "},
	"dashboard.token_failures":   {"其中失败 %d 次", "of which %d failed"},
	"dashboard.token_force":      {"今天强制刷新 %d / 20 次", "%d of 20 force refreshes used today"},
	"dashboard.token_error":      {"最近一次刷新失败（%s）：%s", "Last refresh failed (%s): %s"},
	"dashboard.token_no_secret":  {"未配置 AppSecret：不调用微信接口。", "No AppSecret: no API calls."},
	"dashboard.no_pushes":        {"这段时间没有收到推送。", "No push in this range."},
	"dashboard.view_messages":    {"查看消息记录", "See the messages"},
}
