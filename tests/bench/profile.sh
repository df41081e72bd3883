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
source "$(dirname "$0")/common.sh"
bench_setup profile
OUT=${PERF_DATA:-$WORK}
SMTP=$(free_port) POP3=$(free_port)
start_dev "$SMTP" "$POP3"
add_users bench.test 10 bench-password

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
