#!/usr/bin/env bash
# Cluster push throughput: 1, 2 and 3 `wxgate serve` instances on one
# PostgreSQL database, each send spread over them in turn (docs/benchmarks.md,
# "Cluster throughput").
#
#   bench/cluster.sh
#
# Builds wxgate and the driver (bench/push), then for each instance count
# starts a simulator and the instances on 127.0.0.1, sends BENCH_N recipients
# as fast as the API takes them, and checks that every follower received
# exactly one card. On one machine the instances share its cores and the
# database, so more instances are expected to add availability, not speed.
# The cost of the shared rate limiter per send is measured apart:
#   go test -run '^$' -bench BenchmarkRateLimiter ./internal/push/
#
# Settings (environment):
#   BENCH_N          recipients per run (default 20000)
#   BENCH_INSTANCES  instance counts to run (default "1 2 3")
#   BENCH_WORKERS    push.workers per instance (default 50)
#   BENCH_OUT        directory for the JSON reports (default bench/results)
#   WXGATE_TEST_POSTGRES_URL  PostgreSQL server; a database is created for each
#                    run and dropped after (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
# Exit status: 0 when every run verified, 1 on a loss, a duplicate or an
# unsent recipient, 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_N:-20000}
INSTANCES=${BENCH_INSTANCES:-1 2 3}
WORKERS=${BENCH_WORKERS:-50}
OUT=${BENCH_OUT:-bench/results}
PG=${WXGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

say() { printf '==> %s\n' "$*" >&2; }

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -d "$PG"; then
	echo "cluster.sh: PostgreSQL at $PG is not reachable" >&2
	exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wxgate-clusterbench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

say "$(go version); $(nproc) CPUs: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
say "building into $tmp"
go build -o "$tmp/wxgate" ./cmd/wxgate
go build -o "$tmp/push" ./bench/push
mkdir -p "$OUT"

status=0
for n in $INSTANCES; do
	say "$n instance(s) on PostgreSQL"
	"$tmp/push" --wxgate "$tmp/wxgate" --postgres "$PG" --instances "$n" --recipients "$N" --steady-rate 0 \
		--workers "$WORKERS" --label "PostgreSQL, $n instance(s)" --json "$OUT/cluster-$n.json" || {
		s=$?
		[ $s -gt $status ] && status=$s
		echo "cluster.sh: the $n-instance run failed (status $s)" >&2
	}
done
say "JSON reports in $OUT/cluster-*.json"
exit $status
