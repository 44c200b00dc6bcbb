package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"

	"github.com/wxgate/wxgate/internal/config"
)

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "serve", "--config wxgate.yaml [--listen ADDR] [--database-url URL]")
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load(env)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, env.Stderr)
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	setServeGCPercent()
	gw, err := startGateway(ctx, cfg, logger, gatewayOptions{})
	if err != nil {
		return err
	}
	printConnectInstructions(env.Stdout, cfg, gw.URL(), isTerminal(env.Stdout))
	if u := gw.MetricsURL(); u != "" {
		fmt.Fprintf(env.Stdout, "metrics on %s/metrics (metrics.listen)\n\n", u)
	}
	return gw.Wait()
}

// serveGCPercent is the garbage collector's target for `wxgate serve` when
// GOGC is not set: the heap may grow to five times what is live before a
// collection, instead of twice. A callback allocates a few dozen kilobytes
// and keeps little, so at thousands of pushes a second the Go default
// collects many times a second; at 400 the server spends about a sixth
// less CPU per push (docs/benchmarks.md), for a heap of tens of megabytes.
const serveGCPercent = 400

// setServeGCPercent applies serveGCPercent unless GOGC is set in the
// process's environment, which the runtime has then applied already (GOGC
// as usual, GOGC=off included; GOMEMLIMIT applies either way).
func setServeGCPercent() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(serveGCPercent)
	}
}

// printConnectInstructions tells the operator what to paste into WeChat's
// console (开发 → 基本配置 → 服务器配置). Token and EncodingAESKey are shown in
// full only on an interactive terminal; in a log they stay masked.
func printConnectInstructions(w io.Writer, cfg config.Config, listenURL string, showSecrets bool) {
	base := strings.TrimRight(cfg.PublicURL, "/")
	if base == "" {
		base = listenURL
	}
	fmt.Fprintf(w, "wxgate is listening on %s\n\n", listenURL)
	for _, a := range cfg.Accounts {
		secret := config.MaskSecret
		if showSecrets {
			secret = func(s string) string { return s }
		}
		fmt.Fprintf(w, "Account %q (%s, %s)\n", a.Name, a.AppID, a.Kind)
		fmt.Fprintf(w, "  paste into 开发 → 基本配置 → 服务器配置 (Server configuration):\n")
		fmt.Fprintf(w, "    URL (服务器地址):                %s%s\n", base, a.CallbackPath())
		if a.Token != "" {
			fmt.Fprintf(w, "    Token (令牌):                    %s\n", secret(a.Token))
		}
		if a.EncodingAESKey != "" {
			fmt.Fprintf(w, "    EncodingAESKey (消息加解密密钥): %s\n", secret(a.EncodingAESKey))
		}
		fmt.Fprintf(w, "    消息加解密方式 (mode):           %s\n", modeLabel(a.MessageMode))
		if cfg.PublicURL == "" {
			fmt.Fprintf(w, "  note: public_url is not set; WeChat needs a public http://…:80 or https://…:443 URL (未设置 public_url)\n")
		}
	}
	if ips := outboundIPs(); len(ips) > 0 {
		fmt.Fprintf(w, "\nAdd this server's public outbound IP to 开发 → 基本配置 → IP白名单 (IP whitelist), or API calls fail with 40164.\n")
		fmt.Fprintf(w, "  local addresses of this machine: %s (behind NAT, use the address your router shows)\n", strings.Join(ips, ", "))
	}
	fmt.Fprintln(w)
}

func modeLabel(m config.MessageMode) string {
	switch m {
	case config.ModeSafe:
		return "safe — 安全模式（推荐）"
	case config.ModeCompatible:
		return "compatible — 兼容模式"
	default:
		return "plaintext — 明文模式"
	}
}

// outboundIPs lists the machine's non-loopback IPv4 addresses without sending
// anything on the network.
func outboundIPs() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []string
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && ipnet.IP.To4() != nil {
			ips = append(ips, ipnet.IP.String())
		}
	}
	return ips
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
