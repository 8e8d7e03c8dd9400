#!/usr/bin/env bash
# Builds the dashboard's browser side into target/site (the layout `cargo leptos` produces):
#   target/site/pkg/celeriac.js, celeriac_bg.wasm, celeriac.css, plus everything in public/,
# and copies it to server/site/, which celeriac-server's build.rs embeds in the library (so a
# binary built from it, or from the published crate, needs no WASM toolchain).
# Usage: scripts/build-site.sh [--release]
# Idempotent; installs the wasm32 target and wasm-bindgen-cli when they are missing.
# wasm-opt is skipped on purpose: Debian's binaryen produces a WASM that never hydrates.
set -euo pipefail

readonly WASM_BINDGEN_VERSION="0.2.130" # Must equal the `wasm-bindgen` pin in Cargo.toml.
readonly OUTPUT_NAME="celeriac"         # Must equal OUTPUT_NAME in server/src/dashboard/mod.rs.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

profile="dev"
profile_dir="debug"
bindgen_size_flags=()
for argument in "$@"; do
  case "$argument" in
    --release)
      profile="wasm-release"
      profile_dir="wasm-release"
      # Symbol names are about half of a release WASM. Dropping them here rather than with the
      # profile's `strip = true` keeps the `target_features` section wasm-bindgen reads.
      bindgen_size_flags=(--remove-name-section)
      ;;
    *) echo "build-site.sh: unknown argument: $argument (usage: build-site.sh [--release])" >&2; exit 2 ;;
  esac
done

site_root="target/site"
package_dir="$site_root/pkg"
# A separate target dir, so the wasm32 build never invalidates the server's native build cache.
wasm_target_dir="target/wasm"

if ! rustup target list --installed | grep -qx "wasm32-unknown-unknown"; then
  echo "==> rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

installed_bindgen_version="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [[ "$installed_bindgen_version" != "$WASM_BINDGEN_VERSION" ]]; then
  echo "==> installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (found: ${installed_bindgen_version:-none})"
  # No --locked: the registry here lacks one of its locked dependencies.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

echo "==> cargo build -p frontend (wasm32, profile $profile)"
cargo build -p frontend --lib --target wasm32-unknown-unknown \
  --target-dir "$wasm_target_dir" --profile "$profile"

wasm_file="$wasm_target_dir/wasm32-unknown-unknown/$profile_dir/frontend.wasm"
if [[ ! -f "$wasm_file" ]]; then
  echo "build-site.sh: cargo did not produce $wasm_file" >&2
  exit 1
fi

echo "==> wasm-bindgen --target web -> $package_dir"
mkdir -p "$package_dir"
rm -f "$package_dir/$OUTPUT_NAME.js" "$package_dir/${OUTPUT_NAME}_bg.wasm"
wasm-bindgen --target web --no-typescript "${bindgen_size_flags[@]}" \
  --out-dir "$package_dir" --out-name "$OUTPUT_NAME" "$wasm_file"

cp style/main.css "$package_dir/$OUTPUT_NAME.css"
if [[ -d public ]] && compgen -G "public/*" >/dev/null; then
  cp -R public/. "$site_root/"
fi

for built_file in "$package_dir/$OUTPUT_NAME.js" "$package_dir/${OUTPUT_NAME}_bg.wasm" \
  "$package_dir/$OUTPUT_NAME.css"; do
  if [[ ! -s "$built_file" ]]; then
    echo "build-site.sh: missing or empty after build: $built_file" >&2
    exit 1
  fi
done

# What celeriac-server embeds: a mirror of the site. Only changed files are copied, so an
# unchanged bundle keeps its timestamps and does not make cargo rebuild the server.
embedded_site="server/site"
mkdir -p "$embedded_site"
(cd "$site_root" && find . -type f) | while IFS= read -r file; do
  if ! cmp -s "$site_root/$file" "$embedded_site/$file"; then
    mkdir -p "$(dirname "$embedded_site/$file")"
    cp "$site_root/$file" "$embedded_site/$file"
  fi
done
(cd "$embedded_site" && find . -type f) | while IFS= read -r file; do
  [[ -e "$site_root/$file" ]] || rm -f "$embedded_site/$file"
done

wasm_bytes="$(wc -c <"$package_dir/${OUTPUT_NAME}_bg.wasm")"
wasm_gzip_bytes="$(gzip -9 -c "$package_dir/${OUTPUT_NAME}_bg.wasm" | wc -c)"
echo "==> site ready in $site_root (wasm: $wasm_bytes bytes, $wasm_gzip_bytes gzipped)"
