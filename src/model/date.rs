//! Proleptic Gregorian calendar arithmetic on day counts since 1970-01-01 (Howard Hinnant's
//! `civil_from_days` and `days_from_civil`), for MISP dates and RFC 3339 times without a
//! date-time dependency.

/// The civil date (year, month 1–12, day 1–31) `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Days from 1970-01-01 to the civil date `year`-`month`-`day`.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the epoch of an ISO 8601 time as MISP writes `first_seen` and `last_seen`:
/// `YYYY-MM-DD`, optionally with `THH:MM[:SS[.fraction]]` and a zone (`Z`, `±HH:MM`, `±HHMM`;
/// none is UTC). `None` when it is not one.
pub fn iso_seconds(text: &str) -> Option<i64> {
    let text = text.trim();
    let number = |digits: &str| -> Option<i64> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, ""));
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let (year, month, day) = (number(y)?, number(m)?, number(d)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => (&time[..at], &time[at..]),
        None => (time, ""),
    };
    let offset = match offset.as_bytes().first() {
        None | Some(b'Z' | b'z') if offset.len() <= 1 => 0,
        Some(sign @ (b'+' | b'-')) => {
            let digits = offset[1..].replace(':', "");
            let (hours, minutes) = (number(digits.get(..2)?)?, number(digits.get(2..)?)?);
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                seconds
            } else {
                -seconds
            }
        }
        _ => return None,
    };
    let clock = clock.split_once('.').map_or(clock, |(whole, _)| whole);
    let mut fields = clock.split(':').filter(|field| !field.is_empty());
    let mut next = || fields.next().map_or(Some(0), number);
    let (hours, minutes, seconds) = (next()?, next()?, next()?);
    if hours > 23 || minutes > 59 || seconds > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hours * 3600 + minutes * 60 + seconds - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_as_misp_writes_them_are_read_in_utc() {
        let midnight = 19_754 * 86_400; // 2024-02-01
        assert_eq!(iso_seconds("2024-02-01"), Some(midnight));
        assert_eq!(iso_seconds("2024-02-01T00:00:00Z"), Some(midnight));
        assert_eq!(
            iso_seconds("2024-02-01T10:30:15.123456+00:00"),
            Some(midnight + 37_815)
        );
        assert_eq!(iso_seconds("2024-02-01T02:00:00+02:00"), Some(midnight));
        assert_eq!(iso_seconds("2024-01-31T22:00:00-0200"), Some(midnight));
        assert_eq!(iso_seconds("2024-02-01T10:30"), Some(midnight + 37_800));
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-02-01T25:00:00",
            "2024-02-01Tx",
        ] {
            assert_eq!(iso_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_counts_and_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        for days in [-800_000, -1, 0, 59, 10_957, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
