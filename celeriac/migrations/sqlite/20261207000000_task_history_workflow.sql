-- Canvas (issue 14): a task's group, so the task page lists the other members of its group or
-- chord header, the body of the chord it belongs to, and an index for the tasks a task sent
-- (its children, by `parent_id`).
ALTER TABLE celeriac_task_history ADD COLUMN group_id TEXT;
ALTER TABLE celeriac_task_history ADD COLUMN chord_body_id TEXT;
CREATE INDEX celeriac_task_history_group ON celeriac_task_history (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX celeriac_task_history_parent ON celeriac_task_history (parent_id) WHERE parent_id IS NOT NULL;
