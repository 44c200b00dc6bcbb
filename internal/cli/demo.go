package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/schedule"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// The demo's simulated apps. The ids are fixed so a restart with the same
// --data finds its followers again; the secrets are generated per data folder.
const (
	demoAccount       = "demo"
	demoAppID         = "wxd0e1110000000001"
	demoOriginalID    = "gh_de0000000001"
	demoMPAccount     = "demo-mp"
	demoMPAppID       = "wxd0e1110000000002"
	demoOpenPlatform  = "demo-open-platform"
	demoTemplateVisit = "Tm-NewVisitor-0000000000000000000000000001"
	demoTemplateDaily = "Tm-Weather-00000000000000000000000000000001"
)

// demoSecrets are generated once per data folder and kept in demo.json.
type demoSecrets struct {
	AppSecret      string `json:"app_secret"`
	MPAppSecret    string `json:"mp_app_secret"`
	Token          string `json:"token"`
	EncodingAESKey string `json:"encoding_aes_key"`
	// AdminPassword is the console password of demoAdmin.
	AdminPassword string `json:"admin_password"`
}

func runDemo(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "demo", "[--listen 127.0.0.1:8080] [--sim-listen 127.0.0.1:8081] [--metrics-listen 127.0.0.1:9464] [--data DIR] [--mode safe]")
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address")
	metricsListen := fs.String("metrics-listen", config.DefaultMetricsListen, "address of /metrics (kept off the gateway address)")
	simListen := fs.String("sim-listen", "127.0.0.1:8081", "simulator address")
	dataDir := fs.String("data", "data/demo", "folder for the SQLite database and the simulator's state")
	mode := fs.String("mode", "safe", "message mode of the demo account: plaintext, compatible or safe")
	logLevel := fs.String("log-level", "warn", "debug|info|warn|error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	secrets, err := loadDemoSecrets(filepath.Join(*dataDir, "demo.json"))
	if err != nil {
		return err
	}
	gwLn, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (use --listen to pick another address)", *listen, err)
	}
	simLn, err := net.Listen("tcp", *simListen)
	if err != nil {
		gwLn.Close()
		return fmt.Errorf("listen on %s: %w (use --sim-listen to pick another address)", *simListen, err)
	}
	gatewayURL := "http://" + gwLn.Addr().String()
	simURL := "http://" + simLn.Addr().String()

	cfg := config.Default()
	cfg.Listen = gwLn.Addr().String()
	cfg.Metrics.Listen = *metricsListen
	cfg.PublicURL = gatewayURL
	cfg.LogLevel = *logLevel
	cfg.DatabaseURL = "sqlite://" + filepath.Join(*dataDir, "wxgate.db")
	cfg.Accounts = []config.Account{
		{Name: demoAccount, Kind: config.KindOfficialAccount, AppID: demoAppID, AppSecret: secrets.AppSecret,
			Token: secrets.Token, EncodingAESKey: secrets.EncodingAESKey, MessageMode: config.MessageMode(*mode),
			OriginalID: demoOriginalID, APIBaseURLs: []string{simURL}, TokenMode: config.TokenModeStable},
		{Name: demoMPAccount, Kind: config.KindMiniProgram, AppID: demoMPAppID, AppSecret: secrets.MPAppSecret,
			APIBaseURLs: []string{simURL}, TokenMode: config.TokenModeStable},
	}
	if err := cfg.Validate(); err != nil {
		gwLn.Close()
		simLn.Close()
		return err
	}
	logger := newLogger(cfg, env.Stderr)

	sim, err := wechatsim.New(wechatsim.Config{
		Apps:          demoApps(secrets, gatewayURL, *mode),
		Logger:        logger.With("component", "wechatsim"),
		StateFile:     filepath.Join(*dataDir, "simulator.json"),
		PublicBaseURL: simURL,
	})
	if err != nil {
		gwLn.Close()
		simLn.Close()
		return err
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- serveSim(simCtx, []*simServer{{name: "api", ln: simLn, handler: sim.Handler()}}) }()
	stopSimulator := func() error {
		stopSim()
		err := <-simDone
		if cerr := sim.Close(); err == nil {
			err = cerr
		}
		return err
	}

	gw, err := startGateway(ctx, cfg, logger, gatewayOptions{listener: gwLn, simulatorURL: simURL + "/sim/",
		secrets: schedule.MapSecrets{demoWeatherSecret: sim.WeatherKey()}})
	if err != nil {
		stopSimulator()
		return err
	}
	key, err := createDemoKey(ctx, gw)
	if err == nil {
		err = seedDemoFollowers(ctx, sim)
	}
	if err == nil {
		err = setUpDemoTemplates(ctx, gw)
	}
	// The tag first: the menu has a conditional menu for it.
	var tagID int64
	if err == nil {
		tagID, err = setUpDemoTag(ctx, gw, sim)
	}
	if err == nil {
		err = setUpDemoMenu(ctx, gw)
	}
	if err == nil {
		err = setUpDemoMedia(ctx, gw, *dataDir)
	}
	var weatherID int64
	if err == nil {
		weatherID, err = setUpDemoSchedule(ctx, gw, sim, simURL)
	}
	var consoleLink string
	if err == nil {
		consoleLink, err = demoConsoleLink(ctx, gw, secrets)
	}
	var firstFollower string
	if users, uerr := sim.Users(demoAppID); uerr == nil && len(users) > 0 {
		firstFollower = users[0].OpenID
	}
	if err != nil {
		logger.Error("demo setup failed", "err", err)
	} else {
		printDemoBanner(env, gatewayURL, simURL, gw.MetricsURL(), *mode, key, firstFollower, weatherID, tagID)
		fmt.Fprintf(env.Stdout, "Admin console, one-time sign-in link (管理后台，一次性登录链接，15 分钟内有效):\n  %s%s\n", gatewayURL, consoleLink)
		fmt.Fprintf(env.Stdout, "  or sign in at %s/admin/ as %s with password %s\n\n", gatewayURL, demoAdmin, secrets.AdminPassword)
	}
	gwErr := gw.Wait()
	simErr := stopSimulator()
	return errors.Join(err, gwErr, simErr)
}

func demoApps(s demoSecrets, gatewayURL, mode string) []wechatsim.AppConfig {
	return []wechatsim.AppConfig{
		{
			AppID: demoAppID, AppSecret: s.AppSecret, Kind: "official_account", Name: "wxgate 演示号",
			OriginalID: demoOriginalID, OpenPlatform: demoOpenPlatform,
			CallbackURL: gatewayURL + "/wx/" + demoAccount, Token: s.Token, EncodingAESKey: s.EncodingAESKey, Mode: mode,
			Templates: []wechatsim.TemplateConfig{
				{ID: demoTemplateVisit, Title: "新客户访问提醒", Content: "客户：{{thing1.DATA}}\n访问页面：{{thing2.DATA}}\n访问时间：{{time3.DATA}}"},
				{ID: demoTemplateDaily, Title: "每日天气", Content: "城市：{{thing1.DATA}}\n天气：{{phrase2.DATA}}\n气温：{{character_string3.DATA}}\n日期：{{date4.DATA}}"},
			},
		},
		{AppID: demoMPAppID, AppSecret: s.MPAppSecret, Kind: "mini_program", Name: "wxgate 演示小程序", OpenPlatform: demoOpenPlatform},
	}
}

// seedDemoFollowers gives a new demo a few followers (each follow goes
// through the gateway like a real one); a restarted demo keeps its own.
func seedDemoFollowers(ctx context.Context, sim *wechatsim.Simulator) error {
	users, err := sim.Users(demoAppID)
	if err != nil || len(users) > 0 {
		return err
	}
	for _, name := range []string{"张三", "李四", "王五"} {
		if _, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: demoAppID, Name: name, Follow: true}); err != nil {
			return fmt.Errorf("create demo follower %s: %w", name, err)
		}
	}
	return nil
}

// setUpDemoTemplates reads the simulated account's templates into the
// registry and names the visitor alert new_visitor, the field example of
// the README: a salesperson told that a customer opened the mini program.
func setUpDemoTemplates(ctx context.Context, gw *gateway) error {
	if _, err := gw.push.SyncTemplates(ctx, demoAccount); err != nil {
		return fmt.Errorf("sync the demo templates: %w", err)
	}
	_, err := gw.push.PutAlias(ctx, push.Alias{
		Account: demoAccount, Alias: "new_visitor", TemplateID: demoTemplateVisit,
		Fields:      map[string]string{"customer": "thing1", "page": "thing2", "time": "time3"},
		Truncate:    true,
		MiniProgram: &push.MiniProgram{AppID: demoMPAppID, PagePath: "pages/lead?id=1"},
		Description: "新客户访问提醒 — a customer opened the salesperson's share",
	})
	if err != nil {
		return fmt.Errorf("create the demo alias: %w", err)
	}
	return nil
}

// demoAdmin is the console user the demo creates.
const demoAdmin = "admin"

// demoConsoleLink makes sure the demo's admin user exists (its password is
// kept with the demo's other secrets) and returns a one-time sign-in path.
func demoConsoleLink(ctx context.Context, gw *gateway, s demoSecrets) (string, error) {
	admins := auth.NewAdminStore(gw.db, time.Now)
	if _, err := admins.CreateUser(ctx, demoAdmin, s.AdminPassword); err != nil && !isProblem(err, "admin_user_exists") {
		return "", fmt.Errorf("create the demo admin: %w", err)
	}
	token, err := admins.IssueLoginToken(ctx, demoAdmin)
	if err != nil {
		return "", fmt.Errorf("issue the demo sign-in link: %w", err)
	}
	return "/admin/login/link?token=" + token, nil
}

func createDemoKey(ctx context.Context, gw *gateway) (string, error) {
	key, _, err := auth.NewStore(gw.db, time.Now).Create(ctx, "demo "+time.Now().Format(time.DateTime), auth.AllScopes)
	if err != nil {
		return "", fmt.Errorf("create the demo API key: %w", err)
	}
	return key, nil
}

func printDemoBanner(env Env, gatewayURL, simURL, metricsURL, mode, key, openid string, weatherID, tagID int64) {
	w := env.Stdout
	fmt.Fprintf(w, "\nwxgate demo is running — 演示环境已启动 (Ctrl-C to stop)\n\n")
	fmt.Fprintf(w, "  simulator page (模拟手机):   %s/sim/\n", simURL)
	fmt.Fprintf(w, "  gateway:                    %s\n", gatewayURL)
	fmt.Fprintf(w, "  callback URL (回调地址):     %s/wx/%s  (mode %s)\n", gatewayURL, demoAccount, mode)
	fmt.Fprintf(w, "  WeChat API (simulated):     %s\n", simURL)
	if metricsURL != "" {
		fmt.Fprintf(w, "  metrics (local only):       %s/metrics\n", metricsURL)
	}
	fmt.Fprintf(w, "  API key (every scope):      %s\n\n", key)
	fmt.Fprintf(w, "Open the simulator page, pick a follower, send a message or press a menu button and watch the auto-reply;\n")
	fmt.Fprintf(w, "send %s and the reply is an image uploaded from a local file.\n", demoImageKeyword)
	fmt.Fprintf(w, "打开模拟器页面，选择一位粉丝发送消息或点击菜单，即可看到自动回复；发送「%s」会收到由本地文件上传的图片。\n\n", demoImageKeyword)
	fmt.Fprintf(w, "Try the API (试试 API):\n")
	fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' %s/api/v1/accounts\n", key, gatewayURL)
	fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' %s/api/v1/accounts/%s/token\n", key, gatewayURL, demoAccount)
	if openid != "" {
		fmt.Fprintf(w, "\nSend a template message, then watch it arrive on the phone page (发送模板消息):\n")
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' -H 'Idempotency-Key: demo-visit-1' %s/api/v1/messages -d '{\"account\":\"%s\",\"to\":{\"openids\":[\"%s\"]},\"template\":\"new_visitor\",\"data\":{\"customer\":\"张三\",\"page\":\"楼盘A 3室2厅\",\"time\":\"2026-11-24 10:00\"}}'\n",
			key, gatewayURL, demoAccount, openid)
	}
	if weatherID != 0 {
		fmt.Fprintf(w, "\nDaily weather report, 07:30 Asia/Shanghai, each follower's city; run it now (每日天气，立即运行):\n")
		fmt.Fprintf(w, "  curl -s -X POST -H 'Authorization: Bearer %s' %s/api/v1/schedules/%d/run\n", key, gatewayURL, weatherID)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' %s/api/v1/schedules/%d/runs\n", key, gatewayURL, weatherID)
	}
	if tagID != 0 {
		fmt.Fprintf(w, "\nMass send (群发) to the tag %s (tag %d, two followers), then read its MASSSENDJOBFINISH receipt:\n", demoTagName, tagID)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' %s/api/v1/mass -d '{\"account\":\"%s\",\"to\":{\"tag\":%d},\"message\":{\"type\":\"text\",\"text\":\"本周末全场八折\"},\"client_msg_id\":\"demo-mass-1\"}'\n",
			key, gatewayURL, demoAccount, tagID)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/api/v1/mass?account=%s'\n", key, gatewayURL, demoAccount)
	}
	fmt.Fprintln(w)
}

func loadDemoSecrets(path string) (demoSecrets, error) {
	var s demoSecrets
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &s); err != nil {
			return s, fmt.Errorf("read %s: %w (delete the file to start a fresh demo)", path, err)
		}
		if s.AdminPassword != "" {
			return s, nil
		}
		// A demo folder from before the console: add the admin password.
		s.AdminPassword = randomAlnum(16)
		data, _ = json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return s, fmt.Errorf("write %s: %w", path, err)
		}
		return s, nil
	case !errors.Is(err, fs.ErrNotExist):
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	s = demoSecrets{
		AppSecret:      randomAlnum(32),
		MPAppSecret:    randomAlnum(32),
		Token:          randomAlnum(24),
		EncodingAESKey: randomAlnum(43),
		AdminPassword:  randomAlnum(16),
	}
	data, _ = json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return s, fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}

func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}

// discardLogger is for commands that must not print the libraries' logs.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The demo's daily weather report: the README's recipe against the
// simulator's QWeather-shaped API.
const (
	demoWeatherName   = "每日天气"
	demoWeatherSecret = "QWEATHER_KEY"
)

// demoCities are given to the demo's followers, in turn, as their city
// and QWeather LocationID attributes.
var demoCities = [][2]string{{"北京", "101010100"}, {"上海", "101020100"}, {"广州", "101280101"}}

// demoWeatherInput is the schedule of the recipe, its source on the
// simulator at simURL (the real service is https://devapi.qweather.com).
func demoWeatherInput(simURL string, enabled bool) schedule.Input {
	retries := 2
	return schedule.Input{
		Name: demoWeatherName, Account: demoAccount, Cron: "30 7 * * *", TimeZone: schedule.DefaultTimeZone, Enabled: &enabled,
		Spec: schedule.Spec{
			Audience: schedule.Audience{Kind: schedule.AudienceAll},
			Template: "daily_weather",
			Data: map[string]string{
				"city":    "{{.City}}",
				"weather": `{{get .Response "daily.0.textDay"}}`,
				"temp":    `{{get .Response "daily.0.tempMin"}}~{{get .Response "daily.0.tempMax"}}C`,
				"date":    `{{date "2006年01月02日"}}`,
			},
			Source: &schedule.Source{Type: schedule.SourceHTTP,
				URL:     simURL + `/v7/weather/3d?location={{or .Attr.location .City | urlquery}}&key={{secret "` + demoWeatherSecret + `"}}`,
				Expect:  map[string]string{"code": "200"},
				Timeout: schedule.Duration(5 * time.Second), Retries: &retries},
		},
	}
}

// setUpDemoSchedule names the weather template daily_weather, gives the
// demo's followers a city each, and creates the 07:30 weather schedule (a
// restarted demo keeps its own, pointed at the simulator's address).
func setUpDemoSchedule(ctx context.Context, gw *gateway, sim *wechatsim.Simulator, simURL string) (int64, error) {
	if _, err := gw.push.PutAlias(ctx, push.Alias{
		Account: demoAccount, Alias: "daily_weather", TemplateID: demoTemplateDaily, Truncate: true,
		Fields:      map[string]string{"city": "thing1", "weather": "phrase2", "temp": "character_string3", "date": "date4"},
		Description: "每日天气 — the daily weather report of the schedules recipe",
	}); err != nil {
		return 0, fmt.Errorf("create the weather alias: %w", err)
	}
	users, err := sim.Users(demoAppID)
	if err != nil {
		return 0, err
	}
	for i, u := range users {
		attrs, err := gw.schedules.Attributes(ctx, demoAccount, u.OpenID)
		if err != nil {
			return 0, err
		}
		if attrs["city"] != "" {
			continue
		}
		c := demoCities[i%len(demoCities)]
		if _, err := gw.schedules.SetAttributes(ctx, demoAccount, u.OpenID,
			map[string]*string{"city": &c[0], "location": &c[1]}, true); err != nil {
			return 0, fmt.Errorf("set the city of a demo follower: %w", err)
		}
	}
	list, err := gw.schedules.List(ctx, demoAccount)
	if err != nil {
		return 0, err
	}
	for _, sc := range list {
		if sc.Name == demoWeatherName {
			if _, err := gw.schedules.Update(ctx, sc.ID, demoWeatherInput(simURL, sc.Enabled)); err != nil {
				return 0, fmt.Errorf("update the demo weather schedule: %w", err)
			}
			return sc.ID, nil
		}
	}
	sc, err := gw.schedules.Create(ctx, demoWeatherInput(simURL, true))
	if err != nil {
		return 0, fmt.Errorf("create the demo weather schedule: %w", err)
	}
	return sc.ID, nil
}

// isProblem reports whether err is the problem with this code.
func isProblem(err error, code string) bool {
	p, ok := problem.As(err)
	return ok && p.Code == code
}
