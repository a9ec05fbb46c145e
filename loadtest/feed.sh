#!/usr/bin/env bash
# What a slow change-feed subscriber costs allocation: the same batch load
# with and without a subscriber that sleeps after every event (so it falls
# behind the live ring at once and reads on from the journal), alternated
# ROUNDS times on a fresh server each, on loopback. Prints each run and the
# ratio of the medians.
#
#   loadtest/feed.sh                     # 3 rounds of 10 s each way
#   ROUNDS=5 DURATION=20 loadtest/feed.sh
#
# Not part of CI: it needs a release build and a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WORK=$(mktemp -d /tmp/allocation-feed.XXXXXX)
PORT=50181
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --bin allocation-service -p allocation-service
cargo build --release -p loadtest
SERVICE=target/release/allocation-service
LOADTEST=target/release/loadtest

run() { # label, then extra loadtest arguments; prints "label orders/s subscriber-json"
    local label=$1; shift
    rm -rf "$WORK/data"
    "$SERVICE" serve --listen 127.0.0.1:$PORT --metrics-listen 127.0.0.1:0 \
        --data-dir "$WORK/data" --fsync off > "$WORK/service.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do "$SERVICE" health --address 127.0.0.1:$PORT >/dev/null 2>&1 && break; sleep 0.1; done
    "$LOADTEST" --target http://127.0.0.1:$PORT --batch-size 100 --concurrency 4 \
        --replenish-units-per-second 0 --initial-stock 1000 --duration-seconds "$DURATION" \
        --json "$@" > "$WORK/$label.json"
    kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=""
    python3 - "$label" "$WORK/$label.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print(sys.argv[1], f'{r["orders_per_second"]:.0f}', json.dumps(r.get("slow_subscriber")))
PY
}

# Not in a pipeline: `run` must set SERVER in this shell, for `cleanup`.
for round in $(seq 1 "$ROUNDS"); do
    run without >> "$WORK/results.txt"
    run with --slow-subscriber-sleep-ms 1 >> "$WORK/results.txt"
done
cat "$WORK/results.txt"

python3 - "$WORK/results.txt" <<'PY'
import statistics, sys
rates = {"with": [], "without": []}
for line in open(sys.argv[1]):
    label, rate, _ = line.split(" ", 2)
    rates[label].append(float(rate))
with_, without = statistics.median(rates["with"]), statistics.median(rates["without"])
print(f"median orders/s without a subscriber {without:.0f}, with a slow one {with_:.0f}: "
      f"ratio {with_ / without:.3f}")
PY
