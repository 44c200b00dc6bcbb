#!/usr/bin/env bash
# The admin console in real headless Chromium against `wxgate demo`:
#   test/browser/run.sh
# It builds wxgate, starts the demo on free ports with a fresh data folder,
# and runs console.test.js (node --test + playwright-core driving Debian's
# /usr/bin/chromium). Screenshots of every page (zh and en, desktop and
# phone width) are written to test/browser/output/.
# scripts/test.sh installs chromium, fonts-noto-cjk and the npm packages
# when they are missing; run alone, this script expects them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

say() { printf '==> browser: %s\n' "$*"; }

if ! command -v go >/dev/null 2>&1; then
	for d in /usr/local/go/bin /usr/lib/go/bin; do
		[ -x "$d/go" ] && export PATH="$d:$PATH" && break
	done
fi
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "browser: $CHROMIUM not found (apt-get install chromium fonts-noto-cjk)"; exit 1; }
command -v node >/dev/null 2>&1 || { echo "browser: node is required"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wxgate-browser.XXXXXX")
demo_pid=""
cleanup() {
	if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
		kill "$demo_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$demo_pid" 2>/dev/null || true
		wait "$demo_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -d "$here/node_modules/playwright-core" ]; then
	say "installing playwright-core (npm ci)"
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

say "building wxgate"
(cd "$root" && go build -o "$tmp/wxgate" ./cmd/wxgate)

say "starting wxgate demo"
"$tmp/wxgate" demo --listen 127.0.0.1:0 --sim-listen 127.0.0.1:0 --metrics-listen "" --data "$tmp/data" \
	>"$tmp/demo.out" 2>"$tmp/demo.err" &
demo_pid=$!

link=""
for _ in $(seq 1 600); do
	link=$(grep -o 'http://127\.0\.0\.1:[0-9]*/admin/login/link?token=[^ ]*' "$tmp/demo.out" | head -n1 || true)
	[ -n "$link" ] && break
	if ! kill -0 "$demo_pid" 2>/dev/null; then
		echo "browser: the demo exited:"; cat "$tmp/demo.out" "$tmp/demo.err"; exit 1
	fi
	sleep 0.1
done
[ -n "$link" ] || { echo "browser: the demo printed no sign-in link within 60 s"; cat "$tmp/demo.out" "$tmp/demo.err"; exit 1; }

export WXGATE_LOGIN_LINK="$link"
export WXGATE_GATEWAY=$(printf '%s' "$link" | sed 's#\(http://127\.0\.0\.1:[0-9]*\).*#\1#')
export WXGATE_SIM=$(sed -n 's#.*simulator page[^:]*: *\(http://127\.0\.0\.1:[0-9]*\)/sim/.*#\1#p' "$tmp/demo.out" | head -n1)
export WXGATE_ADMIN_PASSWORD=$(sed -n 's#.*as admin with password \([^ ]*\).*#\1#p' "$tmp/demo.out" | head -n1)
export WXGATE_API_KEY=$(sed -n 's#.*API key (every scope): *\(wxg_[A-Za-z0-9_]*\).*#\1#p' "$tmp/demo.out" | head -n1)
export CHROMIUM
export SCREENSHOT_DIR=${SCREENSHOT_DIR:-$here/output}
mkdir -p "$SCREENSHOT_DIR"

say "console tests in $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
if ! (cd "$here" && node --test --test-concurrency=1 "$@" console.test.js); then
	echo "browser: demo output:"; tail -n 50 "$tmp/demo.err"
	exit 1
fi
say "screenshots in $SCREENSHOT_DIR"
