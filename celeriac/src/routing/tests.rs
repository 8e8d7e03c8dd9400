//! Unit tests for `task_routes`: exact names, fnmatch globs, map order and the accepted forms.

use super::*;

fn routes_from_toml(text: &str) -> TaskRoutes {
    #[derive(Deserialize)]
    struct Wrapper {
        task_routes: TaskRoutes,
    }
    let wrapper: Wrapper = toml::from_str(text).unwrap();
    wrapper.task_routes
}

fn glob(pattern: &str, text: &str) -> bool {
    Glob::compile(pattern).matches(text)
}

#[test]
fn exact_name_wins_over_an_earlier_glob() {
    let task_routes = TaskRoutes::new(vec![
        ("orders.*".into(), Route::queue("orders")),
        ("orders.send_invoice_email".into(), Route::queue("email")),
    ])
    .unwrap();
    assert_eq!(
        task_routes
            .route("orders.send_invoice_email")
            .unwrap()
            .queue,
        "email"
    );
    assert_eq!(
        task_routes.route("orders.render_pdf").unwrap().queue,
        "orders"
    );
    assert_eq!(task_routes.route("billing.charge"), None);
}

#[test]
fn first_glob_in_map_order_wins() {
    let task_routes = TaskRoutes::new(vec![
        ("orders.render_*".into(), Route::queue("render")),
        ("orders.*".into(), Route::queue("orders")),
    ])
    .unwrap();
    assert_eq!(
        task_routes.route("orders.render_pdf").unwrap().queue,
        "render"
    );

    let reversed = TaskRoutes::new(vec![
        ("orders.*".into(), Route::queue("orders")),
        ("orders.render_*".into(), Route::queue("render")),
    ])
    .unwrap();
    assert_eq!(reversed.route("orders.render_pdf").unwrap().queue, "orders");
}

#[test]
fn toml_table_order_is_preserved() {
    let task_routes = routes_from_toml(
        r#"
        [task_routes]
        "z.*" = "first"
        "*" = "second"
        "a.*" = "third"
        "#,
    );
    assert_eq!(task_routes.route("a.task").unwrap().queue, "second");
    assert_eq!(task_routes.route("z.task").unwrap().queue, "first");
    let keys: Vec<&str> = task_routes
        .entries()
        .iter()
        .map(|(key, _)| key.as_str())
        .collect();
    assert_eq!(keys, ["z.*", "*", "a.*"]);
}

#[test]
fn json_object_order_is_preserved() {
    let task_routes: TaskRoutes =
        serde_json::from_str(r#"{"z.*": "first", "*": "second", "a.*": "third"}"#).unwrap();
    assert_eq!(task_routes.route("a.task").unwrap().queue, "second");
}

#[test]
fn bare_string_and_table_forms() {
    let task_routes = routes_from_toml(
        r#"
        [task_routes]
        "orders.*" = "orders"
        "email.send" = { queue = "email", routing_key = "email.high", exchange = "mail", priority = 7 }
        "#,
    );
    assert_eq!(
        task_routes.route("orders.x").unwrap(),
        &Route::queue("orders")
    );
    assert_eq!(
        task_routes.route("email.send").unwrap(),
        &Route {
            queue: "email".into(),
            routing_key: Some("email.high".into()),
            exchange: Some("mail".into()),
            priority: Some(7),
        }
    );
}

#[test]
fn unknown_route_option_is_an_error() {
    let result: Result<TaskRoutes, _> = serde_json::from_str(r#"{"a": {"queue": "q", "qeue": 1}}"#);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("qeue"), "{message}");
}

#[test]
fn route_table_without_queue_is_an_error() {
    let result: Result<TaskRoutes, _> = serde_json::from_str(r#"{"a": {"routing_key": "k"}}"#);
    assert!(result.unwrap_err().to_string().contains("queue"));
}

#[test]
fn regex_keys_are_rejected() {
    let error = TaskRoutes::new(vec![("re:orders\\..*".into(), Route::queue("q"))]).unwrap_err();
    assert_eq!(
        error,
        RoutingError::RegexUnsupported {
            pattern: "re:orders\\..*".into()
        }
    );
    let result: Result<TaskRoutes, _> = serde_json::from_str(r#"{"re:x": "q"}"#);
    assert!(result
        .unwrap_err()
        .to_string()
        .contains("regular expression"));
}

#[test]
fn keys_without_a_star_are_exact_names_as_in_celery() {
    let task_routes = TaskRoutes::new(vec![("orders.send_?".into(), Route::queue("q"))]).unwrap();
    assert_eq!(task_routes.route("orders.send_a"), None);
    assert_eq!(task_routes.route("orders.send_?").unwrap().queue, "q");
}

#[test]
fn empty_routes() {
    let task_routes = TaskRoutes::default();
    assert!(task_routes.is_empty());
    assert_eq!(task_routes.route("anything"), None);
    assert!(!TaskRoutes::new(vec![("a".into(), Route::queue("q"))])
        .unwrap()
        .is_empty());
}

#[test]
fn repeated_key_keeps_position_and_takes_newer_route() {
    let task_routes = TaskRoutes::new(vec![
        ("a.*".into(), Route::queue("old")),
        ("*".into(), Route::queue("catch_all")),
        ("a.*".into(), Route::queue("new")),
    ])
    .unwrap();
    assert_eq!(task_routes.route("a.b").unwrap().queue, "new");
    assert_eq!(task_routes.entries().len(), 2);
}

#[test]
fn fnmatch_star_and_question_mark() {
    assert!(glob("*", ""));
    assert!(glob("*", "a.b.c"));
    assert!(glob("orders.*", "orders."));
    assert!(glob("orders.*", "orders.send.email"));
    assert!(!glob("orders.*", "orders"));
    assert!(!glob("orders.*", "xorders.a"));
    assert!(glob("*.send", "orders.send"));
    assert!(!glob("*.send", "orders.send.x"));
    assert!(glob("a*b*c", "aXXbYYc"));
    assert!(glob("a*b*c", "abbbc"));
    assert!(!glob("a*b*c", "acb"));
    assert!(glob("a**c", "ac"));
    assert!(glob("task_?*", "task_1"));
    assert!(!glob("task_?*", "task_"));
    assert!(glob("é*", "été"));
    assert!(
        !glob("Orders.*", "orders.x"),
        "fnmatch.translate is case-sensitive"
    );
}

#[test]
fn fnmatch_classes() {
    assert!(glob("[abc]*", "b1"));
    assert!(!glob("[abc]*", "d1"));
    assert!(glob("[!abc]*", "d1"));
    assert!(!glob("[!abc]*", "a1"));
    assert!(glob("[a-c]*", "c"));
    assert!(!glob("[a-c]*", "d"));
    assert!(glob("[]]*", "]x"), "a ] right after [ belongs to the set");
    assert!(glob("[!]]*", "x"));
    assert!(!glob("[!]]*", "]"));
    assert!(glob("[a-]*", "-"), "a trailing - is literal");
    assert!(glob("[-a]*", "-"), "a leading - is literal");
    assert!(!glob("[z-a]*", "m"), "reversed ranges match nothing");
    assert!(glob("[z-ab]*", "b"));
    assert!(glob("[*", "[x"), "an unclosed [ is a literal");
    assert!(!glob("[*", "x"));
    assert!(glob("a\\*", "a\\b"), "backslash is not an escape");
}
