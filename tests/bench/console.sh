#!/usr/bin/env bash
# The operator console at size: how long its pages take with 100,000 users, a million
# message-tracking events and a full day of per-minute traffic counts.
#
# Starts a `bridgehead dev` cluster (release build), fills PostgreSQL directly (users copied
# from one made through the admin API, events and counts by generate_series), signs in with
# the admin token, and times each page with curl (median and worst of 20 requests, server to
# last byte, loopback). Never touches non-loopback addresses; stops what it started on exit.
#
#   tests/bench/console.sh                 100,000 users, 1,000,000 events
#   USERS=10000 EVENTS=100000 tests/bench/console.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
USERS=${USERS:-100000}
EVENTS=${EVENTS:-1000000}
ROUNDS=20
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

bench_setup console
start_dev "$(free_port)" "$(free_port)"
PG="$WORK/bh/postgres"
PGPORT=$(sed -n 4p "$PG/pgdata/postmaster.pid")
sql() { PGPASSWORD=$(cat "$PG/pg-password") psql -h 127.0.0.1 -p "$PGPORT" -U bridgehead -d bridgehead -v ON_ERROR_STOP=1 -Atqc "$1"; }
URL=$(json "$WORK/bh/endpoints.json" 'd["console"]')
URL=${URL%/}
TOKEN=$(json "$WORK/bh/endpoints.json" 'd["admin_token"]')

echo "filling: $USERS users, $EVENTS events, 1440 minutes of traffic" >&2
"$BH" admin --data-dir "$WORK/bh" domain add big.test >/dev/null
echo "model password" | "$BH" admin --data-dir "$WORK/bh" user add model@big.test >/dev/null
sql "INSERT INTO accounts (domain_id, address, password_hash)
     SELECT a.domain_id, 'user' || lpad(n::text, 7, '0') || '@big.test', a.password_hash
     FROM accounts a, generate_series(1, $USERS) n WHERE a.address = 'model@big.test'"
sql "INSERT INTO message_events (at, queue_id, message_id, kind, node, mail_from, recipients, detail)
     SELECT now() - (n % 86400) * interval '1 second', upper(md5(n::text)), n || '@bench.test', 'accepted',
            'bench', 'sender' || (n % 1000) || '@outside.example',
            ARRAY['user' || lpad((n % $USERS + 1)::text, 7, '0') || '@big.test'], 'stored'
     FROM generate_series(1, $EVENTS) n"
sql "INSERT INTO traffic_minutes (minute, kind, count)
     SELECT date_trunc('minute', now()) - m * interval '1 minute', k, (m * 7 + length(k)) % 50
     FROM generate_series(0, 1439) m, unnest(ARRAY['accepted','delivered','deferred','bounced']) k
     ON CONFLICT DO NOTHING"
sql "VACUUM ANALYZE"

# Sign in: the sign-in form's token, then the admin token as the password.
JAR="$WORK/cookies"
CSRF=$(curl -s -c "$JAR" -b "$JAR" "$URL/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -s -c "$JAR" -b "$JAR" -o /dev/null --data-urlencode "csrf=$CSRF" --data-urlencode "password=$TOKEN" "$URL/login"

time_page() { # NAME PATH
  local times=()
  for _ in $(seq 1 $ROUNDS); do
    times+=("$(curl -s -b "$JAR" -o "$WORK/page.html" -w '%{time_total}' "$URL$2")")
  done
  grep -q '<h1>' "$WORK/page.html" || { echo "$1: not a page" >&2; exit 1; }
  python3 -c "import statistics,sys; t=[float(x)*1000 for x in sys.argv[2:]]; print('| %s | %.1f | %.1f |' % (sys.argv[1], statistics.median(t), max(t)))" "$1" "${times[@]}"
}

LAST=$(sql "SELECT address FROM accounts WHERE domain_id = (SELECT id FROM domains WHERE name = 'big.test') ORDER BY address DESC OFFSET 100 LIMIT 1")
MID=$(printf 'user%07d@big.test' $((USERS / 2)))
echo "| page ($USERS users, $EVENTS events) | median ms | worst ms |"
echo "|---|---|---|"
time_page "overview (24 h chart, nodes, queue)" "/"
time_page "users, first page of 100" "/users?domain=big.test"
time_page "users, the last page" "/users?domain=big.test&after=$LAST"
time_page "users, search (one match)" "/users?q=$MID"
time_page "users, search (every address matches)" "/users?q=user"
time_page "one user" "/user/$MID"
time_page "tracking, by recipient" "/tracking?q=$MID"
time_page "tracking, by Message-ID" "/tracking?q=4242@bench.test"
time_page "tracking, by sender (50 newest of 1,000)" "/tracking?q=sender7@outside.example"
time_page "queue, first page" "/queue"
