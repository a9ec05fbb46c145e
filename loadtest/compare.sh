#!/usr/bin/env bash
# The service against a Redis Lua script and a PostgreSQL transaction, on the
# same workload, one after the other, on loopback. Installs redis-server and
# PostgreSQL from the OS packages if missing, starts each on a private port
# and data directory, stops everything it started, and prints one table.
#
#   loadtest/compare.sh                 # 10 s per run
#   DURATION=30 CONCURRENCY=64 loadtest/compare.sh
#
# Not part of CI: it needs root for apt-get and several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-64}
BATCH=${BATCH:-100}
# AllocateStream: orders in flight over all streams (one per connection).
STREAM_IN_FLIGHT=${STREAM_IN_FLIGHT:-1024}
# The service's answer view: the lean one by default, as the baselines answer
# no more than where each order went (VIEW=full for the whole order state).
VIEW=${VIEW:-decision}
WORK=$(mktemp -d /tmp/allocation-compare.XXXXXX)
SERVICE_PORT=50171 REDIS_PORT=63791 PG_PORT=54391
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -n "${PG_BIN:-}" ] && su postgres -c "$PG_BIN/pg_ctl -D $WORK/pg -m immediate stop" >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need redis-server; then apt-get install -y redis-server >/dev/null; fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PG_BIN" ]; then apt-get install -y postgresql >/dev/null; PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); fi

cargo build --release --bin allocation-service -p allocation-service
cargo build --release -p loadtest --features baselines
LOADTEST=target/release/loadtest
SERVICE=target/release/allocation-service

# The same workload for everyone: no replenishment (the baselines do not
# model receipts), stock deep enough that most orders fit.
WORKLOAD=(--merchants 10 --skus 10000 --fcs 5 --zipf-exponent 1.0 --initial-stock 1000
          --replenish-units-per-second 0 --duration-seconds "$DURATION" --json)

run() { # label, then loadtest arguments; prints "label orders/s p99-µs"
    local label=$1; shift
    "$LOADTEST" "${WORKLOAD[@]}" "$@" > "$WORK/$label.json"
    python3 - "$label" "$WORK/$label.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
ok = r["verification"]["passed"] if r.get("verification") else None
print(f'{sys.argv[1]} {r["orders_per_second"]:.0f} {r["latency_us"]["p99"]} {ok}')
PY
}

service() { # fsync policy, then loadtest arguments
    local fsync=$1; shift
    rm -rf "$WORK/data"
    "$SERVICE" serve --listen 127.0.0.1:$SERVICE_PORT --metrics-listen 127.0.0.1:0 \
        --data-dir "$WORK/data" --fsync "$fsync" > "$WORK/service.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do "$SERVICE" health --address 127.0.0.1:$SERVICE_PORT >/dev/null 2>&1 && break; sleep 0.1; done
    "$@"
    kill -TERM "$pid"; wait "$pid" || true
}

# Redis: no persistence, as a cache-like deployment would run it.
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    > "$WORK/redis.log" 2>&1 &
PIDS+=($!)
# PostgreSQL: a fresh cluster, durable commits (its default).
mkdir -p "$WORK/pg" && chown postgres "$WORK" "$WORK/pg"
su postgres -c "$PG_BIN/initdb -D $WORK/pg -A trust -U postgres" >/dev/null
su postgres -c "$PG_BIN/pg_ctl -D $WORK/pg -o '-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200' -l $WORK/pg.log start" >/dev/null
sleep 1

SERVICE_TARGET=(--target "http://127.0.0.1:$SERVICE_PORT" --view "$VIEW")
{
    service off run service-unary-fsync-off "${SERVICE_TARGET[@]}" --concurrency "$CONCURRENCY" --batch-size 1
    service always run service-unary-fsync-always "${SERVICE_TARGET[@]}" --concurrency "$CONCURRENCY" --batch-size 1
    service off run service-batch-fsync-off "${SERVICE_TARGET[@]}" --concurrency 4 --batch-size "$BATCH"
    service always run service-batch-fsync-always "${SERVICE_TARGET[@]}" --concurrency 4 --batch-size "$BATCH"
    service off run service-stream-fsync-off "${SERVICE_TARGET[@]}" --mode stream --concurrency "$STREAM_IN_FLIGHT" --connections 4
    service always run service-stream-fsync-always "${SERVICE_TARGET[@]}" --mode stream --concurrency "$STREAM_IN_FLIGHT" --connections 4
    run redis-unpipelined --target redis://127.0.0.1:$REDIS_PORT --concurrency "$CONCURRENCY" --batch-size 1
    run redis-pipelined --target redis://127.0.0.1:$REDIS_PORT --concurrency 4 --batch-size "$BATCH"
    run postgres --target "postgres://postgres@127.0.0.1:$PG_PORT/postgres" --concurrency "$CONCURRENCY" --batch-size 1
} > "$WORK/results.txt"

python3 - "$WORK/results.txt" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
rate = {label: float(r) for label, r, _, _ in rows}
print(f'{"run":32} {"orders/s":>10} {"p99 µs":>8} {"verified":>8}')
for label, r, p99, ok in rows:
    print(f'{label:32} {float(r):>10.0f} {p99:>8} {ok:>8}')
def ratio(a, b):
    return f'{rate[a] / rate[b]:.2f}x' if rate.get(b) else 'n/a'
print()
print('service batch (fsync off) / redis pipelined:   ', ratio('service-batch-fsync-off', 'redis-pipelined'))
print('service unary (fsync off) / redis unpipelined: ', ratio('service-unary-fsync-off', 'redis-unpipelined'))
print('service unary (fsync always) / postgres:       ', ratio('service-unary-fsync-always', 'postgres'))
print('service batch (fsync always) / postgres:       ', ratio('service-batch-fsync-always', 'postgres'))
print('service stream / service unary (fsync off):    ', ratio('service-stream-fsync-off', 'service-unary-fsync-off'))
print('service stream / service unary (fsync always): ', ratio('service-stream-fsync-always', 'service-unary-fsync-always'))
PY
