//! Small text formatters shared by the views and the CLI.

use chrono::{DateTime, Utc};

use crate::engine::model::{Container, State};

/// `45s`, `12m`, `3h12m`, `4d3h`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => {
            let m = (s % 3600) / 60;
            if m == 0 {
                format!("{}h", s / 3600)
            } else {
                format!("{}h{m}m", s / 3600)
            }
        }
        _ => {
            let h = (s % 86_400) / 3600;
            if h == 0 {
                format!("{}d", s / 86_400)
            } else {
                format!("{}d{h}h", s / 86_400)
            }
        }
    }
}

pub fn age(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map(|t| duration((now - t).num_seconds()))
        .unwrap_or_else(|| "—".into())
}

/// The uptime column: `up 3h12m`, or `exit 1 · 5m ago`, `OOM · 2m ago`.
pub fn uptime(c: &Container, now: DateTime<Utc>) -> String {
    match c.state {
        s if s.is_up() => format!("up {}", age(c.started_at, now)),
        State::Created => "created".into(),
        _ => {
            let code = if c.oom_killed {
                "OOM".to_string()
            } else {
                format!("exit {}", c.exit_code.unwrap_or(0))
            };
            match c.finished_at {
                Some(f) => format!("{code} · {} ago", duration((now - f).num_seconds())),
                None => code,
            }
        }
    }
}

/// Cuts text to `max` display columns with an ellipsis, never panicking on multi-byte text.
pub fn truncate(text: &str, max: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut width = 0;
    let mut out = String::new();
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= max {
        return text.to_string();
    }
    for ch in text.chars() {
        let w = ch.width().unwrap_or(0);
        if width + w + 1 > max {
            break;
        }
        width += w;
        out.push(ch);
    }
    out.push('…');
    out
}

/// Control characters out: names and labels come from the engine and reach the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '␣' } else { c })
        .collect()
}

/// `n` in the largest binary unit that keeps it ≥ 1: (value, unit index 0 = bytes … 4 = TiB).
pub fn scale_bytes(n: u64) -> (f64, usize) {
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < 4 {
        v /= 1024.0;
        u += 1;
    }
    (v, u)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (v, u) = scale_bytes(n);
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2m");
        assert_eq!(duration(3600), "1h");
        assert_eq!(duration(3 * 3600 + 12 * 60), "3h12m");
        assert_eq!(duration(4 * 86_400 + 3 * 3600), "4d3h");
        assert_eq!(duration(-4), "0s");
    }

    #[test]
    fn truncates_safely() {
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(truncate("日本語テキスト", 5), "日本…");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
