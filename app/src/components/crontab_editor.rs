//! The click-to-edit crontab: each field (and the zone) shows as text; a click turns it into an
//! input. As the user types, the server checks the draft with the engine's own parser and
//! answers with its description, or the error naming the field, and its next runs in the
//! schedule's zone, flagging runs a DST change moves or merges ([`schedule_preview`]). Enter or
//! a click elsewhere keeps the field's text, Escape restores the text it had before, Save hands
//! the draft to the page (the server validates again); Undo returns to the stored crontab.

use celeriac::beat::CrontabSpec;
use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use crate::components::schedule_preview::{preview_error, schedule_preview};
use crate::model::ScheduleSpec;

/// The editable parts, in cron order, then the zone: (key, label).
const PARTS: [(&str, &str); 6] = [
    ("minute", "Minute"),
    ("hour", "Hour"),
    ("day_of_month", "Day of month"),
    ("month_of_year", "Month"),
    ("day_of_week", "Day of week"),
    ("timezone", "Time zone"),
];

fn part(spec: &CrontabSpec, key: &str) -> String {
    match key {
        "minute" => spec.minute.clone(),
        "hour" => spec.hour.clone(),
        "day_of_month" => spec.day_of_month.clone(),
        "month_of_year" => spec.month_of_year.clone(),
        "day_of_week" => spec.day_of_week.clone(),
        _ => spec.timezone.clone(),
    }
}

fn set_part(spec: &mut CrontabSpec, key: &str, text: String) {
    match key {
        "minute" => spec.minute = text,
        "hour" => spec.hour = text,
        "day_of_month" => spec.day_of_month = text,
        "month_of_year" => spec.month_of_year = text,
        "day_of_week" => spec.day_of_week = text,
        _ => spec.timezone = text,
    }
}

/// The editor. `initial` is the stored crontab; `on_save` gets the draft when Save is clicked.
#[component]
pub fn CrontabEditor(
    /// The crontab as stored.
    initial: CrontabSpec,
    /// Runs with the draft on Save.
    on_save: Callback<CrontabSpec>,
    /// True while a save is under way.
    #[prop(into)]
    saving: Signal<bool>,
) -> AnyView {
    // The page re-creates the editor with the stored crontab after a save.
    let saved = StoredValue::new(initial.clone());
    let draft = RwSignal::new(initial);
    let editing = RwSignal::new(None::<&'static str>);
    // The text a part had when its input opened, for Escape.
    let before = RwSignal::new(String::new());
    let preview = schedule_preview(move || Some(ScheduleSpec::Crontab(draft.get())));
    let error = Memo::new(move |_| preview_error(preview));
    let changed = move || draft.with(|draft| saved.with_value(|saved| draft != saved));

    let parts = PARTS
        .into_iter()
        .map(|(key, label)| {
            let open = move |_| {
                before.set(draft.with_untracked(|draft| part(draft, key)));
                editing.set(Some(key));
            };
            let on_key = move |event: KeyboardEvent| match event.key().as_str() {
                "Escape" => {
                    let text = before.get_untracked();
                    draft.update(|draft| set_part(draft, key, text));
                    editing.set(None);
                }
                "Enter" => editing.set(None),
                _ => {}
            };
            // The input takes the focus when it appears, so typing starts at once.
            let input_ref = NodeRef::<leptos::html::Input>::new();
            Effect::new(move |_| {
                if let Some(input) = input_ref.get() {
                    let _ = input.focus();
                }
            });
            let invalid =
                move || error.with(|error| error.as_ref().is_some_and(|(part, _)| part == key));
            view! {
                <div class="crontab-part" class:invalid=invalid>
                    <span class="crontab-label">{label}</span>
                    <Show
                        when=move || editing.get() == Some(key)
                        fallback=move || view! {
                            <button
                                class="crontab-text"
                                title="Click to edit"
                                data-testid=format!("crontab-{key}")
                                on:click=open
                            >
                                {move || draft.with(|draft| part(draft, key))}
                            </button>
                        }
                    >
                        <input
                            class="crontab-input"
                            data-testid=format!("crontab-input-{key}")
                            aria-label=label
                            prop:value=move || draft.with_untracked(|draft| part(draft, key))
                            on:input=move |event| {
                                let text = event_target_value(&event);
                                draft.update(|draft| set_part(draft, key, text));
                            }
                            on:keydown=on_key
                            on:blur=move |_| editing.set(None)
                            node_ref=input_ref
                        />
                    </Show>
                </div>
            }
        })
        .collect_view();

    (view! {
        <div class="crontab-editor" data-testid="crontab-editor">
            <div class="crontab-parts">{parts}</div>
            <Transition fallback=|| view! { <p class="crontab-description">"Checking…"</p> }>
                {move || preview.get().map(|answer| match answer {
                    Ok(Some(preview)) => match preview.error {
                        None => view! {
                            <p class="crontab-description" data-testid="crontab-description">{preview.description}</p>
                        }.into_any(),
                        Some(error) => view! {
                            <p class="error" data-testid="crontab-error">{error.message}</p>
                        }.into_any(),
                    },
                    Ok(None) => ().into_any(),
                    Err(error) => view! {
                        <p class="error" data-testid="crontab-error">{format!("cannot check the crontab: {error}")}</p>
                    }.into_any(),
                })}
                <h3>"Next runs"</h3>
                <ol class="next-runs" data-testid="next-runs">
                    {move || preview.get().and_then(Result::ok).flatten().map(|preview| preview.runs).unwrap_or_default()
                        .into_iter().map(|run| {
                            let dst = run.dst_note.is_some();
                            view! {
                            <li data-testid="next-run" class:dst=dst>
                                {run.local}
                                {run.dst_note.map(|note| view! { " " <span class="dst-note" data-testid="dst-note">{note}</span> })}
                            </li>
                        }}).collect_view()}
                </ol>
            </Transition>
            <div class="actions needs-admin">
                <button
                    data-testid="crontab-save"
                    disabled=move || saving.get() || !changed() || error.with(Option::is_some)
                    on:click=move |_| {
                        on_save.run(draft.get_untracked());
                    }
                >
                    "Save"
                </button>
                <button
                    data-testid="crontab-reset"
                    disabled=move || !changed()
                    on:click=move |_| {
                        editing.set(None);
                        draft.set(saved.get_value());
                    }
                >
                    "Undo changes"
                </button>
            </div>
        </div>
    }).into_any()
}

#[cfg(test)]
mod tests;
