#!/usr/bin/env bash
# LocalStack without Docker: localstack-core 4.14.0 in host mode on 127.0.0.1:4566, in a venv of
# its own, for `make localstack`, `make localstack-stop` and `make test-localstack`.
#
#   localstack/ctl.sh install   create or update .localstack/venv (only when something changed)
#   localstack/ctl.sh start     install, then start in the background and wait until healthy;
#                               already running and healthy: nothing to do
#   localstack/ctl.sh stop      stop it (SIGTERM, SIGKILL after 10 s); not running: nothing to do
#   localstack/ctl.sh status    exit 0 if it is running (pid file) and answers
#
# Everything lives under .localstack/ (gitignored): venv/, filesystem/ (LocalStack's
# FILESYSTEM_ROOT, emptied at each start: no persistence), localstack.pid, localstack.log.
# LOCALSTACK_PYTHON picks the interpreter for the venv; by default the first Python 3.13 or later
# among python3.13, pyenv's 3.13, python3.14, pyenv's later ones and python3 (here: pyenv's
# 3.13.0). Not 3.11 or 3.12, whatever localstack-core's metadata says (>=3.10): 4.14.0 uses PEP 695
# generics (3.12) in sqs/queue.py and `threading.Lock | None` (3.13) in packages/api.py, so on
# older Pythons its services and half its plugins fail to load.
# LOCALSTACK_START_TIMEOUT bounds the wait for health (seconds, default 120).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
state="$root/.localstack"
venv="$state/venv"
pidfile="$state/localstack.pid"
logfile="$state/localstack.log"
endpoint="http://127.0.0.1:4566"
services="lambda,logs,cloudwatch,iam,sqs,s3,secretsmanager,sts"
timeout="${LOCALSTACK_START_TIMEOUT:-120}"

home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"

say() { echo "localstack: $*" >&2; }

find_python() {
    local candidates candidate
    if [[ -n "${LOCALSTACK_PYTHON:-}" ]]; then
        candidates=("$LOCALSTACK_PYTHON")
    else
        # 3.13 first: the Python of LocalStack's own 4.14.0 image.
        candidates=(python3.13 "${PYENV_ROOT:-$home/.pyenv}"/versions/3.13*/bin/python3
            python3.14 "${PYENV_ROOT:-$home/.pyenv}"/versions/3.1[4-9]*/bin/python3 python3)
    fi
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# The venv is rebuilt when the interpreter or the pins change, the plugins reinstalled when
# their sources do; otherwise install does nothing.
digest() { sha256sum | cut -d' ' -f1; }

install() {
    local python key
    python=$(find_python) || {
        say "no Python 3.13 or later found (set LOCALSTACK_PYTHON); localstack-core 4.14.0 needs it"
        exit 1
    }
    key=$({ echo "$python"; cat "$here/requirements.txt"; } | digest)
    if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements" 2>/dev/null)" != "$key" ]]; then
        say "installing localstack-core into $venv with $("$python" -V) (half a minute or more)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
        echo "$key" >"$venv/.requirements"
    fi
    key=$(cat "$here/hostmode/pyproject.toml" "$here"/hostmode/localstack_hostmode/* | digest)
    if [[ "$(cat "$venv/.hostmode" 2>/dev/null)" != "$key" ]]; then
        # Not editable: LocalStack finds plugins through installed entry points (plux).
        "$venv/bin/pip" install --quiet --no-deps --force-reinstall "$here/hostmode"
        echo "$key" >"$venv/.hostmode"
    fi
}

# Alive: the process exists and is not a zombie (LocalStack's parent is init once ctl.sh has
# exited, and init may take seconds to reap it).
alive() {
    [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

running_pid() {
    [[ -f "$pidfile" ]] || return 1
    local pid
    pid=$(cat "$pidfile")
    if [[ -n "$pid" ]] && alive "$pid" \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "localstack.runtime.main"; then
        echo "$pid"
        return 0
    fi
    rm -f "$pidfile"  # stale: that process is gone
    return 1
}

# Healthy: /_localstack/health answers and every service we asked for is available or running.
healthy() {
    curl -fsS --max-time 5 "$endpoint/_localstack/health" 2>/dev/null | "$venv/bin/python" -c '
import json, sys
try:
    states = json.load(sys.stdin).get("services", {})
except ValueError:
    sys.exit(1)
sys.exit(0 if all(states.get(s) in ("available", "running") for s in sys.argv[1].split(",")) else 1)
' "$services"
}

start() {
    install
    if pid=$(running_pid); then
        if healthy; then
            say "already running (pid $pid) on $endpoint"
            return 0
        fi
        say "pid $pid is running but not healthy yet; waiting for it"
    else
        if curl -s --max-time 2 -o /dev/null "$endpoint/"; then
            say "something else already listens on $endpoint (not our pid file); stop it first"
            exit 1
        fi
        rm -rf "$state/filesystem"
        mkdir -p "$state/filesystem" "$state/cache"
        say "starting on $endpoint (log: $logfile)"
        # Every variable is explained in localstack/README.md. env -i: nothing else of the
        # caller's environment (AWS_PROFILE, AWS_ENDPOINT_URL, proxies, ...) reaches LocalStack.
        (
            cd "$state"
            exec setsid env -i \
                PATH="$PATH" HOME="$home" LANG=C.UTF-8 \
                XDG_CACHE_HOME="$state/cache" PYTHONUNBUFFERED=1 \
                GATEWAY_LISTEN=127.0.0.1:4566 GATEWAY_SERVER=hypercorn \
                LOCALSTACK_HOST=127.0.0.1:4566 \
                FILESYSTEM_ROOT="$state/filesystem" \
                PERSISTENCE=0 OVERRIDE_IN_DOCKER=0 DNS_ADDRESS=0 SQS_ENDPOINT_STRATEGY=path \
                SERVICES="$services" EAGER_SERVICE_LOADING=1 \
                LAMBDA_RUNTIME_EXECUTOR=noop \
                DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
                ANALYTICS_API=http://127.0.0.1:9 API_ENDPOINT=http://127.0.0.1:9 \
                ASSETS_ENDPOINT=http://127.0.0.1:9 \
                "$venv/bin/python" -m localstack.runtime.main
        ) </dev/null >"$logfile" 2>&1 &
        echo $! >"$pidfile"
        pid=$!
    fi
    local deadline=$((SECONDS + timeout))
    until healthy; do
        if ! alive "$pid"; then
            rm -f "$pidfile"
            say "exited during startup; the end of $logfile:"
            tail -n 25 "$logfile" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            say "not healthy after ${timeout} s; stopping it. The end of $logfile:"
            tail -n 25 "$logfile" >&2
            stop
            exit 1
        fi
        sleep 0.5
    done
    say "ready on $endpoint (pid $pid)"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        say "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
        alive "$pid" || break
        sleep 0.5
    done
    if alive "$pid"; then
        say "pid $pid still there 10 s after SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    say "stopped (pid $pid)"
}

status() {
    local pid
    pid=$(running_pid) && [[ -x "$venv/bin/python" ]] && healthy
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 install|start|stop|status" >&2
        exit 2
        ;;
esac
