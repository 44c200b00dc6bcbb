package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// sendSetup is what the send tests start from: the simulator in its own
// process with one official account and its followers, and a gateway
// configuration for it with the followers synced and an API key, as an
// operator prepares them.
type sendSetup struct {
	sim     *proc
	simURL  string
	cfg     string // the gateway's configuration file
	key     string // scopes send and read
	openids []string
}

type sendSetupSpec struct {
	appID, secret, originalID, template, callbackToken string
	followers                                          int
	databaseURL                                        string
	// extraConfig is YAML added to the gateway's configuration (top-level keys).
	extraConfig string
	// callbackURL, when set, is where the simulator pushes the account's
	// messages and events (with callbackToken); extraTemplate is a second
	// template of the account.
	callbackURL, extraTemplate string
}

func newSendSetup(t *testing.T, ctx context.Context, bin, dir string, s sendSetupSpec) sendSetup {
	t.Helper()
	apps := filepath.Join(dir, "sim-apps.yaml")
	extra := ""
	if s.callbackURL != "" {
		extra += fmt.Sprintf("    callback_url: %s\n    token: %s\n", s.callbackURL, s.callbackToken)
	}
	templates := ""
	if s.extraTemplate != "" {
		templates = fmt.Sprintf("      - id: %s\n        title: 提醒\n        content: \"内容：{{thing1.DATA}}\"\n", s.extraTemplate)
	}
	writeFile(t, apps, fmt.Sprintf(`apps:
  - app_id: %s
    app_secret: %s
    original_id: %s
%s    quotas:
      /cgi-bin/message/template/send: 1000000
    templates:
      - id: %s
        title: 通知
        content: "事项：{{thing1.DATA}}\n时间：{{time2.DATA}}"
%s`, s.appID, s.secret, s.originalID, extra, s.template, templates))
	sim := startProc(t, "simulator", bin, filepath.Join(dir, "sim.log"), "sim", "--listen", "127.0.0.1:0", "--apps", apps, "--log-level", "warn")
	out := sendSetup{sim: sim, simURL: sim.waitLine(t, "API base URL (SDK base URL):")}
	var created struct {
		OpenIDs []string `json:"openids"`
	}
	call(t, ctx, "POST", out.simURL+"/sim/api/users/bulk", "", map[string]any{"app_id": s.appID, "count": s.followers, "follow": true},
		http.StatusCreated, &created)
	if len(created.OpenIDs) != s.followers {
		t.Fatalf("simulator created %d followers, want %d", len(created.OpenIDs), s.followers)
	}
	out.openids = created.OpenIDs

	out.cfg = filepath.Join(dir, "wxgate.yaml")
	writeFile(t, out.cfg, fmt.Sprintf(`listen: 127.0.0.1:0
database_url: %q
log_level: warn
metrics:
  listen: 127.0.0.1:0
%saccounts:
  - name: main
    app_id: %s
    app_secret: %s
    token: %s
    api_base_urls: [%s]
`, s.databaseURL, s.extraConfig, s.appID, s.secret, s.callbackToken, out.simURL))
	runCmd(t, ctx, bin, "migrate", "--config", out.cfg)
	runCmd(t, ctx, bin, "followers", "sync", "--account", "main", "--config", out.cfg)
	out.key = strings.TrimSpace(runCmd(t, ctx, bin, "apikey", "create", "--name", "e2e", "--scopes", "send,read", "--config", out.cfg))
	return out
}
