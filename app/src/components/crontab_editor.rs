//! The click-to-edit crontab: each field (and the zone) shows as text; a click turns it into an
//! input. As the user types, the engine's own parser (`celeriac::beat`, compiled into the WASM)
//! validates the draft, describes it in words and lists its next runs in the schedule's zone,
//! flagging runs a DST change moves or merges, with no request per keystroke. Enter or a click
//! elsewhere keeps the field's text, Escape restores the text it had before, Save hands the
//! draft to the page (the server validates again); Undo returns to the stored crontab.

use celeriac::beat::{Crontab, CrontabError, CrontabSpec, DstAdjustment, UpcomingRun};
use chrono::{DateTime, Utc};
use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use crate::live::now_seconds;

/// How many upcoming runs are listed.
const UPCOMING_SHOWN: usize = 5;

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

/// The part an error is about, so its input is marked.
fn faulty_part(error: &CrontabError) -> &'static str {
    match error {
        CrontabError::Field { field, .. } => field.name(),
        CrontabError::UnknownTimezone { .. } => "timezone",
        CrontabError::NeverFires { .. } => "day_of_month",
        _ => "",
    }
}

/// One upcoming run as a line: the zone's wall-clock time, and the DST note if any.
fn run_line(crontab: &Crontab, run: &UpcomingRun) -> (String, Option<&'static str>) {
    let zone = crontab.timezone();
    let text = run
        .at
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z (%a)")
        .to_string();
    let note = match run.adjustment {
        DstAdjustment::Normal => None,
        DstAdjustment::ShiftedByGap => {
            Some("DST gap: this time does not exist that day; runs at the end of the gap")
        }
        DstAdjustment::AmbiguousFirst => {
            Some("DST overlap: this time occurs twice; runs once, at the first")
        }
    };
    (text, note)
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
) -> impl IntoView {
    // The page re-creates the editor with the stored crontab after a save.
    let saved = StoredValue::new(initial.clone());
    let draft = RwSignal::new(initial);
    let editing = RwSignal::new(None::<&'static str>);
    // The text a part had when its input opened, for Escape.
    let before = RwSignal::new(String::new());
    let checked = Memo::new(move |_| draft.with(Crontab::new));
    let upcoming = Memo::new(move |_| {
        let now = DateTime::<Utc>::from_timestamp_micros((now_seconds() * 1e6) as i64)
            .unwrap_or_default();
        checked.with(|checked| match checked {
            Ok(crontab) => crontab
                .upcoming(now, UPCOMING_SHOWN)
                .iter()
                .map(|run| run_line(crontab, run))
                .collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        })
    });
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
            let invalid = move || {
                checked.with(|checked| {
                    checked
                        .as_ref()
                        .err()
                        .is_some_and(|error| faulty_part(error) == key)
                })
            };
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

    view! {
        <div class="crontab-editor" data-testid="crontab-editor">
            <div class="crontab-parts">{parts}</div>
            {move || checked.with(|checked| match checked {
                Ok(crontab) => view! {
                    <p class="crontab-description" data-testid="crontab-description">{crontab.describe()}</p>
                }.into_any(),
                Err(error) => view! {
                    <p class="error" data-testid="crontab-error">{error.to_string()}</p>
                }.into_any(),
            })}
            <h3>"Next runs"</h3>
            <ol class="next-runs" data-testid="next-runs">
                {move || upcoming.get().into_iter().map(|(text, note)| view! {
                    <li data-testid="next-run" class:dst=note.is_some()>
                        {text}
                        {note.map(|note| view! { " " <span class="dst-note" data-testid="dst-note">{note}</span> })}
                    </li>
                }).collect_view()}
            </ol>
            <div class="actions">
                <button
                    data-testid="crontab-save"
                    disabled=move || saving.get() || !changed() || checked.with(Result::is_err)
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
    }
}

#[cfg(test)]
mod tests;
