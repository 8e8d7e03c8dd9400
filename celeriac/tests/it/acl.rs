//! An ACL user confined to Celeriac's keys and channels (the rules the README documents) runs
//! everything: producer, worker with results, events, remote control and beat. Its password
//! has URL-special characters (percent-encoded in the URL), and it never shows in an error.
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
