//! An ACL user confined to Celeriac's keys and channels (the rules the README documents) runs
//! everything: producer, worker with results, events, remote control and beat. Its password
//! has URL-special characters (percent-encoded in the URL, or read from a password file), and it
//! never shows in an error.
//! Outside its key prefix it is refused with Redis's NOPERM.

use crate::all_parts::every_part_works;
use crate::support::config;
use celeriac::broker::RedisBroker;
use celeriac::producer::broker_options;
use celeriac::testkit::{RedisServer, TestEnv};

/// The password, and as it is written in a URL.
const PASSWORD: &str = "p@ss:w/rd%1";
const PASSWORD_IN_URL: &str = "p%40ss%3Aw%2Frd%251";

/// The README's rules for a user of the setup whose `global_keyprefix` is `prefix`.
fn acl_rules(prefix: &str) -> Vec<String> {
    [
        "on".to_owned(),
        format!(">{PASSWORD}"),
        "resetkeys".to_owned(),
        format!("~{prefix}*"),
        "~celery-task-meta-*".to_owned(),
        "~celery-taskset-meta-*".to_owned(),
        "resetchannels".to_owned(),
        format!("&{prefix}*"),
        // PSUBSCRIBE patterns must be allowed literally: the event receivers' pattern.
        format!("&{prefix}/0.celeryev/*"),
        "&celery-task-meta-*".to_owned(),
        "+@all".to_owned(),
        "-@dangerous".to_owned(),
    ]
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_confined_to_its_prefix_runs_everything() {
    let server = RedisServer::start_private();
    let admin = redis::Client::open(server.url(0)).expect("admin url");
    let mut connection = admin
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection");
    let env = TestEnv::new("acl");
    let mut setuser = redis::cmd("ACL");
    setuser.arg("SETUSER").arg("celeriac");
    for rule in acl_rules(&env.key_prefix) {
        setuser.arg(rule);
    }
    let () = setuser
        .query_async(&mut connection)
        .await
        .expect("ACL SETUSER");
    let port = server.port().expect("a private server");
    let url = |db: u8| format!("redis://celeriac:{PASSWORD_IN_URL}@127.0.0.1:{port}/{db}");
    let env = env.on(url(0), url(1), None);
    let worker = every_part_works(&env, config(&env)).await;
    worker.stop().await;

    // Another prefix is refused by Redis, and the error does not carry the password.
    let mut elsewhere = config(&env);
    elsewhere.broker_transport_options.global_keyprefix = "other:".to_owned();
    let broker = RedisBroker::connect(&elsewhere.broker_url, broker_options(&elsewhere))
        .await
        .expect("the user may connect");
    let error = broker
        .declare_queue("celery")
        .await
        .expect_err("a key outside the prefix");
    let text = format!("{error}: {:?}", std::error::Error::source(&error));
    assert!(text.to_lowercase().contains("noperm"), "{text}");
    assert!(
        !text.contains(PASSWORD) && !text.contains(PASSWORD_IN_URL),
        "{text}"
    );

    // The password from a file (a Docker secret), the URL naming only the user.
    let secrets = tempfile_dir();
    let password_file = secrets.join("redis-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("write the secret");
    let mut from_file = config(&env);
    from_file.broker_url = format!("redis://celeriac@127.0.0.1:{port}/0");
    from_file.broker_password_file = Some(password_file);
    let broker = RedisBroker::connect(&from_file.broker_url, broker_options(&from_file))
        .await
        .expect("the password from the file");
    broker
        .declare_queue("celery")
        .await
        .expect("a key inside the prefix");
    let _ = std::fs::remove_dir_all(&secrets);

    // A wrong password: refused, naming the host and not the password.
    let mut wrong = config(&env);
    wrong.broker_url = format!("redis://celeriac:not-it@127.0.0.1:{port}/0");
    wrong.broker_connection_retry_on_startup = false;
    let error = RedisBroker::connect(&wrong.broker_url, broker_options(&wrong))
        .await
        .expect_err("wrong password");
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("not-it"), "{text}");
}

/// A private directory for this test's secret.
fn tempfile_dir() -> std::path::PathBuf {
    let directory = std::env::temp_dir().join(format!(
        "celeriac-acl-{}-{}",
        std::process::id(),
        celeriac::clock::now().timestamp_subsec_nanos()
    ));
    std::fs::create_dir_all(&directory).expect("a temp dir");
    directory
}
