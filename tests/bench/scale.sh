#!/usr/bin/env bash
# How Bridgehead's cost grows with the work: one mailbox, the accounts, and a stuck queue, at
# 1k, 10k, 100k and 1M (QUICK=1: 1k and 10k), with Dovecot (Maildir) beside it for the mailbox.
#
# Starts a `bridgehead dev` cluster (its PostgreSQL and back-end) and a separate front-end
# process in front of it (so the two are measured apart), a private aiosmtpd sink, and when
# installed a private Dovecot; all on loopback, all stopped by PID on exit.
#
# Filling is apart from measuring: one real message (or account, or queue entry) comes in
# through the front door, and the store is then grown to each size with bulk SQL copies of it
# (the copies share the first message's content). What is measured goes through the
# front-end, with the standard library's clients (tests/bench/scale_probe.py) or
# `bridgehead bench`:
#   mailbox  SMTP delivery rate into it; POP3 login + STAT + UIDL (time, octets); RETR of the
#            last message; QUIT deleting 1,000 marked messages; front-end and back-end memory
#            while the session is open;
#   accounts RCPT lookups/s (random accounts, the front-end's recipient memory off) and POP3
#            logins/s (the same argon2id cost for every account);
#   queue    delivery rate to a healthy domain (the sink) while one domain's mail is deferred;
#            the claim query's plan and time; `admin queue list --limit 1000` time.
# Prints one table per row group with the ratio of the largest size to 1k.
#
#   tests/bench/scale.sh            the full run (1k … 1M; about 15 minutes on 2 cores)
#   QUICK=1 tests/bench/scale.sh    1k and 10k only, to check the script
#   SIZES="1000 100000" ...         given sizes
set -euo pipefail
source "$(dirname "$0")/common.sh"
if [ -n "${QUICK:-}" ]; then
  SIZES=${SIZES:-"1000 10000"} SMTP_N=100 LOGINS=20 RCPT_SECS=2
else
  SIZES=${SIZES:-"1000 10000 100000 1000000"} SMTP_N=400 LOGINS=100 RCPT_SECS=5
fi
PASSWORD=scale-password
PROBE="python3 $ROOT/tests/bench/scale_probe.py"

bench_setup scale
# The logs outlive the run (the work directory does not): /tmp/bridgehead-scale-logs.
before_cleanup() {
  local pid
  for pid in ${FE_PID:-} ${DEV_PID:-}; do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; echo "process $pid had exited: status $?" >&2; }
  done
  rm -rf /tmp/bridgehead-scale-logs && mkdir -p /tmp/bridgehead-scale-logs
  cp "$WORK"/*.log "$WORK"/dovecot/dovecot.log /tmp/bridgehead-scale-logs/ 2>/dev/null || true
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
ms() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) * 1000))" "$1"; }

# --- The cluster: dev (PostgreSQL + back-end) and a front-end process of its own ----------------
start_dev "$(free_port)" "$(free_port)"
DEV_PID=${PIDS[-1]}
BHD=(--data-dir "$WORK/bh")
PG="$WORK/bh/postgres"
PGPORT=$(sed -n 4p "$PG/pgdata/postmaster.pid")
sql() { PGPASSWORD=$(cat "$PG/pg-password") psql -h 127.0.0.1 -p "$PGPORT" -U bridgehead -d bridgehead -v ON_ERROR_STOP=1 -Atqc "$1"; }
GRPC=$(json "$WORK/bh/endpoints.json" 'd["grpc"]')
SUBMISSION=$(json "$WORK/bh/endpoints.json" 'd["submission"]')

FE_SMTP=$(free_port) FE_POP3=$(free_port)
BRIDGEHEAD_RECIPIENT_CACHE_SECS=0 "$BH" frontend --backend "$GRPC" \
  --backend-ca "$WORK/bh/pki/ca.pem" --backend-cert "$WORK/bh/pki/frontend.pem" \
  --backend-key "$WORK/bh/pki/frontend-key.pem" --hostname scale.test \
  --smtp-listen "127.0.0.1:$FE_SMTP" --pop3-listen "127.0.0.1:$FE_POP3" \
  --allow-plaintext-auth >"$WORK/frontend.log" 2>&1 &
FE_PID=$!
PIDS+=("$FE_PID")
wait_port "$FE_SMTP"
wait_port "$FE_POP3"

"$BH" admin "${BHD[@]}" domain add scale.test >/dev/null
"$BH" admin "${BHD[@]}" domain add many.test >/dev/null
echo "$PASSWORD" | "$BH" admin "${BHD[@]}" user add big@scale.test >/dev/null
echo "$PASSWORD" | "$BH" admin "${BHD[@]}" user add keep@scale.test >/dev/null
echo "$PASSWORD" | "$BH" admin "${BHD[@]}" user add u0@many.test >/dev/null
smtp_into() { # N CONNECTIONS TO [USERS]: bench smtp through the front-end, JSON out
  "$BH" bench smtp --server "127.0.0.1:$FE_SMTP" --messages "$1" --connections "$2" --size 2048 \
    --from "scale@outside.example" --to "$3" --users "${4:-1}" --json 2>/dev/null
}
smtp_into 200 10 u0@many.test >/dev/null # warm-up: connections, caches, the planner
# The model message, in a mailbox of its own that is never emptied (so its content stays).
smtp_into 1 1 keep@scale.test >/dev/null
[ "$(sql "SELECT message_count FROM accounts WHERE address = 'keep@scale.test'")" = 1 ] ||
  { echo "the first message was not stored" >&2; exit 1; }

# vacuum TABLE: after a bulk fill, so that autovacuum does not do it while we measure.
vacuum() { sql "VACUUM (ANALYZE) $1"; }

# fill_mailbox N: copies of the model message until big@scale.test holds N.
fill_mailbox() {
  sql "WITH a AS (SELECT id, next_uid, $1 - message_count AS add FROM accounts
                  WHERE address = 'big@scale.test'),
            m AS (SELECT content_id, prefix, size FROM messages
                  WHERE account_id = (SELECT id FROM accounts WHERE address = 'keep@scale.test')),
            ins AS (INSERT INTO messages (account_id, uid, content_id, prefix, size)
                    SELECT a.id, a.next_uid + g, m.content_id, m.prefix, m.size
                    FROM a, m, generate_series(0, a.add - 1) g RETURNING size)
       UPDATE accounts SET next_uid = next_uid + (SELECT count(*) FROM ins),
              message_count = message_count + (SELECT count(*) FROM ins),
              used_bytes = used_bytes + (SELECT coalesce(sum(size), 0) FROM ins)
        WHERE address = 'big@scale.test'"
  vacuum messages
}

# fill_accounts N: accounts u0 … u(N-1)@many.test, with u0's password hash.
fill_accounts() {
  sql "INSERT INTO accounts (domain_id, address, password_hash)
       SELECT a.domain_id, 'u' || g || '@many.test', a.password_hash
       FROM accounts a, generate_series((SELECT count(*) FROM accounts a2
                                         JOIN domains d ON d.id = a2.domain_id
                                         WHERE d.name = 'many.test'), $1 - 1) g
       WHERE a.address = 'u0@many.test'"
  vacuum accounts
}

# --- Dovecot beside it (Maildir), when installed and root -------------------------------------
DOVECOT=
if [ -z "${NO_DOVECOT:-}" ] && command -v dovecot >/dev/null && [ "$(id -u)" = 0 ]; then
  DOVECOT=1
  DV="$WORK/dovecot" DV_POP3=$(free_port)
  mkdir -p "$DV/run" "$DV/state"
  for u in big r0 r1 r2 r3; do mkdir -p "$DV/mail/$u/Maildir/"{new,cur,tmp}; done
  HASH=$(sql "SELECT password_hash FROM accounts WHERE address = 'big@scale.test'")
  for u in big r0 r1 r2 r3; do echo "$u:{ARGON2ID}$HASH"; done >"$DV/passwd"
  cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = passwd-file
  args = $DV/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DV/mail/%n
}
mail_location = maildir:~/Maildir
pop3_uidl_format = %g
# A listing of a million messages needs more than the default 256 MiB per process.
default_vsz_limit = 4G
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DV_POP3
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
}
EOF
  # The same message Bridgehead stored, as one file hard-linked N times (Maildir names carry
  # the size, so Dovecot need not stat them; a copy per 50,000 links).
  sql "SELECT encode(m.prefix || string_agg(c.data, ''::bytea ORDER BY c.seq), 'base64')
       FROM messages m JOIN content_chunks c ON c.content_id = m.content_id
       WHERE m.account_id = (SELECT id FROM accounts WHERE address = 'keep@scale.test')
       GROUP BY m.uid, m.prefix ORDER BY m.uid LIMIT 1" | base64 -d >"$DV/message"
  chown -R nobody:nogroup "$DV/mail"
  dovecot -F -c "$DV/dovecot.conf" &
  PIDS+=($!)
  wait_port "$DV_POP3"
fi
dovecot_fill() { # N [USER]: hard links until USER's (big's) Maildir holds N messages
  python3 - "$DV/message" "$DV/mail/${2:-big}/Maildir/cur" "$1" <<'PY'
import os, shutil, sys, uuid
src, cur, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
size, have = os.path.getsize(src), len(os.listdir(cur))
for n in range(have, want):
    # A file takes at most 65,000 links (ext4): a copy of the message per 50,000.
    base = os.path.join(os.path.dirname(cur), f"base.{n // 50000}")
    if not os.path.exists(base):
        shutil.copy(src, base)
    os.link(base, f"{cur}/1700000000.M{uuid.uuid4().hex}P1.scale,S={size},W={size}:2,")
PY
}

# --- Rows ---------------------------------------------------------------------------------------
declare -A V # V[row|size] = figure
ROWS=()
put() { # ROW SIZE VALUE
  [[ " ${ROWS[*]} " == *" $1 "* ]] || ROWS+=("$1")
  V["$1|$2"]=$3
}

mailbox_rows() {
  local n=$1 out
  fill_mailbox $((n - SMTP_N))
  smtp_into "$SMTP_N" 10 big@scale.test >"$WORK/smtp-$n.json"
  put mbox_smtp "$n" "$(json "$WORK/smtp-$n.json" 'round(d["messages_per_s"])')"
  out="$WORK/pop3-$n.json"
  $PROBE pop3 "$FE_POP3" big@scale.test "$PASSWORD" 1000 "$FE_PID" "$DEV_PID" >"$out"
  [ "$(json "$out" 'd["messages"]')" = "$n" ] || { echo "mailbox of $n listed $(json "$out" 'd["messages"]')" >&2; exit 1; }
  put mbox_list "$n" "$(ms "$(json "$out" 'd["login_stat_uidl_s"]')")"
  put mbox_login "$n" "$(ms "$(json "$out" 'd["login_s"]')")"
  put mbox_uidl_bytes "$n" "$(json "$out" 'd["uidl_octets"]')"
  put mbox_uidl_rate "$n" "$(json "$out" 'round(d["uidl_octets"] / d["uidl_s"] / 1e6, 1)')"
  put mbox_retr "$n" "$(ms "$(json "$out" 'd["retr_last_s"]')")"
  put mbox_quit "$n" "$(ms "$(json "$out" 'd["quit_delete_s"]')")"
  put mbox_fe_mem "$n" "$(json "$out" "round(d['rss_during_kb']['$FE_PID'] / 1024, 1)")"
  put mbox_be_mem "$n" "$(json "$out" "round(d['rss_during_kb']['$DEV_PID'] / 1024, 1)")"
  [ "$(sql "SELECT message_count FROM accounts WHERE address = 'big@scale.test'")" = $((n - 1000)) ] ||
    { echo "QUIT did not delete 1,000 messages" >&2; exit 1; }
  if [ -n "$DOVECOT" ] && [ "${DV_STOPPED:-}" != 1 ]; then
    local t0; t0=$(date +%s)
    dovecot_rows "$n" || { echo "Dovecot failed at $n messages (its log: /tmp/bridgehead-scale-logs/dovecot.log)" >&2; DV_STOPPED=1; }
    # Dovecot goes on to the next size only while a size takes it under a minute.
    [ $(($(date +%s) - t0)) -lt "${DOVECOT_MAX_SECS:-60}" ] || DV_STOPPED=1
  fi
}

dovecot_rows() {
  local n=$1 out="$WORK/dv-pop3-$1.json"
  dovecot_fill "$n" || return 1
  # The first session indexes the Maildir (not measured), the second is measured.
  python3 -c "import poplib,sys; p=poplib.POP3('127.0.0.1',$DV_POP3,timeout=1800); p.user('big'); p.pass_(sys.argv[1]); p.stat(); p.uidl(); p.quit()" "$PASSWORD" || return 1
  # Dovecot's pop3 process starts at login: its memory is not compared.
  $PROBE pop3 "$DV_POP3" big "$PASSWORD" 1000 >"$out" || return 1
  put dv_list "$n" "$(ms "$(json "$out" 'd["login_stat_uidl_s"]')")"
  put dv_login "$n" "$(ms "$(json "$out" 'd["login_s"]')")"
  put dv_uidl_rate "$n" "$(json "$out" 'round(d["uidl_octets"] / d["uidl_s"] / 1e6, 1)')"
  put dv_retr "$n" "$(ms "$(json "$out" 'd["retr_last_s"]')")"
  put dv_quit "$n" "$(ms "$(json "$out" 'd["quit_delete_s"]')")"
  # Maildir deletion removed 1,000 files: the next size's fill puts them back.
}

account_rows() {
  local n=$1 out
  fill_accounts "$n"
  out="$WORK/rcpt-$n.json"
  $PROBE rcpt "$FE_SMTP" many.test "$n" 4 "$RCPT_SECS" >"$out"
  put acct_rcpt "$n" "$(json "$out" 'round(d["rcpt_per_s"])')"
  out="$WORK/login-$n.json"
  "$BH" bench pop3 --server "127.0.0.1:$FE_POP3" --sessions 4 --total "$LOGINS" \
    --user "u{n}@many.test" --users "$n" --password "$PASSWORD" --mode login --json >"$out" 2>/dev/null
  put acct_login "$n" "$(json "$out" 'round(d["sessions_per_s"], 1)')"
  put acct_be_mem "$n" "$(($(awk '/^VmRSS:/{print $2}' "/proc/$DEV_PID/status") / 1024))"
}

# The stuck domain: its next hop is a closed port; the healthy one is the sink.
SINK_PORT=$(free_port)
mkfifo "$WORK/sink.in"
: >"$WORK/sink.jsonl"
exec 7<>"$WORK/sink.in" # the sink runs until this closes (or its PID is stopped)
python3 "$ROOT/tests/support/sink.py" "$SINK_PORT" "$WORK/sink.jsonl" <"$WORK/sink.in" >"$WORK/sink.log" 2>&1 &
PIDS+=($!)
wait_port "$SINK_PORT"
"$BH" admin "${BHD[@]}" route set slow.test "127.0.0.1:$(free_port)" --tls none >/dev/null
"$BH" admin "${BHD[@]}" route set healthy.test "127.0.0.1:$SINK_PORT" --tls none >/dev/null
submit() { # N TO USERS: authenticated submission through the dev front-end
  "$BH" bench smtp --server "$SUBMISSION" --auth "big@scale.test:$PASSWORD" --messages "$1" \
    --connections 10 --size 2048 --from big@scale.test --to "$2" --users "$3" --json 2>/dev/null
}
submit 1 stuck@slow.test 1 >/dev/null
for _ in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM outbound_queue WHERE attempts > 0")" = 1 ] && break; sleep 0.1
done
sql "UPDATE outbound_queue SET next_attempt_at = now() + interval '1 day'"

# fill_queue N: copies of the stuck entry (deferred for a day) until the queue holds N.
fill_queue() {
  sql "WITH t AS (SELECT * FROM outbound_queue ORDER BY id LIMIT 1),
            ins AS (INSERT INTO outbound_queue (queue_id, content_id, mail_from, ret, envid,
                      auth_user, body, smtputf8, envelope_from, head, requiretls, attempts,
                      last_error, next_attempt_at)
                    SELECT t.queue_id || '.' || g, t.content_id, t.mail_from, t.ret, t.envid,
                           t.auth_user, t.body, t.smtputf8, t.envelope_from, t.head,
                           t.requiretls, t.attempts, t.last_error, now() + interval '1 day'
                    FROM t, generate_series((SELECT count(*) FROM outbound_queue), $1 - 1) g
                    RETURNING id)
       INSERT INTO outbound_recipients (queue_entry, address) SELECT id, 'stuck@slow.test' FROM ins"
  vacuum outbound_queue
  vacuum outbound_recipients
}

CLAIM="SELECT id FROM outbound_queue WHERE NOT held AND next_attempt_at <= now()
       AND (claim_until IS NULL OR claim_until < now()) ORDER BY next_attempt_at LIMIT 32
       FOR UPDATE SKIP LOCKED"
queue_rows() {
  local n=$1 want t0 t1
  fill_queue "$n"
  want=$(($(wc -l <"$WORK/sink.jsonl" 2>/dev/null || echo 0) + SMTP_N))
  t0=$(date +%s.%N)
  submit "$SMTP_N" "h{n}@healthy.test" 100 >/dev/null
  for _ in $(seq 1 6000); do [ "$(wc -l <"$WORK/sink.jsonl")" -ge "$want" ] && break; sleep 0.05; done
  t1=$(date +%s.%N)
  [ "$(wc -l <"$WORK/sink.jsonl")" -ge "$want" ] || { echo "the healthy domain's mail did not arrive" >&2; exit 1; }
  put queue_rate "$n" "$(python3 -c "print(round($SMTP_N / ($t1 - $t0)))")"
  local plan; plan=$(sql "BEGIN; EXPLAIN (ANALYZE, FORMAT JSON) $CLAIM; ROLLBACK")
  echo "$plan" | grep -q '"Index Name": "outbound_queue_due"' ||
    { echo "the claim query does not use outbound_queue_due: $plan" >&2; exit 1; }
  put queue_claim "$n" "$(python3 -c "import json,sys; print(round(json.loads(sys.stdin.read())[0]['Execution Time'], 2))" <<<"$plan")"
  t0=$(date +%s.%N)
  local listed; listed=$("$BH" admin "${BHD[@]}" queue list --limit 1000 | grep -c ' bytes  from ')
  t1=$(date +%s.%N)
  [ "$listed" = 1000 ] || [ "$n" -lt 1000 ] || { echo "queue list showed $listed" >&2; exit 1; }
  put queue_list "$n" "$(python3 -c "print(round(($t1 - $t0) * 1000))")"
}

# One command at a time (Python's poplib, no pipelining), 4 clients at once, each reading every
# message of its own mailbox of 600: where a plain client's per-message cost goes.
for u in r0 r1 r2 r3; do
  echo "$PASSWORD" | "$BH" admin "${BHD[@]}" user add "$u@scale.test" >/dev/null
done
sql "INSERT INTO messages (account_id, uid, content_id, prefix, size)
     SELECT a.id, g, m.content_id, m.prefix, m.size
     FROM accounts a, generate_series(1, 600) g,
          (SELECT content_id, prefix, size FROM messages WHERE account_id =
             (SELECT id FROM accounts WHERE address = 'keep@scale.test')) m
     WHERE a.address LIKE 'r_@scale.test';
     UPDATE accounts SET next_uid = 601, message_count = 600,
            used_bytes = 600 * (SELECT size FROM messages WHERE account_id =
              (SELECT id FROM accounts WHERE address = 'keep@scale.test'))
      WHERE address LIKE 'r_@scale.test'; ANALYZE messages"
RETR_ROW=()
for round in 1 2 3; do
  RETR_ROW+=("$($PROBE retr "$FE_POP3" "r{n}@scale.test" "$PASSWORD" 4 | python3 -c "import json,sys; print(round(json.load(sys.stdin)['retr_per_s']))")")
done
if [ -n "$DOVECOT" ]; then
  for u in r0 r1 r2 r3; do dovecot_fill 600 "$u"; done
  chown -R nobody:nogroup "$DV/mail"
  for round in 1 2 3; do
    RETR_ROW+=("$($PROBE retr "$DV_POP3" "r{n}" "$PASSWORD" 4 | python3 -c "import json,sys; print(round(json.load(sys.stdin)['retr_per_s']))")")
  done
fi

for n in $SIZES; do
  echo "size $n …" >&2
  mailbox_rows "$n"
  account_rows "$n"
  queue_rows "$n"
done

# --- Tables -------------------------------------------------------------------------------------
read -r -a S <<<"$SIZES"
label() { python3 -c "n=int('$1'); print(f'{n//1000000}M' if n>=1000000 else f'{n//1000}k' if n>=1000 else n)"; }
declare -A TITLE=(
  [mbox_smtp]="SMTP delivery into the mailbox (msg/s, 10 conn)"
  [mbox_list]="POP3 login + STAT + UIDL (ms)"
  [mbox_uidl_bytes]="UIDL octets"
  [mbox_login]="… of which login (USER/PASS: argon2id, lease, listing) (ms)"
  [mbox_uidl_rate]="UIDL alone (MB/s)"
  [mbox_retr]="POP3 RETR of the last message (ms)"
  [mbox_quit]="POP3 QUIT deleting 1,000 (ms)"
  [mbox_fe_mem]="front-end RSS during the session (MiB)"
  [mbox_be_mem]="back-end RSS during the session (MiB)"
  [dv_list]="Dovecot login + STAT + UIDL (ms)"
  [dv_login]="… of which login (ms)"
  [dv_uidl_rate]="Dovecot UIDL alone (MB/s)"
  [dv_retr]="Dovecot RETR of the last message (ms)"
  [dv_quit]="Dovecot QUIT deleting 1,000 (ms)"
  [acct_rcpt]="RCPT lookups/s (random accounts)"
  [acct_login]="POP3 logins/s (argon2id)"
  [acct_be_mem]="back-end RSS (MiB)"
  [queue_rate]="delivery to a healthy domain (msg/s)"
  [queue_claim]="claim query (ms, EXPLAIN ANALYZE)"
  [queue_list]="admin queue list --limit 1000 (ms)"
)
echo
echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr); $(date -u +%Y-%m-%d)"
printf '\n| figure |'
for n in "${S[@]}"; do printf ' %s |' "$(label "$n")"; done
printf ' %s/%s |\n|---|' "$(label "${S[-1]}")" "$(label "${S[0]}")"
for _ in "${S[@]}"; do printf -- '---|'; done
printf -- '---|\n'
for r in "${ROWS[@]}"; do
  printf '| %s |' "${TITLE[$r]}"
  for n in "${S[@]}"; do printf ' %s |' "${V[$r|$n]:--}"; done
  first=${V[$r|${S[0]}]:-} last=${V[$r|${S[-1]}]:-}
  if [ -n "$first" ] && [ -n "$last" ]; then
    printf ' %s |\n' "$(python3 -c "a,b=float('$last'),float('$first'); print('%.2f' % (a/b) if b else '-')")"
  else
    printf ' - |\n'
  fi
done
echo
echo "poplib RETR, 4 clients × 600 messages, messages/s in three rounds: Bridgehead ${RETR_ROW[*]:0:3}"
if [ -n "$DOVECOT" ]; then echo "  Dovecot ${RETR_ROW[*]:3:3}"; fi
