#!/usr/bin/env bash
# The whole wxgate test suite, as run by CI (.ci/run) and by a newcomer:
#   ./scripts/test.sh
# It makes PostgreSQL reachable (starting the installed server, or installing
# Debian's postgresql), then runs vet, the tests with -race on SQLite and
# PostgreSQL, the third-party SDK suites, the admin console in headless
# Chromium (installing Debian's chromium and fonts-noto-cjk and npm's
# playwright-core when missing), and a bounded fuzz run of every fuzz target.
# FUZZTIME (default 100000x executions) sets the fuzzing budget per target; 0
# skips fuzzing. The default is a count, not a duration: in Go 1.26 a duration
# budget can end with a spurious "context deadline exceeded" failure when the
# deadline races a busy worker (golang/go#75804, fixed in Go 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

if ! command -v go >/dev/null 2>&1; then
	for d in /usr/local/go/bin /usr/lib/go/bin; do
		[ -x "$d/go" ] && export PATH="$d:$PATH" && break
	done
fi
command -v go >/dev/null 2>&1 || { echo "Go 1.26+ is required (https://go.dev/dl/)"; exit 1; }
say "$(go version)"

# ---- PostgreSQL -------------------------------------------------------------
pg_role=wxgate_test
pg_url="postgres://${pg_role}:${pg_role}@127.0.0.1:5432/postgres?sslmode=disable"

pg_ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }

as_postgres() {
	if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -c "$*"; fi
}

start_postgres() {
	if ! command -v pg_ctlcluster >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
		say "installing PostgreSQL (Debian package postgresql)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq postgresql >/dev/null
	fi
	if command -v pg_ctlcluster >/dev/null 2>&1; then
		local version
		version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
		if [ -z "$version" ] && command -v pg_createcluster >/dev/null 2>&1; then
			version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
			pg_createcluster "$version" main >/dev/null
		fi
		say "starting PostgreSQL $version"
		pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
		for _ in $(seq 1 30); do pg_ready && return 0; sleep 1; done
	fi
	return 1
}

if [ -n "${WXGATE_TEST_POSTGRES_URL:-}" ]; then
	say "using PostgreSQL from WXGATE_TEST_POSTGRES_URL"
	export WXGATE_REQUIRE_POSTGRES=1
elif pg_ready || start_postgres; then
	if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
		# A password role works whatever pg_hba.conf says (trust, md5 or scram).
		as_postgres psql -q -h 127.0.0.1 -d postgres -v ON_ERROR_STOP=1 -c \
			"DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='${pg_role}') THEN CREATE ROLE ${pg_role} LOGIN SUPERUSER PASSWORD '${pg_role}'; END IF; END\$\$;" \
			>/dev/null 2>&1 ||
			as_postgres psql -q -d postgres -v ON_ERROR_STOP=1 -c \
				"DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='${pg_role}') THEN CREATE ROLE ${pg_role} LOGIN SUPERUSER PASSWORD '${pg_role}'; END IF; END\$\$;" >/dev/null
		export WXGATE_TEST_POSTGRES_URL="$pg_url"
	else
		export WXGATE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	fi
	export WXGATE_REQUIRE_POSTGRES=1
	# The cluster test runs three gateways of up to 21 connections each
	# while other packages' PostgreSQL tests run beside it: more than the
	# default 100. Raise the limit on a server this script may restart.
	max_conns=$(psql -At "$WXGATE_TEST_POSTGRES_URL" -c 'SHOW max_connections' 2>/dev/null || echo 0)
	if [ "${max_conns:-0}" -lt 300 ] && [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null 2>&1; then
		pg_version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
		if [ -n "$pg_version" ] && psql -q "$WXGATE_TEST_POSTGRES_URL" -c 'ALTER SYSTEM SET max_connections = 300' >/dev/null 2>&1; then
			say "raising PostgreSQL max_connections from $max_conns to 300 (restart)"
			pg_ctlcluster --skip-systemctl-redirect "$pg_version" main restart || true
			for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
		fi
	fi
	say "PostgreSQL reachable: store tests run on SQLite and PostgreSQL"
else
	say "PostgreSQL not reachable and could not be installed: PostgreSQL store tests will be skipped (each says why)"
fi

# ---- Go ---------------------------------------------------------------------
say "go vet"
go vet ./...

say "go test -race"
go test -race -count=1 -timeout 30m ./...

say "third-party WeChat SDKs against the simulator"
./test/sdk/run.sh

# ---- Browser ----------------------------------------------------------------
# The admin console in Debian's Chromium, driven by npm playwright-core.
browser_reason=""
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing chromium and fonts-noto-cjk (Debian packages)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq chromium fonts-noto-cjk >/dev/null || browser_reason="apt-get install chromium fonts-noto-cjk failed"
	else
		browser_reason="/usr/bin/chromium or fonts-noto-cjk missing and not root to install them"
	fi
fi
if [ -z "$browser_reason" ] && ! command -v npm >/dev/null 2>&1; then
	browser_reason="node and npm are not installed"
fi
if [ -n "$browser_reason" ]; then
	if [ "${CI:-}" = "true" ]; then
		echo "browser tests cannot run: $browser_reason"
		exit 1
	fi
	say "SKIPPED browser tests: $browser_reason"
else
	say "admin console in headless Chromium"
	./test/browser/run.sh
fi

fuzztime=${FUZZTIME:-100000x}
if [ "$fuzztime" != "0" ]; then
	say "bounded fuzzing (${fuzztime} per target)"
	grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
		dir=$(dirname "$file")
		grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r target; do
			say "fuzz $dir $target"
			if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$dir" 2>&1); then
				printf '%s\n' "$out"
				exit 1
			fi
		done
	done
fi

say "all tests passed"
