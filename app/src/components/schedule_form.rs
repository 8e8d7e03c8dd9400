//! Forms for the schedule kinds without a field-by-field editor: an interval ("every 30
//! seconds") and a clocked instant, and the whole form that creates a periodic task of any
//! kind. The text is parsed here; the server checks the schedule with the engine's rules as
//! the user types ([`schedule_preview`]) and again when it is saved.

use celeriac::beat::{CrontabSpec, IntervalPeriod};
use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::components::schedule_preview::{preview_error, schedule_preview, PreviewResource};
use crate::model::{ScheduleForm, ScheduleSpec};

const PERIODS: [(&str, IntervalPeriod); 5] = [
    ("days", IntervalPeriod::Days),
    ("hours", IntervalPeriod::Hours),
    ("minutes", IntervalPeriod::Minutes),
    ("seconds", IntervalPeriod::Seconds),
    ("microseconds", IntervalPeriod::Microseconds),
];

fn period_name(period: IntervalPeriod) -> &'static str {
    PERIODS
        .iter()
        .find(|(_, candidate)| *candidate == period)
        .map_or("seconds", |(name, _)| name)
}

fn period_of(name: &str) -> IntervalPeriod {
    PERIODS
        .iter()
        .find(|(candidate, _)| *candidate == name)
        .map_or(IntervalPeriod::Seconds, |(_, period)| *period)
}

/// The schedule a kind's text inputs describe, or the message naming the field at fault.
fn spec_from_inputs(
    kind: &str,
    crontab: &str,
    timezone: &str,
    every: &str,
    period: &str,
    at: &str,
) -> Result<ScheduleSpec, String> {
    let spec = match kind {
        "crontab" => {
            let fields: Vec<&str> = crontab.split_whitespace().collect();
            let [minute, hour, day_of_month, month_of_year, day_of_week] = fields[..] else {
                return Err(format!(
                    "crontab: expected 5 fields \"minute hour day_of_month month_of_year day_of_week\", found {}",
                    fields.len()
                ));
            };
            ScheduleSpec::Crontab(CrontabSpec {
                minute: minute.into(),
                hour: hour.into(),
                day_of_month: day_of_month.into(),
                month_of_year: month_of_year.into(),
                day_of_week: day_of_week.into(),
                timezone: timezone.trim().into(),
            })
        }
        "interval" => ScheduleSpec::Interval {
            every: every
                .trim()
                .parse()
                .map_err(|_| format!("every: {every:?} is not a whole number"))?,
            period: period_of(period),
        },
        _ => ScheduleSpec::Clocked {
            at: DateTime::parse_from_rfc3339(at.trim())
                .map_err(|_| format!("at: {at:?} is not an RFC 3339 time (2030-01-01T09:00:00Z)"))?
                .with_timezone(&Utc),
        },
    };
    Ok(spec)
}

/// What is wrong with the draft: its text (`text_error`), else the server's verdict on it.
fn problem(text_error: Option<String>, preview: PreviewResource) -> Option<String> {
    text_error.or_else(|| preview_error(preview).map(|(_, message)| message))
}

/// Edits an interval or clocked schedule; Save hands the new schedule to the page.
#[component]
pub fn SimpleScheduleEditor(
    /// The stored schedule (interval or clocked).
    initial: ScheduleSpec,
    /// Runs with the new schedule on Save.
    on_save: Callback<ScheduleSpec>,
    /// True while a save is under way.
    #[prop(into)]
    saving: Signal<bool>,
) -> AnyView {
    let (kind, every, period, at) = match &initial {
        ScheduleSpec::Interval { every, period } => (
            "interval",
            every.to_string(),
            period_name(*period),
            String::new(),
        ),
        ScheduleSpec::Clocked { at } => ("clocked", String::new(), "seconds", at.to_rfc3339()),
        ScheduleSpec::Crontab(_) => ("crontab", String::new(), "seconds", String::new()),
    };
    let every = RwSignal::new(every);
    let period = RwSignal::new(period.to_owned());
    let at = RwSignal::new(at);
    let checked = Memo::new(move |_| {
        spec_from_inputs(kind, "", "UTC", &every.get(), &period.get(), &at.get())
    });
    let preview = schedule_preview(move || checked.get().ok());
    let problem = Memo::new(move |_| problem(checked.get().err(), preview));
    (view! {
        <div class="schedule-editor" data-testid="schedule-editor">
            {if kind == "interval" {
                view! {
                    <label>"Every "
                        <input data-testid="interval-every" type="number" min="1" prop:value=move || every.get()
                            on:input=move |event| every.set(event_target_value(&event)) />
                    </label>
                    " "
                    <select data-testid="interval-period" on:change=move |event| period.set(event_target_value(&event))>
                        {PERIODS.iter().map(|(name, _)| view! {
                            <option value=*name selected=move || period.get() == *name>{*name}</option>
                        }).collect_view()}
                    </select>
                }.into_any()
            } else {
                view! {
                    <label>"At (RFC 3339, UTC) "
                        <input data-testid="clocked-at" prop:value=move || at.get()
                            on:input=move |event| at.set(event_target_value(&event)) />
                    </label>
                }.into_any()
            }}
            <Transition>
                {move || problem.get().map(|error| view! { <p class="error" data-testid="schedule-form-error">{error}</p> })}
            </Transition>
            <div class="actions needs-admin">
                <button data-testid="schedule-save"
                    disabled=move || saving.get() || problem.with(Option::is_some)
                    on:click=move |_| { if let Ok(spec) = checked.get_untracked() { on_save.run(spec); } }>
                    "Save"
                </button>
            </div>
        </div>
    }).into_any()
}

/// The form that creates a periodic task: name, task, arguments and a schedule of any kind.
#[component]
pub fn CreateScheduleForm(
    /// Runs with the finished form on Create.
    on_create: Callback<ScheduleForm>,
    /// True while the request is under way.
    #[prop(into)]
    saving: Signal<bool>,
) -> AnyView {
    let name = RwSignal::new(String::new());
    let task = RwSignal::new(String::new());
    let args = RwSignal::new("[]".to_owned());
    let kind = RwSignal::new("crontab".to_owned());
    let crontab = RwSignal::new("*/5 * * * *".to_owned());
    let timezone = RwSignal::new("UTC".to_owned());
    let every = RwSignal::new("30".to_owned());
    let period = RwSignal::new("seconds".to_owned());
    let at = RwSignal::new(String::new());
    let checked = Memo::new(move |_| {
        let spec = spec_from_inputs(
            &kind.get(),
            &crontab.get(),
            &timezone.get(),
            &every.get(),
            &period.get(),
            &at.get(),
        )?;
        let args: serde_json::Value = serde_json::from_str(&args.get())
            .map_err(|error| format!("args: not valid JSON ({error})"))?;
        Ok::<_, String>(ScheduleForm {
            name: Some(name.get()),
            task: Some(task.get()),
            schedule: Some(spec),
            args: Some(args),
            ..ScheduleForm::default()
        })
    });
    let preview = schedule_preview(move || checked.get().ok().and_then(|form| form.schedule));
    let problem = Memo::new(move |_| problem(checked.get().err(), preview));
    let description = move || {
        preview
            .get()
            .and_then(Result::ok)
            .flatten()
            .map(|preview| preview.description)
            .unwrap_or_default()
    };
    let input = |signal: RwSignal<String>, test_id: &'static str| {
        view! {
            <input data-testid=test_id prop:value=move || signal.get()
                on:input=move |event| signal.set(event_target_value(&event)) />
        }
    };
    (view! {
        <form class="create-schedule needs-admin" data-testid="create-schedule" on:submit=move |event| {
            event.prevent_default();
            if let Ok(form) = checked.get_untracked() { on_create.run(form); }
        }>
            <label>"Name " {input(name, "create-name")}</label>
            <label>"Task " {input(task, "create-task")}</label>
            <label>"Arguments (JSON array) " {input(args, "create-args")}</label>
            <label>"Kind "
                <select data-testid="create-kind" on:change=move |event| kind.set(event_target_value(&event))>
                    <option value="crontab">"crontab"</option>
                    <option value="interval">"interval"</option>
                    <option value="clocked">"clocked"</option>
                </select>
            </label>
            <Show when=move || kind.get() == "crontab">
                <label>"Crontab (m h dom mon dow) " {input(crontab, "create-crontab")}</label>
                <label>"Time zone " {input(timezone, "create-timezone")}</label>
            </Show>
            <Show when=move || kind.get() == "interval">
                <label>"Every " {input(every, "create-every")}</label>
                <select on:change=move |event| period.set(event_target_value(&event))>
                    {PERIODS.iter().map(|(name, _)| view! {
                        <option value=*name selected=*name == "seconds">{*name}</option>
                    }).collect_view()}
                </select>
            </Show>
            <Show when=move || kind.get() == "clocked">
                <label>"At (RFC 3339) " {input(at, "create-at")}</label>
            </Show>
            <Transition>
                <p data-testid="create-description">{description}</p>
                {move || problem.get().map(|error| view! { <p class="error" data-testid="create-error">{error}</p> })}
            </Transition>
            <button type="submit" data-testid="create-submit"
                disabled=move || saving.get() || problem.with(Option::is_some)>"Create"</button>
        </form>
    }).into_any()
}
