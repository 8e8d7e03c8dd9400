-- Beat's schedules (celeriac::beat::store): django-celery-beat's PeriodicTask fields in one
-- table, the schedule as JSON. Times are milliseconds since the Unix epoch (UTC).
--
-- Triggers stamp every user-visible change with a new `version`, so a beat polls
-- `version > watermark` each tick and picks up edits made through the API, the CLI or raw SQL
-- within a tick. The scheduler's own bookkeeping columns (last_run_at, total_run_count,
-- missed_count, late_count) are left out of the triggers so that firing does not look like an
-- edit.

CREATE TABLE beat_periodic_task (
    name TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '[]',
    kwargs TEXT NOT NULL DEFAULT '{}',
    queue TEXT,
    exchange TEXT,
    routing_key TEXT,
    headers TEXT NOT NULL DEFAULT '{}',
    priority INTEGER,
    expires INTEGER,
    expire_seconds INTEGER,
    one_off INTEGER NOT NULL DEFAULT 0,
    start_time INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    last_run_at INTEGER,
    total_run_count INTEGER NOT NULL DEFAULT 0,
    date_changed INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    schedule TEXT NOT NULL,
    -- Slots at or before this are never due: set when the entry is (re)enabled or
    -- rescheduled, and by the skip policy.
    anchor_at INTEGER,
    missed_count INTEGER NOT NULL DEFAULT 0,
    late_count INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX beat_periodic_task_version ON beat_periodic_task (version);

CREATE TABLE beat_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO beat_version (id, version) VALUES (1, 0);

CREATE TABLE beat_deleted (
    name TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX beat_deleted_version ON beat_deleted (version);

-- The last few runs of each schedule, a ring of slots per name (slot_index = run number
-- modulo the ring size), so the table stays bounded without pruning.
CREATE TABLE beat_run (
    name TEXT NOT NULL,
    slot_index INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    task_id TEXT,
    outcome TEXT NOT NULL,
    missed INTEGER NOT NULL DEFAULT 0,
    lateness_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, slot_index)
);

CREATE TRIGGER beat_task_inserted AFTER INSERT ON beat_periodic_task
BEGIN
    UPDATE beat_version SET version = version + 1;
    UPDATE beat_periodic_task
       SET version = (SELECT version FROM beat_version),
           anchor_at = COALESCE(NEW.anchor_at,
               CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER))
     WHERE name = NEW.name;
END;

CREATE TRIGGER beat_task_updated AFTER UPDATE OF
    name, task, args, kwargs, queue, exchange, routing_key, headers, priority, expires,
    expire_seconds, one_off, start_time, enabled, description, schedule, anchor_at
ON beat_periodic_task
BEGIN
    UPDATE beat_version SET version = version + 1;
    UPDATE beat_periodic_task SET version = (SELECT version FROM beat_version)
     WHERE name = NEW.name;
END;

CREATE TRIGGER beat_task_resumed AFTER UPDATE OF enabled, schedule ON beat_periodic_task
WHEN (OLD.enabled = 0 AND NEW.enabled <> 0) OR OLD.schedule <> NEW.schedule
BEGIN
    UPDATE beat_periodic_task
       SET anchor_at = CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)
     WHERE name = NEW.name;
END;

CREATE TRIGGER beat_task_deleted AFTER DELETE ON beat_periodic_task
BEGIN
    UPDATE beat_version SET version = version + 1;
    INSERT INTO beat_deleted (name, version) SELECT OLD.name, version FROM beat_version;
    DELETE FROM beat_run WHERE name = OLD.name;
END;
