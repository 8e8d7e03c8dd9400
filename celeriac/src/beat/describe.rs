//! English descriptions of crontabs ("At 07:30 on Monday and Friday"), in the manner of
//! cronstrue and crontab.guru, for the dashboard and logs.
//!
//! The sentence is built from each field's shape (`*`, `*/n`, `a-b/n` or a list of values and
//! ranges), so it says exactly what the sets mean, including Celery's rule that a restricted
//! day of month and a restricted day of week must both match ("on day 1 through 7 of the month
//! if it is a Monday"). Times are 24-hour `HH:MM`; weeks start on Monday; a zone other than UTC
//! is named at the end.

use super::crontab::Crontab;
use super::field::{CrontabField, FieldSet, Item, Shape, DAY_NAMES, MONTH_NAMES};

/// At most this many `HH:MM` times are listed before falling back to minute/hour phrases.
const MAX_LISTED_TIMES: u32 = 4;

impl Crontab {
    /// A one-sentence English description.
    pub fn describe(&self) -> String {
        let mut sentence = time_phrase(self.minute, self.hour);
        sentence.push_str(&day_phrase(self.day_of_month, self.day_of_week));
        if !self.month_of_year.is_full(CrontabField::MonthOfYear) {
            sentence.push_str(" in ");
            sentence.push_str(&named_list(self.month_of_year, &MONTH_NAMES, 1, "and"));
        }
        if self.timezone != chrono_tz::UTC {
            sentence.push_str(&format!(" ({})", self.timezone.name()));
        }
        sentence
    }
}

/// "At 09:00", "Every 15 minutes", "At minute 0 past every 2nd hour", ...
fn time_phrase(minute: FieldSet, hour: FieldSet) -> String {
    let minute_shape = minute.shape(CrontabField::Minute);
    let hour_shape = hour.shape(CrontabField::Hour);
    if minute.len() * hour.len() <= MAX_LISTED_TIMES {
        let times: Vec<String> = hour
            .values()
            .flat_map(|hour| {
                minute
                    .values()
                    .map(move |minute| format!("{hour:02}:{minute:02}"))
            })
            .collect();
        return format!("At {}", join(&times, "and"));
    }
    let minute_part = match &minute_shape {
        Shape::Every => "Every minute".to_owned(),
        Shape::EveryStep(step) => format!("Every {step} minutes"),
        Shape::Stepped { from, to, step } => {
            format!("Every {step} minutes from minute {from} through {to}")
        }
        Shape::Items(items) if items == &[Item::Single(0)] && hour_shape == Shape::Every => {
            return "Every hour".to_owned();
        }
        Shape::Items(items) => format!("At {}", numbered_items(items, "minute", "minutes")),
    };
    let hour_part = match &hour_shape {
        Shape::Every if matches!(minute_shape, Shape::Items(_)) => " past every hour".to_owned(),
        Shape::Every => String::new(),
        Shape::EveryStep(step) => format!(" past every {} hour", ordinal(*step)),
        Shape::Stepped { from, to, step } => {
            format!(
                " past every {} hour from {from} through {to}",
                ordinal(*step)
            )
        }
        Shape::Items(items) => format!(" past {}", numbered_items(items, "hour", "hours")),
    };
    minute_part + &hour_part
}

/// " on day 1 of the month", " on Monday through Friday", or both joined by "if it is".
fn day_phrase(day_of_month: FieldSet, day_of_week: FieldSet) -> String {
    let month_days = match day_of_month.shape(CrontabField::DayOfMonth) {
        Shape::Every => None,
        Shape::EveryStep(step) => Some(format!("every {} day of the month", ordinal(step))),
        Shape::Stepped { from, to, step } => Some(format!(
            "every {} day from {from} through {to} of the month",
            ordinal(step)
        )),
        Shape::Items(items) => Some(format!(
            "{} of the month",
            numbered_items(&items, "day", "days")
        )),
    };
    let week_days = (!day_of_week.is_full(CrontabField::DayOfWeek)).then(|| {
        // Weeks read Monday to Sunday, so Sunday (0) sorts as 7.
        FieldSet::from_values(CrontabField::Minute, day_of_week.values().map(iso_weekday))
            .expect("weekdays 1-7 fit a minute-sized set")
    });
    match (month_days, week_days) {
        (None, None) => String::new(),
        (Some(month_days), None) => format!(" on {month_days}"),
        (None, Some(week_days)) => {
            format!(" on {}", named_list(week_days, &ISO_DAY_NAMES, 1, "and"))
        }
        (Some(month_days), Some(week_days)) => format!(
            " on {month_days} if it is a {}",
            named_list(week_days, &ISO_DAY_NAMES, 1, "or")
        ),
    }
}

fn iso_weekday(sunday_first: u32) -> u32 {
    if sunday_first == 0 {
        7
    } else {
        sunday_first
    }
}

/// Day names indexed by ISO weekday - 1.
const ISO_DAY_NAMES: [&str; 7] = [
    DAY_NAMES[1],
    DAY_NAMES[2],
    DAY_NAMES[3],
    DAY_NAMES[4],
    DAY_NAMES[5],
    DAY_NAMES[6],
    DAY_NAMES[0],
];

/// "minute 5", "minutes 0 and 30", "hours 9 through 17 and 20".
fn numbered_items(items: &[Item], singular: &str, plural: &str) -> String {
    let noun = if items.len() == 1 && matches!(items[0], Item::Single(_)) {
        singular
    } else {
        plural
    };
    let texts: Vec<String> = items
        .iter()
        .map(|item| match item {
            Item::Single(value) => value.to_string(),
            Item::Range(from, to) => format!("{from} through {to}"),
        })
        .collect();
    format!("{noun} {}", join(&texts, "and"))
}

/// Capitalized names for the set's values (value `first` is `names[0]`), consecutive runs of
/// three or more as "X through Y".
fn named_list(set: FieldSet, names: &[&str], first: u32, conjunction: &str) -> String {
    let name = |value: u32| capitalize(names[(value - first) as usize]);
    let values: Vec<u32> = set.values().collect();
    let mut texts = Vec::new();
    let mut index = 0;
    while index < values.len() {
        let mut end = index;
        while end + 1 < values.len() && values[end + 1] == values[end] + 1 {
            end += 1;
        }
        if end - index >= 2 {
            texts.push(format!(
                "{} through {}",
                name(values[index]),
                name(values[end])
            ));
            index = end + 1;
        } else {
            texts.push(name(values[index]));
            index += 1;
        }
    }
    join(&texts, conjunction)
}

fn capitalize(word: &str) -> String {
    let mut characters = word.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// "a", "a and b", "a, b and c".
fn join(texts: &[String], conjunction: &str) -> String {
    match texts {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

/// 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, ...
fn ordinal(number: u32) -> String {
    let suffix = match (number % 10, number % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{number}{suffix}")
}

#[cfg(test)]
mod tests;
