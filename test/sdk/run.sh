#!/usr/bin/env bash
# Third-party WeChat SDKs against wxgate's WeChat simulator, unchanged apart
# from their base URL:
#   test/sdk/run.sh
# It builds wxgate into a temporary directory, starts `wxgate sim` on
# 127.0.0.1 (a free port chosen by the kernel) with the apps of
# test/sdk/apps.yaml, runs each SDK suite against it, and stops it.
#   node/  co-wechat-api, wechat-api and the wechat middleware (node --test)
#   go/    github.com/silenceper/wechat/v2, a Go module of its own (go test)
# Without node and npm the Node suite is skipped, saying so.
# SDK_SUITES (default "node go") picks the suites.
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
cleanup() {
	if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
		kill "$sim_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$sim_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$sim_pid" 2>/dev/null || true
		wait "$sim_pid" 2>/dev/null || true
	fi
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
	say "node suite (node $(node --version)): npm ci"
	(cd "$here/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
		failed+=("node (npm ci)")
		return 0
	}
	say "node suite: co-wechat-api, wechat-api, wechat middleware"
	(cd "$here/node" && timeout 600 node --test --test-concurrency=1 --test-reporter=spec \
		api.test.js legacy.test.js callback.test.js) || failed+=("node")
}
run_go() {
	say "go suite: silenceper/wechat/v2"
	(cd "$here/go" && go vet ./... && go test -count=1 -timeout 10m ./...) || failed+=("go")
}

for suite in ${SDK_SUITES:-node go}; do
	case "$suite" in
	node) run_node ;;
	go) run_go ;;
	*) echo "sdk: unknown suite $suite"; exit 2 ;;
	esac
done

if ! kill -0 "$sim_pid" 2>/dev/null; then
	echo "sdk: the simulator died during the run:"; cat "$tmp/sim.err"
	failed+=("simulator")
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "sdk: FAILED: ${failed[*]} (simulator log follows)"
	cat "$tmp/sim.err"
	exit 1
fi
say "all SDK suites passed"
