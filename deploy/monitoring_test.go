package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wxgate/wxgate/internal/cli"
)

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type grafanaDashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

var metricName = regexp.MustCompile(`\bwxgate_[a-z0-9_]+`)

// The alert rules and the Grafana dashboard name only metrics a running
// gateway exports: a renamed metric would leave a panel empty and an alert
// silent.
func TestMonitoringUsesRealMetrics(t *testing.T) {
	used := map[string][]string{} // metric → where

	raw, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: alert, expr, labels.severity and annotations.summary are required", r)
			}
			if _, err := time.ParseDuration(r.For); r.For != "" && err != nil {
				t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.Count(r.Expr, "{") != strings.Count(r.Expr, "}") {
				t.Errorf("rule %s: unbalanced brackets in %s", r.Alert, r.Expr)
			}
			for _, m := range metricName.FindAllString(r.Expr, -1) {
				used[m] = append(used[m], "alert "+r.Alert)
			}
		}
	}
	// The three the operators asked for.
	for _, want := range []string{"WxgateTokenRefreshFailing", "WxgateQueueAgeGrowing", "WxgateCallbacksFailingVerification"} {
		if !strings.Contains(strings.Join(alerts, " "), want) {
			t.Errorf("no alert %s in %v", want, alerts)
		}
	}

	raw, err = os.ReadFile("grafana/wxgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("wxgate-dashboard.json: %v", err)
	}
	if len(dash.Panels) < 6 {
		t.Errorf("the dashboard has %d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				used[m] = append(used[m], "panel "+p.Title)
			}
		}
	}
	for _, v := range dash.Templating.List {
		for _, m := range metricName.FindAllString(v.Definition, -1) {
			used[m] = append(used[m], "variable")
		}
	}

	exported := scrapeDemo(t)
	var missing []string
	for m, where := range used {
		base := m
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if trimmed, ok := strings.CutSuffix(m, suffix); ok && exported[trimmed] == "histogram" {
				base = trimmed
			}
		}
		if exported[base] == "" {
			missing = append(missing, m+" (used by "+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("not exported by the gateway:\n%s", strings.Join(missing, "\n"))
	}
	if len(used) < 8 {
		t.Errorf("only %d metrics used; the regexp misses some?", len(used))
	}
}

// scrapeDemo runs `wxgate demo` and returns the metric families of its
// metrics listener, name → type.
func scrapeDemo(t *testing.T) map[string]string {
	t.Helper()
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
			"--data", dataDir}, cli.Env{Stdout: out, Stderr: out})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop")
		}
	}()
	line := regexp.MustCompile(`metrics \(local only\): +(http://127\.0\.0\.1:\d+/metrics)\n`)
	var url string
	for deadline := time.Now().Add(30 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if m := line.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("the demo printed no metrics address:\n%s", out.String())
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	types := map[string]string{}
	for _, l := range strings.Split(string(body), "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
