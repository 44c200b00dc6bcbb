package web_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestAccountsPageShowsWhatToPaste(t *testing.T) {
	env := startDemo(t)
	for _, tc := range []struct{ lang, mode, label string }{
		{"zh-CN", "安全模式（推荐）", "服务器地址（URL）"},
		{"en", "Safe mode (recommended)", "Server URL"},
	} {
		body := signedIn(t, tc.lang).get("/admin/accounts").page(t, http.StatusOK)
		// The demo's public URL is the gateway's own address.
		for _, want := range []string{env.Gateway + "/wx/demo", tc.mode, tc.label, `data-copy="#url-0"`, `data-test="account-demo-mp"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s accounts page lacks %q", tc.lang, want)
			}
		}
		// The mini program has no callback card.
		mp := body[strings.Index(body, `data-test="account-demo-mp"`):]
		if strings.Contains(mp[:strings.Index(mp, "</section>")], "/wx/") {
			t.Errorf("%s: the mini program shows a callback URL", tc.lang)
		}
	}
	// The demo's token broker has fetched a token from the simulator.
	if body := signedIn(t, "en").get("/admin/accounts").page(t, http.StatusOK); !strings.Contains(body, "valid, expires in about") {
		t.Errorf("no token state on the accounts page:\n%s", body)
	}
}
