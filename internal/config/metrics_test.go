package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsSettings(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(tokenFile, []byte("scrape-me-please\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("", []string{
		"WXGATE_METRICS_LISTEN=127.0.0.1:9999",
		"WXGATE_METRICS_TOKEN_FILE=" + tokenFile,
		"WXGATE_METRICS_ON_PUBLIC_LISTENER=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := MetricsConfig{Listen: "127.0.0.1:9999", Token: "scrape-me-please", TokenFile: tokenFile, OnPublicListener: true}
	if cfg.Metrics != want {
		t.Errorf("metrics = %+v, want %+v", cfg.Metrics, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid metrics settings refused: %v", err)
	}
	if got := cfg.Masked().Metrics.Token; strings.Contains(got, "scrape-me") {
		t.Errorf("masked config shows the metrics token: %q", got)
	}

	if _, err := Load("", []string{"WXGATE_METRICS_ON_PUBLIC_LISTENER=maybe"}); err == nil {
		t.Error("a non-boolean on_public_listener was accepted")
	}
}

func TestValidateMetrics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*MetricsConfig)
		want string
	}{
		{"public without token", func(m *MetricsConfig) { m.OnPublicListener = true }, "metrics.on_public_listener needs metrics.token"},
		{"bad address", func(m *MetricsConfig) { m.Listen = "nine-four-six-four" }, "metrics.listen must be host:port"},
		{"same as listen", func(m *MetricsConfig) { m.Listen = "127.0.0.1:8080" }, "metrics.listen must differ from listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := validConfig()
			tc.edit(&cfg.Metrics)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want it to say %q", err, tc.want)
			}
		})
	}
	off := validConfig()
	off.Metrics.Listen = ""
	if err := off.Validate(); err != nil {
		t.Errorf("no metrics listener refused: %v", err)
	}
}
