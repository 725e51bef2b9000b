#!/usr/bin/env bash
# Installs and starts the real peers the interop suites talk to. Idempotent, and quick when already done.
#
#   test/interop/setup.sh [step...]     steps: rabbitmq go python npm (default: all, in that order)
#
#   rabbitmq  Debian's rabbitmq-server, started on loopback and configured (test/interop/rabbitmq.sh)
#   go        every test/interop/go/cmd/* built to .peers/bin/<name>
#   python    a venv at .peers/venv with pyzmq and the EventMQ 0.3.13 reference
#   npm       `npm ci` (or the lockfile's exact versions through `npm install` when npm ci refuses the lockfile),
#             skipped when node_modules already matches package-lock.json
#
# Runs as root on a Debian 12 machine (CI) or on a developer's; the peers land in .peers/ (git-ignored), or in
# $EFFECT_WIRE_PEERS. Each step logs its duration and a failure names its step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="${EFFECT_WIRE_PEERS:-$ROOT/.peers}"
GO_MODULE="$ROOT/test/interop/go"
VENV="$PEERS/venv"
PYTHON="${PYTHON:-python3}"

# The reference declares pyzmq==18.1.0, croniter==0.3.10, future==0.15.2, psutil==5.6.6 and monotonic==0.4,
# which have no wheels for (or do not build on) Python 3.11. Its code runs unchanged on current releases of the
# same packages, so the reference itself goes in with --no-deps and these go in beside it. `future` provides
# `past.builtins` (imported by the client and encoding modules); 1.0 no longer needs the `imp` module.
# `monotonic` is unused on Python 3. `redis` is an undeclared import of emq-scheduler, which exits without it
# (it only connects when jobs are persisted, so no Redis server is needed).
PYTHON_DEPS=(pyzmq==27.1.0 six==1.17.0 croniter==1.3.15 future==1.0.0 psutil==7.0.0 redis==5.2.1)
EVENTMQ=eventmq==0.3.13

log() { printf '[setup %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

step() {
  local step_name=$1
  shift
  local step_started=$SECONDS code
  log "$step_name: start"
  # A subshell outside any `if`/`&&`, so that `set -e` stops the step at its first failing command.
  set +e
  (
    set -e
    "$@"
  )
  code=$?
  set -e
  if ((code == 0)); then
    log "$step_name: done in $((SECONDS - step_started))s"
  else
    log "$step_name: FAILED (exit $code) after $((SECONDS - step_started))s"
    echo "setup.sh: step '$step_name' failed" >&2
    exit "$code"
  fi
}

apt_updated=false
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) == 0 ]] || { echo "need root to apt-get install ${missing[*]}" >&2; return 1; }
  if [[ $apt_updated == false ]]; then
    apt-get update -qq
    apt_updated=true
  fi
  # Keep config files written before the install (rabbitmq.sh config) instead of asking about them.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
}

setup_rabbitmq() {
  # Config first: where a postinst starts the service (an init system, no policy-rc.d), it starts on loopback.
  bash "$ROOT/test/interop/rabbitmq.sh" config
  apt_install rabbitmq-server
  bash "$ROOT/test/interop/rabbitmq.sh" start
}

setup_go() {
  # A cmd/<name> with its own go.mod is a separate module (e.g. the same peer pinned to another muxado
  # version); the others build together in the shared module.
  local shared=() own=() dir name
  if [[ -d "$GO_MODULE/cmd" ]]; then
    for dir in "$GO_MODULE"/cmd/*/; do
      [[ -d $dir ]] || continue
      if [[ -f "$dir/go.mod" ]]; then own+=("$(basename "$dir")"); else shared+=("$(basename "$dir")"); fi
    done
  fi
  if ((${#shared[@]} + ${#own[@]} == 0)); then
    log "go: SKIP: no Go peer programs under test/interop/go/cmd/"
    return 0
  fi
  command -v go >/dev/null || { echo "go is not installed" >&2; return 1; }
  mkdir -p "$PEERS/bin"
  # -mod=mod lets go.sum be completed from the module proxy; the module and build caches make reruns quick.
  export GOFLAGS="-mod=mod ${GOFLAGS:-}"
  if ((${#shared[@]} > 0)); then
    (cd "$GO_MODULE" && go build -trimpath -o "$PEERS/bin/" "${shared[@]/#/./cmd/}")
  fi
  for name in "${own[@]}"; do
    (cd "$GO_MODULE/cmd/$name" && go build -trimpath -o "$PEERS/bin/$name" .)
  done
  log "go: built $(echo "${shared[@]}" "${own[@]}") into $PEERS/bin"
}

python_ok() {
  [[ -x "$VENV/bin/python" ]] &&
    [[ -f "$VENV/.effect-wire-deps" && "$(cat "$VENV/.effect-wire-deps")" == "${PYTHON_DEPS[*]} $EVENTMQ" ]] &&
    "$VENV/bin/python" -c "import zmq, eventmq.router, eventmq.jobmanager, eventmq.scheduler" 2>/dev/null
}

setup_python() {
  if python_ok; then
    log "python: venv up to date"
    return 0
  fi
  local version
  version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  # EventMQ 0.3.13 is Python <= 3.11 code (`future`'s old releases and the reference's own imports).
  case $version in
    3.8 | 3.9 | 3.10 | 3.11) ;;
    *) echo "python: $PYTHON is $version; the EventMQ reference needs Python 3.8-3.11 (set PYTHON=...)" >&2; return 1 ;;
  esac
  "$PYTHON" -m venv --clear "$VENV" || {
    # Debian's python3 ships venv separately.
    apt_install python3-venv && "$PYTHON" -m venv --clear "$VENV"
  }
  local pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check --no-input)
  "${pip[@]}" install "${PYTHON_DEPS[@]}"
  "${pip[@]}" install --no-deps "$EVENTMQ"
  "$VENV/bin/python" -c "import zmq, eventmq.router, eventmq.jobmanager, eventmq.scheduler, eventmq.pub"
  echo "${PYTHON_DEPS[*]} $EVENTMQ" >"$VENV/.effect-wire-deps"
  log "python: $("$VENV/bin/python" -c 'import sys, zmq; print("Python %s, pyzmq %s, libzmq %s" % (sys.version.split()[0], zmq.pyzmq_version(), zmq.zmq_version()))')"
}

npm_current() {
  # True when node_modules holds exactly the lockfile's packages (optional ones for other platforms aside).
  [[ -f "$ROOT/node_modules/.package-lock.json" ]] && node -e '
    const [lock, installed] = process.argv.slice(1).map((f) => require(f).packages)
    const ok = Object.entries(lock).every(([k, p]) => k === "" || (installed[k] ? installed[k].version === p.version : p.optional === true))
      && Object.keys(installed).every((k) => k in lock)
    process.exit(ok ? 0 : 1)' "$ROOT/package-lock.json" "$ROOT/node_modules/.package-lock.json"
}

setup_npm() {
  # npm ci starts by deleting node_modules: only run it when the installed tree does not match the lockfile.
  if npm_current; then
    log "npm: node_modules matches package-lock.json"
    return 0
  fi
  mkdir -p "$PEERS"
  if (cd "$ROOT" && npm ci --no-audit --no-fund) >"$PEERS/npm-ci.log" 2>&1; then
    tail -n 3 "$PEERS/npm-ci.log"
  else
    # `npm ci` refuses a lockfile that lacks optional packages for other platforms, which npm leaves out when
    # the registry cannot serve them at the locked version. `npm install` installs the same locked versions
    # and skips those; the check below makes sure nothing drifted from the lockfile.
    log "npm: npm ci refused the lockfile: $(grep -m 3 'npm error' "$PEERS/npm-ci.log" | tr '\n' ' ')"
    log "npm: installing the lockfile's versions with npm install --no-save"
    (cd "$ROOT" && npm install --no-audit --no-fund --no-save)
  fi
  npm_current || { echo "node_modules does not match package-lock.json after installing" >&2; return 1; }
}

steps=("$@")
((${#steps[@]} > 0)) || steps=(rabbitmq go python npm)
total=$SECONDS
for s in "${steps[@]}"; do
  case $s in
    rabbitmq) step rabbitmq setup_rabbitmq ;;
    go) step go setup_go ;;
    python) step python setup_python ;;
    npm) step npm setup_npm ;;
    *) echo "setup.sh: unknown step '$s' (rabbitmq, go, python, npm)" >&2; exit 2 ;;
  esac
done
log "all done in $((SECONDS - total))s"
