package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/wechatsim"
)

// tags create / add (openids from standard input) / list / remove /
// rename / delete against the simulator, after a followers sync: WeChat
// and `followers list --tag` agree at each step.
func TestTagsCommands(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000c1a901"
		secret = "tag-secret-0123456789abcdef01234"
	)
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	var openids []string
	for i := range 60 {
		o := fmt.Sprintf("oTAG%024d", i)
		openids = append(openids, o)
		if _, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, OpenID: o, Follow: true}); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := writeConfig(t, fmt.Sprintf(`database_url: sqlite://%s
accounts:
  - name: main
    app_id: %s
    app_secret: %s
    token: tagtoken
    api_base_urls: [%s]
`, filepath.ToSlash(filepath.Join(t.TempDir(), "wxgate.db")), appID, secret, srv.URL))
	if code, _, errOut := run(t, ctx, nil, "followers", "sync", "--config", cfgPath, "--account", "main"); code != 0 {
		t.Fatalf("sync: %s", errOut)
	}
	wxgate := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut syncBuffer
		full := append([]string{args[0], args[1], "--config", cfgPath}, args[2:]...)
		code := Run(ctx, full, Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut})
		if code != 0 {
			t.Fatalf("wxgate %s: %d %s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	m := regexp.MustCompile(`tag (\d+) "会员" created`).FindStringSubmatch(wxgate("", "tags", "create", "--account", "main", "--name", "会员"))
	if m == nil {
		t.Fatal("no tag id printed")
	}
	id := m[1]
	if out := wxgate(strings.Join(openids, "\n")+"\n", "tags", "add", "--account", "main", "--file", "-", id); !strings.Contains(out, "60 tagged") {
		t.Errorf("add: %s", out)
	}
	wxgate("", "tags", "remove", "--account", "main", id, openids[0], openids[1])
	var listed struct {
		Tags []struct {
			ID    int64  `json:"id"`
			Name  string `json:"name"`
			Count int64  `json:"count"`
		} `json:"tags"`
	}
	if err := json.Unmarshal([]byte(wxgate("", "tags", "list", "--account", "main", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(listed.Tags, func(x struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		Count int64  `json:"count"`
	}) bool {
		return fmt.Sprint(x.ID) == id
	}); i < 0 || listed.Tags[i].Count != 58 {
		t.Errorf("WeChat's tags: %+v", listed.Tags)
	}
	if out := wxgate("", "followers", "list", "--account", "main", "--tag", id, "--limit", "500"); strings.Count(out, "oTAG") != 58 || strings.Contains(out, openids[0]) {
		t.Errorf("followers list --tag shows %d followers", strings.Count(out, "oTAG"))
	}
	wxgate("", "tags", "rename", "--account", "main", "--name", "老会员", id)
	if out := wxgate("", "tags", "list", "--account", "main"); !strings.Contains(out, "老会员") {
		t.Errorf("list after rename: %s", out)
	}
	wxgate("", "tags", "delete", "--account", "main", id)
	if out := wxgate("", "followers", "list", "--account", "main", "--tag", id); strings.Contains(out, "oTAG") {
		t.Errorf("followers keep a deleted tag:\n%s", out)
	}
	if code, _, errOut := run(t, ctx, nil, "tags", "create", "--config", cfgPath, "--account", "main", "--name", ""); code == 0 || !strings.Contains(errOut, "标签名") {
		t.Errorf("a tag without a name: %d %s", code, errOut)
	}
}
