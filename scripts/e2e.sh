#!/usr/bin/env bash
# Browser tests for the dashboard: builds the site and the server, starts the server on a free
# port under the URL prefix /tasks behind a real nginx running deploy/nginx.conf (its listen and
# upstream lines pointed at free ports), runs end2end/ with Playwright in Debian's Chromium
# through nginx, stops both.
# Usage: scripts/e2e.sh [--release]   (--release is passed to build-site.sh for the WASM only)
# Exits non-zero when a build or a test fails. The server's log is end2end/test-results/server.log.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

chromium_path="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$chromium_path" ]]; then
  echo "==> installing Debian's chromium (no browser downloads on this machine)"
  sudo_command=()
  if [[ "$(id -u)" -ne 0 ]]; then sudo_command=(sudo); fi
  "${sudo_command[@]}" apt-get update
  "${sudo_command[@]}" apt-get install -y chromium
fi
nginx_binary="$(command -v nginx || echo /usr/sbin/nginx)"
if [[ ! -x "$nginx_binary" ]]; then
  echo "==> installing Debian's nginx"
  sudo_command=()
  if [[ "$(id -u)" -ne 0 ]]; then sudo_command=(sudo); fi
  "${sudo_command[@]}" apt-get install -y nginx
  nginx_binary=/usr/sbin/nginx
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ ! -d end2end/node_modules ]]; then
  echo "==> npm ci (end2end)"
  (cd end2end && npm ci --no-audit --no-fund)
fi

scripts/build-site.sh "$@"

# The demo shop: the dashboard over real tasks, its two worker pools and beat.
echo "==> cargo build -p shop --bin shop"
cargo build -p shop --bin shop
server_binary="${CARGO_TARGET_DIR:-target}/debug/shop"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
addr="127.0.0.1:$port"
url_prefix="/tasks"
mkdir -p end2end/test-results
server_log="end2end/test-results/server.log"

# A fresh database per run (users, sessions, history, schedules) and one admin account whose
# random password only this run knows; the tests log in with it.
database_file="end2end/test-results/e2e.db"
rm -f "$database_file" "$database_file-wal" "$database_file-shm"
export CELERIAC_DATABASE_URL="sqlite://$repo_root/$database_file"
# The embedded worker uses the local Redis under its own key prefix, so the test leaves the
# user's queues alone.
export CELERIAC_BROKER_TRANSPORT_OPTIONS='{"global_keyprefix": "celeriac-e2e:"}'
export E2E_USER="admin"
E2E_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export E2E_PASSWORD
printf '%s\n' "$E2E_PASSWORD" | "$server_binary" user add "$E2E_USER" --role admin --password-stdin
# A viewer too, whose pages must not offer the actions it may not take.
E2E_VIEWER_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export E2E_VIEWER_PASSWORD
printf '%s\n' "$E2E_VIEWER_PASSWORD" | "$server_binary" user add viewer --role viewer --password-stdin

# The tests run `celeriac call` with the same settings.
export CELERIAC_BIN="$repo_root/$server_binary"
# Retrying a task from the dashboard needs its exact arguments, which only extended results
# keep; they go to a Redis database of their own (result keys take no broker prefix).
export CELERIAC_RESULT_BACKEND="${E2E_RESULT_BACKEND:-redis://127.0.0.1:6379/14}"
export CELERIAC_RESULT_EXTENDED=true

echo "==> $server_binary serve --addr $addr --url-prefix $url_prefix (log: $server_log)"
# Absolute, since the browser tests start a second server of their own (live.spec.ts).
export LEPTOS_SITE_ROOT="$repo_root/target/site"
RUST_LOG="${RUST_LOG:-info}" \
  "$server_binary" serve --addr "$addr" --url-prefix "$url_prefix" --trusted-proxy 127.0.0.1 \
  >"$server_log" 2>&1 &
server_pid=$!

# nginx runs the shipped deploy/nginx.conf; only its two `celeriac-e2e:` lines change.
nginx_port="$(free_port)"
nginx_dir="$repo_root/end2end/test-results/nginx"
rm -rf "$nginx_dir"
mkdir -p "$nginx_dir"
sed -e "s|^\( *server \)127.0.0.1:8000;\( *# celeriac-e2e: upstream\)|\1$addr;\2|" \
    -e "s|^\( *listen \)127.0.0.1:8080;\( *# celeriac-e2e: listen\)|\1127.0.0.1:$nginx_port;\2|" \
    deploy/nginx.conf >"$nginx_dir/nginx.conf"
if ! grep -q "server $addr;" "$nginx_dir/nginx.conf" \
  || ! grep -q "listen 127.0.0.1:$nginx_port;" "$nginx_dir/nginx.conf"; then
  echo "e2e.sh: deploy/nginx.conf lost its celeriac-e2e: lines; cannot point it at the test ports" >&2
  exit 1
fi
nginx_command=("$nginx_binary" -p "$nginx_dir" -c "$nginx_dir/nginx.conf"
  -g "pid $nginx_dir/nginx.pid; error_log $nginx_dir/error.log;")
"${nginx_command[@]}" -t -q
"${nginx_command[@]}"
base_url="http://127.0.0.1:$nginx_port"

stop_server() {
  "${nginx_command[@]}" -s stop 2>/dev/null || true
  if kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT

for _attempt in $(seq 1 120); do
  if curl -fsS "$base_url$url_prefix/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "e2e.sh: the server exited before answering /healthz; its log:" >&2
    cat "$server_log" >&2
    exit 1
  fi
  sleep 0.5
done
if ! curl -fsS "$base_url$url_prefix/healthz" >/dev/null 2>&1; then
  echo "e2e.sh: no answer from $base_url$url_prefix/healthz (nginx) after 60 s; nginx log:" >&2
  cat "$nginx_dir/error.log" >&2 || true
  echo "server log:" >&2
  cat "$server_log" >&2
  exit 1
fi

# The same dashboard behind deploy/nginx-proxy-auth.conf: nginx authenticates (auth_basic with
# a password file made here) and names the user in X-Remote-User; a second server (no worker,
# no beat, same database) believes it from 127.0.0.1 (proxy-auth.spec.ts).
proxy_port="$(free_port)"
proxy_addr="127.0.0.1:$proxy_port"
proxy_server_log="end2end/test-results/proxy-server.log"
RUST_LOG="${RUST_LOG:-info}" \
  "$server_binary" serve --no-worker --no-beat --addr "$proxy_addr" --url-prefix "$url_prefix" \
  --trusted-proxy 127.0.0.1 --proxy-auth-header X-Remote-User --proxy-auth-role operator \
  >"$proxy_server_log" 2>&1 &
proxy_server_pid=$!
export E2E_PROXY_USER="oper"
E2E_PROXY_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
export E2E_PROXY_PASSWORD
proxy_nginx_port="$(free_port)"
proxy_nginx_dir="$repo_root/end2end/test-results/nginx-proxy-auth"
rm -rf "$proxy_nginx_dir"
mkdir -p "$proxy_nginx_dir"
printf '%s:{PLAIN}%s\n' "$E2E_PROXY_USER" "$E2E_PROXY_PASSWORD" >"$proxy_nginx_dir/htpasswd"
sed -e "s|^\( *server \)127.0.0.1:8000;\( *# celeriac-e2e: upstream\)|\1$proxy_addr;\2|" \
    -e "s|^\( *listen \)127.0.0.1:8080;\( *# celeriac-e2e: listen\)|\1127.0.0.1:$proxy_nginx_port;\2|" \
    -e "s|^\( *auth_basic_user_file \)[^;]*;\( *# celeriac-e2e: htpasswd\)|\1$proxy_nginx_dir/htpasswd;\2|" \
    deploy/nginx-proxy-auth.conf >"$proxy_nginx_dir/nginx.conf"
if ! grep -q "server $proxy_addr;" "$proxy_nginx_dir/nginx.conf" \
  || ! grep -q "listen 127.0.0.1:$proxy_nginx_port;" "$proxy_nginx_dir/nginx.conf" \
  || ! grep -q "auth_basic_user_file $proxy_nginx_dir/htpasswd;" "$proxy_nginx_dir/nginx.conf"; then
  echo "e2e.sh: deploy/nginx-proxy-auth.conf lost its celeriac-e2e: lines" >&2
  exit 1
fi
proxy_nginx_command=("$nginx_binary" -p "$proxy_nginx_dir" -c "$proxy_nginx_dir/nginx.conf"
  -g "pid $proxy_nginx_dir/nginx.pid; error_log $proxy_nginx_dir/error.log;")
"${proxy_nginx_command[@]}" -t -q
"${proxy_nginx_command[@]}"
export E2E_PROXY_URL="http://127.0.0.1:$proxy_nginx_port"
stop_proxy() {
  "${proxy_nginx_command[@]}" -s stop 2>/dev/null || true
  if kill -0 "$proxy_server_pid" 2>/dev/null; then
    kill "$proxy_server_pid" 2>/dev/null || true
    wait "$proxy_server_pid" 2>/dev/null || true
  fi
}
trap 'stop_proxy; stop_server' EXIT
for _attempt in $(seq 1 120); do
  if curl -fsS -u "$E2E_PROXY_USER:$E2E_PROXY_PASSWORD" "$E2E_PROXY_URL$url_prefix/healthz" \
    >/dev/null 2>&1; then break; fi
  if ! kill -0 "$proxy_server_pid" 2>/dev/null; then
    echo "e2e.sh: the proxy-auth server exited; its log:" >&2
    cat "$proxy_server_log" >&2
    exit 1
  fi
  sleep 0.5
done

echo "==> playwright test against $base_url$url_prefix (nginx → $addr)"
test_status=0
(cd end2end && CELERIAC_BASE_URL="$base_url" CELERIAC_URL_PREFIX="$url_prefix" \
  CHROMIUM_PATH="$chromium_path" npx playwright test) \
  || test_status=$?

if [[ "$test_status" -ne 0 ]]; then
  echo "e2e.sh: browser tests FAILED (exit $test_status); server log: $server_log" >&2
else
  echo "e2e.sh: browser tests passed; screenshots: end2end/test-results/*.png"
fi
exit "$test_status"
