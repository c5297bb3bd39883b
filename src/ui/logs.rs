//! The log view: merged lines with a coloured source prefix, stderr marked in the gutter, levels and
//! SGR colours as styles, search matches highlighted, a paused marker. Only the rows on screen are
//! built, so a frame costs the same with ten lines or a full buffer.

use chrono::{DateTime, Local, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use unicode_width::UnicodeWidthChar;

use crate::app::{App, LogView};
use crate::keymap::Intent;
use crate::logs::sanitize::{SgrColor, SgrStyle};
use crate::logs::{LogLine, Severity, StreamKind};
use crate::theme::Theme;

const TAB: &str = "    ";

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let Some(v) = &app.logs else {
        return;
    };
    let block = Block::bordered()
        .title(title(v, theme, link_try(app)))
        .border_style(theme.border(true));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width < 4 {
        return;
    }
    let mut body = inner;
    if let Some(status) = v.status_line() {
        let removed = v
            .statuses
            .iter()
            .all(|s| matches!(s, crate::logs::SourceStatus::Removed));
        let style = if removed {
            theme.error()
        } else {
            theme.warning()
        };
        frame.render_widget(
            Paragraph::new(Span::styled(format!(" ◌ {status}"), style)),
            Rect { height: 1, ..body },
        );
        body.y += 1;
        body.height -= 1;
    }
    if let Some((n, cap)) = v.buffer.dropped().filter(|_| body.height > 2) {
        // The view's bounds dropped the oldest lines: say how many, which bound, and how to get
        // them all.
        let text = format!(
            " ⚠ {n} older lines dropped ({cap}) · :save-all writes the whole range to a file"
        );
        frame.render_widget(
            Paragraph::new(Span::styled(
                super::fit::shorten_words(&text, body.width as usize),
                theme.warning(),
            )),
            Rect { height: 1, ..body },
        );
        body.y += 1;
        body.height -= 1;
    }
    if !v.follow && body.height > 1 {
        let marker = format!(
            " ── paused · {} new lines · {} follows ",
            v.new_lines(),
            app.keymap.hint(Intent::Bottom)
        );
        frame.render_widget(
            Paragraph::new(Span::styled(marker, theme.warning())),
            Rect {
                y: body.y + body.height - 1,
                height: 1,
                ..body
            },
        );
        body.height -= 1;
    }
    if v.buffer.is_empty() {
        let text = if v.buffer.filter().is_some() {
            "no line matches the filter"
        } else if v.ended {
            "no log lines"
        } else {
            "waiting for log lines…"
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim())), body);
        return;
    }
    let rows = visible_rows(v, theme, body.width as usize, body.height as usize);
    frame.render_widget(Paragraph::new(rows), body);
}

/// While the link to the server is down or unanswered, the try the header counts: the view's
/// streams cannot be following then, even before one of them noticed.
fn link_try(app: &App) -> Option<u32> {
    if !app.is_stale() {
        return None;
    }
    Some(match &app.link {
        Some(crate::ssh::LinkStatus::Reconnecting { attempt, .. }) => (*attempt).max(1),
        _ => app.stale_tries.max(1),
    })
}

fn title<'a>(v: &LogView, theme: &Theme, link_try: Option<u32>) -> Line<'a> {
    let mut spans = vec![
        Span::styled(format!(" Logs · {} ", v.title), theme.title(true)),
        Span::styled(
            format!(
                "{} lines{} ",
                v.buffer.len(),
                if v.buffer.filter().is_some() {
                    format!(" of {}", v.buffer.retained())
                } else {
                    String::new()
                }
            ),
            theme.dim(),
        ),
    ];
    // Never `● following` over a stream that is down: from its first failed read the title says
    // so, and once it is back, how much of the outage it caught up.
    let reconnecting = v.reconnect_try().or(link_try);
    let mode = if let Some(n) = reconnecting {
        Span::styled(format!("◌ reconnecting (try {n}) "), theme.stale())
    } else if v.follow {
        Span::styled("● following ", theme.success())
    } else {
        Span::styled("‖ paused ", theme.warning())
    };
    spans.push(mode);
    if let (None, Some(n)) = (reconnecting, v.resumed()) {
        spans.push(Span::styled(
            format!("│ resumed · {n} lines caught up "),
            theme.info(),
        ));
    }
    if let Some(f) = v.buffer.filter() {
        spans.push(Span::styled(
            format!(
                "│ filter {}/{}/{} ",
                if f.invert { "!" } else { "" },
                f.pattern.text,
                if f.pattern.case_insensitive { "i" } else { "" }
            ),
            theme.accent(),
        ));
    }
    if let Some(s) = &v.search {
        spans.push(Span::styled(
            format!(
                "│ search /{}/{} ",
                s.text,
                if s.case_insensitive { "i" } else { "" }
            ),
            theme.search_match(),
        ));
    }
    if let Some(since) = v.since {
        spans.push(Span::styled(
            format!(
                "│ since {} ",
                stamp(since.timestamp_nanos_opt().unwrap_or(0), v.utc)
            ),
            theme.dim(),
        ));
    }
    let mut flags = Vec::new();
    let shifted;
    if v.wrap {
        flags.push("wrap");
    } else if v.h_offset > 0 {
        shifted = format!("→{}", v.h_offset);
        flags.push(&shifted);
    }
    if v.timestamps {
        flags.push(if v.utc { "UTC" } else { "local" });
    }
    if !flags.is_empty() {
        spans.push(Span::styled(format!("│ {} ", flags.join(" ")), theme.dim()));
    }
    Line::from(spans)
}

fn stamp(ts: i64, utc: bool) -> String {
    let t: DateTime<Utc> = DateTime::from_timestamp_nanos(ts);
    if utc {
        t.format("%m-%d %H:%M:%S%.3fZ").to_string()
    } else {
        t.with_timezone(&Local)
            .format("%m-%d %H:%M:%S%.3f")
            .to_string()
    }
}

/// The rows on screen: bottom-anchored while following, from the top line while paused (moved so
/// the selection is on screen when wrapped lines push it off).
fn visible_rows(v: &LogView, theme: &Theme, width: usize, height: usize) -> Vec<Line<'static>> {
    let n = v.buffer.len();
    let prefix_width = prefix_width(v);
    let cursor = v.cursor_seq();
    let height_of = |i: usize| -> usize {
        if !v.wrap {
            return 1;
        }
        v.buffer
            .get(i)
            .map(|l| wrapped_height(l, v, prefix_width, width, height))
            .unwrap_or(1)
    };
    // Lines that fit above and including `last`.
    let start_for_bottom = |last: usize| -> usize {
        let mut used = 0;
        let mut start = last + 1;
        while start > 0 {
            let h = height_of(start - 1);
            if used + h > height && used > 0 {
                break;
            }
            used += h;
            start -= 1;
            if used >= height {
                break;
            }
        }
        start
    };
    let start = if v.follow {
        start_for_bottom(n - 1)
    } else {
        let top = v.buffer.index_of(v.top).min(n - 1);
        let ci = v.buffer.index_of(v.cursor).min(n - 1);
        // Is the selection within the screen when drawing from the top line?
        let mut used = 0;
        let mut fits = ci >= top;
        if fits {
            for i in top..=ci {
                used += height_of(i);
                if used > height {
                    fits = false;
                    break;
                }
            }
        }
        if fits { top } else { start_for_bottom(ci) }
    };
    let mut rows = Vec::with_capacity(height);
    for (seq, line) in v.buffer.shown(start) {
        if rows.len() >= height {
            break;
        }
        let selected = !v.follow && Some(seq) == cursor;
        let left = height - rows.len();
        rows.extend(render_line(
            line,
            v,
            theme,
            prefix_width,
            width,
            left,
            selected,
        ));
    }
    rows
}

fn prefix_width(v: &LogView) -> usize {
    if v.sources.len() > 1 {
        v.sources
            .iter()
            .map(|s| unicode_width::UnicodeWidthStr::width(s.prefix.as_str()))
            .max()
            .unwrap_or(0)
            .min(24)
    } else {
        0
    }
}

/// Columns before the text: gutter, timestamp, prefix.
fn lead_width(v: &LogView, prefix_width: usize) -> usize {
    let ts = if v.timestamps {
        if v.utc { 20 } else { 19 }
    } else {
        0
    };
    let prefix = if prefix_width > 0 {
        prefix_width + 3
    } else {
        0
    };
    1 + ts + prefix
}

fn char_width(c: char) -> usize {
    if c == '\t' {
        TAB.len()
    } else {
        c.width().unwrap_or(0)
    }
}

fn wrapped_height(
    line: &LogLine,
    v: &LogView,
    prefix_width: usize,
    width: usize,
    cap: usize,
) -> usize {
    let lead = lead_width(v, prefix_width);
    let room = width.saturating_sub(lead).max(1);
    // Counting stops once the line fills the screen: a 64 KiB line costs no more than a screen.
    let mut cols = 0;
    let limit = room * cap;
    for c in line.text.chars() {
        cols += char_width(c);
        if cols >= limit {
            return cap;
        }
    }
    cols.div_ceil(room).max(1)
}

fn severity_style(theme: &Theme, s: Severity) -> Style {
    match s {
        Severity::Error => theme.error(),
        Severity::Warn => theme.warning(),
        Severity::None => theme.text(),
    }
}

fn sgr_color(c: SgrColor) -> Color {
    match c {
        SgrColor::Indexed(i) => Color::Indexed(i),
        SgrColor::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

fn patch_sgr(mut style: Style, s: &SgrStyle) -> Style {
    if let Some(fg) = s.fg {
        style = style.fg(sgr_color(fg));
    }
    if let Some(bg) = s.bg {
        style = style.bg(sgr_color(bg));
    }
    let mut m = Modifier::empty();
    if s.bold {
        m |= Modifier::BOLD;
    }
    if s.dim {
        m |= Modifier::DIM;
    }
    if s.italic {
        m |= Modifier::ITALIC;
    }
    if s.underline {
        m |= Modifier::UNDERLINED;
    }
    if s.reverse {
        m |= Modifier::REVERSED;
    }
    style.add_modifier(m)
}

/// One log line as screen rows: at most `max_rows`, each at most `width` columns.
fn render_line(
    line: &LogLine,
    v: &LogView,
    theme: &Theme,
    prefix_width: usize,
    width: usize,
    max_rows: usize,
    selected: bool,
) -> Vec<Line<'static>> {
    let lead = lead_width(v, prefix_width);
    let room = width.saturating_sub(lead).max(1);
    let rows_allowed = if v.wrap { max_rows.max(1) } else { 1 };
    // Columns scrolled out on the left: they are styled with the rest, then not shown.
    let skip = if v.wrap { 0 } else { v.h_offset };
    // The part of the text that can be on screen.
    let budget = room * rows_allowed + skip;
    let mut end = 0;
    let mut cols = 0;
    for (i, c) in line.text.char_indices() {
        let w = char_width(c);
        if cols + w > budget {
            break;
        }
        cols += w;
        end = i + c.len_utf8();
    }
    let text = &line.text[..end];

    // Styled ranges: severity as the base, SGR on top, search matches on top of that.
    let base = severity_style(theme, line.severity);
    let mut cuts: Vec<usize> = vec![0, text.len()];
    let sgr: Vec<(usize, usize, SgrStyle)> = line
        .spans
        .iter()
        .flat_map(|s| s.iter())
        .map(|s| (s.start as usize, (s.end as usize).min(text.len()), s.style))
        .filter(|(a, b, _)| a < b)
        .collect();
    let matches: Vec<(usize, usize)> = match &v.search {
        Some(p) => p
            .regex
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .filter(|(a, b)| a < b)
            .take(256)
            .collect(),
        None => Vec::new(),
    };
    for (a, b, _) in &sgr {
        cuts.push(*a);
        cuts.push(*b);
    }
    for (a, b) in &matches {
        cuts.push(*a);
        cuts.push(*b);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces: Vec<(String, Style)> = Vec::new();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a >= b || !text.is_char_boundary(a) || !text.is_char_boundary(b) {
            continue;
        }
        let mut style = base;
        for (sa, sb, s) in &sgr {
            if *sa <= a && b <= *sb {
                style = patch_sgr(style, s);
            }
        }
        if matches.iter().any(|(ma, mb)| *ma <= a && b <= *mb) {
            style = style.patch(theme.search_match());
        }
        pieces.push((text[a..b].replace('\t', TAB), style));
    }

    // The lead: gutter (stderr marked), time, prefix.
    let mut lead_spans: Vec<Span<'static>> = Vec::with_capacity(4);
    lead_spans.push(match line.stream {
        StreamKind::Stderr => Span::styled("▍", theme.stderr()),
        StreamKind::Stdout => Span::raw(" "),
    });
    if v.timestamps {
        lead_spans.push(Span::styled(
            format!("{} ", stamp(line.ts, v.utc)),
            theme.dim(),
        ));
    }
    if prefix_width > 0 {
        let name = v
            .sources
            .get(line.source as usize)
            .map(|s| s.prefix.as_str())
            .unwrap_or("?");
        // Sources are cleaned when the view opens; cut by display width, padded to it.
        let name = crate::format::truncate(name, prefix_width);
        let pad = prefix_width.saturating_sub(unicode_width::UnicodeWidthStr::width(name.as_str()));
        lead_spans.push(Span::styled(
            format!("{name}{}", " ".repeat(pad)),
            theme.series(line.source as usize),
        ));
        lead_spans.push(Span::styled(" │ ", theme.dim()));
    }

    // Split the pieces into rows of `room` columns.
    let mut rows: Vec<Vec<Span<'static>>> = vec![lead_spans];
    let mut used = 0;
    let mut skipped = 0;
    for (s, style) in pieces {
        let mut chunk = String::new();
        for c in s.chars() {
            let w = c.width().unwrap_or(0);
            if skipped < skip {
                skipped += w.max(1);
                continue;
            }
            if used + w > room && v.wrap {
                if !chunk.is_empty() {
                    rows.last_mut()
                        .expect("one row")
                        .push(Span::styled(std::mem::take(&mut chunk), style));
                }
                if rows.len() >= rows_allowed {
                    break;
                }
                rows.push(vec![Span::raw(" ".repeat(lead))]);
                used = 0;
            }
            chunk.push(c);
            used += w;
        }
        if !chunk.is_empty() {
            rows.last_mut()
                .expect("one row")
                .push(Span::styled(chunk, style));
        }
    }
    rows.into_iter()
        .map(|spans| {
            let l = Line::from(spans);
            if selected {
                l.patch_style(theme.selected())
            } else {
                l
            }
        })
        .collect()
}
