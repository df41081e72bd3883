#!/usr/bin/env bash
# Where the time goes: a `bridgehead dev` cluster under an SMTP load and then a POP3 RETR-all
# load, sampled system-wide with `perf record -e cpu-clock` (software clock: works where
# hardware counters do not). Prints, per load, the CPU share of each process (the load
# generator, Bridgehead, PostgreSQL) and Bridgehead's and PostgreSQL's hottest functions.
# Needs perf (apt-get install linux-perf) and root or kernel.perf_event_paranoid <= -1.
# Loopback only; stops what it started.
#
#   tests/bench/profile.sh            (PERF_DATA=dir keeps the perf.data files)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BH=${BH:-$ROOT/target/release/bridgehead}
[ -x "$BH" ] || (cd "$ROOT" && cargo build --release --bin bridgehead)
WORK=$(mktemp -d /tmp/bridgehead-profile.XXXXXX)
chmod 755 "$WORK" # PostgreSQL runs as its own user when we are root
OUT=${PERF_DATA:-$WORK}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
SMTP=$(free_port) POP3=$(free_port)
"$BH" dev --data-dir "$WORK/bh" --host 127.0.0.1 --smtp-port "$SMTP" --pop3-port "$POP3" \
  --pop3s-port 0 --submission-port 0 --submissions-port 0 --grpc-port 0 --metrics-port 0 \
  --allow-plaintext-auth >"$WORK/bh.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do [ -s "$WORK/bh/endpoints.json" ] && break; sleep 0.1; done
"$BH" admin --data-dir "$WORK/bh" domain add bench.test >/dev/null
for n in $(seq 0 9); do echo bench-password | "$BH" admin --data-dir "$WORK/bh" user add "user$n@bench.test" >/dev/null; done

profile() { # name, then the load command
  local name=$1; shift
  perf record -q -a -g -e cpu-clock -F 499 -o "$OUT/$name.data" -- "$@" >/dev/null 2>&1
  echo "== $name: CPU share by process"
  perf report -q -i "$OUT/$name.data" --no-children --sort comm --stdio -g none 2>/dev/null \
    | grep -v '^$' | head -4 || true
  echo "== $name: hottest functions (Bridgehead and PostgreSQL)"
  perf report -q -i "$OUT/$name.data" --no-children --comm bridgehead,postgres \
    --sort comm,dso,symbol --stdio -g none 2>/dev/null | grep -v '^$' | cut -c1-110 | head -25 || true
  echo
}
profile smtp "$BH" bench smtp --server "127.0.0.1:$SMTP" --connections 10 --per-connection 10 \
  --messages 5000 --size 10240 --to 'user{n}@bench.test' --users 10
profile pop3 "$BH" bench pop3 --server "127.0.0.1:$POP3" --sessions 4 --total 40 \
  --user 'user{n}@bench.test' --users 10 --password bench-password --mode retr-all
