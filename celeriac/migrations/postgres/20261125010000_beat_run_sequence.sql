-- Numbers each schedule's recorded slots for the beat_run ring; see the SQLite migration of
-- the same name.
ALTER TABLE beat_periodic_task ADD COLUMN run_sequence BIGINT NOT NULL DEFAULT 0;
