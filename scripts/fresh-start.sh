#!/usr/bin/env bash
# Fresh-start trial: does a first start on a brand-new database come up?
#
# Each trial starts, at the same moment, three processes of the stock binary on a brand-new
# database: `celeriac serve --no-worker` and two `celeriac beat`s, each with its own config file
# (CELERIAC_CONFIG) naming the same database and a private redis-server. It waits, checks that
# all three are still running and that serve's /healthz answers, then sends SIGTERM and checks
# that each exits 0. A first start used to crash here (`table task_history already exists`,
# `database is locked`, `duplicate column name`) because every process migrated at once.
#
# Usage: scripts/fresh-start.sh [--trials N] [--binary PATH] [--postgres] [--wait SECONDS]
#   --trials N       trials to run (default 10)
#   --binary PATH    the celeriac binary (default target/debug/celeriac; build it with
#                    `cargo build -p celeriac-server --bin celeriac`)
#   --postgres       a brand-new PostgreSQL database per trial (createdb on 127.0.0.1 as
#                    postgres, trust auth as scripts/setup.sh --test configures it; dropped
#                    afterwards) instead of a brand-new SQLite file
#   --wait SECONDS   how long the processes must stay up (default 8)
# Prints `fresh start: N passed, M failed` and exits non-zero when any trial failed, with the
# tail of each failing process's log.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

trials=10
binary="target/debug/celeriac"
backend="sqlite"
wait_seconds=8
while [[ $# -gt 0 ]]; do
    case "$1" in
        --trials) trials="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        --postgres) backend="postgres"; shift ;;
        --wait) wait_seconds="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "fresh-start: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ ! -x "$binary" ]]; then
    echo "fresh-start: no executable at $binary; build it with" >&2
    echo "    cargo build -p celeriac-server --bin celeriac" >&2
    exit 2
fi
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
for tool in redis-server redis-cli curl python3; do
    command -v "$tool" >/dev/null || { echo "fresh-start: $tool is missing (scripts/setup.sh --test installs it)" >&2; exit 2; }
done
if [[ "$backend" == "postgres" ]]; then
    for tool in createdb dropdb; do
        command -v "$tool" >/dev/null || { echo "fresh-start: $tool is missing (apt-get install postgresql-client)" >&2; exit 2; }
    done
fi

pg_host=127.0.0.1
pg_user=postgres
work="$(mktemp -d /tmp/celeriac-fresh-start.XXXXXX)"
redis_pid=""
process_pids=()
database_name=""

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

drop_database() {
    if [[ -n "$database_name" ]]; then
        dropdb -h "$pg_host" -U "$pg_user" --if-exists --force "$database_name" >/dev/null 2>&1 || true
        database_name=""
    fi
}

cleanup() {
    for pid in "${process_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -n "$redis_pid" ]]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    drop_database
    if [[ "${keep_work:-0}" == "1" ]]; then
        echo "fresh-start: logs of the failed trials kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# One private Redis for the whole run, flushed before each trial: a trial never sees another
# run's leases, and the shared Redis on 6379 (other people's tests) is left alone.
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis-cli -p "$redis_port" ping >/dev/null || { echo "fresh-start: redis-server did not start:"; tail -n 20 "$work/redis.log"; exit 1; }

passed=0
failed=0
processes_up=0

# Prints the last lines of a process's log, indented.
log_tail() {
    echo "    --- $1 (last 20 lines of $2) ---"
    tail -n 20 "$2" | sed 's/^/    | /'
}

run_trial() {
    local trial="$1"
    local directory="$work/trial-$trial"
    mkdir -p "$directory"
    redis-cli -p "$redis_port" flushall >/dev/null
    local database_url
    if [[ "$backend" == "postgres" ]]; then
        database_name="celeriac_fresh_$$_$trial"
        dropdb -h "$pg_host" -U "$pg_user" --if-exists --force "$database_name" >/dev/null 2>&1 || true
        if ! createdb -h "$pg_host" -U "$pg_user" "$database_name" 2>"$directory/createdb.log"; then
            echo "trial $trial: createdb failed (is PostgreSQL up? scripts/setup.sh --test):"
            cat "$directory/createdb.log"
            return 1
        fi
        database_url="postgres://$pg_user@$pg_host:5432/$database_name"
    else
        database_url="sqlite://$directory/celeriac.db"
    fi
    local serve_port
    serve_port="$(free_port)"
    local names=(serve beat1 beat2)
    local -A commands=(
        [serve]="serve --no-worker --addr 127.0.0.1:$serve_port"
        [beat1]="beat -n beat1@fresh-start"
        [beat2]="beat -n beat2@fresh-start"
    )
    # Each process waits for the same go file, so all three open the database together.
    local go="$directory/go"
    process_pids=()
    local name
    for name in "${names[@]}"; do
        cat >"$directory/$name.toml" <<EOF
broker_url = "redis://127.0.0.1:$redis_port/0"
result_backend = "redis://127.0.0.1:$redis_port/1"
database_url = "$database_url"
EOF
        # shellcheck disable=SC2086 # the command is words on purpose
        CELERIAC_CONFIG="$directory/$name.toml" bash -c \
            'while [[ ! -e "$0" ]]; do sleep 0.005; done; exec "$1" "${@:2}"' \
            "$go" "$binary" ${commands[$name]} >"$directory/$name.log" 2>&1 &
        process_pids+=($!)
    done
    sleep 0.3
    touch "$go"

    # Up: /healthz answers within the wait, and every process is still running at its end.
    local healthy=0
    local deadline=$((SECONDS + wait_seconds))
    while ((SECONDS < deadline)); do
        if ((healthy == 0)) && curl -fsS --max-time 1 "http://127.0.0.1:$serve_port/healthz" >/dev/null 2>&1; then
            healthy=1
        fi
        sleep 0.2
    done
    local problems=()
    local index
    for index in "${!names[@]}"; do
        name="${names[$index]}"
        if kill -0 "${process_pids[$index]}" 2>/dev/null; then
            processes_up=$((processes_up + 1))
        else
            problems+=("$name exited during the first ${wait_seconds} s")
        fi
    done
    if ((healthy == 0)); then
        problems+=("serve's /healthz on 127.0.0.1:$serve_port never answered")
    fi

    # Down: SIGTERM, and each exits 0 within 30 s.
    for index in "${!names[@]}"; do
        kill -TERM "${process_pids[$index]}" 2>/dev/null || true
    done
    for index in "${!names[@]}"; do
        name="${names[$index]}"
        local pid="${process_pids[$index]}"
        local waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 300)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            problems+=("$name did not exit within 30 s of SIGTERM")
        fi
        local status=0
        wait "$pid" || status=$?
        if ((status != 0)); then
            problems+=("$name exited with status $status")
        fi
    done
    process_pids=()
    drop_database

    if ((${#problems[@]} == 0)); then
        echo "trial $trial: ok (3 up, /healthz answered, 3 exited 0)"
        rm -rf "$directory"
        return 0
    fi
    echo "trial $trial: FAILED"
    local problem
    for problem in "${problems[@]}"; do
        echo "  - $problem"
    done
    for name in "${names[@]}"; do
        if printf '%s\n' "${problems[@]}" | grep -q "^$name \|^${name}'s "; then
            log_tail "$name" "$directory/$name.log"
        fi
    done
    keep_work=1
    return 1
}

echo "fresh start: $trials trials of serve + beat + beat on a brand-new $backend database ($binary)"
for trial in $(seq 1 "$trials"); do
    if run_trial "$trial"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "fresh-start: $passed passed, $failed failed ($processes_up of $((3 * trials)) processes stayed up)"
((failed == 0))
