//! `/tasks`: the task history with filters, search and pages, live.

use leptos::prelude::*;

use crate::components::task_list::TaskList;

/// `/tasks`.
#[component]
pub fn TasksPage() -> impl IntoView {
    view! {
        <h1>"Tasks"</h1>
        <TaskList fixed_state=None retry=false />
    }
}
