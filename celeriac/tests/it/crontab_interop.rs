//! Our crontabs against Celery 5.4's own (`tests/python/crontab_check.py`): the same text
//! expands to the same sets, our canonical text reads back in Celery to the same sets, the
//! forms we accept beyond Celery are the documented ones, and in UTC our next run equals
//! Celery's `remaining_delta` (including its rule that day of month and day of week must both
//! match).

use celeriac::beat::{Crontab, CrontabError, CrontabField, CrontabSpec};
use celeriac::testkit::CeleryPeer;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

const FIELDS: [CrontabField; 5] = [
    CrontabField::Minute,
    CrontabField::Hour,
    CrontabField::DayOfWeek,
    CrontabField::DayOfMonth,
    CrontabField::MonthOfYear,
];

/// Runs `crontab_check.py` with one request.
fn celery(request: &Value) -> Value {
    CeleryPeer::ask(&CeleryPeer::python(), "crontab_check.py", request)
}

fn spec_json(spec: &CrontabSpec) -> Value {
    json!({
        "minute": spec.minute,
        "hour": spec.hour,
        "day_of_week": spec.day_of_week,
        "day_of_month": spec.day_of_month,
        "month_of_year": spec.month_of_year,
    })
}

fn our_sets(crontab: &Crontab) -> Value {
    let mut sets = serde_json::Map::new();
    for field in FIELDS {
        sets.insert(field.name().to_owned(), json!(crontab.values(field)));
    }
    Value::Object(sets)
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as u32 % bound
    }

    fn between(&mut self, low: u32, high: u32) -> u32 {
        low + self.below(high - low + 1)
    }
}

const DAY_WORDS: [&str; 7] = ["sun", "Mon", "TUE", "wednesday", "thu", "fri", "Saturday"];

/// One field in Celery's grammar: lists of `*`, numbers, ranges (also wrapping) and steps.
fn field_text(random: &mut Random, field: CrontabField) -> String {
    let (low, high) = (field.min(), field.max());
    let value = |random: &mut Random| {
        let number = random.between(low, high);
        if field == CrontabField::DayOfWeek && random.below(3) == 0 {
            DAY_WORDS[number as usize].to_owned()
        } else {
            number.to_string()
        }
    };
    if random.below(3) == 0 {
        return "*".into();
    }
    let parts = random.between(1, 3);
    let mut texts = Vec::new();
    for _ in 0..parts {
        let step = random.between(1, (high - low).div_ceil(2) + 1);
        let text = match random.below(5) {
            0 => format!("*/{step}"),
            1 | 2 => value(random),
            3 => format!("{}-{}", value(random), value(random)),
            _ => format!("{}-{}/{step}", value(random), value(random)),
        };
        texts.push(text);
    }
    texts.join(",")
}

fn random_spec(random: &mut Random) -> CrontabSpec {
    // Date fields are `*` more often, so that most crontabs run often enough to compare.
    let date_field = |random: &mut Random, field| {
        if random.below(2) == 0 {
            "*".to_owned()
        } else {
            field_text(random, field)
        }
    };
    CrontabSpec {
        minute: field_text(random, CrontabField::Minute),
        hour: field_text(random, CrontabField::Hour),
        day_of_week: date_field(random, CrontabField::DayOfWeek),
        day_of_month: date_field(random, CrontabField::DayOfMonth),
        month_of_year: date_field(random, CrontabField::MonthOfYear),
        timezone: "UTC".into(),
    }
}

#[test]
fn same_sets_as_celery_for_celery_syntax() {
    let mut random = Random(0x5eed_c0ff_ee00_0001);
    let specs: Vec<CrontabSpec> = (0..3_000).map(|_| random_spec(&mut random)).collect();
    let request = json!({ "parse": specs.iter().map(spec_json).collect::<Vec<_>>() });
    let answers = celery(&request);
    let mut compared = 0;
    for (spec, celery_answer) in specs.iter().zip(answers["parse"].as_array().unwrap()) {
        match (Crontab::new(spec), celery_answer.get("error")) {
            (Ok(crontab), None) => {
                assert_eq!(&our_sets(&crontab), celery_answer, "{spec:?}");
                compared += 1;
            }
            (Err(our_error), Some(celery_error)) => {
                assert!(
                    !matches!(our_error, CrontabError::NeverFires { .. }),
                    "{spec:?}: we say {our_error}, Celery {celery_error}"
                );
            }
            // Celery accepts crontabs that never fire (and fails later); we refuse them.
            (Err(CrontabError::NeverFires { .. }), None) => {}
            (ours, celery_error) => panic!("{spec:?}: we say {ours:?}, Celery {celery_error:?}"),
        }
    }
    assert!(compared > 2_000, "compared {compared}");
}

#[test]
fn both_refuse_invalid_fields() {
    let invalid = [
        "*/0", "60", "1,,2", "5/15", "-5", "", "*/", "1-", "x", "1-5x",
    ];
    let specs: Vec<CrontabSpec> = invalid
        .iter()
        .map(|text| CrontabSpec {
            minute: (*text).to_owned(),
            ..CrontabSpec::default()
        })
        .collect();
    let request = json!({ "parse": specs.iter().map(spec_json).collect::<Vec<_>>() });
    let answers = celery(&request);
    for (spec, celery_answer) in specs.iter().zip(answers["parse"].as_array().unwrap()) {
        assert!(
            celery_answer.get("error").is_some(),
            "Celery accepts {spec:?}"
        );
        assert!(Crontab::new(spec).is_err(), "we accept {spec:?}");
    }
    // Celery's range pattern matches a prefix and ignores the rest ("1-2-3" is 1-2); we refuse.
    let sloppy = CrontabSpec {
        minute: "1-2-3".into(),
        ..CrontabSpec::default()
    };
    let answers = celery(&json!({ "parse": [spec_json(&sloppy)] }));
    assert_eq!(answers["parse"][0]["minute"], json!([1, 2]));
    assert!(Crontab::new(&sloppy).is_err());
}

#[test]
fn celery_reads_our_canonical_text_back_to_the_same_sets() {
    let mut random = Random(0x5eed_c0ff_ee00_0002);
    let crontabs: Vec<Crontab> = (0..3_000)
        .filter_map(|_| Crontab::new(&random_spec(&mut random)).ok())
        .collect();
    let request = json!({
        "parse": crontabs.iter().map(|crontab| spec_json(&crontab.to_spec())).collect::<Vec<_>>(),
    });
    let answers = celery(&request);
    for (crontab, celery_answer) in crontabs.iter().zip(answers["parse"].as_array().unwrap()) {
        assert_eq!(&our_sets(crontab), celery_answer, "{}", crontab);
    }
}

#[test]
fn our_extensions_are_what_celery_refuses() {
    // Documented in `beat::field`: Sunday as 7 and month names are ours, not Celery's.
    let request = json!({ "parse": [
        {"minute": "0", "hour": "0", "day_of_week": "7", "day_of_month": "*", "month_of_year": "*"},
        {"minute": "0", "hour": "0", "day_of_week": "*", "day_of_month": "*", "month_of_year": "jan"},
    ]});
    let answers = celery(&request);
    for answer in answers["parse"].as_array().unwrap() {
        assert!(answer.get("error").is_some(), "{answer}");
    }
    assert!("0 0 * * 7".parse::<Crontab>().is_ok());
    assert!("0 0 * jan *".parse::<Crontab>().is_ok());
}

#[test]
fn same_next_run_as_celery_in_utc() {
    let mut random = Random(0x5eed_c0ff_ee00_0003);
    let start = DateTime::<Utc>::from_timestamp(0, 0).unwrap(); // 1970
    let mut cases = Vec::new();
    while cases.len() < 3_000 {
        let Ok(crontab) = Crontab::new(&random_spec(&mut random)) else {
            continue;
        };
        let days = i64::from(random.below(25_567)); // to 2040
        let seconds = i64::from(random.below(86_400));
        let last_run_at = start + TimeDelta::days(days) + TimeDelta::seconds(seconds);
        cases.push((crontab, last_run_at));
    }
    let request = json!({
        "next": cases.iter().map(|(crontab, last_run_at)| json!({
            "spec": spec_json(&crontab.to_spec()),
            "last_run_at": last_run_at.to_rfc3339(),
        })).collect::<Vec<_>>(),
    });
    let answers = celery(&request);
    for ((crontab, last_run_at), celery_next) in
        cases.iter().zip(answers["next"].as_array().unwrap())
    {
        let celery_next: DateTime<Utc> = celery_next.as_str().unwrap().parse().unwrap();
        assert_eq!(
            crontab.next_after(*last_run_at),
            Some(celery_next),
            "{crontab} after {last_run_at}"
        );
    }
}
