#!/usr/bin/env bash
# The main job: the demo shop (examples/shop) served as a team would run its own Celeriac
# binary: the dashboard with the shop's two embedded worker pools (email@<host>, render@<host>)
# and beat, on Redis at 127.0.0.1:6379, at http://127.0.0.1:8000 (override with CELERIAC_ADDR).
# Installs and starts what is missing.
# Uses ./celeriac.toml when present, else the shipped celeriac.example.toml.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
scripts/setup.sh
scripts/build-site.sh --release
echo "==> cargo build --release -p shop"
cargo build --release -p shop --bin shop
if [[ -z "${CELERIAC_CONFIG:-}" && ! -f celeriac.toml ]]; then
    export CELERIAC_CONFIG="$repo_root/celeriac.example.toml"
fi
export LEPTOS_SITE_ROOT="$repo_root/target/site"
addr="${CELERIAC_ADDR:-127.0.0.1:8000}"
shop="${CARGO_TARGET_DIR:-target}/release/shop"
echo "==> shop serve --addr $addr (config: ${CELERIAC_CONFIG:-celeriac.toml})"
echo "    try: $shop call orders.render_pdf --args '[42]' --wait"
echo "    log in: there is no default account; create one with"
echo "         $shop user add admin --role admin"
exec "$shop" serve --addr "$addr"
