//! ISO-8601 durations as rotation policies use them (`P90D`, `P18M`, `PT48H`, `P1Y10D`): parsed, kept with their
//! original text (clients compare strings), checked against minimums with conservative fixed lengths (a month counts
//! as 28 days, a year as 365), and added to timestamps with calendar arithmetic in UTC.
use crate::Error;

/// A parsed duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoDuration {
    pub text: String,
    years: i64,
    months: i64,
    weeks: i64,
    days: i64,
    seconds: i64,
}

impl IsoDuration {
    /// Parses `P[nY][nM][nW][nD][T[nH][nM][nS]]` (whole numbers, at least one non-zero component).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::BadParameter(format!(
                "'{text}' is not an ISO-8601 duration such as P90D, P18M or PT48H."
            ))
        };
        let rest = text.strip_prefix('P').ok_or_else(bad)?;
        let (date, time) = match rest.split_once('T') {
            Some((d, t)) if !t.is_empty() => (d, Some(t)),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        let mut d = Self {
            text: text.to_string(),
            years: 0,
            months: 0,
            weeks: 0,
            days: 0,
            seconds: 0,
        };
        let mut any = false;
        let mut num = String::new();
        let mut order = 0u8;
        for c in date.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: i64 = num.parse().map_err(|_| bad())?;
            num.clear();
            let rank = match c {
                'Y' => 1,
                'M' => 2,
                'W' => 3,
                'D' => 4,
                _ => return Err(bad()),
            };
            if rank <= order || n > 100_000 {
                return Err(bad());
            }
            order = rank;
            any |= n > 0;
            match c {
                'Y' => d.years = n,
                'M' => d.months = n,
                'W' => d.weeks = n,
                _ => d.days = n,
            }
        }
        if !num.is_empty() {
            return Err(bad());
        }
        if let Some(t) = time {
            let mut order = 0u8;
            for c in t.chars() {
                if c.is_ascii_digit() {
                    num.push(c);
                    continue;
                }
                let n: i64 = num.parse().map_err(|_| bad())?;
                num.clear();
                let (rank, mult) = match c {
                    'H' => (1, 3600),
                    'M' => (2, 60),
                    'S' => (3, 1),
                    _ => return Err(bad()),
                };
                if rank <= order || n > 10_000_000 {
                    return Err(bad());
                }
                order = rank;
                any |= n > 0;
                d.seconds += n * mult;
            }
            if !num.is_empty() {
                return Err(bad());
            }
        }
        if !any {
            return Err(Error::BadParameter(format!(
                "The duration '{text}' must be longer than zero."
            )));
        }
        Ok(d)
    }

    /// A lower bound of the length in seconds (months as 28 days, years as 365 days), for minimum checks.
    pub fn min_seconds(&self) -> i64 {
        ((self.years * 365 + self.months * 28 + self.weeks * 7 + self.days) * 86_400) + self.seconds
    }

    /// An upper bound of the length in seconds (months as 31 days, years as 366 days), for maximum checks.
    pub fn max_seconds(&self) -> i64 {
        ((self.years * 366 + self.months * 31 + self.weeks * 7 + self.days) * 86_400) + self.seconds
    }

    /// `ts + self` with calendar arithmetic in UTC (months land on the same day, clamped to the month's end).
    pub fn add_to(&self, ts: i64) -> i64 {
        let days = ts.div_euclid(86_400);
        let secs = ts.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let total_months = y * 12 + (m - 1) + self.years * 12 + self.months;
        let (ny, nm) = (total_months.div_euclid(12), total_months.rem_euclid(12) + 1);
        let nd = d.min(days_in_month(ny, nm));
        let base = days_from_civil(ny, nm, nd) + self.weeks * 7 + self.days;
        base * 86_400 + secs + self.seconds
    }

    /// `ts - self` (for "time before expiry").
    pub fn subtract_from(&self, ts: i64) -> i64 {
        let neg = Self {
            text: String::new(),
            years: -self.years,
            months: -self.months,
            weeks: -self.weeks,
            days: -self.days,
            seconds: -self.seconds,
        };
        neg.add_to(ts)
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_send() {
        for ok in [
            "P90D", "P3M", "PT48H", "P1Y10D", "P18M", "P2Y", "P28D", "P1W", "P1DT12H", "PT30M",
        ] {
            assert_eq!(IsoDuration::parse(ok).unwrap().text, ok);
        }
        for bad in [
            "", "P", "90D", "PT", "P0D", "P-1D", "P1.5D", "PD", "P1D2Y", "P1X", "P1DT", "PT1H1H",
        ] {
            assert!(IsoDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conservative_lengths_for_minimum_checks() {
        assert_eq!(IsoDuration::parse("P1M").unwrap().min_seconds(), 28 * 86_400);
        assert_eq!(IsoDuration::parse("P1Y").unwrap().min_seconds(), 365 * 86_400);
        assert_eq!(IsoDuration::parse("PT48H").unwrap().min_seconds(), 2 * 86_400);
    }

    #[test]
    fn calendar_arithmetic() {
        // 2026-01-31T10:00:00Z + P1M = 2026-02-28T10:00:00Z (clamped); + P1Y10D = 2027-02-10T10:00:00Z.
        let jan31 = days_from_civil(2026, 1, 31) * 86_400 + 36_000;
        assert_eq!(
            civil_from_days(IsoDuration::parse("P1M").unwrap().add_to(jan31).div_euclid(86_400)),
            (2026, 2, 28)
        );
        assert_eq!(
            civil_from_days(IsoDuration::parse("P1Y10D").unwrap().add_to(jan31).div_euclid(86_400)),
            (2027, 2, 10)
        );
        assert_eq!(IsoDuration::parse("P1M").unwrap().add_to(jan31) % 86_400, 36_000);
        // Leap year.
        let feb29 = days_from_civil(2028, 2, 29) * 86_400;
        assert_eq!(
            civil_from_days(IsoDuration::parse("P1Y").unwrap().add_to(feb29) / 86_400),
            (2029, 2, 28)
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2000, 3, 1)), (2000, 3, 1));
        let d = IsoDuration::parse("P30D").unwrap();
        assert_eq!(d.subtract_from(d.add_to(jan31)), jan31);
    }
}
