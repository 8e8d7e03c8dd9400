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

/// The worker's files (`celeriac/src/worker/*.rs`, one level) and the sibling files each one
/// imports through `super::…`.
fn worker_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let directory = workspace_root().join("celeriac/src/worker");
    let mut files = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&directory).expect("the worker directory") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|extension| extension == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            files.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let names: Vec<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(name, text)| {
            // Only the file's own code: its unit tests may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let imported = names
                .iter()
                .filter(|other| *other != name && *other != "mod")
                .filter(|other| {
                    [
                        format!("super::{other}::"),
                        format!("super::{other};"),
                        format!("super::{{{other}"),
                        format!(" {other}, "),
                    ]
                    .iter()
                    .any(|pattern| {
                        code.lines()
                            .filter(|line| line.contains("super::"))
                            .any(|line| line.contains(pattern.as_str()))
                    })
                })
                .cloned()
                .collect();
            (name.clone(), imported)
        })
        .collect()
}

#[test]
fn the_worker_files_import_each_other_without_a_cycle() {
    let imports = worker_imports();
    assert!(
        imports["settle"].contains("canvas"),
        "the check reads imports: {imports:?}"
    );
    // Depth-first search for a back edge.
    fn visit(
        name: &str,
        imports: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) {
        if let Some(start) = path.iter().position(|step| step == name) {
            panic!(
                "import cycle among the worker's files: {} -> {name}",
                path[start..].join(" -> ")
            );
        }
        if !done.insert(name.to_owned()) {
            return;
        }
        path.push(name.to_owned());
        for next in imports.get(name).into_iter().flatten() {
            visit(next, imports, path, done);
        }
        path.pop();
    }
    let mut done = std::collections::BTreeSet::new();
    for name in imports.keys() {
        visit(name, &imports, &mut Vec::new(), &mut done);
    }
}
