#!/bin/bash
# The answer views side by side (BENCHMARKS.md, "Answer views"): for each of
# batch and unary, `--view full` then `--view decision`, each on a fresh
# server (--fsync off), ROUNDS times, printing "label orders/s p99-µs".
# Build first: cargo build --release -p allocation-service -p loadtest
set -u
BIN="$(dirname "$0")/../target/release"
ROUNDS=${ROUNDS:-2}
WORKLOAD=(--merchants 10 --skus 10000 --fcs 5 --zipf-exponent 1.0 --initial-stock 1000
          --replenish-units-per-second 0 --duration-seconds 8 --json --skip-verify)
run() { # label, then loadtest args
  local label=$1; shift
  local dir
  dir=$(mktemp -d)
  "$BIN"/allocation-service serve --listen 127.0.0.1:50777 --metrics-listen 127.0.0.1:0 --data-dir "$dir" --fsync off > "$dir"/log 2>&1 &
  local pid=$!
  for _ in $(seq 50); do "$BIN"/allocation-service health --address 127.0.0.1:50777 >/dev/null 2>&1 && break; sleep 0.2; done
  local out
  out=$("$BIN"/loadtest --target http://127.0.0.1:50777 "${WORKLOAD[@]}" "$@" 2>/dev/null)
  kill $pid; wait $pid 2>/dev/null
  rm -rf "$dir"
  echo "$label $(echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["orders_per_second"]), r["latency_us"]["p99"])')"
}
for _ in $(seq "$ROUNDS"); do
  for view in full decision; do
    run "batch-$view" --concurrency 4 --batch-size 1000 --view $view
  done
  for view in full decision; do
    run "unary-$view" --concurrency 64 --batch-size 1 --view $view
  done
done
