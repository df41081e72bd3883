#!/usr/bin/env bash
# What message tracking costs the SMTP accept rate, measured A/B: two `bridgehead dev`
# clusters side by side, one recording events (the default) and one with --tracking false,
# the same load (50 connections × 10 messages of 10 KiB to 100 mailboxes) run on each in
# turn, ROUNDS times (which goes first alternates), so that the machine's drift and warm-up
# fall on both alike. Prints each round
# and the medians. Loopback only; stops what it started on exit.
#
#   tests/bench/tracking.sh            8 rounds of 3000 messages
#   ROUNDS=3 N=1000 tests/bench/tracking.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-8}
N=${N:-3000}
DOMAIN=bench.test
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

bench_setup tracking
ON_SMTP=$(free_port) OFF_SMTP=$(free_port)
start_dev "$ON_SMTP" "$(free_port)" on
start_dev "$OFF_SMTP" "$(free_port)" off --tracking false
add_users "$DOMAIN" 100 bench-password on
add_users "$DOMAIN" 100 bench-password off

load() { # PORT OUT
  "$BH" bench smtp --server "127.0.0.1:$1" --connections 50 --per-connection 10 --messages "$N" \
    --size 10240 --from "bench@outside.example" --to "user{n}@$DOMAIN" --users 100 --json >"$2" 2>/dev/null
  json "$2" 'd["messages_per_s"]'
}
ON=() OFF=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    on=$(load "$ON_SMTP" "$WORK/on-$r.json")
    off=$(load "$OFF_SMTP" "$WORK/off-$r.json")
  else
    off=$(load "$OFF_SMTP" "$WORK/off-$r.json")
    on=$(load "$ON_SMTP" "$WORK/on-$r.json")
  fi
  ON+=("$on") OFF+=("$off")
  printf "round %s: tracking on %.0f msg/s, off %.0f msg/s\n" "$r" "$on" "$off"
done
python3 - "${ON[*]}" "${OFF[*]}" <<'PY'
import statistics, sys
on = [float(x) for x in sys.argv[1].split()]
off = [float(x) for x in sys.argv[2].split()]
m_on, m_off = statistics.median(on), statistics.median(off)
print(f"median: tracking on {m_on:.0f} msg/s, off {m_off:.0f} msg/s: on/off {m_on / m_off:.3f}")
PY
