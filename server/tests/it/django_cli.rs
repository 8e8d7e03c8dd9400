//! The `celeriac` binary in a Django team's setup (the djshop project of `examples/django` on a
//! fresh SQLite file, with its Python worker): the settings copied from Django's
//! (`result_backend = "django-db"`, `beat_scheduler = "django_celery_beat…"`) are accepted;
//! `celeriac result` reads a Python task's row; `celeriac schedule import --from django` and
//! `export --to django` move schedules between the two stores; and `celeriac serve` (no worker,
//! no beat: the dashboard in place of Flower) shows a failed Python task it caught up on from
//! `TaskResult`, and retries it alone and in bulk, the Python worker running it again.

use crate::support::{add_operator, http, json_body, Server};
use celeriac::testkit::{eventually, DatabaseKind, DjangoProject, TestEnv};
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn celeriac(env: &TestEnv, project: &DjangoProject, args: &[&str]) -> Output {
    command(env, project)
        .args(args)
        .output()
        .expect("celeriac runs")
}

fn command(env: &TestEnv, project: &DjangoProject) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_celeriac"));
    command
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
        .stdin(Stdio::null());
    command
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
from decimal import Decimal
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
result = add.apply_async((20, 22), queue="{queue}")
result.get(timeout=30)
nightly = CrontabSchedule.objects.create(minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Europe/Berlin")
PeriodicTask.objects.create(name="nightly invoices", task="orders.tasks.send_invoice_email", args="[7]", crontab=nightly, expire_seconds=240)
every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
PeriodicTask.objects.create(name="pdf warmup", task="orders.tasks.add", args="[1, 2]", interval=every, enabled=False, queue="render")
dusk = SolarSchedule.objects.create(event="dusk_civil", latitude=Decimal("-33.868800"), longitude=Decimal("151.209300"))
PeriodicTask.objects.create(name="sydney lights", task="orders.tasks.add", args="[0, 0]", solar=dusk)
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
    assert!(stdout(&output).contains("imported 3 periodic task(s)"));
    let output = celeriac(&env, &project, &["schedule", "list", "--json"]);
    let listed: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = listed
        .iter()
        .filter_map(|entry| entry["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["nightly invoices", "pdf warmup", "sydney lights"],
        "{listed:?}"
    );
    let nightly = &listed[0];
    assert_eq!(nightly["expire_seconds"], 240, "{nightly}");
    assert_eq!(listed[1]["enabled"], false, "{:?}", listed[1]);
    assert_eq!(
        listed[2]["schedule"],
        json!({"kind": "solar", "event": "dusk_civil", "latitude": -33.8688, "longitude": 151.2093}),
        "{:?}",
        listed[2]
    );
    let output = celeriac(
        &env,
        &project,
        &["schedule", "next", "sydney lights", "-n", "2"],
    );
    assert_eq!(stdout(&output).lines().count(), 2, "two dusks");

    // An edit on our side, exported back to Django's admin.
    let output = celeriac(
        &env,
        &project,
        &["schedule", "edit", "nightly invoices", "--args", "[8]"],
    );
    stdout(&output);
    let output = celeriac(
        &env,
        &project,
        &[
            "schedule",
            "edit",
            "sydney lights",
            "--solar",
            "sunset",
            "--latitude",
            "-33.8688",
            "--longitude",
            "151.2093",
        ],
    );
    stdout(&output);
    let output = celeriac(&env, &project, &["schedule", "export", "--to", "django"]);
    assert!(stdout(&output).contains("exported 3 periodic task(s)"));
    let read_back = project
        .shell(
            r#"
import json
from django_celery_beat.models import PeriodicTask
task = PeriodicTask.objects.get(name="nightly invoices")
lights = PeriodicTask.objects.get(name="sydney lights").solar
print(json.dumps({"args": json.loads(task.args), "hour": task.crontab.hour, "zone": str(task.crontab.timezone), "count": PeriodicTask.objects.count(),
                  "solar": [lights.event, str(lights.latitude), str(lights.longitude)]}))
"#,
        )
        .await;
    assert_eq!(
        read_back,
        json!({"args": [8], "hour": "2", "zone": "Europe/Berlin", "count": 3,
               "solar": ["sunset", "-33.868800", "151.209300"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_and_retries_a_python_task_from_django_db() {
    let env = TestEnv::new("django-dash").with_result_extended(true);
    let project = DjangoProject::new(&env, DatabaseKind::Sqlite).await;
    let queue = env.queue("py");
    let _python = project.worker(&[&queue], &format!("{queue}@%h"));
    // Failed while no dashboard ran.
    let sent = project
        .shell(&format!(
            r#"
import json
from orders.tasks import divide
result = divide.apply_async((6, 0), queue="{queue}")
result.get(timeout=30, propagate=False)
print(json.dumps(result.id))
"#
        ))
        .await;
    let task_id = sent.as_str().unwrap().to_owned();
    add_operator(command(&env, &project));

    let mut serve = command(&env, &project);
    serve.env(
        "CELERIAC_TASK_ROUTES",
        json!({"orders.tasks.*": {"queue": queue}}).to_string(),
    );
    let (_server, addr) = Server::serve(serve);
    let path = format!("/api/task/info/{task_id}");
    let info = eventually(Duration::from_secs(60), "the caught-up task", || async {
        let (status, body) = http(addr, "GET", &path, "")?;
        (status == 200).then(|| json_body(&body))
    })
    .await;
    assert_eq!(info["state"], "FAILURE", "{info}");
    assert_eq!(info["name"], "orders.tasks.divide", "{info}");

    let (status, body) =
        http(addr, "POST", &format!("/api/task/retry/{task_id}"), "").expect("retry answers");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/tasks/bulk_retry",
        &json!({"task_ids": [task_id]}).to_string(),
    )
    .expect("bulk retry answers");
    assert_eq!(status, 202, "{body}");
    assert_eq!(json_body(&body)["accepted"], 1, "{body}");
    // Both re-runs reach the Python worker with the original arguments.
    let rows = project
        .shell(
            r#"
import json, time
from django_celery_results.models import TaskResult
deadline = time.time() + 30
rows = TaskResult.objects.filter(task_name="orders.tasks.divide")
while rows.count() < 3 and time.time() < deadline:
    time.sleep(0.2)
print(json.dumps(sorted(set(row.task_args for row in rows)) + [rows.count()]))
"#,
        )
        .await;
    assert_eq!(rows, json!(["\"(6, 0)\"", 3]));
}
