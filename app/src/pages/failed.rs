//! `/failed`: the failed tasks, each with a retry button.

use celeriac::TaskState;
use leptos::prelude::*;

use crate::components::task_list::TaskList;

/// `/failed`.
#[component]
pub fn FailedPage() -> impl IntoView {
    view! {
        <h1>"Failed tasks"</h1>
        <TaskList fixed_state=Some(TaskState::Failure) retry=true />
    }
}
