#!/usr/bin/env bash
# Acceptance check for adopters: examples/hello, copied out of the repository so that none of
# the workspace's settings (.cargo/config.toml's rustflags, the WASM toolchain) apply, is built
# with plain `cargo build` against the crates by path, then its binary is run as a user would:
# `hello serve` answers pages, runs `hello.add` sent by Python Celery 5.4 (whose result Python
# reads back) in its embedded worker, and its beat fires the static schedule `hello.tick`.
#
#   scripts/outside-crate.sh     prints "outside crate: N passed, M failed"; exits non-zero on failure
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/celeriac-outside.XXXXXX)"
# Its own target dir: flags differ from the workspace's, so nothing could be shared anyway.
export CARGO_TARGET_DIR="${repo_root}/target/outside"
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS

passed=0
failed=0
check() {
    local what="$1"
    shift
    if "$@"; then
        echo "ok: ${what}"
        passed=$((passed + 1))
    else
        echo "FAILED: ${what}" >&2
        failed=$((failed + 1))
    fi
}

cp -r "${repo_root}/examples/hello" "${work}/hello"
sed -i "s|path = \"../../|path = \"${repo_root}/|" "${work}/hello/Cargo.toml"
# The workspace's lock pins the same versions the workspace is tested with.
cp "${repo_root}/Cargo.lock" "${work}/hello/Cargo.lock"
lines=$(wc -l < "${work}/hello/src/main.rs")
echo "==> examples/hello: ${lines} lines of Rust, built in ${work}/hello"
check "the crate is at most 40 lines of Rust" test "${lines}" -le 40
(cd "${work}/hello" && cargo build --quiet)
binary="${CARGO_TARGET_DIR}/debug/hello"

python="$("${repo_root}/scripts/python-venv.sh")"
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port="$(port_of)"
web_port="$(port_of)"
redis-server --port "${redis_port}" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "${work}" --logfile "${work}/redis.log" --pidfile "${work}/redis.pid"
export CELERIAC_BROKER_URL="redis://127.0.0.1:${redis_port}/0"
export CELERIAC_RESULT_BACKEND="redis://127.0.0.1:${redis_port}/1"
export CELERIAC_DATABASE_URL="sqlite://${work}/hello.db"
unset CELERIAC_CONFIG

cd "${work}"
"${binary}" serve --addr "127.0.0.1:${web_port}" >"${work}/serve.log" 2>&1 &
serve_pid=$!
cleanup() {
    kill "${serve_pid}" 2>/dev/null || true
    wait "${serve_pid}" 2>/dev/null || true
    [[ -f "${work}/redis.pid" ]] && kill "$(cat "${work}/redis.pid")" 2>/dev/null || true
    # The copy and its logs stay for a look when something failed.
    [[ "${failed}" -eq 0 ]] && rm -rf "${work}"
    true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:${web_port}/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done

check "serve shows the dashboard (the login page)" \
    bash -c "curl -fs 'http://127.0.0.1:${web_port}/login' | grep -q '<form'"
sum="$("${python}" - <<PY
from celery import Celery
app = Celery(broker="${CELERIAC_BROKER_URL}", backend="${CELERIAC_RESULT_BACKEND}")
app.conf.task_routes = {"hello.*": {"queue": "hello"}}
print(app.send_task("hello.add", args=(2, 3)).get(timeout=30))
PY
)" || sum="(no answer)"
check "Python sent hello.add(2, 3) and read back 5 (got ${sum})" test "${sum}" = "5"
fired() {
    for _ in $(seq 1 40); do
        if "${binary}" schedule list --json 2>/dev/null \
            | grep -q '"name":"hello.tick".*"total_run_count":[1-9]'; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
check "beat fired the static schedule hello.tick" fired
check "serve is still up" kill -0 "${serve_pid}"
kill -TERM "${serve_pid}"
status=0
wait "${serve_pid}" || status=$?
check "serve exits 0 on SIGTERM" test "${status}" -eq 0
if [[ "${failed}" -gt 0 ]]; then
    echo "--- serve.log (last 40 lines) ---" >&2
    tail -n 40 "${work}/serve.log" >&2
fi
echo "outside-crate: ${passed} passed, ${failed} failed"
[[ "${failed}" -eq 0 ]]
