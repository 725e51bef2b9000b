#!/usr/bin/env bash
# The RabbitMQ broker the AMQP interop suites run against: Debian's rabbitmq-server, one node per machine,
# listening on loopback only, started without systemd (containers have no init).
#
#   test/interop/rabbitmq.sh config     write the config only (before installing the package)
#   test/interop/rabbitmq.sh start      write the config, start the node if it is not running, wait, configure
#   test/interop/rabbitmq.sh stop       stop the node
#   test/interop/rabbitmq.sh status     exit 0 when the node is up and its app is running
#   test/interop/rabbitmq.sh configure  (re)create the users, vhosts and permissions the suites expect
#   test/interop/rabbitmq.sh ctl ARGS   run rabbitmqctl against the node (as the rabbitmq user)
#
# Facts the suites rely on (mirrored in test/support/rabbitmq.ts):
#   node rabbit@localhost, AMQP on 127.0.0.1:5672, epmd on 127.0.0.1:4369, distribution on 127.0.0.1:25672;
#   guest/guest (loopback only, the default), effect-wire/effect-wire with full rights on "/",
#   vhost "effect-wire-denied" that guest cannot open.
#
# The node runs as the unprivileged `rabbitmq` user with Debian's layout (/etc/rabbitmq, /var/lib/rabbitmq,
# /var/log/rabbitmq), so every checkout on the machine finds and controls the same broker. Needs root.
set -euo pipefail

readonly NODE="rabbit@localhost"
readonly PORT=5672
readonly ETC=/etc/rabbitmq
readonly PID_FILE="/var/lib/rabbitmq/mnesia/${NODE}.pid"
readonly LOG_DIR=/var/log/rabbitmq
readonly START_TIMEOUT_S=${RABBITMQ_START_TIMEOUT_S:-120}

die() { echo "rabbitmq.sh: $*" >&2; exit 1; }

# rabbitmqctl as the rabbitmq user (it owns the Erlang cookie); Debian's /usr/sbin wrapper does the `su` for root.
ctl() { timeout 60 rabbitmqctl --node "$NODE" "$@"; }

write_config() {
  # Also run before the package is installed (so that a postinst that starts the service uses it): the
  # rabbitmq user may not exist yet, and root-owned, world-readable files serve as well.
  mkdir -p "$ETC"
  # Read by rabbitmq-server and rabbitmqctl alike: node name, loopback epmd and a loopback CLI dist listener.
  cat >"$ETC/rabbitmq-env.conf" <<'EOF'
# Written by effect-wire test/interop/rabbitmq.sh: a loopback-only test broker.
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672
ERL_EPMD_ADDRESS=127.0.0.1
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  cat >"$ETC/rabbitmq.conf" <<'EOF'
# Written by effect-wire test/interop/rabbitmq.sh: a loopback-only test broker.
listeners.tcp.default = 127.0.0.1:5672
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = 25672
distribution.listener.port_range.max = 25672
loopback_users.guest = true
log.console = false
log.file.level = info
EOF
  if id rabbitmq >/dev/null 2>&1; then chown rabbitmq:rabbitmq "$ETC" "$ETC/rabbitmq-env.conf" "$ETC/rabbitmq.conf"; fi
}

node_pid() {
  [[ -s "$PID_FILE" ]] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$PID_FILE")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

is_up() { ctl -q status >/dev/null 2>&1 && port_open; }

# True when every listener of the running node is on loopback (a node started before our config was written,
# e.g. by a package postinst, listens on all interfaces).
loopback_only() {
  local listeners
  listeners=$(timeout 60 rabbitmq-diagnostics --node "$NODE" -q listeners) || return 1
  ! grep "Interface:" <<<"$listeners" | grep -qv "Interface: 127\.0\.0\.1,"
}

start_epmd() {
  # Started first so that it binds loopback; a node started later reuses it.
  if ! epmd -names >/dev/null 2>&1; then
    su rabbitmq -s /bin/sh -c "ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon"
  fi
}

wait_up() {
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until ctl -q await_startup --timeout 10 >/dev/null 2>&1 && port_open; do
    if ((SECONDS >= deadline)); then
      echo "rabbitmq.sh: node did not come up within ${START_TIMEOUT_S}s; last log lines:" >&2
      tail -n 40 "$LOG_DIR/${NODE}.log" "$LOG_DIR/startup_err" 2>/dev/null >&2 || true
      return 1
    fi
    sleep 1
  done
}

configure() {
  # Idempotent: safe on a node that earlier runs already configured (or left with a low watermark).
  ctl -q set_vm_memory_high_watermark 0.4 >/dev/null
  ctl -q list_vhosts --no-table-headers | grep -qx "effect-wire-denied" || ctl -q add_vhost effect-wire-denied
  if ctl -q list_users --no-table-headers | awk '{print $1}' | grep -qx "effect-wire"; then
    ctl -q change_password effect-wire effect-wire
  else
    ctl -q add_user effect-wire effect-wire
  fi
  ctl -q set_user_tags effect-wire administrator
  ctl -q set_permissions -p / effect-wire ".*" ".*" ".*"
  ctl -q set_permissions -p / guest ".*" ".*" ".*"
  # guest must stay shut out of the denied vhost, whatever an earlier run did.
  ctl -q clear_permissions -p effect-wire-denied guest >/dev/null 2>&1 || true
}

start() {
  command -v rabbitmq-server >/dev/null || die "rabbitmq-server is not installed (apt-get install -y rabbitmq-server)"
  write_config
  # A node left frozen by an interrupted pause test answers nothing until it is continued.
  local pid
  if pid=$(node_pid); then kill -CONT "$pid" 2>/dev/null || true; fi
  if is_up && ! loopback_only; then
    echo "rabbitmq: $NODE listens beyond loopback; restarting it with the loopback config"
    stop
  fi
  if is_up; then
    echo "rabbitmq: $NODE already running"
  else
    if ctl -q ping >/dev/null 2>&1; then
      # The node is there but its app was stopped (an app-restart test that did not finish).
      ctl -q start_app
    else
      start_epmd
      install -d -o rabbitmq -g rabbitmq "$LOG_DIR" /var/lib/rabbitmq/mnesia
      # -detached: the VM daemonises and outlives this shell; logs go to $LOG_DIR.
      (cd /var/lib/rabbitmq && su rabbitmq -s /bin/sh -c "/usr/lib/rabbitmq/bin/rabbitmq-server -detached" \
        >"$LOG_DIR/startup_log" 2>"$LOG_DIR/startup_err" </dev/null)
    fi
    wait_up || die "start failed"
  fi
  configure
  echo "rabbitmq: $NODE up on 127.0.0.1:$PORT ($(ctl -q eval 'rabbit_misc:version().' | tr -d '"'), pid $(node_pid || echo '?'))"
}

stop() {
  local pid="" waited=0
  pid=$(node_pid) || pid=""
  if [[ -n "$pid" ]]; then
    # A paused (SIGSTOPped) node can neither answer nor stop itself.
    kill -CONT "$pid" 2>/dev/null || true
    # Given the pid file, rabbitmqctl stop waits until the VM has exited.
    ctl -q stop "$PID_FILE" >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((waited < 30)); do
      sleep 1
      waited=$((waited + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  else
    ctl -q stop >/dev/null 2>&1 || true
  fi
  echo "rabbitmq: stopped"
}

status() {
  if is_up; then
    echo "rabbitmq: $NODE running on 127.0.0.1:$PORT (pid $(node_pid || echo '?'))"
  else
    echo "rabbitmq: $NODE not running"
    return 1
  fi
}

case "${1:-}" in
  config) write_config ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  configure) configure ;;
  ctl) shift; ctl "$@" ;;
  *) echo "usage: $0 config|start|stop|status|configure|ctl ARGS..." >&2; exit 2 ;;
esac
