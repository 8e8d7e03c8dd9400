-- Numbers each schedule's recorded slots, so the beat_run ring (slot_index = run_sequence
-- modulo the ring size) keeps the latest runs in order. Counting total_run_count +
-- missed_count instead skipped ring positions when slots were missed, and reused one for a
-- slot recorded by a second beat. Bookkeeping: the edit triggers ignore it.
ALTER TABLE beat_periodic_task ADD COLUMN run_sequence INTEGER NOT NULL DEFAULT 0;
