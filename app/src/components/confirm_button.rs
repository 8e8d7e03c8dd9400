//! A button that asks once more before it acts: retry, revoke and terminate change the
//! cluster, so one stray click must not.

use leptos::prelude::*;

/// Shows `label`; a click shows "Confirm"/"Cancel", and only "Confirm" runs `on_confirm`.
///
/// `test_id` names the first button; the confirming one is `{test_id}-confirm`.
#[component]
pub fn ConfirmButton(
    /// What the action is called.
    label: &'static str,
    /// The question asked before acting.
    question: &'static str,
    /// `data-testid` of the button.
    test_id: &'static str,
    /// Disables the button (the action is running or cannot apply).
    #[prop(into)]
    disabled: Signal<bool>,
    /// Runs after confirmation.
    on_confirm: Callback<()>,
) -> AnyView {
    let asking = RwSignal::new(false);
    (view! {
        <span class="confirm">
            <Show
                when=move || asking.get()
                fallback=move || {
                    view! {
                        <button
                            data-testid=test_id
                            disabled=move || disabled.get()
                            on:click=move |_| asking.set(true)
                        >
                            {label}
                        </button>
                    }
                }
            >
                <span class="question">{question}</span>
                " "
                <button
                    class="danger"
                    data-testid=format!("{test_id}-confirm")
                    on:click=move |_| {
                        asking.set(false);
                        on_confirm.run(());
                    }
                >
                    "Confirm"
                </button>
                " "
                <button on:click=move |_| asking.set(false)>"Cancel"</button>
            </Show>
        </span>
    })
    .into_any()
}
