//! Text formatters shared by the views and the CLI (durations, ages, bytes, rates, percentages,
//! and the one sanitiser for text from the server). Lives outside `ui` so the CLI needs no views.

use std::time::Duration;

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
    // A kept container's exit is not news: say what it is the way back to, and since when.
    if c.is_kept() && !c.state.is_up() {
        let since = c.finished_at.or(c.created);
        return match since {
            Some(t) => format!(
                "kept · from {} · {}",
                c.kept_image(),
                duration((now - t).num_seconds())
            ),
            None => format!("kept · from {}", c.kept_image()),
        };
    }
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
    crate::logs::sanitize::plain(text)
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

/// `512B`, `12.3K`, `1.2M`, `3.4G`: fits the narrow list columns.
pub fn compact_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let (v, u) = scale_bytes(n);
    if u == 0 {
        format!("{n}B")
    } else if v >= 100.0 {
        format!("{v:.0}{}", UNITS[u])
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// A byte rate, compact: `1.2K/s`.
pub fn rate(bytes_per_s: f64) -> String {
    format!("{}/s", compact_bytes(bytes_per_s.max(0.0).round() as u64))
}

pub fn percent(p: f64) -> String {
    if p >= 100.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `rx↓ tx↑` for the list.
pub fn pair(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{}↓ {}↑", short_rate(a), short_rate(b)),
        _ => "—".into(),
    }
}

fn short_rate(v: f64) -> String {
    compact_bytes(v.max(0.0).round() as u64)
}

/// `2s`, `500ms`, `1m30s`.
pub fn interval_label(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 || !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms > 60_000 {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// The health column's text: a stopped container has no health now; its last probe result is
/// history (`was unhealthy`), shown dimmed and never counted.
pub fn health_text(c: &Container) -> String {
    match (c.state.is_up(), c.health) {
        (true, h) => format!("{} {}", h.symbol(), h.as_str()),
        (false, crate::engine::model::Health::None) => "· none".into(),
        (false, h) => format!("was {}", h.as_str()),
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

    #[test]
    fn labels() {
        assert_eq!(interval_label(Duration::from_secs(2)), "2s");
        assert_eq!(interval_label(Duration::from_millis(500)), "500ms");
        assert_eq!(interval_label(Duration::from_secs(90)), "1m30s");
        assert_eq!(interval_label(Duration::from_secs(120)), "2m");
    }
}
