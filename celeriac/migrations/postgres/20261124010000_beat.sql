-- Beat's schedules (celeriac::beat::store); see the SQLite migration of the same name for the
-- design. Here a sequence hands out versions and BEFORE triggers stamp them; a transaction
-- that commits late may carry a smaller version than one already seen, which the beat's
-- lagged periodic resync covers.

CREATE SEQUENCE beat_version_seq;

CREATE TABLE beat_periodic_task (
    name TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '[]',
    kwargs TEXT NOT NULL DEFAULT '{}',
    queue TEXT,
    exchange TEXT,
    routing_key TEXT,
    headers TEXT NOT NULL DEFAULT '{}',
    priority BIGINT,
    expires BIGINT,
    expire_seconds BIGINT,
    one_off BIGINT NOT NULL DEFAULT 0,
    start_time BIGINT,
    enabled BIGINT NOT NULL DEFAULT 1,
    last_run_at BIGINT,
    total_run_count BIGINT NOT NULL DEFAULT 0,
    date_changed BIGINT NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    schedule TEXT NOT NULL,
    anchor_at BIGINT,
    missed_count BIGINT NOT NULL DEFAULT 0,
    late_count BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX beat_periodic_task_version ON beat_periodic_task (version);

CREATE TABLE beat_deleted (
    name TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX beat_deleted_version ON beat_deleted (version);

CREATE TABLE beat_run (
    name TEXT NOT NULL,
    slot_index BIGINT NOT NULL,
    slot BIGINT NOT NULL,
    sent_at BIGINT NOT NULL,
    task_id TEXT,
    outcome TEXT NOT NULL,
    missed BIGINT NOT NULL DEFAULT 0,
    lateness_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (name, slot_index)
);

CREATE FUNCTION beat_task_stamp() RETURNS trigger AS $$
BEGIN
    NEW.version := nextval('beat_version_seq');
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

CREATE TRIGGER beat_task_inserted BEFORE INSERT ON beat_periodic_task
    FOR EACH ROW EXECUTE FUNCTION beat_task_stamp();

CREATE TRIGGER beat_task_updated BEFORE UPDATE OF
    name, task, args, kwargs, queue, exchange, routing_key, headers, priority, expires,
    expire_seconds, one_off, start_time, enabled, description, schedule, anchor_at
ON beat_periodic_task
    FOR EACH ROW EXECUTE FUNCTION beat_task_stamp();

CREATE FUNCTION beat_task_forget() RETURNS trigger AS $$
BEGIN
    INSERT INTO beat_deleted (name, version) VALUES (OLD.name, nextval('beat_version_seq'));
    DELETE FROM beat_run WHERE name = OLD.name;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER beat_task_deleted AFTER DELETE ON beat_periodic_task
    FOR EACH ROW EXECUTE FUNCTION beat_task_forget();
