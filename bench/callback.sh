#!/usr/bin/env bash
# Callback throughput: wxgate against the ceiling (docs/benchmarks.md).
#
#   bench/callback.sh                      # sustained: the figures quoted
#   BENCH_DATABASE=postgres bench/callback.sh
#   BENCH_MODE=burst bench/callback.sh     # the short burst, for comparison
#
# Sustained mode (the default): per concurrency level, the ceiling and then
# wxgate each run BENCH_DURATION (default 60s) after a warm-up, the server
# pinned to CPU 0 and the load generator to CPU 1 (taskset, where the
# machine has two CPUs), every push from a follower of its own, built,
# sent and verified continuously; the Go SDK handler (test/sdk/go/sdkhandler,
# silenceper/wechat/v2, stores nothing) runs after the ceiling, when it
# builds; wxgate gets a fresh database per level
# and the database's size and its WAL are reported after the level.
#   BENCH_C         levels (default 16,64)
#   BENCH_DURATION  timed part of each level (default 60s)
#   BENCH_WARMUP    untimed, verified pushes first (default 2000)
#   BENCH_DATABASE  sqlite (default) or postgres
#   BENCH_POSTGRES_URL  server for BENCH_DATABASE=postgres (default
#                   postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable;
#                   needs psql); each level gets a database of its own
#   BENCH_PREFILL   pushes already in wxgate's message log when each level
#                   starts (default 0; bench/msglogfill fills a database once,
#                   and each level gets a copy of it): the growth figure
#
# Burst mode (BENCH_MODE=burst), the settings below:
# Builds wxgate, the ceiling and the load generator into a temporary
# directory; runs the load (distinct pre-signed safe-mode text messages,
# every reply verified) first against the ceiling — the crypto work of a
# safe-mode callback and a fixed reply, nothing else — then against
# `wxgate serve` with one safe-mode account on SQLite in a temporary
# directory (de-duplication and the message log persisted: the real thing);
# prints both tables, the ratio wxgate/ceiling per level and the target check.
# Everything listens on 127.0.0.1 on ports the system picks.
#
# Settings (environment):
#   BENCH_N       distinct messages per server, shared by the levels (default 30000)
#   BENCH_C       concurrency levels (default 1,16,64)
#   BENCH_WARMUP  untimed, verified messages per level (default 500)
#   BENCH_ROUNDS  rounds of both servers, back to back (default 1); with more
#                 than one, the target is checked on the medians and the spread
#                 is printed — the way to measure on a machine shared with
#                 other work
#   BENCH_OUT     directory for the JSON reports (default bench/results)
#   BENCH_TIMEOUT bound in seconds on each load run (default 600)
# Exit status: 0 when every reply verified (whether or not the target is met),
# 1 when a reply failed verification, 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${BENCH_MODE:-sustained}
N=${BENCH_N:-30000}
if [ "$MODE" = sustained ]; then
	C=${BENCH_C:-16,64}
	WARMUP=${BENCH_WARMUP:-2000}
else
	C=${BENCH_C:-1,16,64}
	WARMUP=${BENCH_WARMUP:-500}
fi
DURATION=${BENCH_DURATION:-60s}
DATABASE=${BENCH_DATABASE:-sqlite}
PREFILL=${BENCH_PREFILL:-0}
PG_URL=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
ROUNDS=${BENCH_ROUNDS:-1}
OUT=${BENCH_OUT:-bench/results}
LOAD_TIMEOUT=${BENCH_TIMEOUT:-600}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'callback.sh: %s\n' "$*" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wxgate-bench.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_server stops the server started last and waits for it (graceful stop).
stop_server() {
	kill -TERM "$pid"
	wait "$pid" || die "the server exited with status $? on SIGTERM; log: $(cat "$1")"
	pid=
}

# wait_listening FILE PATTERN: the URL printed after PATTERN, within 30 s.
wait_listening() {
	local url
	for _ in $(seq 300); do
		url=$(sed -n "s|^$2 \(http://[^ ]*\).*|\1|p" "$1" | head -n 1)
		if [ -n "$url" ]; then
			printf '%s' "$url"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

rand_alnum() { # rand_alnum LENGTH
	local s=
	while [ ${#s} -lt "$1" ]; do
		s+=$(head -c 256 /dev/urandom | tr -dc 'A-Za-z0-9')
	done
	printf '%s' "${s:0:$1}"
}

say "$(go version); $(nproc) CPUs: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
say "building into $tmp"
go build -o "$tmp/wxgate" ./cmd/wxgate
go build -o "$tmp/ceiling" ./bench/ceiling
go build -o "$tmp/callbackload" ./bench/callbackload
go build -o "$tmp/msglogfill" ./bench/msglogfill

token=$(rand_alnum 32)
aes_key=$(rand_alnum 43)
app_id="wx$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
original_id=gh_bench0000001
mkdir -p "$OUT"

case $ROUNDS in
'' | *[!0-9]* | 0) die "BENCH_ROUNDS must be a positive integer, not '$ROUNDS'" ;;
esac

# run_load LABEL URL JSON ARGS…: callbackload against the server $pid (on
# the load generator's CPU when one is set), its table printed; a failed
# verification exits 1.
load_on=()
run_load() {
	local label=$1 url=$2 json=$3 status=0
	shift 3
	timeout "$LOAD_TIMEOUT" "${load_on[@]}" "$tmp/callbackload" --url "$url" --token "$token" --aes-key "$aes_key" \
		--app-id "$app_id" --original-id "$original_id" --warmup "$WARMUP" \
		--label "$label" --server-pid "$pid" --json "$json" "$@" >"$tmp/$label.table" || status=$?
	cat "$tmp/$label.table"
	case $status in
	0) ;;
	1) echo "callback.sh: replies from $label failed verification" >&2; exit 1 ;;
	124) die "the load on $label took longer than ${LOAD_TIMEOUT}s" ;;
	*) die "the load on $label failed (status $status)" ;;
	esac
}

load() { # load LABEL URL JSON — the burst
	say "load on $1: $N messages over concurrency $C (warmup $WARMUP per level)"
	run_load "$1" "$2" "$3" -n "$N" -c "$C"
}

# write_config DATABASE_URL: wxgate's configuration, one safe-mode account.
write_config() {
	cat >"$tmp/wxgate.yaml" <<EOF
listen: 127.0.0.1:0
database_url: $1
log_level: warn
metrics:
  listen: 127.0.0.1:0
accounts:
  - name: bench
    app_id: $app_id
    token: $token
    encoding_aes_key: $aes_key
    message_mode: safe
    original_id: $original_id
EOF
}

# ---- sustained mode ---------------------------------------------------------------
if [ "$MODE" = sustained ]; then
	server_on=()
	if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
		server_on=(taskset -c 0) load_on=(taskset -c 1)
		say "server on CPU 0, load generator on CPU 1"
	else
		say "one CPU (or no taskset): server and load generator share it"
	fi
	case $DATABASE in
	sqlite) ;;
	postgres) command -v psql >/dev/null 2>&1 || die "BENCH_DATABASE=postgres needs psql" ;;
	*) die "BENCH_DATABASE must be sqlite or postgres, not '$DATABASE'" ;;
	esac
	sustained_load() { # sustained_load LABEL URL JSON LEVEL
		say "sustained load on $1: concurrency $4 for $DURATION after $WARMUP warm-up pushes, a new follower per push"
		run_load "$1" "$2" "$3" --sustained --distinct-senders --duration "$DURATION" -c "$4"
	}
	pg_admin() { psql "$PG_URL" -v ON_ERROR_STOP=1 -qtAc "$1"; }
	# The Go SDK handler (silenceper/wechat/v2, stores nothing), from the
	# SDK suite's module; skipped when its modules cannot be fetched.
	sdk=
	if (cd test/sdk/go && go build -o "$tmp/sdkhandler" ./sdkhandler) 2>"$tmp/sdkhandler.build"; then
		sdk=$tmp/sdkhandler
	else
		say "the Go SDK handler is skipped: it did not build ($(tail -n 1 "$tmp/sdkhandler.build"))"
	fi
	case $PREFILL in
	'' | *[!0-9]*) die "BENCH_PREFILL must be a number of pushes, not '$PREFILL'" ;;
	esac
	# The filled log is made once and copied for each level.
	if [ "$PREFILL" -gt 0 ]; then
		say "filling a message log with $PREFILL pushes"
		if [ "$DATABASE" = postgres ]; then
			pg_template=wxgate_bench_$$_filled
			pg_admin "CREATE DATABASE $pg_template" || die "cannot create $pg_template at $PG_URL"
			pg_base=${PG_URL%%\?*}
			"$tmp/msglogfill" --rows "$PREFILL" --original-id "$original_id" \
				--database-url "${pg_base%/*}/$pg_template${PG_URL#"$pg_base"}" || die "msglogfill failed"
		else
			mkdir -p "$tmp/filled"
			"$tmp/msglogfill" --rows "$PREFILL" --original-id "$original_id" \
				--database-url "sqlite://$tmp/filled/wxgate.db" || die "msglogfill failed"
		fi
	fi
	# wxgate_level LEVEL FILLED JSON: wxgate on a fresh database, or on a
	# copy of the filled one when FILLED is 1.
	wxgate_level() {
		local c=$1 filled=$2 json=$3 data=$tmp/data-c$1 log=$tmp/wxgate-c$1.log label=wxgate
		[ "$filled" = 1 ] && label=wxgate-filled
		mkdir -p "$data"
		pg_db=
		if [ "$DATABASE" = postgres ]; then
			pg_db=wxgate_bench_$$_$c
			local template=
			[ "$filled" = 1 ] && template=" TEMPLATE $pg_template"
			pg_admin "CREATE DATABASE $pg_db$template" || die "cannot create $pg_db at $PG_URL"
			# The same server and options, the level's database.
			pg_base=${PG_URL%%\?*}
			database_url=${pg_base%/*}/$pg_db${PG_URL#"$pg_base"}
			case $database_url in
			*/"$pg_db" | */"$pg_db"\?*) ;;
			*) die "cannot name database $pg_db in $PG_URL" ;;
			esac
		else
			database_url=sqlite://$data/wxgate.db
			[ "$filled" = 1 ] && cp "$tmp/filled/wxgate.db" "$data/wxgate.db"
		fi
		write_config "$database_url"
		"${server_on[@]}" "$tmp/wxgate" serve --config "$tmp/wxgate.yaml" >"$log" 2>&1 &
		pid=$!
		url=$(wait_listening "$log" "wxgate is listening on") || die "wxgate did not start: $(cat "$log")"
		wal_start=
		[ "$DATABASE" = postgres ] && wal_start=$(pg_admin "SELECT pg_current_wal_lsn()")
		[ "$filled" = 1 ] && say "the log holds $PREFILL pushes already"
		sustained_load "$label" "$url/wx/bench" "$json" "$c"
		if [ "$DATABASE" = postgres ]; then
			say "database after the level: $(pg_admin "SELECT pg_size_pretty(pg_database_size('$pg_db'))"), WAL written during it: $(pg_admin "SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_start'))")"
		else
			say "database after the level: $(du -h "$data/wxgate.db" | cut -f1), WAL: $(du -h "$data/wxgate.db-wal" 2>/dev/null | cut -f1 || echo none)"
		fi
		stop_server "$log"
		if grep -q 'level=ERROR' "$log"; then
			echo "callback.sh: wxgate logged errors:" >&2
			grep 'level=ERROR' "$log" | head -n 5 >&2
		fi
		[ -n "$pg_db" ] && pg_admin "DROP DATABASE $pg_db WITH (FORCE)"
		rm -rf "$data"
	}
	IFS=, read -ra levels <<<"$C"
	for c in "${levels[@]}"; do
		log=$tmp/ceiling-c$c.log
		"${server_on[@]}" "$tmp/ceiling" --listen 127.0.0.1:0 --token "$token" --aes-key "$aes_key" --app-id "$app_id" >"$log" 2>&1 &
		pid=$!
		url=$(wait_listening "$log" "ceiling listening on") || die "the ceiling did not start: $(cat "$log")"
		sustained_load ceiling "$url/wx/bench" "$OUT/sustained-ceiling-c$c.json" "$c"
		stop_server "$log"
		if [ -n "$sdk" ]; then
			log=$tmp/sdkhandler-c$c.log
			"${server_on[@]}" "$sdk" --listen 127.0.0.1:0 --token "$token" --aes-key "$aes_key" --app-id "$app_id" >"$log" 2>&1 &
			pid=$!
			url=$(wait_listening "$log" "sdkhandler listening on") || die "the SDK handler did not start: $(cat "$log")"
			sustained_load go-sdk "$url/wx/bench" "$OUT/sustained-go-sdk-c$c.json" "$c"
			stop_server "$log"
		fi

		wxgate_json=$OUT/sustained-wxgate-$DATABASE-c$c.json
		wxgate_level "$c" 0 "$wxgate_json"
		if [ "$PREFILL" -gt 0 ]; then
			filled_json=$OUT/sustained-wxgate-$DATABASE-filled-c$c.json
			wxgate_level "$c" 1 "$filled_json"
		fi
		echo
		"$tmp/callbackload" compare --concurrency "$c" --min-ratio 0.6 --max-p99 20ms \
			"$OUT/sustained-ceiling-c$c.json" "$wxgate_json"
		if [ -n "$sdk" ]; then
			echo
			"$tmp/callbackload" compare --concurrency "$c" --min-ratio 1.5 --max-p99 20ms \
				"$OUT/sustained-go-sdk-c$c.json" "$wxgate_json"
		fi
		if [ "$PREFILL" -gt 0 ]; then
			echo
			say "wxgate with $PREFILL pushes in the log against wxgate on an empty one"
			"$tmp/callbackload" compare --concurrency "$c" --min-ratio 0.9 --max-p99 20ms \
				"$wxgate_json" "$filled_json"
		fi
	done
	[ -n "${pg_template:-}" ] && pg_admin "DROP DATABASE $pg_template WITH (FORCE)"
	say "JSON reports in $OUT"
	exit 0
fi
[ "$MODE" = burst ] || die "BENCH_MODE must be sustained or burst, not '$MODE'"

reports=()
for round in $(seq "$ROUNDS"); do
	suffix=
	if [ "$ROUNDS" -gt 1 ]; then
		suffix=-$round
		say "round $round of $ROUNDS"
	fi

	# ---- the ceiling ------------------------------------------------------------
	# Each server of each round logs to a file of its own: the shell opens a
	# background command's redirection asynchronously, so a reused file could
	# still show the previous server's address.
	log=$tmp/ceiling$suffix.log
	"$tmp/ceiling" --listen 127.0.0.1:0 --token "$token" --aes-key "$aes_key" --app-id "$app_id" \
		>"$log" 2>&1 &
	pid=$!
	url=$(wait_listening "$log" "ceiling listening on") || die "the ceiling did not start: $(cat "$log")"
	load ceiling "$url/wx/bench" "$OUT/callback-ceiling$suffix.json"
	stop_server "$log"

	# ---- wxgate serve, on a fresh database --------------------------------------
	data=$tmp/data$suffix
	mkdir -p "$data"
	write_config "sqlite://$data/wxgate.db"
	log=$tmp/wxgate$suffix.log
	"$tmp/wxgate" serve --config "$tmp/wxgate.yaml" >"$log" 2>&1 &
	pid=$!
	url=$(wait_listening "$log" "wxgate is listening on") || die "wxgate did not start: $(cat "$log")"
	load wxgate "$url/wx/bench" "$OUT/callback-wxgate$suffix.json"
	if command -v curl >/dev/null 2>&1; then
		say "wxgate's callback counters"
		metrics_url=$(wait_listening "$log" "metrics on")
		curl -fsS "$metrics_url" | grep -E '^wxgate_callback_(requests|duplicates)_total' >&2 || true
	fi
	stop_server "$log"
	if command -v sqlite3 >/dev/null 2>&1; then
		say "rows in wxgate's message log: $(sqlite3 "$data/wxgate.db" 'SELECT count(*) FROM inbound_messages')"
	fi
	if grep -q 'level=ERROR' "$log"; then
		echo "callback.sh: wxgate logged errors:" >&2
		grep 'level=ERROR' "$log" | head -n 5 >&2
	fi
	rm -rf "$data"
	reports+=("$OUT/callback-ceiling$suffix.json" "$OUT/callback-wxgate$suffix.json")
done

# ---- comparison -----------------------------------------------------------------
echo
"$tmp/callbackload" compare --concurrency 64 --min-ratio 0.6 --max-p99 20ms "${reports[@]}"
say "JSON reports in $OUT: ${reports[*]##*/}"
