//! `/tasks`: per task name statistics over a window, then the task history with filters,
//! search and pages, live.

use leptos::prelude::*;

use crate::components::task_list::TaskList;
use crate::components::task_stats::TaskStats;

/// `/tasks`.
#[component]
pub fn TasksPage() -> AnyView {
    (view! {
        <h1>"Tasks"</h1>
        <TaskStats />
        <TaskList fixed_state=None retry=false />
    })
    .into_any()
}
