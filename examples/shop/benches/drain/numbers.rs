//! Numbers as the benchmark tables print them; shared by the drain and events benchmarks.

/// `12345.6` as `12,346`; `n/a` for what could not be measured.
pub(crate) fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    let digits = format!("{:.0}", value.round());
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 && digit != '-' {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A ratio as `3.4×`; `n/a` for what could not be measured.
pub(crate) fn ratio(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}×")
    } else {
        "n/a".to_owned()
    }
}
