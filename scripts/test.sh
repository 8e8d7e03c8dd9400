#!/usr/bin/env bash
# Every test: formatting, lints (native and WASM), unit, golden, property and integration
# tests against real Redis and real Python Celery 5.4, and the browser test in Chromium.
# Installs what is missing first. Exits non-zero when anything fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
started=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - started )) s)"; }

step "setup"
scripts/setup.sh --test

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (native)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy (wasm32: app and frontend build for the browser)"
cargo clippy -p celeriac-app -p frontend --target wasm32-unknown-unknown --target-dir target/wasm -- -D warnings

step "the browser bundle (scripts/build-site.sh), which celeriac-server embeds"
scripts/build-site.sh

step "cargo test --workspace"
cargo test --workspace --no-fail-fast

step "fresh start: serve + beat + beat at once on brand-new SQLite and PostgreSQL databases"
cargo build -p celeriac-server --bin celeriac
scripts/fresh-start.sh --trials 3
scripts/fresh-start.sh --trials 3 --postgres

step "browser test (Playwright in Debian's Chromium)"
scripts/e2e.sh

step "a team's crates outside the workspace (examples/hello, producer-only, mount-dashboard: plain cargo)"
scripts/outside-crate.sh

step "all tests passed in $(( $(date +%s) - started )) s"
