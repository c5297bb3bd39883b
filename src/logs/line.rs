//! One log line as berth keeps it: engine timestamp, which source it came from, stdout or stderr,
//! sanitized text with its SGR spans, and a severity found once at ingest.

use chrono::DateTime;

use super::sanitize::{self, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    /// Both streams, in [`StreamKind::index`] order.
    pub const ALL: [StreamKind; 2] = [StreamKind::Stdout, StreamKind::Stderr];

    /// The stream's slot in per-stream arrays: stdout 0, stderr 1.
    pub fn index(self) -> usize {
        match self {
            StreamKind::Stdout => 0,
            StreamKind::Stderr => 1,
        }
    }
}

/// Severity spotted in the text, for colouring; most lines have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Severity {
    #[default]
    None,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Engine timestamp in nanoseconds since the Unix epoch (0 when the engine sent none).
    pub ts: i64,
    /// Index into the view's sources.
    pub source: u16,
    pub stream: StreamKind,
    pub severity: Severity,
    pub text: Box<str>,
    /// SGR styling; `None` for plain lines, which keeps them small.
    pub spans: Option<Box<[Span]>>,
}

impl LogLine {
    /// The bytes this line holds in memory, for buffers bounded by bytes.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<LogLine>()
            + self.text.len()
            + self
                .spans
                .as_ref()
                .map_or(0, |s| std::mem::size_of_val(&**s))
    }

    /// Builds a line from the raw bytes after the timestamp.
    pub fn new(ts: i64, source: u16, stream: StreamKind, raw: &[u8], cut: usize) -> LogLine {
        let clean = sanitize::sanitize(raw, cut);
        let severity = severity(&clean.text);
        LogLine {
            ts,
            source,
            stream,
            severity,
            text: clean.text.into_boxed_str(),
            spans: (!clean.spans.is_empty()).then(|| clean.spans.into_boxed_slice()),
        }
    }
}

/// Bytes of the line's start searched for a level: levels sit near the front, and a long line must
/// not cost more than a short one.
const LEVEL_WINDOW: usize = 160;

/// Finds ERROR / WARN style markers: upper-case words (ERROR, ERR, FATAL, PANIC, CRIT, WARN,
/// WARNING) or `level=error` / `"level":"warn"` forms. One pass over a short prefix, no allocation.
pub fn severity(text: &str) -> Severity {
    let b = text.as_bytes();
    let b = &b[..b.len().min(LEVEL_WINDOW)];
    let mut found = Severity::None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'E' | b'F' | b'P' | b'C' | b'W' | b'l')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        {
            let rest = &b[i..];
            let word_end = rest
                .iter()
                .position(|x| !x.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let word = &rest[..word_end];
            let s = match word {
                b"ERROR" | b"ERR" | b"FATAL" | b"PANIC" | b"CRIT" | b"CRITICAL" | b"EMERG" => {
                    Severity::Error
                }
                b"WARN" | b"WARNING" => Severity::Warn,
                b"level" => level_value(&rest[word_end..]),
                _ => Severity::None,
            };
            if s == Severity::Error {
                return s;
            }
            found = found.max(s);
            i += word_end.max(1);
            continue;
        }
        i += 1;
    }
    found
}

/// `=error`, `":"warn"` … after the word `level`.
fn level_value(after: &[u8]) -> Severity {
    let v: &[u8] = after
        .iter()
        .position(|c| c.is_ascii_alphabetic())
        .filter(|&p| p <= 3)
        .map(|p| &after[p..])
        .unwrap_or(&[]);
    let end = v
        .iter()
        .position(|c| !c.is_ascii_alphabetic())
        .unwrap_or(v.len());
    match v[..end].to_ascii_lowercase().as_slice() {
        b"error" | b"err" | b"fatal" | b"panic" | b"crit" | b"critical" => Severity::Error,
        b"warn" | b"warning" => Severity::Warn,
        _ => Severity::None,
    }
}

/// Splits the engine's `2026-11-22T03:00:00.123456789Z ` prefix off a frame: (nanos, rest).
/// The engine writes a fixed-width UTC form; other forms go through chrono.
pub fn split_timestamp(frame: &[u8]) -> (Option<i64>, &[u8]) {
    let Some(space) = frame.iter().take(40).position(|&c| c == b' ') else {
        return (None, frame);
    };
    let (head, rest) = (&frame[..space], &frame[space + 1..]);
    match parse_ts(head) {
        Some(ts) => (Some(ts), rest),
        None => (None, frame),
    }
}

/// Parses an RFC 3339 timestamp to nanoseconds, fast for `YYYY-MM-DDTHH:MM:SS.fffffffffZ`.
pub fn parse_ts(s: &[u8]) -> Option<i64> {
    if s.len() >= 20 && s[4] == b'-' && s[10] == b'T' && s[s.len() - 1] == b'Z' {
        let num = |a: usize, b: usize| -> Option<i64> {
            let mut v = 0i64;
            for &c in &s[a..b] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + (c - b'0') as i64;
            }
            Some(v)
        };
        let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        let frac = if s[19] == b'.' {
            let digits = &s[20..s.len() - 1];
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            num(20, s.len() - 1)? * 10i64.pow(9 - digits.len() as u32)
        } else if s.len() == 20 {
            0
        } else {
            return None;
        };
        let days = days_from_civil(y, mo, d);
        return Some(((days * 24 + h) * 60 + mi) * 60 * 1_000_000_000 + sec * 1_000_000_000 + frac);
    }
    let text = std::str::from_utf8(s).ok()?;
    DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The engine's own timestamp form, for `--timestamps` output.
pub fn format_ts(ts: i64) -> String {
    DateTime::from_timestamp_nanos(ts)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_like_chrono() {
        for s in [
            "2026-11-22T03:00:00.123456789Z",
            "1970-01-01T00:00:00.000000001Z",
            "2024-02-29T23:59:59.5Z",
            "2026-11-22T03:00:00Z",
            "2026-11-22T04:00:00.25+01:00",
        ] {
            let want = DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            assert_eq!(parse_ts(s.as_bytes()), Some(want), "{s}");
        }
        assert_eq!(parse_ts(b"2026-11-22T03:00:00.12x456789Z"), None);
        assert_eq!(parse_ts(b"not a time"), None);
        let (ts, rest) = split_timestamp(b"2026-11-22T03:00:00.000000000Z hello world\n");
        assert!(ts.is_some());
        assert_eq!(rest, b"hello world\n");
        let (ts, rest) = split_timestamp(b"hello world");
        assert_eq!((ts, rest), (None, &b"hello world"[..]));
        assert_eq!(
            format_ts(parse_ts(b"2026-11-22T03:00:00.000000042Z").unwrap()),
            "2026-11-22T03:00:00.000000042Z"
        );
    }

    #[test]
    fn severity_is_found_in_common_forms() {
        assert_eq!(severity("2026 ERROR db down"), Severity::Error);
        assert_eq!(severity("[WARN] slow"), Severity::Warn);
        assert_eq!(severity("seq=10 level=ERROR msg=tick"), Severity::Error);
        assert_eq!(severity(r#"{"level":"warn","msg":"x"}"#), Severity::Warn);
        assert_eq!(severity("level=info msg=WARNINGS"), Severity::None);
        assert_eq!(severity("GET /health 200"), Severity::None);
        assert_eq!(severity("TERROR is not ERRORS"), Severity::None);
    }
}
