//! Pieces several pages share, one component per file.

pub mod confirm_button;
pub mod format;
pub mod nav;
pub mod state_badge;
pub mod task_list;
pub mod worker_actions;
