package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const simUsage = `--listen ADDR (--app-id ID --app-secret SECRET [--callback URL --token T --encoding-aes-key K --mode plaintext|compatible|safe] | --apps FILE)
  WeChat's API is served at the root of ADDR: point an SDK's base URL at http://ADDR.
  Control API under /sim/api/, the phone page at /sim/.`

func runSim(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "sim", simUsage)
	listen := fs.String("listen", "127.0.0.1:8081", "address of the simulated api.weixin.qq.com")
	api2Listen := fs.String("api2-listen", "", "optional second address serving the same platform as the backup domain api2 (for failover tests)")
	appsFile := fs.String("apps", "", "YAML file declaring apps (official accounts and mini programs)")
	appID := fs.String("app-id", "", "AppID of an app declared from flags")
	appSecret := fs.String("app-secret", "", "its AppSecret")
	kind := fs.String("kind", "official_account", "official_account or mini_program")
	callbackURL := fs.String("callback", "", "the app's server URL (服务器地址) to post messages and events to")
	token := fs.String("token", "", "the app's Token (令牌)")
	aesKey := fs.String("encoding-aes-key", "", "the app's EncodingAESKey (消息加解密密钥)")
	mode := fs.String("mode", "plaintext", "plaintext, compatible or safe")
	dataFormat := fs.String("data-format", "xml", "xml, or json for a mini program (数据格式)")
	openPlatform := fs.String("open-platform", "", "Open Platform group: apps in the same group share unionids")
	stateFile := fs.String("state", "", "keep the simulator's state in this JSON file across restarts")
	logLevel := fs.String("log-level", "info", "debug|info|warn|error")
	jobFinishDelay := fs.Duration("job-finish-delay", wechatsim.DefaultJobFinishDelay, "wait before a send's delivery receipt (TEMPLATESENDJOBFINISH, subscribe_msg_sent_event) is pushed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var apps []wechatsim.AppConfig
	if *appsFile != "" {
		loaded, err := wechatsim.LoadAppsFile(*appsFile)
		if err != nil {
			return err
		}
		apps = append(apps, loaded...)
	}
	if *appID != "" {
		apps = append(apps, wechatsim.AppConfig{AppID: *appID, AppSecret: *appSecret, Kind: *kind,
			CallbackURL: *callbackURL, Token: *token, EncodingAESKey: *aesKey, Mode: *mode, DataFormat: *dataFormat, OpenPlatform: *openPlatform})
	}
	if len(apps) == 0 && *stateFile == "" {
		return usageErrorf("declare at least one app with --app-id and --app-secret, or --apps FILE (请声明至少一个应用)\n  wxgate sim %s", simUsage)
	}
	logger := newLogger(config.Config{LogLevel: *logLevel}, env.Stderr)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	base := "http://" + ln.Addr().String()
	sim, err := wechatsim.New(wechatsim.Config{Apps: apps, Logger: logger, StateFile: *stateFile, PublicBaseURL: base,
		JobFinishDelay: *jobFinishDelay})
	if err != nil {
		ln.Close()
		return err
	}
	servers := []*simServer{{name: "api", ln: ln, handler: sim.Handler()}}
	if *api2Listen != "" {
		ln2, err := net.Listen("tcp", *api2Listen)
		if err != nil {
			ln.Close()
			sim.Close()
			return fmt.Errorf("listen on %s: %w", *api2Listen, err)
		}
		servers = append(servers, &simServer{name: "api2", ln: ln2, handler: sim.DomainHandler("api2")})
	}
	fmt.Fprintf(env.Stdout, "WeChat simulator (微信模拟器)\n")
	fmt.Fprintf(env.Stdout, "  API base URL (SDK base URL):  %s\n", base)
	if len(servers) > 1 {
		fmt.Fprintf(env.Stdout, "  backup domain api2:           http://%s\n", servers[1].ln.Addr())
	}
	fmt.Fprintf(env.Stdout, "  phones page (模拟手机):       %s/sim/\n", base)
	fmt.Fprintf(env.Stdout, "  control API:                  %s/sim/api/\n", base)
	for _, a := range sim.Apps() {
		fmt.Fprintf(env.Stdout, "  app %s (%s) → callback %s, mode %s\n", a.AppID, a.Kind, orDash(a.CallbackURL), orDash(a.Mode))
	}
	err = serveSim(ctx, servers)
	if cerr := sim.Close(); err == nil {
		err = cerr
	}
	return err
}

type simServer struct {
	name    string
	ln      net.Listener
	handler http.Handler
}

// serveSim serves every listener until ctx ends, then shuts them down.
func serveSim(ctx context.Context, servers []*simServer) error {
	errs := make(chan error, len(servers))
	var https []*http.Server
	for _, s := range servers {
		hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
		https = append(https, hs)
		go func() { errs <- hs.Serve(s.ln) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, hs := range https {
		_ = hs.Shutdown(shutdownCtx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
