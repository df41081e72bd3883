# Shared by compare.sh and profile.sh (sourced, not run): the release binary (built if
# missing), a work directory removed on exit, started processes stopped by PID on exit, free
# loopback ports, and a `bridgehead dev` cluster with bench accounts. Loopback only.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BH=${BH:-$ROOT/target/release/bridgehead}
[ -x "$BH" ] || (cd "$ROOT" && cargo build --release --bin bridgehead)

# A script may redefine this to stop what it started by other means.
before_cleanup() { :; }

bench_cleanup() {
  before_cleanup
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}

# bench_setup NAME: the work directory /tmp/bridgehead-NAME.*, cleaned up on exit.
bench_setup() {
  WORK=$(mktemp -d "/tmp/bridgehead-$1.XXXXXX")
  chmod 755 "$WORK" # PostgreSQL runs as its own user when we are root
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 did not open" >&2
  return 1
}

# start_dev SMTP_PORT POP3_PORT [NAME [DEV ARGS...]]: a dev cluster in $WORK/NAME (default bh;
# plaintext POP3 auth allowed; further `bridgehead dev` flags after the name), ready once its
# endpoints.json is written.
start_dev() {
  local dir="$WORK/${3:-bh}"
  "$BH" dev --data-dir "$dir" --host 127.0.0.1 --smtp-port "$1" --pop3-port "$2" \
    --pop3s-port 0 --submission-port 0 --submissions-port 0 --grpc-port 0 --metrics-port 0 \
    --console-port 0 \
    --allow-plaintext-auth "${@:4}" >"$dir.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do [ -s "$dir/endpoints.json" ] && return 0; sleep 0.1; done
  echo "bridgehead dev did not start (see $dir.log)" >&2
  return 1
}

# add_users DOMAIN COUNT PASSWORD [NAME]: the domain and user0@DOMAIN … user(COUNT-1)@DOMAIN
# in the cluster in $WORK/NAME (default bh).
add_users() {
  local dir="$WORK/${4:-bh}"
  "$BH" admin --data-dir "$dir" domain add "$1" >/dev/null
  for n in $(seq 0 $(($2 - 1))); do
    echo "$3" | "$BH" admin --data-dir "$dir" user add "user$n@$1" >/dev/null
  done
}

# start_knot NAME FILE [NAME FILE ...]: a private Knot DNS server on a free loopback port
# serving each zone NAME from FILE; sets KNOT_ADDR (127.0.0.1:PORT). Stopped on exit.
start_knot() {
  local dir="$WORK/knot" port; port=$(free_port)
  mkdir -p "$dir/db"
  {
    printf 'server:\n    listen: 127.0.0.1@%s\n    rundir: %s\n' "$port" "$dir"
    printf 'database:\n    storage: %s/db\nlog:\n  - target: %s/knot.log\n    any: info\nzone:\n' "$dir" "$dir"
    while [ $# -ge 2 ]; do
      cp "$2" "$dir/$1.zone"
      printf '  - domain: %s\n    storage: %s\n    file: %s.zone\n' "$1" "$dir" "$1"
      shift 2
    done
  } >"$dir/knot.conf"
  knotd -c "$dir/knot.conf" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do grep -q "server started" "$dir/knot.log" 2>/dev/null && break; sleep 0.1; done
  KNOT_ADDR="127.0.0.1:$port"
}

# start_rspamd: a private rspamd (proxy worker in milter mode, scanning by itself) on a free
# loopback port with the distribution's rules; loopback is not "local" (it scans everything),
# DNS answers nothing at once (no network), result headers added. Sets RSPAMD_ADDR.
start_rspamd() {
  local dir="$WORK/rspamd" port; port=$(free_port)
  mkdir -p "$dir/local.d" "$dir/run" "$dir/db" "$dir/log"
  cat >"$dir/rspamd.conf" <<CONF
.include "\$CONFDIR/common.conf"
options {
    pidfile = "\$RUNDIR/rspamd.pid";
    .include "\$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "\$LOCAL_CONFDIR/local.d/options.inc"
}
logging { type = "file"; filename = "\$LOGDIR/rspamd.log"; level = "warning"; }
worker "rspamd_proxy" {
    bind_socket = "127.0.0.1:$port";
    milter = yes;
    timeout = 60s;
    upstream "local" { default = yes; self_scan = yes; }
    count = 2;
}
CONF
  printf 'local_addrs = [];\ndns { nameserver = ["127.0.0.1:1"]; timeout = 0.5s; retransmits = 1; }\n' \
    >"$dir/local.d/options.inc"
  printf 'use = ["x-spamd-result", "x-spam-status"];\nskip_local = false;\nskip_authenticated = false;\n' \
    >"$dir/local.d/milter_headers.conf"
  rspamd -f -i -u root -g root -c "$dir/rspamd.conf" --var=CONFDIR=/etc/rspamd \
    --var=LOCAL_CONFDIR="$dir" --var=RUNDIR="$dir/run" --var=DBDIR="$dir/db" \
    --var=LOGDIR="$dir/log" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_port "$port"
  RSPAMD_ADDR="127.0.0.1:$port"
}
