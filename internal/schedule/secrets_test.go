package schedule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecrets(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := EnvSecrets([]string{"WXGATE_SECRET_QWEATHER_KEY=from-env", "WXGATE_SECRET_OTHER_FILE=" + file, "PATH=/bin", "WXGATE_SECRET_EMPTY="})
	s := ChainSecrets(MapSecrets{"DEMO": "from-map"}, env)
	get := secretFunc(s)
	for name, want := range map[string]string{"qweather_key": "from-env", "OTHER": "from-file", "demo": "from-map"} {
		if got, err := get(name); err != nil || got != want {
			t.Errorf("secret %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := get("EMPTY"); err == nil || !strings.Contains(err.Error(), "WXGATE_SECRET_EMPTY") {
		t.Errorf("empty secret: %v", err)
	}
	if _, err := get("bad name"); err == nil {
		t.Error("a name with a space was accepted")
	}
}
