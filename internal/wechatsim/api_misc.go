package wechatsim

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// IP lists, the connectivity check and quota reset (protocol doc §5.14,
// §5.15). The simulator calls servers from this machine, so the lists name
// loopback addresses: a gateway that allows WeChat's callback IPs keeps
// working locally.

var (
	callbackIPs  = []string{"127.0.0.1", "::1", "101.226.103.0/25", "101.226.62.0/26"}
	apiDomainIPs = []string{"127.0.0.1", "::1"}
)

type ipListAnswer struct {
	IPList []string `json:"ip_list"`
}

// handleCallbackIP is GET /cgi-bin/getcallbackip.
func (s *Simulator) handleCallbackIP(c *apiCall) (any, *apiError) {
	return ipListAnswer{append([]string(nil), callbackIPs...)}, nil
}

// handleAPIDomainIP is GET /cgi-bin/get_api_domain_ip.
func (s *Simulator) handleAPIDomainIP(c *apiCall) (any, *apiError) {
	return ipListAnswer{append([]string(nil), apiDomainIPs...)}, nil
}

type dnsResult struct {
	IP           string `json:"ip"`
	RealOperator string `json:"real_operator"`
}

type pingResult struct {
	IP           string `json:"ip"`
	FromOperator string `json:"from_operator"`
	PackageLoss  string `json:"package_loss"`
	Time         string `json:"time"`
}

// handleCallbackCheck is POST /cgi-bin/callback/check. It really connects
// to the app's callback host (TCP, one attempt per operator) so that
// "package_loss" tells whether the server is up.
func (s *Simulator) handleCallbackCheck(c *apiCall) (any, *apiError) {
	var req struct {
		Action        string `json:"action"`
		CheckOperator string `json:"check_operator"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if req.Action != "dns" && req.Action != "ping" && req.Action != "all" {
		return nil, wxErr(40202)
	}
	operators := map[string][]string{
		"DEFAULT": {"UNICOM"}, "CHINANET": {"CHINANET"}, "UNICOM": {"UNICOM"}, "CAP": {"CAP"},
	}[req.CheckOperator]
	if operators == nil {
		return nil, wxErr(40203)
	}
	s.mu.Lock()
	callback := c.app.Config.CallbackURL
	s.mu.Unlock()
	u, err := url.Parse(callback)
	if callback == "" || err != nil || u.Host == "" {
		return nil, wxErr(40201)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	ip := host
	if net.ParseIP(host) == nil {
		ip = "127.0.0.1"
		if addrs, err := net.DefaultResolver.LookupHost(c.r.Context(), host); err == nil && len(addrs) > 0 {
			ip = addrs[0]
		}
	}
	ans := struct {
		DNS  []dnsResult  `json:"dns"`
		Ping []pingResult `json:"ping"`
	}{DNS: []dnsResult{}, Ping: []pingResult{}}
	for _, op := range operators {
		if req.Action != "ping" {
			ans.DNS = append(ans.DNS, dnsResult{IP: ip, RealOperator: op})
		}
		if req.Action != "dns" {
			ans.Ping = append(ans.Ping, ping(c.r.Context(), ip, port, op))
		}
	}
	return ans, nil
}

func ping(ctx context.Context, ip, port, operator string) pingResult {
	start := time.Now()
	dialer := net.Dialer{Timeout: 2 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(ip, port))
	res := pingResult{IP: ip, FromOperator: operator, PackageLoss: "100%", Time: "0ms"}
	if err == nil {
		_ = conn.Close()
		res.PackageLoss = "0%"
		res.Time = fmt.Sprintf("%.3fms", float64(time.Since(start).Microseconds())/1000)
	}
	return res
}

// clearQuotaPerMonth is how often clear_quota may be called.
const clearQuotaPerMonth = 10

// handleClearQuota is POST /cgi-bin/clear_quota {"appid"}: resets the app's
// daily counters, 10 times a month (48006 after).
func (s *Simulator) handleClearQuota(c *apiCall) (any, *apiError) {
	var req struct {
		AppID string `json:"appid"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if req.AppID == "" {
		return nil, wxErr(41002)
	}
	if req.AppID != c.app.Config.AppID {
		return nil, wxErr(40013)
	}
	month := c.now.In(wechat.BeijingTime).Format("2006-01")
	if c.app.ClearQuotaMonth != month {
		c.app.ClearQuotaMonth, c.app.ClearQuotaCount = month, 0
	}
	if c.app.ClearQuotaCount >= clearQuotaPerMonth {
		return nil, wxErr(48006)
	}
	c.app.ClearQuotaCount++
	c.app.Quota = map[string]*quotaCounter{}
	return okAnswer, nil
}
