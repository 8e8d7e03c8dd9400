//! Unit tests for node name expansion, checked against Celery's `host_format(default_nodename(..))`.

use super::*;

const HOST: &str = "box.example.com";

fn expand(template: &str) -> String {
    expand_node_name(Some(template), HOST)
}

#[test]
fn default_template_is_celery_at_hostname() {
    assert_eq!(expand_node_name(None, HOST), "celery@box.example.com");
    assert_eq!(expand(""), "celery@box.example.com");
    assert_eq!(expand("celery@%h"), "celery@box.example.com");
}

#[test]
fn name_part_with_hostname() {
    assert_eq!(expand("w1@%h"), "w1@box.example.com");
    assert_eq!(expand("w1@%n"), "w1@box");
}

#[test]
fn name_and_domain_abbreviations() {
    assert_eq!(expand("%n@%d"), "box@example.com");
    assert_eq!(expand_node_name(Some("%n@%d"), "box"), "box@");
    assert_eq!(expand_node_name(Some("w@%n.%d"), "a.b.c"), "w@a.b.c");
}

#[test]
fn template_without_at_is_the_host_part() {
    assert_eq!(expand("worker1.%h"), "celery@worker1.box.example.com");
    assert_eq!(expand("foo"), "celery@foo");
    assert_eq!(expand("%h"), "celery@box.example.com");
}

#[test]
fn empty_parts_fall_back_to_defaults() {
    assert_eq!(expand("@foo"), "celery@foo");
    assert_eq!(expand("w1@"), "w1@box.example.com");
    assert_eq!(expand("@"), "celery@box.example.com");
}

#[test]
fn only_the_first_at_splits() {
    assert_eq!(expand("a@b@%n"), "a@b@box");
}

#[test]
fn double_percent_is_not_an_escape_in_celery() {
    // Celery's pattern is `%(\w)`: the first `%` is left alone and `%h` still expands.
    assert_eq!(expand("w%%h@x"), "w%box.example.com@x");
    assert_eq!(expand("w%%@x"), "w%%@x");
    assert_eq!(expand("w%@x"), "w%@x");
    assert_eq!(expand("w1@x%"), "w1@x%");
}

#[test]
fn pool_index_abbreviations_in_the_main_process() {
    assert_eq!(expand("w%i@%h"), "w0@box.example.com");
    assert_eq!(expand("w%I@%h"), "w@box.example.com");
}

#[test]
fn unknown_abbreviations_are_kept_and_reported() {
    assert_eq!(expand("w%x@%h"), "w%x@box.example.com");
    assert_eq!(
        check_node_name_template("w%x@%h"),
        Err(NodeNameError::UnknownAbbreviation {
            abbreviation: 'x',
            template: "w%x@%h".into()
        })
    );
    assert_eq!(check_node_name_template("w%i@%h%%.%n%d%I"), Ok(()));
    assert_eq!(
        check_node_name_template("w%%H").unwrap_err().to_string(),
        "unknown abbreviation %H in node name \"w%%H\""
    );
}

#[test]
fn substituted_values_are_not_expanded_again() {
    assert_eq!(expand_node_name(Some("w@%n"), "a%h.b"), "w@a%h");
}

#[test]
fn hostname_is_never_empty() {
    let name = hostname();
    assert!(!name.is_empty());
    assert_eq!(name, name.trim());
}
