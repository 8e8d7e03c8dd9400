//! Unit tests for configuration: Celery defaults, file loading, environment overrides and errors.

use super::source::SETTINGS;
use super::*;
use crate::routing::Route;
use serde_json::Map;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn from(file_text: Option<&str>, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(file_text, env(pairs))
}

fn invalid_value(result: Result<Config, ConfigError>) -> (String, String, String) {
    match result {
        Err(ConfigError::InvalidValue {
            name,
            value,
            reason,
        }) => (name, value, reason),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

/// A directory unique to one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test_name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "celeriac-config-{test_name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn defaults_are_celerys() {
    let config = Config::default();
    assert_eq!(config.broker_url, "redis://127.0.0.1:6379/0");
    assert_eq!(config.result_backend, None);
    assert_eq!(config.task_default_queue, "celery");
    assert!(!config.task_acks_late);
    assert!(config.task_acks_on_failure_or_timeout);
    assert!(!config.task_reject_on_worker_lost);
    assert!(!config.task_ignore_result);
    assert!(!config.task_track_started);
    assert_eq!(config.task_default_priority, None);
    assert_eq!(config.task_time_limit(), None);
    assert_eq!(config.task_soft_time_limit(), None);
    assert_eq!(config.task_default_rate_limit, None);
    assert!(config.task_routes.is_empty());
    assert_eq!(config.result_expires(), Some(Duration::from_secs(86400)));
    assert!(!config.result_extended);
    assert_eq!(config.timezone, "UTC");
    assert!(config.enable_utc);
    assert_eq!(config.worker_prefetch_multiplier, 4);
    assert_eq!(config.worker_concurrency, None);
    assert!(config.worker_concurrency() >= 1);
    assert_eq!(
        config.worker_soft_shutdown_timeout(),
        Duration::from_secs(30)
    );
    assert_eq!(config.database_url, "sqlite://celeriac.db");
    assert_eq!(
        config.history_retention(),
        Some(Duration::from_secs(7 * 86400))
    );
    assert_eq!(config.history_max_rows, Some(1_000_000));
    let options = &config.broker_transport_options;
    assert_eq!(options.visibility_timeout(), Duration::from_secs(3600));
    assert_eq!(options.global_keyprefix, "");
    assert_eq!(options.priority_steps, [0, 3, 6, 9]);
    assert_eq!(options.unacked_mutex_expire(), Duration::from_secs(300));
    assert_eq!(options.polling_interval(), Duration::from_millis(50));
    assert!(config.validate().is_ok());
}

#[test]
fn history_settings_are_read_and_zero_keeps_forever() {
    let config = from(Some("history_retention = 0\nhistory_max_rows = 5000"), &[]).unwrap();
    assert_eq!(config.history_retention(), None);
    assert_eq!(config.history_max_rows, Some(5000));
    let config = from(None, &[("CELERIAC_HISTORY_RETENTION", "3600")]).unwrap();
    assert_eq!(config.history_retention(), Some(Duration::from_secs(3600)));
    assert!(from(Some("history_retention = -1"), &[]).is_err());
}

#[test]
fn no_sources_give_the_defaults() {
    assert_eq!(from(None, &[]).unwrap(), Config::default());
    assert_eq!(from(Some(""), &[]).unwrap(), Config::default());
}

#[test]
fn settings_table_matches_the_struct() {
    // Every name in SETTINGS is a field (deny_unknown_fields would reject it otherwise) ...
    for (name, _) in SETTINGS {
        let single = Map::from_iter([(name.to_owned(), Value::Null)]);
        let error = serde_json::from_value::<Config>(Value::Object(single)).err();
        assert!(
            error
                .as_ref()
                .is_none_or(|error| !error.to_string().contains("unknown field")),
            "{name}: {error:?}"
        );
    }
    // ... and every field is in SETTINGS: the error for an unknown field lists them all.
    let single = Map::from_iter([("no_such_setting".to_owned(), Value::Null)]);
    let message = serde_json::from_value::<Config>(Value::Object(single))
        .unwrap_err()
        .to_string();
    let listed = message.matches('`').count() / 2 - 1;
    assert_eq!(listed, SETTINGS.len(), "{message}");
}

#[test]
fn file_settings_are_read() {
    let config = from(
        Some(
            r#"
            broker_url = "redis://redis:6379/2"
            result_backend = "redis://redis:6379/3"
            task_acks_late = true
            worker_prefetch_multiplier = 1
            worker_concurrency = 8
            task_time_limit = 300
            task_soft_time_limit = 240.5
            task_default_priority = 5
            task_default_rate_limit = "10/m"
            result_expires = 0

            [broker_transport_options]
            visibility_timeout = 120
            global_keyprefix = "test:"
            "#,
        ),
        &[],
    )
    .unwrap();
    assert_eq!(config.broker_url, "redis://redis:6379/2");
    assert_eq!(
        config.result_backend.as_deref(),
        Some("redis://redis:6379/3")
    );
    assert!(config.task_acks_late);
    assert_eq!(config.worker_prefetch_multiplier, 1);
    assert_eq!(config.worker_concurrency(), 8);
    assert_eq!(config.task_time_limit(), Some(Duration::from_secs(300)));
    assert_eq!(
        config.task_soft_time_limit(),
        Some(Duration::from_millis(240_500))
    );
    assert_eq!(config.task_default_priority, Some(5));
    assert_eq!(config.task_default_rate_limit.as_deref(), Some("10/m"));
    assert_eq!(config.result_expires(), None, "0 means never expire");
    assert_eq!(
        config.broker_transport_options.visibility_timeout(),
        Duration::from_secs(120)
    );
    assert_eq!(config.broker_transport_options.global_keyprefix, "test:");
    assert_eq!(config.broker_transport_options.priority_steps, [0, 3, 6, 9]);
}

#[test]
fn env_overrides_the_file() {
    let config = from(
        Some("broker_url = \"redis://file/0\"\ntask_acks_late = false\nworker_prefetch_multiplier = 8"),
        &[
            ("CELERIAC_BROKER_URL", "redis://env:6379/0"),
            ("CELERIAC_TASK_ACKS_LATE", "true"),
            ("CELERIAC_WORKER_PREFETCH_MULTIPLIER", "1"),
            ("CELERIAC_RESULT_EXPIRES", "60.5"),
            ("CELERIAC_WORKER_CONCURRENCY", "3"),
            ("CELERIAC_TIMEZONE", "Europe/Paris"),
        ],
    )
    .unwrap();
    assert_eq!(config.broker_url, "redis://env:6379/0");
    assert!(config.task_acks_late);
    assert_eq!(config.worker_prefetch_multiplier, 1);
    assert_eq!(config.result_expires(), Some(Duration::from_millis(60_500)));
    assert_eq!(config.worker_concurrency(), 3);
    assert_eq!(config.timezone, "Europe/Paris");
}

#[test]
fn text_settings_keep_the_text_as_is() {
    let config = from(
        None,
        &[
            ("CELERIAC_BROKER_URL", "123"),
            ("CELERIAC_TASK_DEFAULT_QUEUE", "true"),
            ("CELERIAC_RESULT_BACKEND", " redis://x "),
        ],
    )
    .unwrap();
    assert_eq!(config.broker_url, "123");
    assert_eq!(config.task_default_queue, "true");
    assert_eq!(config.result_backend.as_deref(), Some(" redis://x "));
}

#[test]
fn empty_env_values_clear_optional_settings() {
    let config = from(
        Some("result_backend = \"redis://x/1\"\ntask_time_limit = 10"),
        &[
            ("CELERIAC_RESULT_BACKEND", ""),
            ("CELERIAC_TASK_TIME_LIMIT", "null"),
        ],
    )
    .unwrap();
    assert_eq!(config.result_backend, None);
    assert_eq!(config.task_time_limit(), None);
    assert_eq!(
        from(None, &[("CELERIAC_RESULT_EXPIRES", "")])
            .unwrap()
            .result_expires(),
        None
    );
}

#[test]
fn booleans_accept_celery_spellings() {
    for (text, expected) in [
        ("true", true),
        ("yes", true),
        ("on", true),
        ("1", true),
        ("TRUE", true),
        (" Yes ", true),
        ("false", false),
        ("no", false),
        ("off", false),
        ("0", false),
        ("Off", false),
    ] {
        let config = from(None, &[("CELERIAC_TASK_TRACK_STARTED", text)]).unwrap();
        assert_eq!(config.task_track_started, expected, "{text}");
    }
    let (name, value, reason) = invalid_value(from(None, &[("CELERIAC_ENABLE_UTC", "maybe")]));
    assert_eq!((name.as_str(), value.as_str()), ("enable_utc", "\"maybe\""));
    assert!(reason.starts_with("expected a boolean"), "{reason}");
}

#[test]
fn nested_json_env_merges_into_the_file_table() {
    let config = from(
        Some("[broker_transport_options]\nglobal_keyprefix = \"app:\"\nvisibility_timeout = 60"),
        &[(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            r#"{"visibility_timeout": 10}"#,
        )],
    )
    .unwrap();
    let options = &config.broker_transport_options;
    assert_eq!(options.visibility_timeout(), Duration::from_secs(10));
    assert_eq!(options.global_keyprefix, "app:");
}

#[test]
fn task_routes_from_env_merge_and_keep_order() {
    let config = from(
        Some("[task_routes]\n\"orders.send_invoice_email\" = { queue = \"email\" }\n\"orders.*\" = \"orders\""),
        &[("CELERIAC_TASK_ROUTES", r#"{"orders.*": {"queue": "orders2"}, "*": "catch_all"}"#)],
    )
    .unwrap();
    let task_routes = &config.task_routes;
    assert_eq!(
        task_routes.route("orders.send_invoice_email"),
        Some(&Route::queue("email"))
    );
    assert_eq!(
        task_routes.route("orders.render_pdf"),
        Some(&Route::queue("orders2"))
    );
    assert_eq!(
        task_routes.route("billing.charge"),
        Some(&Route::queue("catch_all"))
    );
    let keys: Vec<&str> = task_routes
        .entries()
        .iter()
        .map(|(key, _)| key.as_str())
        .collect();
    assert_eq!(keys, ["orders.send_invoice_email", "orders.*", "*"]);
}

#[test]
fn file_glob_order_decides_the_route() {
    let config = from(
        Some("[task_routes]\n\"z.*\" = \"first\"\n\"*\" = \"second\""),
        &[],
    )
    .unwrap();
    assert_eq!(
        config.task_routes.route("z.x"),
        Some(&Route::queue("first"))
    );
    assert_eq!(
        config.task_routes.route("a.x"),
        Some(&Route::queue("second"))
    );
}

#[test]
fn env_table_without_file_table() {
    let config = from(
        None,
        &[(
            "CELERIAC_TASK_ROUTES",
            r#"{"orders.*": {"queue": "orders"}}"#,
        )],
    )
    .unwrap();
    assert_eq!(
        config.task_routes.route("orders.x"),
        Some(&Route::queue("orders"))
    );
}

#[test]
fn bad_env_values_name_the_setting() {
    let error = from(None, &[("CELERIAC_WORKER_PREFETCH_MULTIPLIER", "abc")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "worker_prefetch_multiplier: invalid value \"abc\": expected an integer"
    );
    for (key, text, name) in [
        (
            "CELERIAC_WORKER_PREFETCH_MULTIPLIER",
            "-1",
            "worker_prefetch_multiplier",
        ),
        (
            "CELERIAC_WORKER_PREFETCH_MULTIPLIER",
            "1.5",
            "worker_prefetch_multiplier",
        ),
        (
            "CELERIAC_WORKER_PREFETCH_MULTIPLIER",
            "",
            "worker_prefetch_multiplier",
        ),
        (
            "CELERIAC_TASK_DEFAULT_PRIORITY",
            "256",
            "task_default_priority",
        ),
        ("CELERIAC_TASK_TIME_LIMIT", "soon", "task_time_limit"),
        (
            "CELERIAC_WORKER_SOFT_SHUTDOWN_TIMEOUT",
            "",
            "worker_soft_shutdown_timeout",
        ),
        (
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            "[1]",
            "broker_transport_options",
        ),
        ("CELERIAC_TASK_ROUTES", "orders", "task_routes"),
        (
            "CELERIAC_DASHBOARD_BULK_RETRY_RATE",
            "fast",
            "dashboard_bulk_retry_rate",
        ),
    ] {
        let (named, value, _) = invalid_value(from(None, &[(key, text)]));
        assert_eq!(named, name, "{key}={text}");
        assert_eq!(value, quoted(text));
    }
}

#[test]
fn bad_nested_values_name_the_setting() {
    let (name, _, reason) = invalid_value(from(
        None,
        &[(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            r#"{"visibility_timeout": "long"}"#,
        )],
    ));
    assert_eq!(name, "broker_transport_options");
    assert!(reason.contains("invalid type"), "{reason}");
    let (name, _, reason) =
        invalid_value(from(Some("[broker_transport_options]\nsep = \":\""), &[]));
    assert_eq!(name, "broker_transport_options");
    assert!(reason.contains("unknown field `sep`"), "{reason}");
    let (name, _, reason) = invalid_value(from(Some("[task_routes]\n\"re:.*\" = \"q\""), &[]));
    assert_eq!(name, "task_routes");
    assert!(reason.contains("regular expression"), "{reason}");
}

#[test]
fn bad_file_values_name_the_setting() {
    let error = from(Some("worker_prefetch_multiplier = \"abc\""), &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "worker_prefetch_multiplier: invalid value \"abc\": expected an integer"
    );
    let (name, value, _) = invalid_value(from(Some("task_acks_late = \"yes\""), &[]));
    assert_eq!(
        (name.as_str(), value.as_str()),
        ("task_acks_late", "\"yes\"")
    );
    let (name, _, _) = invalid_value(from(Some("broker_url = 5"), &[]));
    assert_eq!(name, "broker_url");
    let (name, _, _) = invalid_value(from(Some("task_routes = 5"), &[]));
    assert_eq!(name, "task_routes");
}

#[test]
fn unknown_file_key_is_an_error() {
    let error = from(
        Some("broker_url = \"redis://x\"\nworker_prefetch_multiplyer = 1"),
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(&error, ConfigError::UnknownSetting { name, .. } if name == "worker_prefetch_multiplyer"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "unknown setting worker_prefetch_multiplyer in config file <config text>"
    );
}

#[test]
fn unknown_env_variables_are_ignored() {
    let config = from(
        None,
        &[
            ("CELERIAC_CONFIG", "/nonexistent.toml"),
            ("CELERIAC_LOG", "debug"),
            ("CELERIAC_TEST_SOMETHING", "x"),
            ("CELERIAC_broker_url", "redis://lowercase"),
            ("BROKER_URL", "redis://unprefixed"),
        ],
    )
    .unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn toml_syntax_error_is_a_parse_error() {
    let error = from(Some("broker_url = "), &[]).unwrap_err();
    assert!(matches!(error, ConfigError::ParseFile { .. }), "{error:?}");
    assert_eq!(error.to_string(), "cannot parse config file <config text>");
}

/// A change to a default configuration that `validate` must reject.
type InvalidChange = (&'static str, fn(&mut Config));

#[test]
fn validate_rejects_impossible_values() {
    let cases: [InvalidChange; 11] = [
        ("broker_transport_options.visibility_timeout", |config| {
            config.broker_transport_options.visibility_timeout = 0.0
        }),
        ("broker_transport_options.priority_steps", |config| {
            config.broker_transport_options.priority_steps = vec![3, 6]
        }),
        ("broker_transport_options.priority_steps", |config| {
            config.broker_transport_options.priority_steps = vec![0, 6, 3]
        }),
        ("broker_transport_options.priority_steps", |config| {
            config.broker_transport_options.priority_steps = vec![0, 10]
        }),
        ("broker_transport_options.priority_steps", |config| {
            config.broker_transport_options.priority_steps = vec![]
        }),
        ("task_time_limit", |config| {
            config.task_time_limit = Some(0.0)
        }),
        ("task_soft_time_limit", |config| {
            config.task_soft_time_limit = Some(-1.0)
        }),
        ("result_expires", |config| {
            config.result_expires = Some(f64::NAN)
        }),
        ("task_default_rate_limit", |config| {
            config.task_default_rate_limit = Some("10/d".into())
        }),
        ("beat_namespace", |config| {
            config.beat_namespace = Some("two words".into())
        }),
        ("beat_namespace", |config| {
            config.beat_namespace = Some("x".repeat(65))
        }),
    ];
    for (expected_name, change) in cases {
        let mut config = Config::default();
        change(&mut config);
        let (name, _, _) = invalid_value(config.validate().map(|()| Config::default()));
        assert_eq!(name, expected_name);
    }
    let config = Config {
        task_time_limit: Some(10.0),
        task_soft_time_limit: Some(20.0),
        broker_transport_options: BrokerTransportOptions {
            priority_steps: vec![0],
            ..BrokerTransportOptions::default()
        },
        ..Config::default()
    };
    assert!(
        config.validate().is_ok(),
        "soft above hard is allowed, as in Celery"
    );
}

#[test]
fn from_sources_validates() {
    let (name, _, _) = invalid_value(from(
        None,
        &[(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            r#"{"visibility_timeout": -5}"#,
        )],
    ));
    assert_eq!(name, "broker_transport_options.visibility_timeout");
}

#[test]
fn worker_concurrency_zero_means_cpus() {
    let config = from(None, &[("CELERIAC_WORKER_CONCURRENCY", "0")]).unwrap();
    assert_eq!(
        config.worker_concurrency(),
        Config::default().worker_concurrency()
    );
}

#[test]
fn load_reads_the_given_file_then_env() {
    let directory = TempDir::new("given");
    let path = directory.0.join("custom.toml");
    std::fs::write(
        &path,
        "task_default_queue = \"from_file\"\ntask_acks_late = true",
    )
    .unwrap();
    let config = Config::load_from(
        Some(&path),
        env(&[("CELERIAC_TASK_ACKS_LATE", "no")]),
        Path::new("/nonexistent"),
    )
    .unwrap();
    assert_eq!(config.task_default_queue, "from_file");
    assert!(!config.task_acks_late);
}

#[test]
fn load_finds_the_config_variable_then_the_working_directory() {
    let directory = TempDir::new("search");
    std::fs::write(
        directory.0.join("celeriac.toml"),
        "task_default_queue = \"cwd\"",
    )
    .unwrap();
    let named = directory.0.join("named.toml");
    std::fs::write(&named, "task_default_queue = \"named\"").unwrap();

    let from_cwd = Config::load_from(None, env(&[]), &directory.0).unwrap();
    assert_eq!(from_cwd.task_default_queue, "cwd");

    let variable = named.to_string_lossy().into_owned();
    let from_variable =
        Config::load_from(None, env(&[("CELERIAC_CONFIG", &variable)]), &directory.0).unwrap();
    assert_eq!(from_variable.task_default_queue, "named");

    let no_file = Config::load_from(None, env(&[]), Path::new("/nonexistent")).unwrap();
    assert_eq!(no_file, Config::default());
}

#[test]
fn load_reports_unreadable_and_invalid_files_with_their_path() {
    let directory = TempDir::new("errors");
    let missing = directory.0.join("missing.toml");
    let error = Config::load_from(Some(&missing), env(&[]), &directory.0).unwrap_err();
    assert!(
        matches!(&error, ConfigError::ReadFile { path, .. } if *path == missing),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("cannot read config file "));

    let broken = directory.0.join("broken.toml");
    std::fs::write(&broken, "[[[").unwrap();
    let error = Config::load_from(Some(&broken), env(&[]), &directory.0).unwrap_err();
    assert!(
        matches!(&error, ConfigError::ParseFile { path, .. } if *path == broken),
        "{error:?}"
    );

    std::fs::write(&broken, "no_such_setting = 1").unwrap();
    let error = Config::load_from(Some(&broken), env(&[]), &directory.0).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "unknown setting no_such_setting in config file {}",
            broken.display()
        )
    );
}

#[test]
fn example_file_parses_with_production_settings() {
    let config = from(Some(include_str!("../../../celeriac.example.toml")), &[]).unwrap();
    assert_eq!(config.broker_url, "redis://127.0.0.1:6379/0");
    assert_eq!(
        config.result_backend.as_deref(),
        Some("redis://127.0.0.1:6379/1")
    );
    assert!(config.task_acks_late);
    assert_eq!(config.worker_prefetch_multiplier, 1);
    assert_eq!(config.task_time_limit(), Some(Duration::from_secs(300)));
    assert_eq!(
        config.task_soft_time_limit(),
        Some(Duration::from_secs(240))
    );
    assert_eq!(config.result_expires(), Some(Duration::from_secs(3600)));
    assert_eq!(
        config.history_retention(),
        Some(Duration::from_secs(14 * 86400))
    );
    assert_eq!(config.history_max_rows, Some(2_000_000));
    assert_eq!(
        config
            .dashboard_bulk_retry_rate()
            .map(|rate| rate.tasks_per_second()),
        Some(50.0)
    );
    assert_eq!(
        config.task_routes.route("orders.send_invoice_email"),
        Some(&Route::queue("email"))
    );
    assert_eq!(
        config.task_routes.route("orders.render_pdf"),
        Some(&Route::queue("render"))
    );
    assert_eq!(config.task_routes.route("orders.other"), None);
}

#[test]
fn beat_namespace_is_the_setting_else_derived_from_the_database() {
    let config = from(None, &[("CELERIAC_BEAT_NAMESPACE", "shop:prod")]).unwrap();
    assert_eq!(config.beat_namespace(), "shop:prod");
    let derived = from(None, &[("CELERIAC_BEAT_NAMESPACE", "")]).unwrap();
    assert_eq!(derived.beat_namespace, None);
    assert_eq!(derived.beat_namespace(), Config::default().beat_namespace());
    let namespace = |url: &str| {
        Config {
            database_url: url.to_owned(),
            ..Config::default()
        }
        .beat_namespace()
    };
    assert_eq!(
        namespace("postgres://app:one@db/shop?sslmode=require"),
        namespace("postgres://app:two@db/shop"),
        "neither the password nor the query moves the namespace"
    );
    assert_ne!(namespace("sqlite://a.db"), namespace("sqlite://b.db"));
    assert_eq!(namespace("sqlite://a.db").len(), "db-".len() + 12);
}
