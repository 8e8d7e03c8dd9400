#!/usr/bin/env bash
# Installs what Celeriac needs on a fresh Debian machine that has only Rust, and starts the
# local Redis when it is not running. Idempotent and quick when everything is there.
#
#   scripts/setup.sh            what the dashboard needs (Redis, the WASM toolchain)
#   scripts/setup.sh --test     also what the tests need (Chromium, nginx, the Python Celery venv,
#                               the Playwright packages, PostgreSQL on 127.0.0.1:5432 with
#                               trust authentication and a database `test`)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
for_tests=false
[[ "${1:-}" == "--test" ]] && for_tests=true

sudo_command=()
if [[ "$(id -u)" -ne 0 ]]; then sudo_command=(sudo); fi

apt_updated=false
need_packages() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "==> apt-get install ${missing[*]}"
        if [[ "$apt_updated" == false ]]; then
            "${sudo_command[@]}" apt-get update -qq
            apt_updated=true
        fi
        DEBIAN_FRONTEND=noninteractive "${sudo_command[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

command -v redis-server >/dev/null 2>&1 || need_packages redis-server
command -v curl >/dev/null 2>&1 || need_packages curl
command -v python3 >/dev/null 2>&1 || need_packages python3 python3-venv
if [[ "$for_tests" == true ]]; then
    [[ -x /usr/bin/chromium ]] || need_packages chromium
    # The browser tests reach the dashboard through nginx running deploy/nginx.conf.
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_packages nginx
    # Node may come from elsewhere than Debian (its npm then conflicts with Debian's).
    command -v npm >/dev/null 2>&1 || need_packages nodejs npm
    # The TLS tests make their certificate authority with the openssl command.
    command -v openssl >/dev/null 2>&1 || need_packages openssl
fi

# The dashboard's browser code: the WASM target and a wasm-bindgen CLI equal to the crate's
# pinned version (toolchain.md: they must match exactly; no --locked, the registry lacks one
# locked dependency).
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "==> rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi
wasm_bindgen_version="0.2.130"
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen ${wasm_bindgen_version}" ]]; then
    echo "==> cargo install wasm-bindgen-cli ${wasm_bindgen_version} (about 4 minutes, once per machine)"
    cargo install wasm-bindgen-cli --version "${wasm_bindgen_version}"
fi

# The local Redis the dashboard and the CLI use by default (tests start private ones).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "==> starting redis-server on 127.0.0.1:6379"
    mkdir -p /tmp/celeriac-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp/celeriac-redis --logfile /tmp/celeriac-redis/redis.log
    for _ in $(seq 1 50); do
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi

# PostgreSQL for the history and beat tests (SQLite needs nothing): Debian's cluster, listening
# on 127.0.0.1:5432 with trust authentication from there, and a database `test` in which each
# test makes its own schema. PostgreSQL refuses to run as root; pg_ctlcluster runs it as the
# cluster's owner.
start_postgresql() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        need_packages postgresql
    fi
    local version cluster
    read -r version cluster < <(pg_lsclusters --no-header 2>/dev/null | awk 'NR == 1 {print $1, $2}') || true
    if [[ -z "${version:-}" ]]; then
        version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
        cluster=main
        echo "==> pg_createcluster ${version} ${cluster}"
        "${sudo_command[@]}" pg_createcluster "${version}" "${cluster}" >/dev/null
    fi
    local config_dir="/etc/postgresql/${version}/${cluster}"
    printf "listen_addresses = '127.0.0.1'\nport = 5432\n" \
        | "${sudo_command[@]}" tee "${config_dir}/conf.d/90-celeriac-test.conf" >/dev/null
    if ! "${sudo_command[@]}" grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' \
        "${config_dir}/pg_hba.conf"; then
        # The first matching line wins, so trust for 127.0.0.1 goes on top.
        "${sudo_command[@]}" sed -i '1i host all all 127.0.0.1/32 trust' "${config_dir}/pg_hba.conf"
    fi
    echo "==> starting PostgreSQL ${version}/${cluster} on 127.0.0.1:5432"
    if pg_lsclusters --no-header | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c' | grep -q online; then
        "${sudo_command[@]}" pg_ctlcluster "${version}" "${cluster}" restart
    else
        "${sudo_command[@]}" pg_ctlcluster "${version}" "${cluster}" start
    fi
    for _ in $(seq 1 100); do
        pg_isready -q -h 127.0.0.1 -p 5432 && return 0
        sleep 0.1
    done
    echo "setup.sh: PostgreSQL did not come up on 127.0.0.1:5432" >&2
    return 1
}

if [[ "$for_tests" == true ]]; then
    if ! { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }; then
        start_postgresql
    fi
    if [[ "$(psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]]; then
        echo "==> createdb test"
        createdb -h 127.0.0.1 -p 5432 -U postgres test
    fi
    scripts/python-venv.sh >/dev/null
    scripts/python-venv.sh 5.7 >/dev/null
    if [[ ! -d end2end/node_modules ]]; then
        echo "==> npm ci (end2end, playwright-core only; no browser download)"
        (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    fi
fi
echo "==> setup complete"
