//! The remote-control actions of the worker detail page: add and cancel a consumer, grow and
//! shrink the pool, set a task's rate and time limits, and shut the worker down (confirmed
//! first). Each POSTs `/api/worker/{name}/<command>`, shows the worker's answer (or its
//! error, e.g. an unknown task name) and reloads the page's inspect replies.
//!
//! Operators may act; the server refuses viewers (and everyone but admins for shutdown) and
//! that refusal is shown like any other error.

use leptos::prelude::*;

use crate::client::{use_api, FetchError};
use crate::components::confirm_button::ConfirmButton;
use crate::model::WorkerActionAnswer;
use crate::paths;

/// Sends commands to the page's worker; one outcome at a time (the latest). `Copy`, and
/// provided as context so rows (the queue table's cancel buttons) can act too.
#[derive(Clone, Copy)]
pub struct WorkerCommands {
    name: Memo<String>,
    action: Action<String, Result<WorkerActionAnswer, FetchError>>,
}

impl std::fmt::Debug for WorkerCommands {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WorkerCommands")
            .field("name", &self.name.get_untracked())
            .finish_non_exhaustive()
    }
}

impl WorkerCommands {
    /// Commands for the worker `name`; `reload` runs after each answer.
    pub fn new(name: Memo<String>, reload: Callback<()>) -> WorkerCommands {
        let api = use_api();
        let action = Action::new(move |path: &String| {
            let api = api.clone();
            let path = path.clone();
            async move {
                let answer = api.post::<WorkerActionAnswer>(&path).await;
                reload.run(());
                answer
            }
        });
        WorkerCommands { name, action }
    }

    /// POSTs `command` with the non-blank `query` pairs.
    pub fn send(&self, command: &str, query: &[(&str, &str)]) {
        let path = format!(
            "/api/worker/{}/{command}{}",
            paths::encode(&self.name.get_untracked()),
            paths::query(query)
        );
        self.action.dispatch(path);
    }

    /// A command is on its way.
    pub fn pending(&self) -> Signal<bool> {
        let pending = self.action.pending();
        Signal::derive(move || pending.get())
    }
}

/// The commands of the page, from context.
fn use_commands() -> Option<WorkerCommands> {
    use_context::<WorkerCommands>()
}

/// The "Cancel consumer" button of one queue row.
#[component]
pub fn QueueCancel(queue: String) -> AnyView {
    let commands = use_commands();
    let pending = commands.map(|commands| commands.pending());
    (view! {
        <button
            type="button"
            data-testid="cancel-consumer"
            disabled=move || pending.is_some_and(|pending| pending.get())
            on:click=move |_| {
                if let Some(commands) = commands {
                    commands.send("cancel_consumer", &[("queue", &queue)]);
                }
            }
        >
            "Cancel consumer"
        </button>
    })
    .into_any()
}

/// A text input bound to `value`.
fn text_input(
    test_id: &'static str,
    placeholder: &'static str,
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <input
            type="text"
            data-testid=test_id
            placeholder=placeholder
            prop:value=move || value.get()
            on:input=move |event| value.set(event_target_value(&event))
        />
    }
}

/// Pool, consumers, limits, shutdown, and the latest outcome.
#[component]
pub fn WorkerActions(commands: WorkerCommands) -> AnyView {
    let pending = commands.pending();
    let busy = move || pending.get();
    let queue = RwSignal::new(String::new());
    let task = RwSignal::new(String::new());
    let rate = RwSignal::new(String::new());
    let soft = RwSignal::new(String::new());
    let hard = RwSignal::new(String::new());
    let outcome = move || {
        commands.action.value().get().map(|answer| match answer {
            Ok(answer) => {
                view! { <p data-testid="worker-action-result">{answer.message}</p> }.into_any()
            }
            Err(error) => view! {
                <p class="error" data-testid="worker-action-error">{error.to_string()}</p>
            }
            .into_any(),
        })
    };
    (view! {
        <h2 class="needs-operator">"Remote control"</h2>
        {outcome}
        <div class="actions needs-operator">
            <button type="button" data-testid="pool-grow" disabled=busy
                on:click=move |_| commands.send("pool_grow", &[("n", "1")])>"Grow pool by 1"</button>
            <button type="button" data-testid="pool-shrink" disabled=busy
                on:click=move |_| commands.send("pool_shrink", &[("n", "1")])>"Shrink pool by 1"</button>
        </div>
        <div class="actions">
            {text_input("add-consumer-queue", "queue name", queue)}
            <button type="button" data-testid="add-consumer" disabled=busy
                on:click=move |_| commands.send("add_consumer", &[("queue", &queue.get_untracked())])>
                "Add consumer"
            </button>
        </div>
        <div class="actions">
            <input
                type="text"
                list="worker-registered"
                data-testid="limit-task"
                placeholder="task name"
                prop:value=move || task.get()
                on:input=move |event| task.set(event_target_value(&event))
            />
            {text_input("rate-limit-value", "rate limit: 10/m, 5/s, 0 = none", rate)}
            <button type="button" data-testid="rate-limit-set" disabled=busy
                on:click=move |_| commands.send("rate_limit", &[
                    ("task", &task.get_untracked()),
                    ("value", &rate.get_untracked()),
                ])>
                "Set rate limit"
            </button>
        </div>
        <div class="actions">
            {text_input("time-limit-soft", "soft time limit (s)", soft)}
            {text_input("time-limit-hard", "hard time limit (s)", hard)}
            <button type="button" data-testid="time-limit-set" disabled=busy
                on:click=move |_| commands.send("time_limit", &[
                    ("task", &task.get_untracked()),
                    ("soft", &soft.get_untracked()),
                    ("hard", &hard.get_untracked()),
                ])>
                "Set time limits"
            </button>
        </div>
        <div class="actions needs-admin">
            <ConfirmButton label="Shut down" question="Stop this worker? It will not come back by itself."
                test_id="worker-shutdown" disabled=pending
                on_confirm=Callback::new(move |()| commands.send("shutdown", &[])) />
        </div>
    }).into_any()
}
