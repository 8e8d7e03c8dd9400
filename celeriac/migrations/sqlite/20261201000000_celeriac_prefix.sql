-- Every Celeriac object takes the `celeriac_` prefix, so the schema can live in a database that
-- another application owns (a Django project has tables such as `dashboard_user` of its own)
-- without a name colliding. Tables are renamed, so an existing database keeps its rows;
-- only what is derived from them is rebuilt: the indexes (SQLite cannot rename an index),
-- the full-text index (its `content` option names the table and is not rewritten by a
-- rename) and the triggers (renamed for the same reason as the tables). Runs in the one
-- transaction every migration runs in (celeriac::db), so a failure leaves the old names.

-- 1. What names the old tables in its body or options goes first.
DROP TRIGGER task_history_search_insert;
DROP TRIGGER task_history_search_delete;
DROP TRIGGER task_history_search_update;
DROP TABLE task_history_search;
DROP TRIGGER beat_task_inserted;
DROP TRIGGER beat_task_updated;
DROP TRIGGER beat_task_resumed;
DROP TRIGGER beat_task_deleted;

-- 2. The tables. SQLite (3.26 and later, without legacy_alter_table) rewrites the foreign key
-- of the timeline to the new name, and moves AUTOINCREMENT's sqlite_sequence row along.
ALTER TABLE task_history RENAME TO celeriac_task_history;
ALTER TABLE task_history_events RENAME TO celeriac_task_history_events;
ALTER TABLE task_history_counts RENAME TO celeriac_task_history_counts;
ALTER TABLE beat_periodic_task RENAME TO celeriac_beat_periodic_task;
ALTER TABLE beat_version RENAME TO celeriac_beat_version;
ALTER TABLE beat_deleted RENAME TO celeriac_beat_deleted;
ALTER TABLE beat_run RENAME TO celeriac_beat_run;
ALTER TABLE dashboard_user RENAME TO celeriac_dashboard_user;
ALTER TABLE dashboard_session RENAME TO celeriac_dashboard_session;
ALTER TABLE dashboard_audit RENAME TO celeriac_dashboard_audit;

-- 3. The indexes, as 20261124*.sql define them, under their new names.
DROP INDEX task_history_seen;
DROP INDEX task_history_state;
DROP INDEX task_history_name;
DROP INDEX task_history_name_state;
DROP INDEX task_history_worker;
DROP INDEX task_history_queue;
DROP INDEX task_history_received;
DROP INDEX task_history_started;
DROP INDEX task_history_done;
DROP INDEX task_history_retried_from;
DROP INDEX beat_periodic_task_version;
DROP INDEX beat_deleted_version;
DROP INDEX dashboard_session_expires;
DROP INDEX dashboard_audit_at;

CREATE INDEX celeriac_task_history_seen ON celeriac_task_history (seen_at, id);
CREATE INDEX celeriac_task_history_state ON celeriac_task_history (state, seen_at, id);
CREATE INDEX celeriac_task_history_name ON celeriac_task_history (name, seen_at, id);
CREATE INDEX celeriac_task_history_name_state ON celeriac_task_history (name, state, seen_at, id);
CREATE INDEX celeriac_task_history_worker ON celeriac_task_history (worker, seen_at, id);
CREATE INDEX celeriac_task_history_queue ON celeriac_task_history (queue, seen_at, id);
CREATE INDEX celeriac_task_history_received ON celeriac_task_history (received_at, id);
CREATE INDEX celeriac_task_history_started ON celeriac_task_history (started_at, id);
CREATE INDEX celeriac_task_history_done ON celeriac_task_history (done_at, id);
CREATE INDEX celeriac_task_history_retried_from ON celeriac_task_history (retried_from)
    WHERE retried_from IS NOT NULL;
CREATE INDEX celeriac_beat_periodic_task_version ON celeriac_beat_periodic_task (version);
CREATE INDEX celeriac_beat_deleted_version ON celeriac_beat_deleted (version);
CREATE INDEX celeriac_dashboard_session_expires ON celeriac_dashboard_session (expires_at);
CREATE INDEX celeriac_dashboard_audit_at ON celeriac_dashboard_audit (at);

-- 4. The full-text index over the argument reprs, rebuilt from the rows it indexes.
CREATE VIRTUAL TABLE celeriac_task_history_search USING fts5(
    args_repr, kwargs_repr, content = 'celeriac_task_history', content_rowid = 'id',
    tokenize = 'trigram'
);
INSERT INTO celeriac_task_history_search (celeriac_task_history_search) VALUES ('rebuild');

CREATE TRIGGER celeriac_task_history_search_insert AFTER INSERT ON celeriac_task_history BEGIN
    INSERT INTO celeriac_task_history_search (rowid, args_repr, kwargs_repr)
    VALUES (new.id, new.args_repr, new.kwargs_repr);
END;

CREATE TRIGGER celeriac_task_history_search_delete AFTER DELETE ON celeriac_task_history BEGIN
    INSERT INTO celeriac_task_history_search
        (celeriac_task_history_search, rowid, args_repr, kwargs_repr)
    VALUES ('delete', old.id, old.args_repr, old.kwargs_repr);
END;

CREATE TRIGGER celeriac_task_history_search_update
AFTER UPDATE OF args_repr, kwargs_repr ON celeriac_task_history
WHEN old.args_repr IS NOT new.args_repr OR old.kwargs_repr IS NOT new.kwargs_repr BEGIN
    INSERT INTO celeriac_task_history_search
        (celeriac_task_history_search, rowid, args_repr, kwargs_repr)
    VALUES ('delete', old.id, old.args_repr, old.kwargs_repr);
    INSERT INTO celeriac_task_history_search (rowid, args_repr, kwargs_repr)
    VALUES (new.id, new.args_repr, new.kwargs_repr);
END;

-- 5. Beat's change stamps (see 20261124010000_beat.sql for why they exist).
CREATE TRIGGER celeriac_beat_task_inserted AFTER INSERT ON celeriac_beat_periodic_task
BEGIN
    UPDATE celeriac_beat_version SET version = version + 1;
    UPDATE celeriac_beat_periodic_task
       SET version = (SELECT version FROM celeriac_beat_version),
           anchor_at = COALESCE(NEW.anchor_at,
               CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER))
     WHERE name = NEW.name;
END;

CREATE TRIGGER celeriac_beat_task_updated AFTER UPDATE OF
    name, task, args, kwargs, queue, exchange, routing_key, headers, priority, expires,
    expire_seconds, one_off, start_time, enabled, description, schedule, anchor_at
ON celeriac_beat_periodic_task
BEGIN
    UPDATE celeriac_beat_version SET version = version + 1;
    UPDATE celeriac_beat_periodic_task SET version = (SELECT version FROM celeriac_beat_version)
     WHERE name = NEW.name;
END;

CREATE TRIGGER celeriac_beat_task_resumed AFTER UPDATE OF enabled, schedule
ON celeriac_beat_periodic_task
WHEN (OLD.enabled = 0 AND NEW.enabled <> 0) OR OLD.schedule <> NEW.schedule
BEGIN
    UPDATE celeriac_beat_periodic_task
       SET anchor_at = CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)
     WHERE name = NEW.name;
END;

CREATE TRIGGER celeriac_beat_task_deleted AFTER DELETE ON celeriac_beat_periodic_task
BEGIN
    UPDATE celeriac_beat_version SET version = version + 1;
    INSERT INTO celeriac_beat_deleted (name, version)
    SELECT OLD.name, version FROM celeriac_beat_version;
    DELETE FROM celeriac_beat_run WHERE name = OLD.name;
END;
