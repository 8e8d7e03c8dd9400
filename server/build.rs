//! Embeds the dashboard's browser bundle (`site/`: `pkg/celeriac.js`, `pkg/celeriac_bg.wasm`,
//! `pkg/celeriac.css`, the files of `public/`) in the library, so a team's binary serves its
//! dashboard with nothing but stable Rust and cargo: the WASM toolchain is needed only by
//! whoever builds the bundle (`scripts/build-site.sh`, which copies it here; a published crate
//! carries it).
//!
//! `CELERIAC_SITE_DIR` names another directory. With no bundle the library still builds and
//! serves the site root from disk (`LEPTOS_SITE_ROOT`), warning at start-up.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=CELERIAC_SITE_DIR");
    let site = match std::env::var_os("CELERIAC_SITE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("site"),
    };
    // A directory here makes cargo rescan everything under it, so a rebuilt bundle is re-embedded.
    println!("cargo:rerun-if-changed={}", site.display());

    let mut files = Vec::new();
    if site.join("pkg").is_dir() {
        collect(&site, &site, &mut files);
    } else {
        println!(
            "cargo:warning=celeriac-server: no browser bundle at {} (run scripts/build-site.sh); \
             the dashboard will serve LEPTOS_SITE_ROOT from disk instead",
            site.display()
        );
    }
    files.sort();

    let mut source = String::from(
        "/// The embedded site: path under the site root, bytes, entity tag.\n\
         pub(crate) static FILES: &[(&str, &[u8], &str)] = &[\n",
    );
    for (relative, path) in &files {
        let bytes = std::fs::read(path).unwrap_or_default();
        let _ = writeln!(
            source,
            "    ({relative:?}, include_bytes!({path:?}), \"\\\"{:016x}\\\"\"),",
            fnv1a(&bytes)
        );
    }
    source.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(error) = std::fs::write(out_dir.join("site.rs"), source) {
        panic!("cannot write the embedded site's index: {error}");
    }
}

/// Every file under `dir` as (`/path/from/root`, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
            let absolute = std::fs::canonicalize(&path).unwrap_or(path);
            files.push((relative, absolute.to_string_lossy().into_owned()));
        }
    }
}

/// A content hash for `ETag`s, so browsers revalidate a rebuilt bundle and keep an unchanged one.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
