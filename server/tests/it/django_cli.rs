//! The `celeriac` binary in a Django team's setup (the djshop project of `examples/django` on a
//! fresh SQLite file, with its Python worker): the settings copied from Django's
//! (`result_backend = "django-db"`, `beat_scheduler = "django_celery_beat…"`) are accepted;
//! `celeriac result` reads a Python task's row; `celeriac schedule import --from django` and
//! `export --to django` move schedules between the two stores.

use celeriac::testkit::{DatabaseKind, DjangoProject, TestEnv};
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};

fn celeriac(env: &TestEnv, project: &DjangoProject, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_celeriac"))
        .env_remove("CELERIAC_CONFIG")
        .env("CELERIAC_BROKER_URL", &env.redis_url)
        .env("CELERIAC_RESULT_BACKEND", "django-db")
        .env("CELERIAC_RESULT_EXTENDED", "true")
        .env(
            "CELERIAC_BEAT_SCHEDULER",
            "django_celery_beat.schedulers:DatabaseScheduler",
        )
        .env("CELERIAC_DATABASE_URL", project.database_url())
        .env(
            "CELERIAC_BROKER_TRANSPORT_OPTIONS",
            json!({"global_keyprefix": env.key_prefix}).to_string(),
        )
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .args(args)
        .output()
        .expect("celeriac runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "celeriac failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_djangos_results_and_moves_its_schedules() {
    let env = TestEnv::new("django-cli").with_result_extended(true);
    let project = DjangoProject::new(&env, DatabaseKind::Sqlite).await;
    let queue = env.queue("py");
    let _python = project.worker(&[&queue], &format!("{queue}@%h"));
    let sent = project
        .shell(&format!(
            r#"
import json
from orders.tasks import add
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
result = add.apply_async((20, 22), queue="{queue}")
result.get(timeout=30)
nightly = CrontabSchedule.objects.create(minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Europe/Berlin")
PeriodicTask.objects.create(name="nightly invoices", task="orders.tasks.send_invoice_email", args="[7]", crontab=nightly, expire_seconds=240)
every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
PeriodicTask.objects.create(name="pdf warmup", task="orders.tasks.add", args="[1, 2]", interval=every, enabled=False, queue="render")
print(json.dumps(result.id))
"#
        ))
        .await;
    let task_id = sent.as_str().unwrap().to_owned();

    // `celeriac result` reads django-db (it printed PENDING before).
    let output = celeriac(&env, &project, &["result", &task_id]);
    let document: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(document["status"], "SUCCESS", "{document}");
    assert_eq!(document["result"], 42, "{document}");
    assert_eq!(document["name"], "orders.tasks.add", "{document}");
    assert_eq!(document["args"], json!([20, 22]), "{document}");

    // Import: Django's rows become Celeriac's entries.
    let output = celeriac(&env, &project, &["schedule", "import", "--from", "django"]);
    assert!(stdout(&output).contains("imported 2 periodic task(s)"));
    let output = celeriac(&env, &project, &["schedule", "list", "--json"]);
    let listed: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = listed
        .iter()
        .filter_map(|entry| entry["name"].as_str())
        .collect();
    assert_eq!(names, ["nightly invoices", "pdf warmup"], "{listed:?}");
    let nightly = &listed[0];
    assert_eq!(nightly["expire_seconds"], 240, "{nightly}");
    assert_eq!(listed[1]["enabled"], false, "{:?}", listed[1]);

    // An edit on our side, exported back to Django's admin.
    let output = celeriac(
        &env,
        &project,
        &["schedule", "edit", "nightly invoices", "--args", "[8]"],
    );
    stdout(&output);
    let output = celeriac(&env, &project, &["schedule", "export", "--to", "django"]);
    assert!(stdout(&output).contains("exported 2 periodic task(s)"));
    let read_back = project
        .shell(
            r#"
import json
from django_celery_beat.models import PeriodicTask
task = PeriodicTask.objects.get(name="nightly invoices")
print(json.dumps({"args": json.loads(task.args), "hour": task.crontab.hour, "zone": str(task.crontab.timezone), "count": PeriodicTask.objects.count()}))
"#,
        )
        .await;
    assert_eq!(
        read_back,
        json!({"args": [8], "hour": "2", "zone": "Europe/Berlin", "count": 2})
    );
}
