-- The dashboard's accounts (celeriac::auth): users with argon2id password hashes, the
-- server-side login sessions, and the audit log of who did what. Times are milliseconds since
-- the Unix epoch (UTC).

CREATE TABLE dashboard_user (
    name TEXT PRIMARY KEY,
    -- 'viewer', 'operator' or 'admin'.
    role TEXT NOT NULL,
    -- A PHC string ($argon2id$v=19$m=19456,t=2,p=1$...).
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per live login session; the id is the cookie's value, the data the session's
-- key/value map as JSON. Expired rows are deleted on read and by the periodic sweep.
CREATE TABLE dashboard_session (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX dashboard_session_expires ON dashboard_session (expires_at);

CREATE TABLE dashboard_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    -- The user name, or the name tried for a failed login.
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    -- The client's address (after trusted-proxy resolution).
    address TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dashboard_audit_at ON dashboard_audit (at);
