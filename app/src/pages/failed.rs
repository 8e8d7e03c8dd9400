//! `/failed`: the failed tasks, each with a retry button and a checkbox, and the bulk retry of
//! the selection or of everything the filter matches.

use std::collections::BTreeSet;

use celeriac::TaskState;
use leptos::prelude::*;

use crate::components::bulk_retry::{BulkRetryBar, SelectedTasks};
use crate::components::task_list::TaskList;

/// `/failed`.
#[component]
pub fn FailedPage() -> AnyView {
    provide_context(SelectedTasks(RwSignal::new(BTreeSet::new())));
    (view! {
        <h1>"Failed tasks"</h1>
        <BulkRetryBar />
        <TaskList fixed_state=Some(TaskState::Failure) retry=true />
    })
    .into_any()
}
