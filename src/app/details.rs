//! What the details pane says about a container: everything `docker inspect` says that matters at
//! 3 a.m., with secret environment values masked until revealed, wrapped as drawn. It lives with
//! the app because `update` clamps the pane's scroll by the rows it makes; `ui::details` draws it.

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::compose::Drift;
use crate::engine::model::{Container, mask_env, short_id};
use crate::format::{age, printable, truncate};
use crate::theme::Theme;

/// The scroll offset that shows the last row of `rows` at the bottom of the bordered `area`.
pub fn bottom(rows: usize, area: Rect) -> u16 {
    let inner = area.height.saturating_sub(2) as usize;
    rows.saturating_sub(inner).min(u16::MAX as usize) as u16
}

/// The furthest the details pane in `area` can scroll: its rows as drawn (wrapped at its width)
/// less the rows it shows. `update` clamps the offset with it, so `G` lands on the last field and
/// `k` moves back at once.
pub fn max_scroll(
    c: &Container,
    drift: Option<&Drift>,
    theme: &Theme,
    now: DateTime<Utc>,
    revealed: bool,
    area: Rect,
) -> u16 {
    let rows = wrap(
        lines(c, drift, theme, now, revealed),
        area.width.saturating_sub(2) as usize,
    );
    bottom(rows.len(), area)
}

/// Breaks lines at `width` columns between words, and by character only inside a word longer
/// than a row (a long label, a token); continuation rows are indented under the values. Drawing
/// the rows as they come makes the scroll count what the screen shows.
pub fn wrap<'a>(lines: Vec<Line<'a>>, width: usize) -> Vec<Line<'a>> {
    wrap_indented(lines, width, if width >= 45 { 15 } else { 2 })
}

/// [`wrap`] with continuation rows indented by `indent` columns.
pub fn wrap_indented<'a>(lines: Vec<Line<'a>>, width: usize, indent: usize) -> Vec<Line<'a>> {
    use ratatui::style::Style;
    use unicode_width::UnicodeWidthChar;
    if width == 0 {
        return lines;
    }
    let indent = indent.min(width / 2);
    // A row's characters with their styles, joined into spans when the row is done.
    let spans_of = |row: &[(char, Style)]| -> Line<'a> {
        let mut spans: Vec<Span<'a>> = Vec::new();
        let mut text = String::new();
        let mut style = row.first().map(|(_, s)| *s).unwrap_or_default();
        for &(ch, s) in row {
            if s != style && !text.is_empty() {
                spans.push(Span::styled(std::mem::take(&mut text), style));
            }
            style = s;
            text.push(ch);
        }
        if !text.is_empty() {
            spans.push(Span::styled(text, style));
        }
        Line::from(spans)
    };
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        if line.width() <= width {
            out.push(line);
            continue;
        }
        let chars: Vec<(char, Style)> = line
            .spans
            .iter()
            .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
            .collect();
        let lead: Vec<(char, Style)> = vec![(' ', Style::default()); indent];
        let mut row: Vec<(char, Style)> = Vec::new();
        let mut used = 0;
        // Where the row may break: just after its last space past the indent.
        let mut room_after_space: Option<usize> = None;
        for (ch, style) in chars {
            let w = ch.width().unwrap_or(0);
            if used + w > width && used > indent {
                let carried: Vec<(char, Style)> = match room_after_space {
                    // The word under way moves whole to the next row.
                    Some(at) if at < row.len() && ch != ' ' => row.split_off(at),
                    _ => Vec::new(),
                };
                while row.last().is_some_and(|(c, _)| *c == ' ') && row.len() > indent {
                    row.pop();
                }
                out.push(spans_of(&row));
                row = lead.clone();
                used = indent;
                room_after_space = None;
                for (c, s) in carried {
                    used += c.width().unwrap_or(0);
                    row.push((c, s));
                }
                if ch == ' ' {
                    // A space at the break is the break.
                    continue;
                }
            }
            row.push((ch, style));
            used += w;
            if ch == ' ' && used > indent + 1 {
                room_after_space = Some(row.len());
            }
        }
        if row.len() > indent || out.is_empty() {
            out.push(spans_of(&row));
        }
    }
    out
}

fn section<'a>(theme: &Theme, title: &str) -> Line<'a> {
    Line::from(Span::styled(title.to_string(), theme.title(true)))
}

fn kv<'a>(theme: &Theme, key: &str, value: impl Into<String>) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("  {key:<13}"), theme.dim()),
        Span::styled(printable(&value.into()), theme.text()),
    ])
}

pub fn lines<'a>(
    c: &Container,
    drift: Option<&Drift>,
    theme: &Theme,
    now: DateTime<Utc>,
    revealed: bool,
) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    out.push(section(theme, "Container"));
    out.push(kv(theme, "name", c.display_name()));
    out.push(kv(theme, "id", short_id(&c.id).to_string()));
    if let Some(p) = &c.project {
        out.push(kv(theme, "project", p.clone()));
    }
    if let Some(s) = &c.service {
        out.push(kv(
            theme,
            "service",
            format!(
                "{s}{}",
                c.number.map(|n| format!(" #{n}")).unwrap_or_default()
            ),
        ));
    }
    let mut state = vec![
        Span::styled(format!("  {:<13}", "state"), theme.dim()),
        Span::styled(c.state.as_str(), theme.state(c.state)),
    ];
    if let Some(code) = c.exit_code {
        state.push(Span::styled(
            format!("  exit code {code}"),
            if code == 0 {
                theme.dim()
            } else {
                theme.error()
            },
        ));
    }
    if c.oom_killed {
        state.push(Span::styled("  OOM-killed", theme.error()));
    }
    out.push(Line::from(state));
    out.push(Line::from(vec![
        Span::styled(format!("  {:<13}", "health"), theme.dim()),
        Span::styled(
            format!("{} {}", c.health.symbol(), c.health.as_str()),
            theme.health(c.health),
        ),
    ]));
    if let Some(e) = &c.error {
        out.push(Line::from(vec![
            Span::styled(format!("  {:<13}", "error"), theme.dim()),
            Span::styled(printable(e), theme.error()),
        ]));
    }
    out.push(kv(
        theme,
        "restarts",
        format!("{} (policy {})", c.restart_count, c.restart_policy),
    ));
    out.push(kv(theme, "created", format!("{} ago", age(c.created, now))));
    if let Some(s) = c.started_at {
        out.push(kv(
            theme,
            "started",
            format!(
                "{} ({} ago)",
                s.format("%Y-%m-%d %H:%M:%S UTC"),
                age(Some(s), now)
            ),
        ));
    }
    if let Some(f) = c.finished_at.filter(|_| !c.state.is_up()) {
        out.push(kv(
            theme,
            "finished",
            format!(
                "{} ({} ago)",
                f.format("%Y-%m-%d %H:%M:%S UTC"),
                age(Some(f), now)
            ),
        ));
    }
    out.push(Line::default());
    out.push(section(theme, "Image"));
    out.push(kv(theme, "image", c.image.clone()));
    out.push(kv(theme, "image id", short_id(&c.image_id).to_string()));
    match drift {
        Some(Drift::Matches { declared }) => {
            out.push(kv(theme, "compose says", declared.clone()));
        }
        Some(Drift::Drifted { declared }) => out.push(Line::from(vec![
            Span::styled(format!("  {:<13}", "⚠ drift"), theme.warning()),
            Span::styled(
                printable(&format!("runs {} · compose says {declared}", c.image)),
                theme.warning(),
            ),
        ])),
        Some(Drift::Unknown(why)) => out.push(Line::from(vec![
            Span::styled(format!("  {:<13}", "drift"), theme.dim()),
            Span::styled(
                printable(why.strip_prefix("drift ").unwrap_or(why)),
                theme.dim(),
            ),
        ])),
        None => {}
    }
    if !c.entrypoint.is_empty() {
        out.push(kv(theme, "entrypoint", shell_words(&c.entrypoint)));
    }
    out.push(kv(theme, "command", shell_words(&c.command)));

    if c.has_healthcheck || !c.health_log.is_empty() {
        out.push(Line::default());
        out.push(section(theme, "Health checks (latest last)"));
        for p in c.health_log.iter().rev().take(5).rev() {
            let when = p
                .start
                .map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_default();
            let style = if p.exit_code == 0 {
                theme.success()
            } else {
                theme.error()
            };
            let output = p.output.trim().replace('\n', " ⏎ ");
            out.push(Line::from(vec![
                Span::styled(format!("  {when} "), theme.dim()),
                Span::styled(format!("exit {} ", p.exit_code), style),
                Span::styled(truncate(&printable(&output), 200), theme.text()),
            ]));
        }
        if c.health_log.is_empty() {
            out.push(Line::from(Span::styled(
                "  no probe has run yet",
                theme.dim(),
            )));
        }
    }

    if !c.ports.is_empty() {
        out.push(Line::default());
        out.push(section(theme, "Ports"));
        for p in &c.ports {
            let host = match (p.host_ip.as_deref(), p.host_port) {
                (Some(ip), Some(hp)) => format!("{ip}:{hp}"),
                (None, Some(hp)) => format!("*:{hp}"),
                _ => "not published".into(),
            };
            out.push(kv(
                theme,
                &format!("{}/{}", p.container_port, p.protocol),
                host,
            ));
        }
    }
    if !c.networks.is_empty() {
        out.push(Line::default());
        out.push(section(theme, "Networks"));
        for n in &c.networks {
            let aliases = if n.aliases.is_empty() {
                String::new()
            } else {
                format!("  aliases {}", n.aliases.join(", "))
            };
            out.push(kv(
                theme,
                &truncate(&n.network, 13),
                format!("{}{aliases}", if n.ip.is_empty() { "—" } else { &n.ip }),
            ));
        }
    }
    if !c.mounts.is_empty() {
        out.push(Line::default());
        out.push(section(theme, "Mounts"));
        for m in &c.mounts {
            let rw = if m.read_write { "rw" } else { "ro" };
            out.push(kv(
                theme,
                &m.kind,
                format!("{} → {} ({rw})", m.source, m.destination),
            ));
        }
    }
    if !c.env.is_empty() {
        out.push(Line::default());
        out.push(section(
            theme,
            if revealed {
                "Environment (secrets shown)"
            } else {
                "Environment (x reveals secrets)"
            },
        ));
        for e in &c.env {
            let text = if revealed { e.clone() } else { mask_env(e) };
            out.push(Line::from(Span::styled(
                format!("  {}", printable(&text)),
                theme.text(),
            )));
        }
    }
    if !c.labels.is_empty() {
        out.push(Line::default());
        out.push(section(theme, "Labels"));
        for (k, v) in &c.labels {
            out.push(Line::from(vec![
                Span::styled(format!("  {}", truncate(&printable(k), 80)), theme.dim()),
                Span::styled(format!(" = {}", printable(v)), theme.text()),
            ]));
        }
    }
    out
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.contains([' ', '"', '\'']) || w.is_empty() {
                format!("{w:?}")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
