-- The durable task history (celeriac::history): one row per task id, its timeline of events,
-- and the number of tasks per state. Times are microseconds since the Unix epoch (UTC), so
-- the same integer comparisons work on SQLite and PostgreSQL.

CREATE TABLE task_history (
    -- The row's stable number: the tie-break of the sort order and the FTS rowid.
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL UNIQUE,
    name TEXT,
    state TEXT NOT NULL,
    -- When the event that set `state` happened (out-of-order merging compares it).
    state_at INTEGER NOT NULL,
    -- The earliest time we know of the task: the sort key ("newest first").
    seen_at INTEGER NOT NULL,
    sent_at INTEGER,
    received_at INTEGER,
    started_at INTEGER,
    done_at INTEGER,
    worker TEXT,
    queue TEXT,
    -- Python reprs, as events carry them (possibly truncated): for display and search.
    args_repr TEXT,
    kwargs_repr TEXT,
    -- The exact arguments as JSON, known from result_extended or from our own send: a retry
    -- needs them.
    args_json TEXT,
    kwargs_json TEXT,
    result TEXT,
    exception TEXT,
    traceback TEXT,
    runtime REAL,
    retries INTEGER,
    root_id TEXT,
    parent_id TEXT,
    eta INTEGER,
    expires INTEGER,
    -- The task this one re-runs (celeriac::history::retry_task).
    retried_from TEXT
);

-- A list sorts by (seen_at, id) descending, or by the time its range filters on; each filter
-- has an index that ends with those columns, so a page is read in order and the scan stops at
-- the limit.
CREATE INDEX task_history_seen ON task_history (seen_at, id);
CREATE INDEX task_history_state ON task_history (state, seen_at, id);
CREATE INDEX task_history_name ON task_history (name, seen_at, id);
CREATE INDEX task_history_name_state ON task_history (name, state, seen_at, id);
CREATE INDEX task_history_worker ON task_history (worker, seen_at, id);
CREATE INDEX task_history_queue ON task_history (queue, seen_at, id);
CREATE INDEX task_history_received ON task_history (received_at, id);
CREATE INDEX task_history_started ON task_history (started_at, id);
CREATE INDEX task_history_done ON task_history (done_at, id);
CREATE INDEX task_history_retried_from ON task_history (retried_from) WHERE retried_from IS NOT NULL;

-- Substring search over the argument reprs: a trigram index kept in step by triggers.
CREATE VIRTUAL TABLE task_history_search USING fts5(
    args_repr, kwargs_repr, content = 'task_history', content_rowid = 'id', tokenize = 'trigram'
);

CREATE TRIGGER task_history_search_insert AFTER INSERT ON task_history BEGIN
    INSERT INTO task_history_search (rowid, args_repr, kwargs_repr)
    VALUES (new.id, new.args_repr, new.kwargs_repr);
END;

CREATE TRIGGER task_history_search_delete AFTER DELETE ON task_history BEGIN
    INSERT INTO task_history_search (task_history_search, rowid, args_repr, kwargs_repr)
    VALUES ('delete', old.id, old.args_repr, old.kwargs_repr);
END;

CREATE TRIGGER task_history_search_update AFTER UPDATE OF args_repr, kwargs_repr ON task_history
WHEN old.args_repr IS NOT new.args_repr OR old.kwargs_repr IS NOT new.kwargs_repr BEGIN
    INSERT INTO task_history_search (task_history_search, rowid, args_repr, kwargs_repr)
    VALUES ('delete', old.id, old.args_repr, old.kwargs_repr);
    INSERT INTO task_history_search (rowid, args_repr, kwargs_repr)
    VALUES (new.id, new.args_repr, new.kwargs_repr);
END;

-- The state of a task at each event, for the detail page's timeline.
CREATE TABLE task_history_events (
    task_id TEXT NOT NULL REFERENCES task_history (task_id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    hostname TEXT,
    PRIMARY KEY (task_id, occurred_at, event_type)
) WITHOUT ROWID;

-- Tasks per state, kept by the writer in the same transaction as the rows, so the totals
-- cost one small read instead of counting a million rows.
CREATE TABLE task_history_counts (
    state TEXT PRIMARY KEY,
    tasks INTEGER NOT NULL
) WITHOUT ROWID;
