//! `--since` / `:since` values: a duration back from now (`30s`, `15m`, `2h`, `1d`, `1h30m`), an
//! RFC 3339 time, a local time without zone (`2026-11-22T03:00`, `2026-11-22 03:00:15`,
//! `2026-11-22`), or Unix seconds.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Parses a since value relative to `now`. Errors are one line that says what is accepted.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "bad since '{t}': use a duration (30s, 15m, 2h, 1d), a time (2026-11-22T03:00, RFC 3339) or Unix seconds"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Some(d) = parse_duration(t) {
        return now
            .checked_sub_signed(d)
            .filter(|x| x.timestamp() >= 0)
            .ok_or_else(bad);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = t.parse().map_err(|_| bad())?;
        return DateTime::from_timestamp(secs, 0).ok_or_else(bad);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return local(n).ok_or_else(bad);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?).ok_or_else(bad);
    }
    Err(bad())
}

fn local(n: NaiveDateTime) -> Option<DateTime<Utc>> {
    Local
        .from_local_datetime(&n)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// `1h30m`, `15m`, `90s`, `2d`: one or more number+unit pairs.
fn parse_duration(t: &str) -> Option<chrono::TimeDelta> {
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    chrono::TimeDelta::try_seconds(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn durations() {
        let n = now();
        assert_eq!(
            parse_since("15m", n).unwrap(),
            n - chrono::TimeDelta::minutes(15)
        );
        assert_eq!(
            parse_since("2h", n).unwrap(),
            n - chrono::TimeDelta::hours(2)
        );
        assert_eq!(
            parse_since("1d", n).unwrap(),
            n - chrono::TimeDelta::days(1)
        );
        assert_eq!(
            parse_since("1h30m", n).unwrap(),
            n - chrono::TimeDelta::minutes(90)
        );
        assert_eq!(
            parse_since(" 30s ", n).unwrap(),
            n - chrono::TimeDelta::seconds(30)
        );
    }

    #[test]
    fn absolute_times() {
        let n = now();
        assert_eq!(
            parse_since("2026-11-22T03:00:00Z", n).unwrap().to_rfc3339(),
            "2026-11-22T03:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-22T04:00:00+01:00", n)
                .unwrap()
                .timestamp(),
            parse_since("2026-11-22T03:00:00Z", n).unwrap().timestamp()
        );
        assert_eq!(
            parse_since("1700000000", n).unwrap().timestamp(),
            1_700_000_000
        );
        let local = parse_since("2026-11-22T03:00", n).unwrap();
        let expect = Local
            .with_ymd_and_hms(2026, 11, 22, 3, 0, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(local, expect);
        assert!(parse_since("2026-11-22 03:00:15", n).is_ok());
        assert!(parse_since("2026-11-22", n).is_ok());
    }

    #[test]
    fn bad_input_is_one_line() {
        for bad in [
            "",
            "15x",
            "m",
            "yesterday",
            "2026-13-40T99:00",
            "10m5",
            "-5m",
        ] {
            let e = parse_since(bad, now()).unwrap_err();
            assert!(e.starts_with("bad since"), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
