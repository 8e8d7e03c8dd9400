//! The dashboard's pages, one file per page, each exporting one `#[component]`.
//!
//! Each page reads its first data through a `Resource` over the JSON API (so the server
//! renders it with data and hydration reuses it) and lays the live stream
//! ([`crate::live::use_live_events`]) over it.

pub mod audit;
pub mod failed;
pub mod overview;
pub mod periodic;
pub mod periodic_detail;
pub mod queues;
pub mod task_detail;
pub mod tasks;
pub mod worker_detail;
pub mod workers;
