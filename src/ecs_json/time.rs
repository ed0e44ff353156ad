//! Times in ECS JSON: epoch seconds as numbers (exact to the nanosecond in, nearest double
//! out), ISO-8601 with milliseconds for EventBridge, RFC 3339 accepted on input.

use super::*;

/// An integer when whole; otherwise the double nearest the exact decimal, which keeps
/// millisecond (indeed microsecond) precision for present-day times.
pub(super) fn epoch_seconds_number(seconds: i64, nanos: i32) -> Value {
    if nanos == 0 {
        return Value::from(seconds);
    }
    let total = i128::from(seconds) * NANOS_PER_SECOND + i128::from(nanos);
    let magnitude = total.unsigned_abs();
    let decimal = format!(
        "{}{}.{:09}",
        if total < 0 { "-" } else { "" },
        magnitude / NANOS_PER_SECOND.unsigned_abs(),
        magnitude % NANOS_PER_SECOND.unsigned_abs()
    );
    decimal
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::from(seconds), Value::Number)
}

/// `2020-01-23T17:57:34.402Z`: UTC, milliseconds truncated.
pub fn iso8601_millis(seconds: i64, nanos: i32) -> String {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60,
        nanos / 1_000_000
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// algorithm).
pub(super) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date; the inverse of [`civil_from_days`].
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

pub(super) fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Epoch seconds and nanoseconds of a JSON number's decimal text (`1700000000.123`, `1.7e9`),
/// computed exactly; digits below a nanosecond are dropped.
pub(super) fn epoch_from_decimal(text: &str) -> Option<(i64, i32)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = whole.bytes().chain(fraction.bytes());
    if whole.is_empty() || !digits.clone().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // value = digits × 10^(exponent − fraction digits); in nanoseconds, × 10^shift.
    let shift = exponent
        .checked_sub(i64::try_from(fraction.len()).ok()?)?
        .checked_add(9)?;
    let count = whole.len() + fraction.len();
    let kept = if shift < 0 {
        count.saturating_sub(usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX))
    } else {
        count
    };
    let mut nanos: i128 = 0;
    for digit in digits.take(kept) {
        nanos = nanos.checked_mul(10)?.checked_add(i128::from(digit - b'0'))?;
    }
    for _ in 0..shift.max(0) {
        if nanos == 0 {
            break;
        }
        nanos = nanos.checked_mul(10)?;
    }
    if negative {
        nanos = -nanos;
    }
    let seconds = i64::try_from(nanos.div_euclid(NANOS_PER_SECOND)).ok()?;
    let sub_second = i32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).ok()?;
    Some((seconds, sub_second))
}

/// Epoch seconds and nanoseconds of an RFC 3339 time: `2020-01-23T17:57:34.402Z`,
/// `2020-01-23T18:57:34+01:00`; the offset is required.
pub(super) fn epoch_from_rfc3339(text: &str) -> Option<(i64, i32)> {
    let bytes = text.as_bytes();
    let separators_ok = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut nanos: i64 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for position in 0..9 {
            let digit = fraction.as_bytes().get(position).filter(|_| position < digits);
            nanos = nanos * 10 + digit.map_or(0, |d| i64::from(d - b'0'));
        }
        rest = fraction.get(digits..)?;
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            // The offset is the last six bytes of `text`: `+HH:MM`.
            let end = text.len();
            let (hours, minutes) = (number(end - 5, end - 3)?, number(end - 2, end)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3_600 + minutes * 60;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some((seconds, i32::try_from(nanos).ok()?))
}
