//! A timeline as text lines (the CLI and the console view), postmortem-ready Markdown, or JSON
//! lines. Everything from the server goes through the one sanitiser here.

use chrono::{DateTime, Local, Utc};

use super::{Entry, Source, Timeline};
use crate::format::printable;

/// How a text line is meant to look; the console turns it into a theme style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Heading,
    Normal,
    /// Needs attention: a non-zero death, an OOM, unhealthy, a failed run.
    Bad,
    /// About the timeline itself: where a history ends, a quiet stretch.
    Note,
    /// A log line before a death.
    Log,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: LineKind,
    pub text: String,
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Engine => "engine",
        Source::Audit => "berth",
        Source::Note => "",
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn repeated(e: &Entry) -> String {
    match e.first_time {
        Some(first) if e.repeated > 1 => {
            format!(" (×{} since {})", e.repeated, first.format("%H:%M:%S"))
        }
        _ => String::new(),
    }
}

/// The header line: the server and the window.
pub fn heading(t: &Timeline) -> String {
    let since = match t.since {
        Some(s) => format!("from {} UTC", when(s)),
        None => "everything kept".into(),
    };
    format!(
        "Timeline of {}: {since} to {} UTC",
        printable(&t.server),
        when(t.until)
    )
}

/// The plain-text form, one [`Line`] each; times in UTC.
pub fn lines(t: &Timeline) -> Vec<Line> {
    let mut out = vec![Line {
        kind: LineKind::Heading,
        text: heading(t),
    }];
    if t.entries.is_empty() {
        out.push(Line {
            kind: LineKind::Note,
            text: "nothing happened in this window".into(),
        });
    }
    for e in &t.entries {
        if e.source == Source::Note {
            let text = if e.subject.is_empty() {
                format!("{:19}  ⋯ {}", "", e.what)
            } else {
                format!("{}  ⋯ {}", when(e.time), e.what)
            };
            out.push(Line {
                kind: LineKind::Note,
                text,
            });
            continue;
        }
        out.push(Line {
            kind: if e.bad {
                LineKind::Bad
            } else {
                LineKind::Normal
            },
            text: format!(
                "{}  {:6}  {}: {}{}",
                when(e.time),
                source_name(e.source),
                printable(&e.subject),
                printable(&e.what),
                repeated(e)
            ),
        });
        for l in &e.log {
            out.push(Line {
                kind: LineKind::Log,
                text: format!("{:21}│ {}", "", printable(l)),
            });
        }
    }
    out
}

/// Inline code in Markdown: no backticks inside.
fn code(text: &str) -> String {
    format!("`{}`", printable(text).replace('`', "'"))
}

/// A postmortem's timeline section: a heading, the window, one list item per entry with its UTC
/// and local time, the log lines before a death in a fenced block.
pub fn markdown(t: &Timeline) -> String {
    let offset = Local::now().format("%:z");
    let mut out = format!("# Timeline: {}\n\n", printable(&t.server).replace('`', "'"));
    out.push_str(&format!(
        "{} to {} UTC. Local times are UTC{offset}.\n\n",
        match t.since {
            Some(s) => format!("From {} UTC", when(s)),
            None => "Everything kept".into(),
        },
        when(t.until)
    ));
    if t.entries.is_empty() {
        out.push_str("Nothing happened in this window.\n");
    }
    for e in &t.entries {
        let local = e.time.with_timezone(&Local).format("%H:%M:%S");
        let utc = e.time.format("%Y-%m-%d %H:%M:%S UTC");
        if e.source == Source::Note {
            out.push_str(&format!(
                "- *{utc} ({local} local): {}*\n",
                printable(&e.what)
            ));
            continue;
        }
        let mark = if e.bad { " **⚠**" } else { "" };
        out.push_str(&format!(
            "- **{utc}** ({local} local) · {} · {}: {}{}{mark}\n",
            source_name(e.source),
            code(&e.subject),
            printable(&e.what).replace('`', "'"),
            repeated(e)
        ));
        if !e.log.is_empty() {
            out.push_str("  ```\n");
            for l in &e.log {
                out.push_str(&format!("  {}\n", printable(l).replace("```", "'''")));
            }
            out.push_str("  ```\n");
        }
    }
    out
}

/// One JSON object per entry, a line each.
pub fn json_lines(t: &Timeline) -> String {
    let mut out = String::new();
    for e in &t.entries {
        if let Ok(line) = serde_json::to_string(e) {
            out.push_str(&crate::logs::sanitize::json_safe(&line));
            out.push('\n');
        }
    }
    out
}
