//! One crontab field: its grammar (Celery's `crontab_parser`), the set of values it matches, and
//! the canonical text it is written back as.
//!
//! The grammar is Celery's: a comma-separated list of parts, each `*`, a number, or a range
//! `a-b`, where `*` and ranges may carry a step (`*/15`, `1-30/5`). A range whose end is smaller
//! than its start wraps around the field's maximum, as in Celery (`22-2` is 22, 23, 0, 1, 2;
//! `fri-mon` is Friday to Monday). Whitespace around parts is ignored.
//!
//! Where we accept more than Celery, the canonical text stays within what Celery accepts, so a
//! row written by us can be read by Python beat:
//! - `day_of_week` takes 7 for Sunday (cron's habit); Celery rejects 7. It is written back as 0.
//! - `month_of_year` takes month names (`jan`…`dec`); Celery only knows day names. Months are
//!   written back as numbers.
//!
//! Where we accept less: Celery takes a day name in *any* field (`minute="mon"` means 1) and any
//! word starting with a day abbreviation (`"monkey"`); we take day names only in `day_of_week`,
//! and only the three-letter abbreviation or the full English name, in any case. Celery also
//! reads only the start of a range it can match (`1-2-3` is `1-2`); we refuse the part.
//!
//! `tests/it/crontab_interop.rs` checks all of this against Celery 5.4's own parser.
//!
//! Invariant: a [`FieldSet`] is never empty and holds only values inside its field's range.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The five fields of a crontab, in Celery's keyword names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrontabField {
    /// Minute of the hour, 0-59.
    Minute,
    /// Hour of the day, 0-23.
    Hour,
    /// Day of the week, 0-6 with Sunday = 0 (7 is also read as Sunday).
    DayOfWeek,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month of the year, 1-12.
    MonthOfYear,
}

impl CrontabField {
    /// The field's name as Celery and django-celery-beat spell it.
    pub fn name(self) -> &'static str {
        match self {
            CrontabField::Minute => "minute",
            CrontabField::Hour => "hour",
            CrontabField::DayOfWeek => "day_of_week",
            CrontabField::DayOfMonth => "day_of_month",
            CrontabField::MonthOfYear => "month_of_year",
        }
    }

    /// The smallest value the field matches.
    pub fn min(self) -> u32 {
        match self {
            CrontabField::Minute | CrontabField::Hour | CrontabField::DayOfWeek => 0,
            CrontabField::DayOfMonth | CrontabField::MonthOfYear => 1,
        }
    }

    /// The largest value the field matches (6 for `day_of_week`: 7 is read as 0).
    pub fn max(self) -> u32 {
        match self {
            CrontabField::Minute => 59,
            CrontabField::Hour => 23,
            CrontabField::DayOfWeek => 6,
            CrontabField::DayOfMonth => 31,
            CrontabField::MonthOfYear => 12,
        }
    }

    /// The largest number the text may contain: `day_of_week` accepts 7 for Sunday.
    pub(crate) fn max_written(self) -> u32 {
        match self {
            CrontabField::DayOfWeek => 7,
            other => other.max(),
        }
    }
}

impl fmt::Display for CrontabField {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Why one field's text is not a valid crontab field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// The field is empty (Celery's default is `*`).
    #[error("no value given (use * for every value)")]
    Empty,
    /// A comma-separated list has an empty item.
    #[error("empty list item in {text:?}")]
    EmptyItem {
        /// The whole field text.
        text: String,
    },
    /// A number is outside the field's range.
    #[error("{value} is out of range {min}-{max}")]
    OutOfRange {
        /// The number as written.
        value: String,
        /// The field's smallest value.
        min: u32,
        /// The field's largest value as written (7 for `day_of_week`).
        max: u32,
    },
    /// A word in `day_of_week` is not a day name.
    #[error("{text:?} is not a day name")]
    NotADayName {
        /// The word as written.
        text: String,
    },
    /// A word in `month_of_year` is not a month name.
    #[error("{text:?} is not a month name")]
    NotAMonthName {
        /// The word as written.
        text: String,
    },
    /// Something that should be a number is not one.
    #[error("{text:?} is not a number")]
    NotANumber {
        /// The text as written.
        text: String,
    },
    /// Celery does not support negative numbers.
    #[error("negative numbers are not allowed ({text:?})")]
    Negative {
        /// The part as written.
        text: String,
    },
    /// A `/` with nothing after it.
    #[error("{text:?} has no step after \"/\"")]
    MissingStep {
        /// The part as written.
        text: String,
    },
    /// A step of zero would never advance.
    #[error("step 0 is not allowed")]
    ZeroStep,
    /// A step after a single number (`5/15`): Celery only steps `*` and ranges.
    #[error("{text:?}: a step needs * or a range before \"/\"")]
    StepWithoutRange {
        /// The part as written.
        text: String,
    },
}

/// The values one crontab field matches: bit `n` set means value `n` matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FieldSet(u64);

impl FieldSet {
    /// Every value of the field.
    pub(crate) fn full(field: CrontabField) -> FieldSet {
        let mut bits = 0u64;
        for value in field.min()..=field.max() {
            bits |= 1 << value;
        }
        FieldSet(bits)
    }

    /// The set holding exactly these values; `None` if one is outside the field or none given.
    pub(crate) fn from_values(
        field: CrontabField,
        values: impl IntoIterator<Item = u32>,
    ) -> Option<FieldSet> {
        let mut bits = 0u64;
        for value in values {
            if value < field.min() || value > field.max() {
                return None;
            }
            bits |= 1 << value;
        }
        (bits != 0).then_some(FieldSet(bits))
    }

    pub(crate) fn contains(self, value: u32) -> bool {
        value < 64 && self.0 & (1 << value) != 0
    }

    /// The smallest member that is at least `value`.
    pub(crate) fn next_at_or_after(self, value: u32) -> Option<u32> {
        if value >= 64 {
            return None;
        }
        let remaining = self.0 >> value;
        (remaining != 0).then(|| value + remaining.trailing_zeros())
    }

    pub(crate) fn first(self) -> u32 {
        self.0.trailing_zeros()
    }

    pub(crate) fn len(self) -> u32 {
        self.0.count_ones()
    }

    pub(crate) fn is_full(self, field: CrontabField) -> bool {
        self == FieldSet::full(field)
    }

    /// The members in increasing order.
    pub(crate) fn values(self) -> impl Iterator<Item = u32> {
        (0..64u32).filter(move |value| self.contains(*value))
    }

    /// Parses one field with Celery's grammar (see the module docs).
    pub(crate) fn parse(field: CrontabField, text: &str) -> Result<FieldSet, FieldProblem> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(FieldProblem::Empty);
        }
        let mut bits = 0u64;
        for part in trimmed.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(FieldProblem::EmptyItem {
                    text: trimmed.to_owned(),
                });
            }
            for value in parse_part(field, part)? {
                // Sunday may be written 7 (cron) but is stored as 0 (Celery).
                let value = if field == CrontabField::DayOfWeek && value == 7 {
                    0
                } else {
                    value
                };
                bits |= 1 << value;
            }
        }
        Ok(FieldSet(bits))
    }

    /// The shortest canonical text that Celery parses back to this set.
    pub(crate) fn render(self, field: CrontabField) -> String {
        self.shape(field).to_string()
    }

    /// The set's structure, shared by [`FieldSet::render`] and the descriptions.
    pub(crate) fn shape(self, field: CrontabField) -> Shape {
        if self.is_full(field) {
            return Shape::Every;
        }
        let values: Vec<u32> = self.values().collect();
        // Two values read better as a list ("0,30") than as a step ("*/30").
        if let Some(step) = common_step(&values).filter(|_| values.len() >= 3) {
            let first = values[0];
            let last = values[values.len() - 1];
            if first == field.min() && last + step > field.max() {
                return Shape::EveryStep(step);
            }
            return Shape::Stepped {
                from: first,
                to: last,
                step,
            };
        }
        Shape::Items(runs(&values))
    }
}

/// The step between all values if they form an arithmetic progression with a step of at least 2.
fn common_step(values: &[u32]) -> Option<u32> {
    if values.len() < 2 {
        return None;
    }
    let step = values[1] - values[0];
    let uniform = values.windows(2).all(|pair| pair[1] - pair[0] == step);
    (uniform && step >= 2).then_some(step)
}

/// Splits sorted values into runs of consecutive numbers; runs shorter than three stay single.
fn runs(values: &[u32]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut index = 0;
    while index < values.len() {
        let start = values[index];
        let mut end_index = index;
        while end_index + 1 < values.len() && values[end_index + 1] == values[end_index] + 1 {
            end_index += 1;
        }
        if end_index - index >= 2 {
            items.push(Item::Range(start, values[end_index]));
            index = end_index + 1;
        } else {
            items.push(Item::Single(start));
            index += 1;
        }
    }
    items
}

/// The structure of a field's set, from which both the canonical text and the English are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `*`.
    Every,
    /// `*/n`: every n-th value from the field's minimum.
    EveryStep(u32),
    /// `a-b/n`.
    Stepped { from: u32, to: u32, step: u32 },
    /// A list of single values and ranges, in increasing order.
    Items(Vec<Item>),
}

/// One entry of a [`Shape::Items`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    Single(u32),
    Range(u32, u32),
}

impl fmt::Display for Shape {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Every => formatter.write_str("*"),
            Shape::EveryStep(step) => write!(formatter, "*/{step}"),
            Shape::Stepped { from, to, step } => write!(formatter, "{from}-{to}/{step}"),
            Shape::Items(items) => {
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str(",")?;
                    }
                    match item {
                        Item::Single(value) => write!(formatter, "{value}")?,
                        Item::Range(from, to) => write!(formatter, "{from}-{to}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// Expands one comma-separated part into its values, in Celery's order (which matters for
/// steps over wrapped ranges: `22-2/2` is 22, 0, 2).
fn parse_part(field: CrontabField, part: &str) -> Result<Vec<u32>, FieldProblem> {
    let (base, step) = match part.split_once('/') {
        Some((base, step_text)) => {
            let step_text = step_text.trim();
            if step_text.is_empty() {
                return Err(FieldProblem::MissingStep {
                    text: part.to_owned(),
                });
            }
            let step = parse_digits(step_text).ok_or_else(|| FieldProblem::NotANumber {
                text: step_text.to_owned(),
            })?;
            if step == 0 {
                return Err(FieldProblem::ZeroStep);
            }
            (base.trim(), Some(step))
        }
        None => (part, None),
    };
    if base.starts_with('-') {
        return Err(FieldProblem::Negative {
            text: part.to_owned(),
        });
    }
    let values: Vec<u32> = if base == "*" {
        (field.min()..=field.max()).collect()
    } else if let Some((from_text, to_text)) = base.split_once('-') {
        let mut from = parse_value(field, from_text.trim())?;
        let to = parse_value(field, to_text.trim())?;
        // Sunday as 7 starts a range as 0 ("7-1") but may end one ("5-7"); wrapping goes
        // through 6, as Celery's does, so steps over a wrapped range match Celery's.
        if field == CrontabField::DayOfWeek && from == 7 {
            from = 0;
        }
        if from <= to {
            (from..=to).collect()
        } else {
            (from..=field.max()).chain(field.min()..=to).collect()
        }
    } else {
        if step.is_some() {
            return Err(FieldProblem::StepWithoutRange {
                text: part.to_owned(),
            });
        }
        vec![parse_value(field, base)?]
    };
    let step = usize::try_from(step.unwrap_or(1)).unwrap_or(usize::MAX);
    Ok(values.into_iter().step_by(step).collect())
}

/// A non-negative decimal number made of ASCII digits only.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // Digits that overflow are still a number, just a huge one.
    Some(text.parse::<u64>().unwrap_or(u64::MAX))
}

/// One number or name, checked against the field's range.
fn parse_value(field: CrontabField, text: &str) -> Result<u32, FieldProblem> {
    if text.starts_with('-') {
        return Err(FieldProblem::Negative {
            text: text.to_owned(),
        });
    }
    if let Some(number) = parse_digits(text) {
        if number < u64::from(field.min()) || number > u64::from(field.max_written()) {
            return Err(FieldProblem::OutOfRange {
                value: text.to_owned(),
                min: field.min(),
                max: field.max_written(),
            });
        }
        return Ok(number as u32);
    }
    let lowercase = text.to_ascii_lowercase();
    match field {
        CrontabField::DayOfWeek => {
            name_index(&DAY_NAMES, &lowercase).ok_or_else(|| FieldProblem::NotADayName {
                text: text.to_owned(),
            })
        }
        CrontabField::MonthOfYear => name_index(&MONTH_NAMES, &lowercase)
            .map(|index| index + 1)
            .ok_or_else(|| FieldProblem::NotAMonthName {
                text: text.to_owned(),
            }),
        _ => Err(FieldProblem::NotANumber {
            text: text.to_owned(),
        }),
    }
}

/// The position of a name given as its three-letter abbreviation or in full.
fn name_index(names: &[&str], lowercase: &str) -> Option<u32> {
    names
        .iter()
        .position(|name| {
            *name == lowercase || (lowercase.len() == 3 && name.starts_with(lowercase))
        })
        .map(|index| index as u32)
}

/// Day names in Celery's numbering: Sunday is 0.
pub(crate) const DAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Month names; January is 1, so index + 1.
pub(crate) const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
