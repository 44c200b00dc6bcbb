#!/usr/bin/env bash
# Third-party WeChat SDKs against wxgate's WeChat simulator, unchanged apart
# from their base URL:
#   test/sdk/run.sh
# It builds wxgate into a temporary directory, starts `wxgate sim` on
# 127.0.0.1 (a free port chosen by the kernel) with the apps of
# test/sdk/apps.yaml, runs each SDK suite against it, and stops it.
#   node/  co-wechat-api, wechat-api and the wechat middleware (node --test)
#   go/    github.com/silenceper/wechat/v2, a Go module of its own (go test)
# Then the API tests run a second time through wxgate's WeChat API proxy:
# `wxgate serve` with an account per app (api_base_urls: the simulator),
# the SDKs' base URL set to /wechat/{account}/ and their AppSecret to an
# API key of scope proxy, their token fetchers as shipped. The simulator
# must then count no cgi-bin/token call and one stable_token call per
# app: the broker's (two for the app whose token a test invalidates).
# Without node and npm the Node suite is skipped, saying so.
# SDK_SUITES (default "node go") picks the suites; SDK_PROXY=0 skips the
# proxy pass.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

say() { printf '==> sdk: %s\n' "$*"; }

if ! command -v go >/dev/null 2>&1; then
	for d in /usr/local/go/bin /usr/lib/go/bin; do
		[ -x "$d/go" ] && export PATH="$d:$PATH" && break
	done
fi
command -v go >/dev/null 2>&1 || { echo "sdk: Go is required to build wxgate"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wxgate-sdk.XXXXXX")
sim_pid=""
gw_pid=""
stop() {
	local pid=$1
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
cleanup() {
	stop "$gw_pid"
	stop "$sim_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building wxgate"
(cd "$root" && go build -o "$tmp/wxgate" ./cmd/wxgate)

say "starting the simulator"
"$tmp/wxgate" sim --listen 127.0.0.1:0 --apps "$here/apps.yaml" --log-level warn \
	>"$tmp/sim.out" 2>"$tmp/sim.err" &
sim_pid=$!

sim_url=""
for _ in $(seq 1 300); do
	sim_url=$(sed -n 's/^ *API base URL[^:]*: *\(http:\/\/127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$tmp/sim.out" | head -n1)
	[ -n "$sim_url" ] && break
	if ! kill -0 "$sim_pid" 2>/dev/null; then
		echo "sdk: the simulator exited:"; cat "$tmp/sim.out" "$tmp/sim.err"; exit 1
	fi
	sleep 0.1
done
[ -n "$sim_url" ] || { echo "sdk: the simulator did not start within 30 s"; cat "$tmp/sim.out" "$tmp/sim.err"; exit 1; }
# The banner is printed once the port is bound; with curl, also wait until
# the control API answers.
ready=""
command -v curl >/dev/null 2>&1 || ready=1
for _ in $(seq 1 100); do
	[ -n "$ready" ] && break
	if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$sim_url/sim/api/apps" 2>/dev/null)" = 200 ]; then
		ready=1
		break
	fi
	sleep 0.1
done
[ -n "$ready" ] || { echo "sdk: the simulator at $sim_url does not answer"; cat "$tmp/sim.err"; exit 1; }
say "simulator at $sim_url"
export WXGATE_SIM_URL="$sim_url"

failed=()
node_ready=""
run_node() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		say "SKIPPED the Node suite: node and npm are not installed (Node.js 18+ runs it)"
		return 0
	fi
	local major
	major=$(node -p 'process.versions.node.split(".")[0]')
	if [ "$major" -lt 18 ]; then
		say "SKIPPED the Node suite: node $(node --version) is older than 18"
		return 0
	fi
	if [ -z "$node_ready" ]; then
		say "node suite (node $(node --version)): npm ci"
		(cd "$here/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
			failed+=("node (npm ci)")
			return 0
		}
		node_ready=1
	fi
	if [ -n "${WXGATE_PROXY_URL:-}" ]; then
		say "node suite through the proxy: co-wechat-api, wechat-api"
		(cd "$here/node" && timeout 600 node --test --test-concurrency=1 --test-reporter=spec \
			api.test.js legacy.test.js) || failed+=("node through the proxy")
		return 0
	fi
	say "node suite: co-wechat-api, wechat-api, wechat middleware"
	(cd "$here/node" && timeout 600 node --test --test-concurrency=1 --test-reporter=spec \
		api.test.js legacy.test.js callback.test.js) || failed+=("node")
}
run_go() {
	if [ -n "${WXGATE_PROXY_URL:-}" ]; then
		# The SDK's base URL is process-wide: one go test per app.
		local app account
		for app in wx5d1c0de000000b01:sdk-go-oa wx5d1c0de000000b02:sdk-go-mp; do
			account=${app#*:}
			say "go suite through the proxy: silenceper/wechat/v2, account $account"
			# -v, filtered to the verdicts, shows which tests ran in this pass.
			if (cd "$here/go" && WXGATE_PROXY_URL="$WXGATE_PROXY_URL/wechat/$account" WXGATE_PROXY_APP="${app%%:*}" \
				go test -v -count=1 -timeout 10m ./... >"$tmp/go-$account.log" 2>&1); then
				grep -E '^(--- (PASS|SKIP)|ok)' "$tmp/go-$account.log" || true
			else
				cat "$tmp/go-$account.log"
				failed+=("go through the proxy ($account)")
			fi
		done
		return 0
	fi
	say "go suite: silenceper/wechat/v2"
	(cd "$here/go" && go vet ./... && go test -count=1 -timeout 10m ./...) || failed+=("go")
}
run_suites() {
	for suite in ${SDK_SUITES:-node go}; do
		case "$suite" in
		node) run_node ;;
		go) run_go ;;
		*) echo "sdk: unknown suite $suite"; exit 2 ;;
		esac
	done
}

run_suites

# The proxy pass: the simulator's state reset (its call counts start at
# zero), a gateway in front of it, and the suites again.
run_proxy() {
	curl -sf -X POST "$sim_url/sim/api/reset" >/dev/null || { failed+=("proxy pass (simulator reset)"); return 0; }
	cat >"$tmp/gateway.yaml" <<EOF
listen: 127.0.0.1:0
database_url: sqlite://$tmp/gateway.db
log_level: warn
followers: {sync_every: 0s}
accounts:
  - {name: sdk-node-oa, kind: official_account, app_id: wx5d1c0de000000a01, app_secret: sdk-test-oa-secret-not-a-real-one, token: sdkproxy2026, api_base_urls: [$sim_url]}
  - {name: sdk-node-mp, kind: mini_program, app_id: wx5d1c0de000000a02, app_secret: sdk-test-mp-secret-not-a-real-one, token: sdkproxy2026, api_base_urls: [$sim_url]}
  - {name: sdk-go-oa, kind: official_account, app_id: wx5d1c0de000000b01, app_secret: sdk-test-go-oa-secret-not-real, token: sdkproxy2026, api_base_urls: [$sim_url]}
  - {name: sdk-go-mp, kind: mini_program, app_id: wx5d1c0de000000b02, app_secret: sdk-test-go-mp-secret-not-real, token: sdkproxy2026, api_base_urls: [$sim_url]}
EOF
	local key
	key=$("$tmp/wxgate" apikey create --config "$tmp/gateway.yaml" --name sdk-suites --scopes proxy 2>"$tmp/apikey.err") || {
		cat "$tmp/apikey.err"; failed+=("proxy pass (apikey create)"); return 0
	}
	"$tmp/wxgate" serve --config "$tmp/gateway.yaml" >"$tmp/gw.out" 2>"$tmp/gw.err" &
	gw_pid=$!
	local gw_url=""
	for _ in $(seq 1 300); do
		gw_url=$(sed -n 's/^wxgate is listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$tmp/gw.out" | head -n1)
		[ -n "$gw_url" ] && break
		kill -0 "$gw_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$gw_url" ]; then
		echo "sdk: the gateway did not start:"; cat "$tmp/gw.out" "$tmp/gw.err"
		failed+=("proxy pass (gateway)")
		return 0
	fi
	say "gateway at $gw_url: the suites again, through its proxy"
	WXGATE_PROXY_URL="$gw_url" WXGATE_PROXY_KEY="$key" run_suites

	# What reached the simulator: no SDK token fetch, the broker's only.
	local calls
	calls=$(curl -sf "$sim_url/sim/api/calls") || { failed+=("proxy pass (call counts)"); return 0; }
	CALLS="$calls" SUITES="${SDK_SUITES:-node go}" node -e '
		const calls = JSON.parse(process.env.CALLS);
		const suites = process.env.SUITES.split(/\s+/);
		// stable_token calls expected per app: the broker fetches once; the
		// Node suite invalidates its official account token once on purpose.
		const apps = [
			["wx5d1c0de000000a01", "node", 2], ["wx5d1c0de000000a02", "node", 1],
			["wx5d1c0de000000b01", "go", 1], ["wx5d1c0de000000b02", "go", 1],
		];
		const bad = [];
		for (const [app, suite, stable] of apps) {
			if (!suites.includes(suite)) continue;
			const c = calls[app] || {};
			const classic = c["/cgi-bin/token"] || 0, got = c["/cgi-bin/stable_token"] || 0;
			console.log(`==> sdk: ${app}: cgi-bin/token ${classic}, cgi-bin/stable_token ${got} upstream`);
			if (classic) bad.push(`${app}: ${classic} SDK token fetches reached WeChat`);
			if (got !== stable) bad.push(`${app}: ${got} stable_token calls, want ${stable} (the broker)`);
		}
		if (bad.length) { console.error("sdk: " + bad.join("; ")); process.exit(1); }
	' || failed+=("proxy pass (upstream token fetches)")
	if ! kill -0 "$gw_pid" 2>/dev/null; then
		echo "sdk: the gateway died during the proxy pass:"; cat "$tmp/gw.err"
		failed+=("gateway")
	fi
}
if [ "${SDK_PROXY:-1}" = 0 ]; then
	say "SKIPPED the proxy pass: SDK_PROXY=0"
elif ! command -v curl >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	say "SKIPPED the proxy pass: it needs curl and node"
else
	run_proxy
fi

if ! kill -0 "$sim_pid" 2>/dev/null; then
	echo "sdk: the simulator died during the run:"; cat "$tmp/sim.err"
	failed+=("simulator")
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "sdk: FAILED: ${failed[*]} (simulator and gateway logs follow)"
	cat "$tmp/sim.err"
	if [ -f "$tmp/gw.err" ]; then cat "$tmp/gw.err"; fi
	exit 1
fi
say "all SDK suites passed"
