//! Dates and date-times: MISP's `date` fields and the `datetime` attribute type.

use super::scalar::is_digits;

/// An ISO-8601 date-time, written as MISP writes it: `YYYY-MM-DDTHH:MM:SS.ffffff+hhmm`.
/// Accepted: a date alone, or a date, `T` or a space, `HH:MM[:SS[.fraction]]` and an optional
/// zone (`Z`, `±hh`, `±hhmm`, `±hh:mm`); a missing zone means UTC.
pub(super) fn datetime(value: &str) -> Result<String, String> {
    parse_datetime(value).ok_or_else(|| "expected an ISO 8601 date and time".to_string())
}

/// The work of [`datetime`].
fn parse_datetime(value: &str) -> Option<String> {
    let date = value.get(..10)?;
    if !is_date(date) {
        return None;
    }
    let rest = &value[10..];
    if rest.is_empty() {
        return Some(format!("{date}T00:00:00.000000+0000"));
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let fields: Vec<&str> = clock.split(':').collect();
    let field = |i: usize, max: u32| -> Option<u32> {
        let text = fields.get(i).copied().unwrap_or("00");
        (text.len() == 2 && is_digits(text))
            .then(|| text.parse().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    if !(2..=3).contains(&fields.len()) || (!fraction.is_empty() && !is_digits(fraction)) {
        return None;
    }
    let (hour, minute, second) = (field(0, 23)?, field(1, 59)?, field(2, 60)?);
    let micros: String = format!("{fraction:0<6}").chars().take(6).collect();
    let offset = match zone {
        "" | "Z" | "z" => "+0000".to_string(),
        _ => {
            let (sign, digits) = zone.split_at(1);
            let digits = digits.replace(':', "");
            let digits = if digits.len() == 2 {
                format!("{digits}00")
            } else {
                digits
            };
            if digits.len() != 4 || !is_digits(&digits) {
                return None;
            }
            format!("{sign}{digits}")
        }
    };
    Some(format!(
        "{date}T{hour:02}:{minute:02}:{second:02}.{micros}{offset}"
    ))
}

/// Whether `text` is a real calendar date `YYYY-MM-DD`.
pub(crate) fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .filter(|s| is_digits(s))
            .and_then(|s| s.parse::<u32>().ok())
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_in_misp_format() {
        let cases = [
            ("2020-01-31", "2020-01-31T00:00:00.000000+0000"),
            ("2020-01-31T10:20:30Z", "2020-01-31T10:20:30.000000+0000"),
            ("2020-01-31 10:20", "2020-01-31T10:20:00.000000+0000"),
            (
                "2020-01-31T10:20:30.5+02:00",
                "2020-01-31T10:20:30.500000+0200",
            ),
            (
                "2020-01-31T10:20:30.1234567-0530",
                "2020-01-31T10:20:30.123456-0530",
            ),
            ("2020-01-31T10:20:30+01", "2020-01-31T10:20:30.000000+0100"),
        ];
        for (input, expected) in cases {
            assert_eq!(datetime(input), Ok(expected.to_string()), "{input}");
        }
        for bad in [
            "2020-02-30",
            "2020-01-31T25:00",
            "31/01/2020",
            "2020-01-31T10",
            "yesterday",
        ] {
            assert!(datetime(bad).is_err(), "{bad}");
        }
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2023-13-01"));
    }
}
