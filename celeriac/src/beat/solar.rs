//! `Solar`: "at sunrise here", django-celery-beat's `SolarSchedule` (`event`, `latitude`,
//! `longitude`) and Celery's `solar(event, lat, lon)`.
//!
//! The next run after a run at `last_run_at` is the event's first occurrence after it, found
//! as Celery finds it (`celery.schedules.solar` on PyEphem, see `sun`): the Sun's upper limb
//! 34′ below the horizon for sunrise and sunset, its centre 6°, 12° and 18° below for civil,
//! nautical and astronomical dawn and dusk, its transit for solar noon; no refraction, sea
//! level. Two places where Celery 5.4 and 5.7 differ, we follow 5.7, which fixed them:
//! - `dusk_astronomical` is the Sun's centre setting through −18°; Celery before 5.7 used +18°
//!   (celery/celery#10101), which fires in the afternoon.
//! - Where the event does not happen on a day (sunrise in polar night, astronomical dusk in a
//!   northern summer), the search goes on from the next anti-transit, for up to 366 days;
//!   Celery 5.4's fallback raises a `TypeError` there and beat stops.
//!
//! Coordinates are kept as django-celery-beat keeps them, `DecimalField(max_digits=9,
//! decimal_places=6)`: whole millionths of a degree, so equal schedules compare equal and the
//! text written back to Django is the text read.

mod sun;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use sun::{Observer, SECOND};

/// The most days searched for an event that does not happen every day (Celery 5.7's
/// `solar.max_search_days`).
const MAX_SEARCH_DAYS: usize = 366;

/// Which moment of the Sun's day, spelled as django-celery-beat's `event` column and Celery's
/// `solar` event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolarEvent {
    /// The Sun's centre rises through −18°: the sky starts to brighten.
    DawnAstronomical,
    /// The Sun's centre rises through −12°.
    DawnNautical,
    /// The Sun's centre rises through −6°.
    DawnCivil,
    /// The Sun's upper limb rises through −34′ (the horizon, allowing for refraction).
    Sunrise,
    /// The Sun crosses the meridian.
    SolarNoon,
    /// The Sun's upper limb sets through −34′.
    Sunset,
    /// The Sun's centre sets through −6°.
    DuskCivil,
    /// The Sun's centre sets through −12°.
    DuskNautical,
    /// The Sun's centre sets through −18°: full night.
    DuskAstronomical,
}

impl SolarEvent {
    /// Every event, in the order of a day.
    pub const ALL: [SolarEvent; 9] = [
        SolarEvent::DawnAstronomical,
        SolarEvent::DawnNautical,
        SolarEvent::DawnCivil,
        SolarEvent::Sunrise,
        SolarEvent::SolarNoon,
        SolarEvent::Sunset,
        SolarEvent::DuskCivil,
        SolarEvent::DuskNautical,
        SolarEvent::DuskAstronomical,
    ];

    /// The name in django-celery-beat's `event` column (`sunrise`, `dusk_civil`).
    pub fn name(self) -> &'static str {
        match self {
            SolarEvent::DawnAstronomical => "dawn_astronomical",
            SolarEvent::DawnNautical => "dawn_nautical",
            SolarEvent::DawnCivil => "dawn_civil",
            SolarEvent::Sunrise => "sunrise",
            SolarEvent::SolarNoon => "solar_noon",
            SolarEvent::Sunset => "sunset",
            SolarEvent::DuskCivil => "dusk_civil",
            SolarEvent::DuskNautical => "dusk_nautical",
            SolarEvent::DuskAstronomical => "dusk_astronomical",
        }
    }

    /// django-celery-beat's label for the event ("Astronomical dawn", "Solar noon").
    pub fn label(self) -> &'static str {
        match self {
            SolarEvent::DawnAstronomical => "Astronomical dawn",
            SolarEvent::DawnNautical => "Nautical dawn",
            SolarEvent::DawnCivil => "Civil dawn",
            SolarEvent::Sunrise => "Sunrise",
            SolarEvent::SolarNoon => "Solar noon",
            SolarEvent::Sunset => "Sunset",
            SolarEvent::DuskCivil => "Civil dusk",
            SolarEvent::DuskNautical => "Nautical dusk",
            SolarEvent::DuskAstronomical => "Astronomical dusk",
        }
    }

    /// The altitude in degrees, whether it is the centre's (else the upper limb's), and whether
    /// the Sun is rising; `None` for solar noon (a transit).
    fn crossing(self) -> Option<(f64, bool, bool)> {
        const LIMB: f64 = -34.0 / 60.0;
        match self {
            SolarEvent::DawnAstronomical => Some((-18.0, true, true)),
            SolarEvent::DawnNautical => Some((-12.0, true, true)),
            SolarEvent::DawnCivil => Some((-6.0, true, true)),
            SolarEvent::Sunrise => Some((LIMB, false, true)),
            SolarEvent::SolarNoon => None,
            SolarEvent::Sunset => Some((LIMB, false, false)),
            SolarEvent::DuskCivil => Some((-6.0, true, false)),
            SolarEvent::DuskNautical => Some((-12.0, true, false)),
            SolarEvent::DuskAstronomical => Some((-18.0, true, false)),
        }
    }
}

impl fmt::Display for SolarEvent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for SolarEvent {
    type Err = SolarError;

    fn from_str(text: &str) -> Result<SolarEvent, SolarError> {
        SolarEvent::ALL
            .into_iter()
            .find(|event| event.name() == text.trim())
            .ok_or_else(|| SolarError::UnknownEvent {
                text: text.to_owned(),
            })
    }
}

/// A solar schedule: an event of the Sun's day at a place.
///
/// ```
/// use celeriac::beat::{Solar, SolarEvent};
/// use chrono::{TimeZone, Utc};
///
/// let greenwich = Solar::parse("solar_noon", "51.4769", "0").unwrap();
/// assert_eq!(greenwich.event(), SolarEvent::SolarNoon);
/// // Around 2026-03-20 the Sun crosses Greenwich's meridian at about 12:07 UT.
/// let after = Utc.with_ymd_and_hms(2026, 3, 20, 0, 0, 0).unwrap();
/// let noon = greenwich.next_after(after).unwrap();
/// assert_eq!(noon.format("%H:%M").to_string(), "12:07");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "SolarFields", into = "SolarFields")]
pub struct Solar {
    event: SolarEvent,
    /// Millionths of a degree, −90° to 90°.
    latitude: i32,
    /// Millionths of a degree, −180° to 180°, east positive.
    longitude: i32,
}

/// The serde form of [`Solar`]: coordinates as JSON numbers.
#[derive(Serialize, Deserialize)]
struct SolarFields {
    event: SolarEvent,
    latitude: f64,
    longitude: f64,
}

impl TryFrom<SolarFields> for Solar {
    type Error = SolarError;

    fn try_from(fields: SolarFields) -> Result<Solar, SolarError> {
        Solar::new(fields.event, fields.latitude, fields.longitude)
    }
}

impl From<Solar> for SolarFields {
    fn from(solar: Solar) -> SolarFields {
        SolarFields {
            event: solar.event,
            latitude: solar.latitude(),
            longitude: solar.longitude(),
        }
    }
}

/// Why a solar schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SolarError {
    /// Not one of django-celery-beat's events.
    #[error(
        "event: {text:?} is not a solar event (dawn_astronomical, dawn_nautical, dawn_civil, \
         sunrise, solar_noon, sunset, dusk_civil, dusk_nautical, dusk_astronomical)"
    )]
    UnknownEvent {
        /// The text as written.
        text: String,
    },
    /// Not a decimal number of degrees with at most six decimal places.
    #[error("{field}: {text:?} is not a number of degrees with at most 6 decimal places")]
    NotDegrees {
        /// `latitude` or `longitude`.
        field: &'static str,
        /// The text as written.
        text: String,
    },
    /// Outside −90° to 90° (latitude) or −180° to 180° (longitude).
    #[error("{field}: {value} is out of range ({limit})")]
    OutOfRange {
        /// `latitude` or `longitude`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// The allowed range.
        limit: &'static str,
    },
}

/// Degrees to whole millionths, checking the range.
fn micro_degrees(field: &'static str, degrees: f64, bound: i32) -> Result<i32, SolarError> {
    let micro = (degrees * 1e6).round();
    let limit = if bound == 90 {
        "-90 to 90"
    } else {
        "-180 to 180"
    };
    let bound = f64::from(bound) * 1e6;
    if !micro.is_finite() || micro.abs() > bound {
        return Err(SolarError::OutOfRange {
            field,
            value: degrees.to_string(),
            limit,
        });
    }
    Ok(micro as i32)
}

/// Decimal text to whole millionths, exactly (no float rounding of what Django stored).
fn parse_degrees(field: &'static str, text: &str, bound: i32) -> Result<i32, SolarError> {
    let not_degrees = || SolarError::NotDegrees {
        field,
        text: text.to_owned(),
    };
    let trimmed = text.trim();
    if trimmed.contains(['e', 'E']) {
        // SQLite hands small REALs back as `1.0e-06`.
        let degrees: f64 = trimmed.parse().map_err(|_| not_degrees())?;
        return micro_degrees(field, degrees, bound);
    }
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.chars().all(|character| character.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || whole.len() > 3
        || fraction.len() > 6
    {
        return Err(not_degrees());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| not_degrees())?
    };
    let fraction: i64 = format!("{fraction:0<6}")
        .parse()
        .map_err(|_| not_degrees())?;
    let micro = whole * 1_000_000 + fraction;
    if micro > i64::from(bound) * 1_000_000 {
        return Err(SolarError::OutOfRange {
            field,
            value: trimmed.to_owned(),
            limit: if bound == 90 {
                "-90 to 90"
            } else {
                "-180 to 180"
            },
        });
    }
    // In range, so it fits an i32 (180,000,000 < 2^31).
    Ok(if negative { -micro } else { micro } as i32)
}

/// Whole millionths as django-celery-beat's decimal text, `37.774900`.
fn degrees_text(micro: i32) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let magnitude = micro.unsigned_abs();
    format!(
        "{sign}{}.{:06}",
        magnitude / 1_000_000,
        magnitude % 1_000_000
    )
}

impl Solar {
    /// `event` at `latitude`, `longitude` (degrees, east positive), rounded to millionths as
    /// Django stores them; fails outside −90..90 and −180..180.
    pub fn new(event: SolarEvent, latitude: f64, longitude: f64) -> Result<Solar, SolarError> {
        Ok(Solar {
            event,
            latitude: micro_degrees("latitude", latitude, 90)?,
            longitude: micro_degrees("longitude", longitude, 180)?,
        })
    }

    /// From django-celery-beat's columns or a form: the event name and decimal degrees.
    pub fn parse(event: &str, latitude: &str, longitude: &str) -> Result<Solar, SolarError> {
        Ok(Solar {
            event: event.parse()?,
            latitude: parse_degrees("latitude", latitude, 90)?,
            longitude: parse_degrees("longitude", longitude, 180)?,
        })
    }

    /// Which event.
    pub fn event(&self) -> SolarEvent {
        self.event
    }

    /// Degrees north.
    pub fn latitude(&self) -> f64 {
        f64::from(self.latitude) / 1e6
    }

    /// Degrees east.
    pub fn longitude(&self) -> f64 {
        f64::from(self.longitude) / 1e6
    }

    /// The latitude as django-celery-beat's decimal text (`37.774900`).
    pub fn latitude_text(&self) -> String {
        degrees_text(self.latitude)
    }

    /// The longitude as django-celery-beat's decimal text (`-122.419400`).
    pub fn longitude_text(&self) -> String {
        degrees_text(self.longitude)
    }

    /// The event's first occurrence strictly after `instant` (module docs), to the
    /// microsecond; `None` past the end of chrono's calendar.
    pub fn next_after(&self, instant: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let observer = Observer::new(self.latitude(), self.longitude());
        let start = days_since_j2000(instant);
        let found = match self.event.crossing() {
            None => observer.next_transit(start, 0.0),
            Some((altitude, use_center, rising)) => {
                let horizon = altitude.to_radians();
                let mut from = start;
                let mut found = None;
                for _ in 0..MAX_SEARCH_DAYS {
                    match observer.next_rise_or_set(from, horizon, use_center, rising) {
                        Ok(day) => {
                            found = Some(day);
                            break;
                        }
                        Err(_) => from = observer.next_transit(from, std::f64::consts::PI),
                    }
                }
                // Celery 5.7 checks again where the search stopped.
                found.unwrap_or(from)
            }
        };
        let at = instant_at(found)?;
        // A search that started a hair before the event can land a microsecond short of it.
        if at > instant {
            Some(at)
        } else {
            self.next_after(instant_at(start + SECOND)?)
        }
    }

    /// "Sunrise at 37.774900, -122.419400" (django-celery-beat's label and decimal text).
    pub fn describe(&self) -> String {
        format!(
            "{} at {}, {}",
            self.event.label(),
            self.latitude_text(),
            self.longitude_text()
        )
    }
}

/// The Unix time of J2000.0, 2000-01-01 12:00:00 UT.
const J2000_UNIX_SECONDS: i64 = 946_728_000;

fn days_since_j2000(instant: DateTime<Utc>) -> f64 {
    let micros = instant
        .timestamp_micros()
        .saturating_sub(J2000_UNIX_SECONDS * 1_000_000);
    micros as f64 / 86_400_000_000.0
}

fn instant_at(days: f64) -> Option<DateTime<Utc>> {
    let micros = (days * 86_400_000_000.0).round();
    if !micros.is_finite() || micros.abs() > 9.0e18 {
        return None;
    }
    DateTime::from_timestamp(J2000_UNIX_SECONDS, 0)?
        .checked_add_signed(TimeDelta::microseconds(micros as i64))
}

#[cfg(test)]
mod tests;
