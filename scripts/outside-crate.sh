# Acceptance check for adopters: a team's crates, copied out of the repository so none of the
# workspace's settings apply, built with plain `cargo build` against Celeriac's crates by path
# (stable Rust, no WASM target, no wasm-bindgen, no RUSTFLAGS), then run as a user would:
#   examples/hello            `hello serve` answers pages, runs `hello.add` sent by Python Celery
#                             5.4 (whose result Python reads back), its beat fires `hello.tick`;
#                             `hello worker -B` runs the same with beat embedded in the worker
#   examples/producer-only    a web service that only sends: `hello.add` through its HTTP API,
#                             run by that worker, the typed result read back
#   examples/mount-dashboard  the dashboard nested at /tasks in an axum app behind the app's own
#                             login, hydrating in Chromium from the bundle embedded in
#                             celeriac-server (end2end/adopter, Playwright)
#
#   scripts/outside-crate.sh     prints "outside-crate: N passed, M failed"; exits non-zero on failure
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/celeriac-outside.XXXXXX)"
# The workspace's target dir: no flags differ (the workspace sets none), so the dependencies
# built for the workspace are reused.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${repo_root}/target}"
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

if [[ ! -f "${repo_root}/server/site/pkg/celeriac_bg.wasm" ]]; then
    echo "==> no browser bundle to embed yet: scripts/build-site.sh"
    "${repo_root}/scripts/build-site.sh"
fi

for example in hello producer-only mount-dashboard; do
    cp -r "${repo_root}/examples/${example}" "${work}/${example}"
    sed -i "s|path = \"../../|path = \"${repo_root}/|" "${work}/${example}/Cargo.toml"
    # The workspace's lock pins the same versions the workspace is tested with.
    cp "${repo_root}/Cargo.lock" "${work}/${example}/Cargo.lock"
    echo "==> cargo build examples/${example} in ${work}/${example}"
    (cd "${work}/${example}" && cargo build --quiet)
done
lines=$(wc -l < "${work}/hello/src/main.rs")
echo "==> examples/hello: ${lines} lines of Rust"
check "the hello crate is at most 40 lines of Rust" test "${lines}" -le 40
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
extra_pids=()
cleanup() {
    kill "${serve_pid}" 2>/dev/null || true
    wait "${serve_pid}" 2>/dev/null || true
    for pid in "${extra_pids[@]}"; do
        kill -INT "${pid}" 2>/dev/null || true
        wait "${pid}" 2>/dev/null || true
    done
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
check "serve answers the browser bundle embedded in celeriac-server" bash -c \
    "curl -fs -o /dev/null -w '%{content_type}' 'http://127.0.0.1:${web_port}/pkg/celeriac_bg.wasm' \
        | grep -qx 'application/wasm'"
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

# A worker with beat embedded (`-B`) and the static schedule, on a database of its own.
export CELERIAC_DATABASE_URL="sqlite://${work}/worker.db"
"${binary}" worker -B -Q hello -c 4 -n "hello@%h" >"${work}/worker.log" 2>&1 &
worker_pid=$!
extra_pids+=("${worker_pid}")
check "worker -B fired the static schedule hello.tick" fired

# The producer-only service sends to that worker and reads the typed result.
producer_port="$(port_of)"
PRODUCER_ADDR="127.0.0.1:${producer_port}" "${CARGO_TARGET_DIR}/debug/producer-only" \
    >"${work}/producer.log" 2>&1 &
extra_pids+=("$!")
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${producer_port}") 2>/dev/null && break
    sleep 0.2
done
task_id="$(curl -fs -X POST "http://127.0.0.1:${producer_port}/add/20/22" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["task_id"])')" || task_id=""
answer="$(curl -fs "http://127.0.0.1:${producer_port}/results/${task_id}")" || answer="(no answer)"
check "producer-only sent hello.add(20, 22) and read back 42 (got ${answer})" \
    test "${answer}" = '{"result":42}'

# The dashboard mounted in an axum app behind its own login, in Chromium.
app_port="$(port_of)"
STAFF_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
export STAFF_PASSWORD
APP_ADDR="127.0.0.1:${app_port}" "${CARGO_TARGET_DIR}/debug/mount-dashboard" \
    >"${work}/mount.log" 2>&1 &
extra_pids+=("$!")
for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:${app_port}/" && break
    sleep 0.2
done
check "mount-dashboard sends an anonymous /tasks to its own login" bash -c \
    "curl -s -o /dev/null -w '%{redirect_url}' 'http://127.0.0.1:${app_port}/tasks' -H 'accept: text/html' \
        | grep -q '/login?next=/tasks'"
browser_check() {
    (cd "${repo_root}/end2end" && ADOPTER_BASE_URL="http://127.0.0.1:${app_port}" \
        ADOPTER_WORKER="hello@$(hostname)" npx playwright test --config adopter.config.ts)
}
check "the mounted dashboard hydrates behind the app's login (Chromium)" browser_check
if [[ "${failed}" -gt 0 ]]; then
    for log in serve worker producer mount; do
        echo "--- ${log}.log (last 40 lines) ---" >&2
        tail -n 40 "${work}/${log}.log" >&2 || true
    done
fi
echo "outside-crate: ${passed} passed, ${failed} failed"
[[ "${failed}" -eq 0 ]]
