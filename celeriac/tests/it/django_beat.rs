//! `beat_scheduler = "django"`: our beat on django-celery-beat's tables of the djshop project
//! (`examples/django`, migrated by Django's own migrations), edited through Django's ORM as the
//! admin edits them, on both databases.
//!
//! - An entry created through the ORM is sent by our beats; with two beats and the leader
//!   killed, every slot is sent once (none twice, none missing).
//! - An ORM `save()` applies within a tick; an edit through Celeriac's store (what the
//!   dashboard and `celeriac schedule` write) is read back through the ORM, and so are
//!   `last_run_at` and `total_run_count`.
//! - A crontab created through the ORM fires once from two beats whose leader was killed
//!   (PostgreSQL only: it waits for a minute).
//! - A solar schedule created through the ORM (solar noon at a longitude where it falls a few
//!   seconds ahead) is sent at the event, and its progress reaches Django's row; a solar edit
//!   through Celeriac's store becomes a `solarschedule` row the ORM reads.
//! - `celery.backend_cleanup` is created as Celery's beat creates it; missing tables are
//!   refused with what to run.

use crate::beat_support::assert_contiguous;
use crate::history::on_both;
use crate::support::config;
use celeriac::beat::django::{DjangoBeatTables, DjangoSync};
use celeriac::beat::BEAT_SLOT_HEADER;
use celeriac::beat::{
    Beat, BeatOptions, BeatStats, Schedule, ScheduleStore, Solar, SolarEvent,
    PERIODIC_TASK_NAME_HEADER,
};
use celeriac::db::Database;
use celeriac::producer::Producer;
use celeriac::protocol::{Envelope, TaskMessage};
use celeriac::testkit::{eventually, DatabaseKind, DjangoProject, TestDatabase, TestEnv};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;

struct World {
    env: TestEnv,
    project: DjangoProject,
    store: ScheduleStore,
    producer: Producer,
    queue: String,
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<BeatStats>,
}

impl World {
    async fn new(kind: DatabaseKind, name: &str) -> World {
        let env = TestEnv::new(name);
        let project = DjangoProject::new(&env, kind).await;
        let database = Database::connect_with(&project.database_options())
            .await
            .expect("Celeriac's tables beside Django's");
        let producer = Producer::connect(&config(&env)).await.expect("producer");
        World {
            queue: env.queue("beat"),
            store: ScheduleStore::new(database),
            env,
            project,
            producer,
        }
    }

    async fn start(&self, node: &str) -> Running {
        let tables = DjangoBeatTables::open(&self.project.database_url())
            .await
            .expect("django-celery-beat's tables");
        let options = BeatOptions {
            node_name: node.to_owned(),
            lease_timeout: Duration::from_secs(3),
            max_loop_interval: Duration::from_secs(1),
            ..BeatOptions::default()
        };
        let beat = Beat::new(self.store.clone(), self.producer.clone(), options)
            .with_django(DjangoSync::new(tables));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(beat.run(async move {
            let _ = stopped.await;
        }));
        Running { stop, handle }
    }

    /// The slots sent for `schedule`, read from the queue.
    async fn slots(&self, schedule: &str) -> Vec<DateTime<Utc>> {
        let mut redis = self.env.redis().await;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(self.env.key(&self.queue))
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await
            .expect("LRANGE");
        raw.iter()
            .rev()
            .filter_map(|raw| {
                let envelope = Envelope::from_json(raw.as_bytes()).ok()?;
                let message = TaskMessage::decode(&envelope).ok()?;
                let header = |name: &str| message.headers.extra.get(name)?.as_str();
                (header(PERIODIC_TASK_NAME_HEADER)? == schedule).then_some(())?;
                let slot = DateTime::parse_from_rfc3339(header(BEAT_SLOT_HEADER)?).ok()?;
                Some(slot.with_timezone(&Utc))
            })
            .collect()
    }

    async fn wait_for(&self, schedule: &str, count: usize, within: Duration) -> Vec<DateTime<Utc>> {
        eventually(
            within,
            &format!("{count} sends of {schedule}"),
            || async move {
                let slots = self.slots(schedule).await;
                (slots.len() >= count).then_some(slots)
            },
        )
        .await
    }
}

on_both!(django_admin_rows_drive_our_beats);

async fn django_admin_rows_drive_our_beats(kind: DatabaseKind) {
    let world = World::new(kind, "django-beat").await;
    world
        .project
        .shell(&format!(
            r#"
import json
from django_celery_beat.models import IntervalSchedule, PeriodicTask
every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.create(name="tick", task="demo.add", args="[2, 3]", queue="{}", interval=every)
print(json.dumps(True))
"#,
            world.queue
        ))
        .await;
    let first = world.start("beat-a@test").await;
    world.wait_for("tick", 2, Duration::from_secs(20)).await;
    let second = world.start("beat-b@test").await;
    // The leader dies without giving the lease up; the other takes over.
    first.handle.abort();
    let before = world.slots("tick").await.len();
    world
        .wait_for("tick", before + 4, Duration::from_secs(30))
        .await;
    let slots = world.slots("tick").await;
    assert_contiguous(&slots, chrono::TimeDelta::seconds(1));

    // Progress reaches Django's row; an ORM save() reaches the beat within a tick or two.
    let seen = world
        .project
        .shell(
            r#"
import json, time
from django_celery_beat.models import PeriodicTask
deadline = time.time() + 15
task = PeriodicTask.objects.get(name="tick")
while (task.total_run_count == 0 or task.last_run_at is None) and time.time() < deadline:
    time.sleep(0.2)
    task = PeriodicTask.objects.get(name="tick")
seen = {"total_run_count": task.total_run_count, "last_run_at": task.last_run_at is not None}
task.enabled = False
task.save()
print(json.dumps(seen))
"#,
        )
        .await;
    assert!(seen["total_run_count"].as_u64() > Some(0), "{seen}");
    assert_eq!(seen["last_run_at"], true, "{seen}");
    eventually(
        Duration::from_secs(3),
        "the ORM's disable in our store",
        || async {
            let stored = world.store.get("tick").await.ok()?;
            (!stored.task.enabled).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let quiet = world.slots("tick").await.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        world.slots("tick").await.len(),
        quiet,
        "a disabled entry kept firing"
    );

    // An edit through Celeriac (the dashboard's and the CLI's path) is read back by the ORM.
    let mut edited = world.store.get("tick").await.unwrap().task;
    edited.args = json!([5, 5]);
    edited.description = "edited in Celeriac".into();
    world.store.update(&edited).await.unwrap();
    let read_back = world
        .project
        .shell(
            r#"
import json, time
from django_celery_beat.models import PeriodicTask
deadline = time.time() + 15
task = PeriodicTask.objects.get(name="tick")
while task.description != "edited in Celeriac" and time.time() < deadline:
    time.sleep(0.2)
    task = PeriodicTask.objects.get(name="tick")
print(json.dumps({"args": json.loads(task.args), "description": task.description,
                  "every": task.interval.every, "enabled": task.enabled}))
"#,
        )
        .await;
    assert_eq!(
        read_back,
        json!({"args": [5, 5], "description": "edited in Celeriac", "every": 1, "enabled": false})
    );

    // Celery's own cleanup entry, as `celery beat -S django` creates it.
    let tables = DjangoBeatTables::open(&world.project.database_url())
        .await
        .unwrap();
    assert!(tables.install_default_entries().await.unwrap());
    assert!(!tables.install_default_entries().await.unwrap());
    let cleanup = world
        .project
        .shell(
            r#"
import json
from django_celery_beat.models import PeriodicTask
task = PeriodicTask.objects.get(name="celery.backend_cleanup")
c = task.crontab
print(json.dumps([task.task, c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year, str(c.timezone), task.expire_seconds]))
"#,
        )
        .await;
    assert_eq!(
        cleanup,
        json!([
            "celery.backend_cleanup",
            "0",
            "4",
            "*",
            "*",
            "*",
            "UTC",
            43200
        ])
    );

    let _ = second.stop.send(());
    second.handle.await.expect("beat task");
}

/// A longitude (millionths of a degree, as text) where solar noon at the equator falls at
/// `target`: noon moves 4 minutes earlier per degree east, so two corrections of a first guess
/// land within a millisecond.
fn longitude_with_noon_at(target: DateTime<Utc>) -> String {
    use chrono::Timelike;
    let hours = f64::from(target.num_seconds_from_midnight()) / 3600.0;
    let mut longitude = (12.0 - hours) * 15.0;
    for _ in 0..3 {
        longitude = (longitude + 180.0).rem_euclid(360.0) - 180.0;
        let solar = Solar::new(SolarEvent::SolarNoon, 0.0, longitude).unwrap();
        let noon = solar
            .next_after(target - chrono::TimeDelta::hours(12))
            .unwrap();
        let seconds_late = (noon - target).num_milliseconds() as f64 / 1000.0;
        longitude += seconds_late / 240.0;
    }
    format!("{longitude:.6}")
}

on_both!(a_solar_schedule_from_the_orm_fires_at_the_event);

async fn a_solar_schedule_from_the_orm_fires_at_the_event(kind: DatabaseKind) {
    let world = World::new(kind, "django-solar").await;
    let noon = celeriac::clock::now() + chrono::TimeDelta::seconds(8);
    let longitude = longitude_with_noon_at(noon);
    world
        .project
        .shell(&format!(
            r#"
import json
from decimal import Decimal
from django_celery_beat.models import PeriodicTask, SolarSchedule
noon = SolarSchedule.objects.create(event="solar_noon", latitude=Decimal("0"), longitude=Decimal("{longitude}"))
PeriodicTask.objects.create(name="noon", task="demo.add", args="[1, 2]", queue="{queue}", solar=noon)
print(json.dumps(True))
"#,
            queue = world.queue
        ))
        .await;
    let beat = world.start("beat-solar@test").await;
    let slots = world.wait_for("noon", 1, Duration::from_secs(30)).await;
    let solar = Solar::parse("solar_noon", "0", &longitude).unwrap();
    let expected = solar
        .next_after(noon - chrono::TimeDelta::hours(1))
        .unwrap();
    assert!(
        (slots[0] - expected).abs() < chrono::TimeDelta::seconds(1),
        "sent for {}, noon at {longitude}° is {expected}",
        slots[0]
    );

    // Progress reaches Django's row, and the schedule is still the ORM's.
    let seen = world
        .project
        .shell(
            r#"
import json, time
from django_celery_beat.models import PeriodicTask
deadline = time.time() + 15
task = PeriodicTask.objects.get(name="noon")
while task.total_run_count == 0 and time.time() < deadline:
    time.sleep(0.2)
    task = PeriodicTask.objects.get(name="noon")
print(json.dumps({"total_run_count": task.total_run_count, "last_run_at": task.last_run_at is not None,
                  "event": task.solar.event}))
"#,
        )
        .await;
    assert_eq!(
        seen,
        json!({"total_run_count": 1, "last_run_at": true, "event": "solar_noon"})
    );

    // A solar edit on our side becomes a solarschedule row the admin shows.
    let mut edited = world.store.get("noon").await.unwrap().task;
    edited.schedule = Schedule::Solar(Solar::parse("sunset", "59.3293", "-18.0686").unwrap());
    world.store.update(&edited).await.unwrap();
    let read_back = world
        .project
        .shell(
            r#"
import json, time
from django_celery_beat.models import PeriodicTask
deadline = time.time() + 15
task = PeriodicTask.objects.get(name="noon")
while task.solar.event != "sunset" and time.time() < deadline:
    time.sleep(0.2)
    task = PeriodicTask.objects.get(name="noon")
print(json.dumps([task.solar.event, str(task.solar.latitude), str(task.solar.longitude), str(task.solar)]))
"#,
        )
        .await;
    assert_eq!(
        read_back,
        json!([
            "sunset",
            "59.329300",
            "-18.068600",
            "Sunset (59.329300, -18.068600)"
        ])
    );
    let _ = beat.stop.send(());
    beat.handle.await.expect("beat task");
}

/// Crontabs fire at minute boundaries, so this waits up to a minute; once is enough (on
/// PostgreSQL, two beats, the leader killed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crontab_created_through_the_orm_fires() {
    let world = World::new(DatabaseKind::Postgres, "django-cron").await;
    world
        .project
        .shell(&format!(
            r#"
import json
from django_celery_beat.models import CrontabSchedule, PeriodicTask
every_minute = CrontabSchedule.objects.create(minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Europe/Berlin")
PeriodicTask.objects.create(name="minutely", task="demo.add", args="[1, 1]", queue="{}", crontab=every_minute)
print(json.dumps(True))
"#,
            world.queue
        ))
        .await;
    // Two beats; the leader dies without giving the lease up, the other sends the slot.
    let mut beats = vec![
        ("beat-cron-a@test", world.start("beat-cron-a@test").await),
        ("beat-cron-b@test", world.start("beat-cron-b@test").await),
    ];
    let leader = eventually(Duration::from_secs(10), "a beat leader", || async {
        world.producer.broker().beat_leader().await.ok().flatten()
    })
    .await;
    let position = beats
        .iter()
        .position(|(name, _)| *name == leader.owner)
        .expect("the leader is one of ours");
    let (_, killed) = beats.remove(position);
    killed.handle.abort();
    let slots = world.wait_for("minutely", 1, Duration::from_secs(75)).await;
    assert_eq!(slots[0].timestamp() % 60, 0, "{slots:?}");
    // Long enough for a second send of the same slot to have happened, if one could.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(world.slots("minutely").await, slots[..1], "sent twice");
    for (_, beat) in beats {
        let _ = beat.stop.send(());
        beat.handle.await.expect("beat task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_django_beat_tables_are_refused_with_what_to_run() {
    let database = TestDatabase::new(DatabaseKind::Sqlite, "django_beat_missing");
    Database::connect(&database.url).await.unwrap();
    let error = DjangoBeatTables::open(&database.url).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("manage.py migrate django_celery_beat"),
        "{text}"
    );
}
