-- Every Celeriac object takes the `celeriac_` prefix; see the SQLite migration of the same
-- name for why. Tables, sequences, indexes and constraints are renamed in place (rows, and
-- the identity sequences' positions, are kept). The trigger functions are recreated, because
-- their plpgsql bodies are text that names the old tables and sequence.

ALTER TABLE task_history RENAME TO celeriac_task_history;
ALTER TABLE task_history_events RENAME TO celeriac_task_history_events;
ALTER TABLE task_history_counts RENAME TO celeriac_task_history_counts;
ALTER TABLE beat_periodic_task RENAME TO celeriac_beat_periodic_task;
ALTER TABLE beat_deleted RENAME TO celeriac_beat_deleted;
ALTER TABLE beat_run RENAME TO celeriac_beat_run;
ALTER TABLE dashboard_user RENAME TO celeriac_dashboard_user;
ALTER TABLE dashboard_session RENAME TO celeriac_dashboard_session;
ALTER TABLE dashboard_audit RENAME TO celeriac_dashboard_audit;

ALTER SEQUENCE task_history_id_seq RENAME TO celeriac_task_history_id_seq;
ALTER SEQUENCE dashboard_audit_id_seq RENAME TO celeriac_dashboard_audit_id_seq;
ALTER SEQUENCE beat_version_seq RENAME TO celeriac_beat_version_seq;

-- Constraints rename their indexes with them.
ALTER TABLE celeriac_task_history RENAME CONSTRAINT task_history_pkey TO celeriac_task_history_pkey;
ALTER TABLE celeriac_task_history
    RENAME CONSTRAINT task_history_task_id_key TO celeriac_task_history_task_id_key;
ALTER TABLE celeriac_task_history_events
    RENAME CONSTRAINT task_history_events_pkey TO celeriac_task_history_events_pkey;
ALTER TABLE celeriac_task_history_events
    RENAME CONSTRAINT task_history_events_task_id_fkey TO celeriac_task_history_events_task_id_fkey;
ALTER TABLE celeriac_task_history_counts
    RENAME CONSTRAINT task_history_counts_pkey TO celeriac_task_history_counts_pkey;
ALTER TABLE celeriac_beat_periodic_task
    RENAME CONSTRAINT beat_periodic_task_pkey TO celeriac_beat_periodic_task_pkey;
ALTER TABLE celeriac_beat_run RENAME CONSTRAINT beat_run_pkey TO celeriac_beat_run_pkey;
ALTER TABLE celeriac_dashboard_user
    RENAME CONSTRAINT dashboard_user_pkey TO celeriac_dashboard_user_pkey;
ALTER TABLE celeriac_dashboard_session
    RENAME CONSTRAINT dashboard_session_pkey TO celeriac_dashboard_session_pkey;
ALTER TABLE celeriac_dashboard_audit
    RENAME CONSTRAINT dashboard_audit_pkey TO celeriac_dashboard_audit_pkey;

ALTER INDEX task_history_seen RENAME TO celeriac_task_history_seen;
ALTER INDEX task_history_state RENAME TO celeriac_task_history_state;
ALTER INDEX task_history_name RENAME TO celeriac_task_history_name;
ALTER INDEX task_history_name_state RENAME TO celeriac_task_history_name_state;
ALTER INDEX task_history_worker RENAME TO celeriac_task_history_worker;
ALTER INDEX task_history_queue RENAME TO celeriac_task_history_queue;
ALTER INDEX task_history_received RENAME TO celeriac_task_history_received;
ALTER INDEX task_history_started RENAME TO celeriac_task_history_started;
ALTER INDEX task_history_done RENAME TO celeriac_task_history_done;
ALTER INDEX task_history_retried_from RENAME TO celeriac_task_history_retried_from;
ALTER INDEX task_history_search RENAME TO celeriac_task_history_search;
ALTER INDEX beat_periodic_task_version RENAME TO celeriac_beat_periodic_task_version;
ALTER INDEX beat_deleted_version RENAME TO celeriac_beat_deleted_version;
ALTER INDEX dashboard_session_expires RENAME TO celeriac_dashboard_session_expires;
ALTER INDEX dashboard_audit_at RENAME TO celeriac_dashboard_audit_at;

-- Beat's change stamps (see 20261124010000_beat.sql), with the new names in their bodies.
DROP TRIGGER beat_task_inserted ON celeriac_beat_periodic_task;
DROP TRIGGER beat_task_updated ON celeriac_beat_periodic_task;
DROP TRIGGER beat_task_deleted ON celeriac_beat_periodic_task;
DROP FUNCTION beat_task_stamp();
DROP FUNCTION beat_task_forget();

CREATE FUNCTION celeriac_beat_task_stamp() RETURNS trigger AS $$
BEGIN
    NEW.version := nextval('celeriac_beat_version_seq');
    IF TG_OP = 'INSERT' THEN
        IF NEW.anchor_at IS NULL THEN
            NEW.anchor_at := (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
        END IF;
    ELSIF (OLD.enabled = 0 AND NEW.enabled <> 0) OR OLD.schedule <> NEW.schedule THEN
        NEW.anchor_at := (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER celeriac_beat_task_inserted BEFORE INSERT ON celeriac_beat_periodic_task
    FOR EACH ROW EXECUTE FUNCTION celeriac_beat_task_stamp();

CREATE TRIGGER celeriac_beat_task_updated BEFORE UPDATE OF
    name, task, args, kwargs, queue, exchange, routing_key, headers, priority, expires,
    expire_seconds, one_off, start_time, enabled, description, schedule, anchor_at
ON celeriac_beat_periodic_task
    FOR EACH ROW EXECUTE FUNCTION celeriac_beat_task_stamp();

CREATE FUNCTION celeriac_beat_task_forget() RETURNS trigger AS $$
BEGIN
    INSERT INTO celeriac_beat_deleted (name, version)
    VALUES (OLD.name, nextval('celeriac_beat_version_seq'));
    DELETE FROM celeriac_beat_run WHERE name = OLD.name;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER celeriac_beat_task_deleted AFTER DELETE ON celeriac_beat_periodic_task
    FOR EACH ROW EXECUTE FUNCTION celeriac_beat_task_forget();
