//! Tidy checks over the workspace's own Rust files: every file says why it exists (`//!`),
//! none grows past 700 lines, no `todo!`, and Redis key names are spelled only in
//! `broker/keys.rs`.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("celeriac sits in the workspace")
        .to_path_buf()
}

fn rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = [
        "celeriac/src",
        "celeriac/tests",
        "celeriac/benches",
        "celeriac/examples",
        "celeriac/fuzz/fuzz_targets",
        "server/src",
        "server/tests",
        "server/benches",
        "app/src",
        "frontend/src",
    ]
    .iter()
    .map(|directory| root.join(directory))
    .filter(|directory| directory.exists())
    .collect();
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 20, "found the workspace's files");
    files
}

#[test]
fn every_file_starts_with_a_module_doc() {
    let missing: Vec<_> = rust_files()
        .into_iter()
        .filter(|path| {
            !std::fs::read_to_string(path)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without a //! doc: {missing:?}");
}

#[test]
fn no_file_passes_700_lines() {
    let long: Vec<_> = rust_files()
        .into_iter()
        .filter(|path| std::fs::read_to_string(path).unwrap().lines().count() > 700)
        .collect();
    assert!(long.is_empty(), "split these by noun: {long:?}");
}

#[test]
fn no_todo_or_unimplemented() {
    let needle_todo = concat!("todo", "!(");
    let needle_unimplemented = concat!("unimplemented", "!(");
    let found: Vec<_> = rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            text.contains(needle_todo) || text.contains(needle_unimplemented)
        })
        .collect();
    assert!(found.is_empty(), "unfinished code: {found:?}");
}

#[test]
fn redis_key_names_live_in_keys_rs() {
    let keys = [
        concat!("\"unacked", "\""),
        concat!("\"unacked_", "index\""),
        concat!("\"celery-task", "-meta-"),
        concat!("\"_kombu", ".binding"),
    ];
    let offenders: Vec<_> = rust_files()
        .into_iter()
        .filter(|path| {
            !path.ends_with("broker/keys.rs")
                && path.starts_with(workspace_root().join("celeriac/src"))
        })
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            text.lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| keys.iter().any(|key| line.contains(key)))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "Redis key names spelled outside broker/keys.rs: {offenders:?}"
    );
}
