//! Pieces several pages share, one component per file.

pub mod bulk_retry;
pub mod confirm_button;
pub mod crontab_editor;
pub mod format;
pub mod nav;
pub mod schedule_form;
pub mod schedule_preview;
pub mod state_badge;
pub mod task_list;
pub mod task_stats;
pub mod throughput_chart;
pub mod worker_actions;
