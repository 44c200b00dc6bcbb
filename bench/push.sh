#!/usr/bin/env bash
# Push throughput: the send pipeline end to end, from the JSON API to the
# simulator (docs/benchmarks.md, "Push throughput").
#
#   bench/push.sh
#
# Builds wxgate and the driver (bench/push) into a temporary directory, then
# runs, each with its own simulator (`wxgate sim`) and gateway
# (`wxgate serve`) processes on 127.0.0.1 and ports the system picks:
#   1. the simulator alone (template/send straight to its API),
#   2. the gateway on SQLite,
#   3. the gateway on PostgreSQL, when the server is reachable.
# Each gateway run sends BENCH_N recipients as fast as the API takes them
# (throughput), then BENCH_RATE recipients/s for BENCH_DURATION (steady),
# and checks that every follower received exactly one card.
#
# Settings (environment):
#   BENCH_N         throughput recipients (default 100000)
#   BENCH_RATE      steady recipients per second (default 500)
#   BENCH_DURATION  steady duration (default 60s)
#   BENCH_WORKERS   gateway push.workers (default 50, the configuration's default)
#   BENCH_OUT       directory for the JSON reports (default bench/results)
#   WXGATE_TEST_POSTGRES_URL  PostgreSQL server; a database is created for the
#                   run and dropped after (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
# Exit status: 0 when every run verified, 1 on a loss, a duplicate or an
# unsent recipient, 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_N:-100000}
RATE=${BENCH_RATE:-500}
DURATION=${BENCH_DURATION:-60s}
WORKERS=${BENCH_WORKERS:-50}
OUT=${BENCH_OUT:-bench/results}
PG=${WXGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

say() { printf '==> %s\n' "$*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wxgate-pushbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

say "$(go version); $(nproc) CPUs: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
say "building into $tmp"
go build -o "$tmp/wxgate" ./cmd/wxgate
go build -o "$tmp/push" ./bench/push
mkdir -p "$OUT"

status=0
run() { # run NAME ARGS…
	local name=$1
	shift
	"$tmp/push" --wxgate "$tmp/wxgate" --json "$OUT/push-$name.json" "$@" || {
		local s=$?
		[ $s -gt $status ] && status=$s
		echo "push.sh: the $name run failed (status $s)" >&2
	}
}

say "simulator alone"
run simulator --sim-only --recipients "$N" --concurrency 32
say "gateway on SQLite"
run sqlite --recipients "$N" --steady-rate "$RATE" --steady-duration "$DURATION" --workers "$WORKERS"
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -d "$PG"; then
	say "PostgreSQL at $PG is not reachable: skipping it"
else
	say "gateway on PostgreSQL"
	run postgres --postgres "$PG" --recipients "$N" --steady-rate "$RATE" --steady-duration "$DURATION" --workers "$WORKERS"
fi
say "JSON reports in $OUT/push-*.json"
exit $status
