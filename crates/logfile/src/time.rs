//! Wall-clock times for records and file names: Unix ns, and UTC text without a date library.

/// A wall-clock time as Unix ns (0 before 1970).
pub fn unix_ns(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Unix ns as `YYYY-MM-DDTHH:MM:SS.ffffff+0000` (UTC, microseconds: Suricata's EVE form).
/// One allocation and one formatting pass: EVE writes two per detection.
pub fn timestamp(ns: u64) -> String {
    use std::fmt::Write as _;
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let mut s = String::with_capacity(31);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    s
}

/// Unix ns as `YYYYMMDDTHHMMSS.ffffffZ` (file names: sorts by time).
pub fn compact_timestamp(ns: u64) -> String {
    let (date, time, micros) = utc(ns);
    format!("{}T{}.{micros:06}Z", date.replace('-', ""), time.replace(':', ""))
}

/// ("YYYY-MM-DD", "HH:MM:SS", microseconds) in UTC.
fn utc(ns: u64) -> (String, String, u64) {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
        micros,
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (400-year eras of 146,097 days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that the leap day ends each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // 2000-02-29 (a leap day of a century year divisible by 400) 12:34:56.789012.
        let ns = (951_827_696 * 1_000_000_000) + 789_012_345;
        assert_eq!(timestamp(ns), "2000-02-29T12:34:56.789012+0000");
        assert_eq!(compact_timestamp(ns), "20000229T123456.789012Z");
        // 2100 is not a leap year: the day after 2100-02-28 is 2100-03-01.
        assert_eq!(timestamp(4_107_542_400 * 1_000_000_000), "2100-03-01T00:00:00.000000+0000");
        assert_eq!(timestamp(1_795_824_000 * 1_000_000_000), "2026-11-28T00:00:00.000000+0000");
    }

    #[test]
    fn civil_dates_agree_with_day_counting_for_four_centuries() {
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            d += 1;
            if d > len[usize::try_from(m - 1).unwrap_or(0)] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
