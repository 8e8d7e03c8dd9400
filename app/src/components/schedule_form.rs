//! Forms for the schedule kinds without a field-by-field editor: an interval ("every 30
//! seconds"), a clocked instant and a solar event ("sunset at 48.8566, 2.3522"), and the
//! whole form that creates a periodic task of any kind. The text is parsed here; the server
//! checks the schedule with the engine's rules as the user types ([`schedule_preview`]) and
//! again when it is saved.

use celeriac::beat::{CrontabSpec, IntervalPeriod, SolarEvent};
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

/// Every kind's text inputs, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
struct Inputs {
    crontab: String,
    timezone: String,
    every: String,
    period: String,
    at: String,
    event: String,
    latitude: String,
    longitude: String,
}

impl Inputs {
    /// Empty inputs with each select's first choice (UTC, seconds, sunrise).
    fn blank() -> Inputs {
        Inputs {
            timezone: "UTC".to_owned(),
            period: "seconds".to_owned(),
            event: SolarEvent::Sunrise.name().to_owned(),
            ..Inputs::default()
        }
    }

    /// The inputs showing `spec` (the others as in [`Inputs::blank`]).
    fn of(spec: &ScheduleSpec) -> (&'static str, Inputs) {
        let mut inputs = Inputs::blank();
        let kind = match spec {
            ScheduleSpec::Crontab(_) => "crontab",
            ScheduleSpec::Interval { every, period } => {
                inputs.every = every.to_string();
                inputs.period = period_name(*period).to_owned();
                "interval"
            }
            ScheduleSpec::Clocked { at } => {
                inputs.at = at.to_rfc3339();
                "clocked"
            }
            ScheduleSpec::Solar {
                event,
                latitude,
                longitude,
            } => {
                inputs.event = event.clone();
                inputs.latitude = latitude.clone();
                inputs.longitude = longitude.clone();
                "solar"
            }
        };
        (kind, inputs)
    }
}

/// The schedule a kind's text inputs describe, or the message naming the field at fault.
fn spec_from_inputs(kind: &str, inputs: &Inputs) -> Result<ScheduleSpec, String> {
    let spec = match kind {
        "crontab" => {
            let fields: Vec<&str> = inputs.crontab.split_whitespace().collect();
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
                timezone: inputs.timezone.trim().into(),
            })
        }
        "interval" => ScheduleSpec::Interval {
            every: inputs
                .every
                .trim()
                .parse()
                .map_err(|_| format!("every: {:?} is not a whole number", inputs.every))?,
            period: period_of(&inputs.period),
        },
        "solar" => ScheduleSpec::Solar {
            event: inputs.event.clone(),
            latitude: inputs.latitude.trim().to_owned(),
            longitude: inputs.longitude.trim().to_owned(),
        },
        _ => ScheduleSpec::Clocked {
            at: DateTime::parse_from_rfc3339(inputs.at.trim())
                .map_err(|_| {
                    format!(
                        "at: {:?} is not an RFC 3339 time (2030-01-01T09:00:00Z)",
                        inputs.at
                    )
                })?
                .with_timezone(&Utc),
        },
    };
    Ok(spec)
}

/// The test ids of the solar inputs (event, latitude, longitude) in the editor and the
/// create form.
const SOLAR_EDIT_IDS: [&str; 3] = ["solar-event", "solar-latitude", "solar-longitude"];
const SOLAR_CREATE_IDS: [&str; 3] = ["create-solar-event", "create-latitude", "create-longitude"];

/// The solar inputs: the event and the place, bound to `inputs`.
fn solar_inputs(inputs: RwSignal<Inputs>, test_ids: [&'static str; 3]) -> impl IntoView {
    let [event_id, latitude_id, longitude_id] = test_ids;
    view! {
        <select data-testid=event_id
            on:change=move |event| inputs.update(|inputs| inputs.event = event_target_value(&event))>
            {SolarEvent::ALL.iter().map(|event| view! {
                <option value=event.name()
                    selected=move || inputs.with(|inputs| inputs.event == event.name())>
                    {event.label()}
                </option>
            }).collect_view()}
        </select>
        " "
        <label>"at latitude "
            <input data-testid=latitude_id inputmode="decimal" placeholder="48.8566"
                prop:value=move || inputs.with(|inputs| inputs.latitude.clone())
                on:input=move |event| inputs.update(|inputs| inputs.latitude = event_target_value(&event)) />
        </label>
        " "
        <label>"longitude (east +) "
            <input data-testid=longitude_id inputmode="decimal" placeholder="2.3522"
                prop:value=move || inputs.with(|inputs| inputs.longitude.clone())
                on:input=move |event| inputs.update(|inputs| inputs.longitude = event_target_value(&event)) />
        </label>
    }
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
    let (kind, initial_inputs) = Inputs::of(&initial);
    let inputs = RwSignal::new(initial_inputs);
    let checked = Memo::new(move |_| inputs.with(|inputs| spec_from_inputs(kind, inputs)));
    let preview = schedule_preview(move || checked.get().ok());
    let problem = Memo::new(move |_| problem(checked.get().err(), preview));
    let field = |read: fn(&Inputs) -> String, write: fn(&mut Inputs, String)| {
        (
            move || inputs.with(read),
            move |event: leptos::ev::Event| {
                inputs.update(|inputs| write(inputs, event_target_value(&event)))
            },
        )
    };
    (view! {
        <div class="schedule-editor" data-testid="schedule-editor">
            {match kind {
                "interval" => {
                    let (every, set_every) = field(|inputs| inputs.every.clone(), |inputs, value| inputs.every = value);
                    let period = move || inputs.with(|inputs| inputs.period.clone());
                    view! {
                        <label>"Every "
                            <input data-testid="interval-every" type="number" min="1" prop:value=every on:input=set_every />
                        </label>
                        " "
                        <select data-testid="interval-period"
                            on:change=move |event| inputs.update(|inputs| inputs.period = event_target_value(&event))>
                            {PERIODS.iter().map(|(name, _)| view! {
                                <option value=*name selected=move || period() == *name>{*name}</option>
                            }).collect_view()}
                        </select>
                    }.into_any()
                }
                "solar" => solar_inputs(inputs, SOLAR_EDIT_IDS).into_any(),
                _ => {
                    let (at, set_at) = field(|inputs| inputs.at.clone(), |inputs, value| inputs.at = value);
                    view! {
                        <label>"At (RFC 3339, UTC) "
                            <input data-testid="clocked-at" prop:value=at on:input=set_at />
                        </label>
                    }.into_any()
                }
            }}
            <Transition>
                {move || problem.get().map(|error| view! { <p class="error" data-testid="schedule-form-error">{error}</p> })}
                // A solar schedule's next events (interval and clocked previews have no runs).
                {move || {
                    let runs = preview.get().and_then(Result::ok).flatten().map(|preview| preview.runs).unwrap_or_default();
                    (!runs.is_empty() && problem.with(Option::is_none)).then(|| view! {
                        <h3>"Next runs"</h3>
                        <ol class="next-runs" data-testid="next-runs">
                            {runs.into_iter().map(|run| view! { <li data-testid="next-run">{run.local}</li> }).collect_view()}
                        </ol>
                    })
                }}
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
    let inputs = RwSignal::new(Inputs {
        crontab: "*/5 * * * *".to_owned(),
        every: "30".to_owned(),
        ..Inputs::blank()
    });
    let checked = Memo::new(move |_| {
        let spec = inputs.with(|inputs| spec_from_inputs(&kind.get(), inputs))?;
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
    let inputs_field = move |read: fn(&Inputs) -> String,
                             write: fn(&mut Inputs, String),
                             test_id: &'static str| {
        view! {
            <input data-testid=test_id prop:value=move || inputs.with(read)
                on:input=move |event| inputs.update(|inputs| write(inputs, event_target_value(&event))) />
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
                    <option value="solar">"solar"</option>
                </select>
            </label>
            <Show when=move || kind.get() == "crontab">
                <label>"Crontab (m h dom mon dow) "
                    {inputs_field(|inputs| inputs.crontab.clone(), |inputs, value| inputs.crontab = value, "create-crontab")}
                </label>
                <label>"Time zone "
                    {inputs_field(|inputs| inputs.timezone.clone(), |inputs, value| inputs.timezone = value, "create-timezone")}
                </label>
            </Show>
            <Show when=move || kind.get() == "interval">
                <label>"Every "
                    {inputs_field(|inputs| inputs.every.clone(), |inputs, value| inputs.every = value, "create-every")}
                </label>
                <select on:change=move |event| inputs.update(|inputs| inputs.period = event_target_value(&event))>
                    {PERIODS.iter().map(|(name, _)| view! {
                        <option value=*name selected=*name == "seconds">{*name}</option>
                    }).collect_view()}
                </select>
            </Show>
            <Show when=move || kind.get() == "clocked">
                <label>"At (RFC 3339) "
                    {inputs_field(|inputs| inputs.at.clone(), |inputs, value| inputs.at = value, "create-at")}
                </label>
            </Show>
            <Show when=move || kind.get() == "solar">
                {solar_inputs(inputs, SOLAR_CREATE_IDS)}
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
