#!/usr/bin/env bash
# Bridgehead side by side with Postfix delivering by LMTP into Dovecot, on this machine.
#
# Starts a `bridgehead dev` cluster and — when installed (apt-get install postfix
# dovecot-pop3d dovecot-lmtpd; run as root, as Postfix's master needs) — a private Postfix and
# Dovecot on free loopback ports, with the same 100 accounts and the same password hash
# (Bridgehead's argon2id string, which Dovecot verifies too). Runs the same loads against both
# with `bridgehead bench` and prints one table with the ratio Bridgehead / peer per row:
#   SMTP: 10 KB messages at 10 and 50 connections, 1 and 10 messages per connection — the
#         accept rate (final 250s per second) and the end-to-end rate (until the last message
#         is in a mailbox: for Bridgehead that is the 250 itself, for Postfix the LMTP delivery
#         into Dovecot's Maildirs);
#   SMTP again at 50 × 10 on clusters without the recipient memory, without message
#         tracking (the other rows record its events), and with mail
#         authentication checks on (the latter against a private Knot, when installed), and
#         with every message forwarded out (SRS, ARC seal); and with rspamd as a milter on
#         both sides (when installed);
#   POP3: login only and RETR of every message, at 1, 4 and 10 sessions;
#   the ceiling: pgbench on the cluster's own PostgreSQL, one durable 10 KiB insert per
#         transaction at 50 clients, and Bridgehead's SMTP accept rate at 50 connections as
#         a fraction of it (how close the store comes to what PostgreSQL itself can commit).
# Never touches non-loopback addresses; stops everything it started, by PID, on exit.
#
#   tests/bench/compare.sh                 the full run (a few minutes)
#   QUICK=1 tests/bench/compare.sh         smaller loads, to check the script
#   BH=path/to/bridgehead ...              a given binary (default: target/release, built if missing)
set -euo pipefail
source "$(dirname "$0")/common.sh"
if [ -n "${QUICK:-}" ]; then
  SMTP_N=200 LOGINS=40 RETR_SESSIONS=10
else
  SMTP_N=3000 LOGINS=400 RETR_SESSIONS=100
fi
USERS=100
PASSWORD=bench-password
DOMAIN=bench.test

bench_setup compare
PF_CONF=
before_cleanup() {
  if [ -n "$PF_CONF" ]; then postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true; fi
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# --- Bridgehead ---------------------------------------------------------------------------
BH_SMTP=$(free_port) BH_POP3=$(free_port)
start_dev "$BH_SMTP" "$BH_POP3"
add_users "$DOMAIN" "$USERS" "$PASSWORD"

# --- Postfix → LMTP → Dovecot --------------------------------------------------------------
PEER=
if command -v postfix >/dev/null && command -v dovecot >/dev/null && [ "$(id -u)" = 0 ]; then
  PEER=1
  PF_SMTP=$(free_port) DV_POP3=$(free_port) DV_LMTP=$(free_port)
  # The same argon2id hash Bridgehead stored (one password for every account).
  PG="$WORK/bh/postgres"
  HASH=$(PGPASSWORD=$(cat "$PG/pg-password") psql -h 127.0.0.1 -p "$(sed -n 4p "$PG/pgdata/postmaster.pid")" \
    -U bridgehead -d bridgehead -Atc "SELECT password_hash FROM accounts WHERE address = 'user0@$DOMAIN'")
  doveadm pw -t "{ARGON2ID}$HASH" -p "$PASSWORD" >/dev/null
  DV="$WORK/dovecot"
  mkdir -p "$DV/run" "$DV/state" "$DV/mail"
  chown nobody:nogroup "$DV/mail"
  for n in $(seq 0 $((USERS - 1))); do
    echo "user$n@$DOMAIN:{ARGON2ID}$HASH"
  done >"$DV/passwd"
  cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
protocols = pop3 lmtp
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
  args = uid=nobody gid=nogroup home=$DV/mail/%d/%n
}
mail_location = maildir:~/Maildir
pop3_uidl_format = %g
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DV_POP3
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DV_LMTP
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
}
EOF
  dovecot -F -c "$DV/dovecot.conf" &
  PIDS+=($!)
  PF="$WORK/postfix"
  PF_CONF="$PF/etc"
  mkdir -p "$PF_CONF" "$PF/spool" "$PF/data"
  chown postfix "$PF/data"
  # Debian's master.cf with the SMTP listener on our loopback port and no chroot (a private
  # instance has no copies of /etc in its queue directory).
  awk -v listen="127.0.0.1:$PF_SMTP" '
    /^[a-z]/ && NF >= 8 { if ($1 == "smtp" && $2 == "inet") $1 = listen; $5 = "n"; print; next }
    { print }' /usr/share/postfix/master.cf.dist >"$PF_CONF/master.cf"
  grep -q "^127.0.0.1:$PF_SMTP " "$PF_CONF/master.cf" || { echo "could not set Postfix's SMTP port" >&2; exit 1; }
  cat >"$PF_CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = peer.$DOMAIN
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = $DOMAIN
virtual_transport = lmtp:inet:127.0.0.1:$DV_LMTP
maillog_file = $PF/maillog
maillog_file_prefixes = /tmp
default_process_limit = 200
EOF
  postfix -c "$PF_CONF" start >/dev/null 2>&1 || postfix -c "$PF_CONF" start
  wait_port "$PF_SMTP"
  wait_port "$DV_POP3"
else
  echo "Postfix/Dovecot not installed (or not root): Bridgehead's numbers only." >&2
fi

delivered() { find "$DV/mail" -path '*/Maildir/new/*' -type f 2>/dev/null | wc -l; }

# --- Loads ---------------------------------------------------------------------------------
ROWS=()
row() { ROWS+=("$1|$2|$3"); }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b) if b else '-')" "$1" "$2"; }

smtp_row() { # connections per-connection
  local c=$1 p=$2 out
  local args=(--connections "$c" --per-connection "$p" --messages "$SMTP_N" --size 10240
    --from "bench@outside.example" --to "user{n}@$DOMAIN" --users "$USERS" --json)
  out="$WORK/bh-smtp-$c-$p.json"
  "$BH" bench smtp --server "127.0.0.1:$BH_SMTP" "${args[@]}" >"$out" 2>/dev/null
  local bh_rate; bh_rate=$(json "$out" 'd["messages_per_s"]')
  local bh_ok; bh_ok=$(json "$out" 'd["messages"]')
  local pf_rate=0 pf_e2e=0
  if [ -n "$PEER" ]; then
    local before start end; before=$(delivered); start=$(date +%s.%N)
    out="$WORK/pf-smtp-$c-$p.json"
    "$BH" bench smtp --server "127.0.0.1:$PF_SMTP" "${args[@]}" >"$out" 2>/dev/null
    pf_rate=$(json "$out" 'd["messages_per_s"]')
    local want=$((before + $(json "$out" 'd["messages"]')))
    for _ in $(seq 1 6000); do [ "$(delivered)" -ge "$want" ] && break; sleep 0.05; done
    end=$(date +%s.%N)
    pf_e2e=$(python3 -c "print(($want-$before)/($end-$start))")
  fi
  PF_LAST=$pf_rate
  row "SMTP accept, $c conn × $p msg" "$bh_rate" "$pf_rate"
  # Bridgehead stores before its 250: end-to-end is the accept rate.
  row "SMTP end-to-end, $c conn × $p msg" "$bh_rate" "$pf_e2e"
  [ "$bh_ok" -eq "$SMTP_N" ] || echo "warning: Bridgehead accepted $bh_ok of $SMTP_N" >&2
}

pop3_row() { # mode sessions total
  local mode=$1 s=$2 total=$3 key out bh pf=0
  key=$([ "$mode" = login ] && echo sessions_per_s || echo messages_per_s)
  local args=(--sessions "$s" --total "$total" --user "user{n}@$DOMAIN" --users "$USERS"
    --password "$PASSWORD" --mode "$mode" --json)
  out="$WORK/bh-pop3-$mode-$s.json"
  "$BH" bench pop3 --server "127.0.0.1:$BH_POP3" "${args[@]}" >"$out" 2>/dev/null
  bh=$(json "$out" "d['$key']")
  if [ -n "$PEER" ]; then
    out="$WORK/dv-pop3-$mode-$s.json"
    "$BH" bench pop3 --server "127.0.0.1:$DV_POP3" "${args[@]}" >"$out" 2>/dev/null
    pf=$(json "$out" "d['$key']")
  fi
  local unit=$([ "$mode" = login ] && echo "logins/s" || echo "messages/s")
  row "POP3 $mode, $s sessions ($unit)" "$bh" "$pf"
}

for c in 10 50; do
  for p in 1 10; do
    smtp_row "$c" "$p"
  done
done
# The last SMTP load again on a second cluster whose front-end does not remember accepted
# recipients (every RCPT asks a back-end), against Postfix's rate for that load.
NC_SMTP=$(free_port) NC_POP3=$(free_port)
BRIDGEHEAD_RECIPIENT_CACHE_SECS=0 start_dev "$NC_SMTP" "$NC_POP3" bh-nocache
add_users "$DOMAIN" "$USERS" "$PASSWORD" bh-nocache
out="$WORK/bh-smtp-nocache.json"
"$BH" bench smtp --server "127.0.0.1:$NC_SMTP" --connections 50 --per-connection 10 \
  --messages "$SMTP_N" --size 10240 --from "bench@outside.example" --to "user{n}@$DOMAIN" \
  --users "$USERS" --json >"$out" 2>/dev/null
row "SMTP accept, 50 conn × 10 msg, recipient memory off" "$(json "$out" 'd["messages_per_s"]')" "${PF_LAST:-0}"

# The same load on a cluster that records no message-tracking events: what the events (one
# row per accepted message, written in batches) cost the accept rate, against the default
# clusters above, which record them.
NT_SMTP=$(free_port) NT_POP3=$(free_port)
start_dev "$NT_SMTP" "$NT_POP3" bh-notrack --tracking false
add_users "$DOMAIN" "$USERS" "$PASSWORD" bh-notrack
out="$WORK/bh-smtp-notrack.json"
"$BH" bench smtp --server "127.0.0.1:$NT_SMTP" --connections 50 --per-connection 10 \
  --messages "$SMTP_N" --size 10240 --from "bench@outside.example" --to "user{n}@$DOMAIN" \
  --users "$USERS" --json >"$out" 2>/dev/null
row "SMTP accept, 50 conn × 10 msg, message tracking off" "$(json "$out" 'd["messages_per_s"]')" "${PF_LAST:-0}"

# The same load on a cluster that checks unauthenticated mail (iprev, SPF, DKIM, DMARC) against a
# private Knot serving the sender's records: SPF passes for 127.0.0.1, DMARC p=none, a PTR for
# 127.0.0.1 (iprev passes). Every message costs its lookups; the resolver caches them, as a
# production back-end's caching resolver would.
if command -v knotd >/dev/null; then
  cat >"$WORK/example.zone" <<'ZONE'
$ORIGIN example.
$TTL 300
@                    SOA ns.example. admin.example. 1 3600 600 86400 300
@                    NS  ns
ns                   A   127.0.0.1
outside              TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.outside       TXT "v=DMARC1; p=none"
bench.outside        A   127.0.0.1
ZONE
  cat >"$WORK/127.in-addr.arpa.zone" <<'ZONE'
$ORIGIN 127.in-addr.arpa.
$TTL 300
@        SOA ns.example. admin.example. 1 3600 600 86400 300
@        NS  ns.example.
1.0.0    PTR bench.outside.example.
ZONE
  start_knot example "$WORK/example.zone" 127.in-addr.arpa "$WORK/127.in-addr.arpa.zone"
  MA_SMTP=$(free_port) MA_POP3=$(free_port)
  start_dev "$MA_SMTP" "$MA_POP3" bh-mailauth --check-mail-auth --dns-server "$KNOT_ADDR"
  add_users "$DOMAIN" "$USERS" "$PASSWORD" bh-mailauth
  out="$WORK/bh-smtp-mailauth.json"
  "$BH" bench smtp --server "127.0.0.1:$MA_SMTP" --connections 50 --per-connection 10 \
    --messages "$SMTP_N" --size 10240 --from "bench@outside.example" --to "user{n}@$DOMAIN" \
    --users "$USERS" --json >"$out" 2>/dev/null
  # The row counts only if the checks ran and passed: one stored message says so.
  python3 - "$MA_POP3" "user0@$DOMAIN" "$PASSWORD" <<'PY' || { echo "mail authentication checks did not run" >&2; exit 1; }
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1])); p.user(sys.argv[2]); p.pass_(sys.argv[3])
head = b"\n".join(p.top(1, 0)[1]).decode()
p.quit()
assert "spf=pass" in head and "dmarc=pass" in head and "iprev=pass" in head, head
PY
  row "SMTP accept, 50 conn × 10 msg, mail authentication checks on" "$(json "$out" 'd["messages_per_s"]')" "${PF_LAST:-0}"

  # The same load, every message for a contact that forwards it out: checked as above, then
  # sealed (ARC, an RSA-2048 signature over the message) and queued with an SRS sender. The
  # next hop is a closed port (each entry is tried once and deferred), so the row is what
  # taking forwarded mail in costs.
  MA=(--data-dir "$WORK/bh-mailauth")
  "$BH" admin "${MA[@]}" dkim add "$DOMAIN" >/dev/null
  "$BH" admin "${MA[@]}" route set forward.example "127.0.0.1:$(free_port)" --tls none >/dev/null
  for n in $(seq 0 $((USERS - 1))); do
    "$BH" admin "${MA[@]}" contact add "fwd$n@$DOMAIN" "user$n@forward.example" >/dev/null
  done
  out="$WORK/bh-smtp-forwarded.json"
  "$BH" bench smtp --server "127.0.0.1:$MA_SMTP" --connections 50 --per-connection 10 \
    --messages "$SMTP_N" --size 10240 --from "bench@outside.example" --to "fwd{n}@$DOMAIN" \
    --users "$USERS" --json >"$out" 2>/dev/null
  # The row counts only if the queued messages were rewritten and sealed.
  MPG="$WORK/bh-mailauth/postgres"
  sealed=$(PGPASSWORD=$(cat "$MPG/pg-password") psql -h 127.0.0.1 -p "$(sed -n 4p "$MPG/pgdata/postmaster.pid")" \
    -U bridgehead -d bridgehead -Atc "SELECT count(*) FROM outbound_queue
      WHERE envelope_from LIKE 'SRS0=%' AND position('ARC-Seal: i=1' in convert_from(head, 'UTF8')) > 0")
  [ "$sealed" -ge 1 ] || { echo "forwarded mail was not rewritten and sealed" >&2; exit 1; }
  row "SMTP accept, 50 conn × 10 msg, checks on, forwarded (SRS + ARC seal)" "$(json "$out" 'd["messages_per_s"]')" "${PF_LAST:-0}"
fi

# The same load through the same rspamd (milter protocol) on both sides: Bridgehead's
# front-end as --milters, Postfix as smtpd_milters; Postfix gets it only for this row.
if command -v rspamd >/dev/null; then
  start_rspamd
  RS_SMTP=$(free_port) RS_POP3=$(free_port)
  start_dev "$RS_SMTP" "$RS_POP3" bh-rspamd --milters "inet:$RSPAMD_ADDR?timeout=60"
  add_users "$DOMAIN" "$USERS" "$PASSWORD" bh-rspamd
  rs_args=(--connections 50 --per-connection 10 --messages "$SMTP_N" --size 10240
    --from "bench@outside.example" --to "user{n}@$DOMAIN" --users "$USERS" --json)
  "$BH" bench smtp --server "127.0.0.1:$RS_SMTP" "${rs_args[@]}" >"$WORK/bh-rspamd.json" 2>/dev/null
  # The row counts only if rspamd saw the messages: a stored one carries its header.
  python3 - "$RS_POP3" "user0@$DOMAIN" "$PASSWORD" <<'PY' || { echo "rspamd did not scan" >&2; exit 1; }
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1])); p.user(sys.argv[2]); p.pass_(sys.argv[3])
head = b"\n".join(p.top(1, 0)[1]).decode()
p.quit()
assert "X-Spamd-Result:" in head, head
PY
  pf_rs=0
  if [ -n "$PEER" ]; then
    postconf -c "$PF_CONF" -e "smtpd_milters = inet:$RSPAMD_ADDR" "milter_default_action = tempfail" \
      "milter_protocol = 6"
    postfix -c "$PF_CONF" reload >/dev/null 2>&1; sleep 2
    "$BH" bench smtp --server "127.0.0.1:$PF_SMTP" "${rs_args[@]}" >"$WORK/pf-rspamd.json" 2>/dev/null
    pf_rs=$(json "$WORK/pf-rspamd.json" 'd["messages_per_s"]')
    postconf -c "$PF_CONF" -e "smtpd_milters =" && postfix -c "$PF_CONF" reload >/dev/null 2>&1
  fi
  row "SMTP accept, 50 conn × 10 msg, rspamd milter (both)" "$(json "$WORK/bh-rspamd.json" 'd["messages_per_s"]')" "$pf_rs"
fi

# The ceiling: PostgreSQL's own rate for the same durable 10 KiB insert at the same
# concurrency, on the same server, against Bridgehead's accept rate at 50 × 10.
CEILING=
if command -v pgbench >/dev/null; then
  BPG="$WORK/bh/postgres"
  export PGPASSWORD; PGPASSWORD=$(cat "$BPG/pg-password")
  BPG_ARGS=(-h 127.0.0.1 -p "$(sed -n 4p "$BPG/pgdata/postmaster.pid")" -U bridgehead -d bridgehead)
  psql "${BPG_ARGS[@]}" -qc "CREATE TABLE pgbench_blob AS SELECT decode(string_agg(md5(g::text), ''), 'hex') AS data
      FROM generate_series(1, 640) g; CREATE TABLE pgbench_mail (id bigserial PRIMARY KEY, data bytea)"
  echo 'INSERT INTO pgbench_mail (data) SELECT data FROM pgbench_blob;' >"$WORK/insert.sql"
  pgbench "${BPG_ARGS[@]}" -n -c 50 -j 2 -T "$([ -n "${QUICK:-}" ] && echo 3 || echo 10)" \
    -f "$WORK/insert.sql" >"$WORK/pgbench.out" 2>&1
  PGB=$(awk '/^tps = /{print $3; exit}' "$WORK/pgbench.out")
  BH50=$(json "$WORK/bh-smtp-50-10.json" 'd["messages_per_s"]')
  CEILING="Bridgehead SMTP accept (50 × 10) $(printf '%.0f' "$BH50") msg/s against pgbench's $(printf '%.0f' "$PGB") durable 10 KiB inserts/s at 50 clients: $(ratio "$BH50" "$PGB") of PostgreSQL's own rate"
  psql "${BPG_ARGS[@]}" -qc "DROP TABLE pgbench_blob, pgbench_mail"
fi

for s in 1 4 10; do pop3_row login "$s" "$LOGINS"; done
for s in 1 4 10; do pop3_row retr-all "$s" "$RETR_SESSIONS"; done

# --- Table ---------------------------------------------------------------------------------
echo
echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr); $(date -u +%Y-%m-%d)"
echo "Peer: $([ -n "$PEER" ] && echo "Postfix $(postconf -c "$PF_CONF" -h mail_version 2>/dev/null) → LMTP → Dovecot $(dovecot --version | cut -d' ' -f1)" || echo none)"
echo
echo "| load | Bridgehead | Postfix/Dovecot | ratio |"
echo "|---|---|---|---|"
for r in "${ROWS[@]}"; do
  IFS='|' read -r name a b <<<"$r"
  printf '| %s | %.0f | %.0f | %s |\n' "$name" "$a" "$b" "$(ratio "$a" "$b")"
done
if [ -n "$CEILING" ]; then echo; echo "$CEILING"; fi
