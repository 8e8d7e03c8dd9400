//! The Django project of `examples/django` (djshop), driven from Rust tests: the seed's own
//! deployment (django-celery-results, django-celery-beat, Celery 5.4) on a test's private
//! database and Redis key prefix.
//!
//! [`DjangoProject::new`] migrates a fresh database with Django's own migrations (a schema of
//! the PostgreSQL database `test`, or a SQLite file); [`DjangoProject::database_url`] is the
//! same database as Celeriac's `database_url` spells it. [`DjangoProject::shell`] runs Python
//! in `manage.py shell` (the ORM, `AsyncResult`) and returns the JSON line it prints;
//! [`DjangoProject::worker`] starts the project's `celery worker`.

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;

use super::celery_peer::{spawn_worker_command, workspace_root, CeleryPeer};
use super::database::{DatabaseKind, TestDatabase};
use super::env::TestEnv;

/// The djshop project on one test's database and key prefix (module docs).
#[derive(Debug)]
pub struct DjangoProject {
    database: TestDatabase,
    variables: Vec<(String, String)>,
    key_prefix: String,
}

impl DjangoProject {
    /// The project on a fresh database of `kind`, migrated, with the broker and key prefix
    /// of `env` and `CELERY_RESULT_EXTENDED` as `env.result_extended`.
    ///
    /// # Panics
    /// If the database cannot be prepared or `manage.py migrate` fails.
    pub async fn new(env: &TestEnv, kind: DatabaseKind) -> DjangoProject {
        let database = TestDatabase::new(kind, &env.name);
        let mut variables = vec![
            ("CELERY_BROKER_URL".to_owned(), env.redis_url.clone()),
            ("CELERY_KEYPREFIX".to_owned(), env.key_prefix.clone()),
            (
                "CELERY_RESULT_EXTENDED".to_owned(),
                if env.result_extended { "1" } else { "0" }.to_owned(),
            ),
        ];
        match kind {
            DatabaseKind::Sqlite => {
                variables.push(("DJANGO_DB_ENGINE".to_owned(), "sqlite3".to_owned()));
                let path = database.url.trim_start_matches("sqlite://").to_owned();
                variables.push(("DJANGO_DB_NAME".to_owned(), path));
            }
            DatabaseKind::Postgres => {
                let schema = database.schema.clone().unwrap_or_default();
                create_schema(&database.url, &schema).await;
                let options = sqlx::postgres::PgConnectOptions::from_str(&database.url)
                    .unwrap_or_else(|error| panic!("bad test database url: {error}"));
                variables.extend([
                    ("DJANGO_DB_ENGINE".to_owned(), "postgresql".to_owned()),
                    (
                        "DJANGO_DB_NAME".to_owned(),
                        options.get_database().unwrap_or("test").to_owned(),
                    ),
                    (
                        "DJANGO_DB_USER".to_owned(),
                        options.get_username().to_owned(),
                    ),
                    ("DJANGO_DB_HOST".to_owned(), options.get_host().to_owned()),
                    ("DJANGO_DB_PORT".to_owned(), options.get_port().to_string()),
                    ("DJANGO_DB_SCHEMA".to_owned(), schema),
                ]);
            }
        }
        let project = DjangoProject {
            database,
            variables,
            key_prefix: env.key_prefix.clone(),
        };
        project.manage(&["migrate", "--noinput"]).await;
        project
    }

    /// The project's directory.
    pub fn directory() -> PathBuf {
        workspace_root().join("examples/django")
    }

    /// The Django database as Celeriac's `database_url` names it.
    pub fn database_url(&self) -> String {
        match &self.database.schema {
            Some(schema) => format!("{}?options=-c%20search_path%3D{schema}", self.database.url),
            None => self.database.url.clone(),
        }
    }

    /// The Django database as Celeriac opens it for its own tables (PostgreSQL: the test's
    /// schema first on the search path).
    pub fn database_options(&self) -> crate::db::DatabaseOptions {
        let options = crate::db::DatabaseOptions::new(self.database.url.clone());
        match &self.database.schema {
            Some(schema) => options.schema(schema.clone()),
            None => options,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(CeleryPeer::python());
        command
            .current_dir(DjangoProject::directory())
            .envs(self.variables.iter().map(|(name, value)| (name, value)))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }

    /// Runs `manage.py <args>` and returns what it printed.
    ///
    /// # Panics
    /// If the command fails (the message includes its output).
    pub async fn manage(&self, args: &[&str]) -> String {
        let mut command = self.command();
        command.arg("manage.py").args(args);
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .unwrap_or_else(|error| panic!("cannot run manage.py {args:?}: {error}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "manage.py {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Runs `code` in `manage.py shell` and parses the last line it printed as JSON.
    ///
    /// # Panics
    /// If the code fails or prints no JSON.
    pub async fn shell(&self, code: &str) -> serde_json::Value {
        let stdout = self.manage(&["shell", "-c", code]).await;
        let line = stdout.lines().rev().find(|line| !line.trim().is_empty());
        line.and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| panic!("manage.py shell printed no JSON line:\n{stdout}"))
    }

    /// Starts the project's `celery -A djshop worker` (solo pool) on `queues` as `node_name`
    /// and waits until it is ready.
    ///
    /// # Panics
    /// As [`CeleryPeer::worker`].
    pub fn worker(&self, queues: &[&str], node_name: &str) -> CeleryPeer {
        let mut command = self.command();
        command
            .args(["-m", "celery", "-A", "djshop", "worker", "--pool=solo"])
            .args(["-Q", &queues.join(","), "-n", node_name])
            .args(["--without-gossip", "--without-mingle", "-l", "info"]);
        spawn_worker_command(command, node_name, &self.key_prefix)
    }
}

async fn create_schema(url: &str, schema: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {url}: {error}"));
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("cannot create schema {schema}: {error}"));
    let _closed = connection.close().await;
}
