//! Popups drawn over the main view: help, filter input, command palette, server picker, the
//! rollback image picker.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};

use crate::app::{App, Overlay};
use crate::format;

pub fn draw(frame: &mut Frame, size: Rect, app: &App) {
    match &app.overlay {
        Overlay::None => {}
        Overlay::Confirm(c) => confirm(frame, size, app, c),
        Overlay::Prompt(p) => prompt(frame, size, app, p),
        Overlay::Help { scroll } => help(frame, size, app, *scroll),
        Overlay::Filter(input) => {
            let area = bottom_line(size);
            frame.render_widget(Clear, area);
            let [label, field] = ratatui::layout::Layout::horizontal([
                ratatui::layout::Constraint::Length(9),
                ratatui::layout::Constraint::Fill(1),
            ])
            .areas(area);
            frame.render_widget(
                Paragraph::new(Span::styled(" filter /", app.theme.key())),
                label,
            );
            let mut input = input.clone();
            input.set_style(app.theme.text());
            input.set_placeholder_text("text, or ~regex   (Enter keeps, Esc clears)");
            input.set_placeholder_style(app.theme.dim());
            frame.render_widget(&input, field);
        }
        Overlay::LogInput(li) => {
            let area = bottom_line(size);
            frame.render_widget(Clear, area);
            let (label, hint) = match li.kind {
                crate::app::LogInputKind::Search => (
                    " search /",
                    "regex   (Enter searches back, n / N move, Esc cancels)",
                ),
                crate::app::LogInputKind::Filter => (
                    " filter |",
                    "regex; !regex shows the others; empty shows all   (Enter applies)",
                ),
            };
            let [label_area, field] = ratatui::layout::Layout::horizontal([
                ratatui::layout::Constraint::Length(10),
                ratatui::layout::Constraint::Fill(1),
            ])
            .areas(area);
            frame.render_widget(
                Paragraph::new(Span::styled(label, app.theme.key())),
                label_area,
            );
            let mut input = li.input.clone();
            input.set_style(app.theme.text());
            input.set_placeholder_text(hint);
            input.set_placeholder_style(app.theme.dim());
            frame.render_widget(&input, field);
        }
        Overlay::Palette(p) => {
            let area = bottom_line(size);
            let shown = p.candidates.len().min(8) as u16;
            if shown > 0 {
                let list_area = Rect {
                    x: area.x,
                    y: area.y.saturating_sub(shown + 2),
                    width: area.width.min(70),
                    height: shown + 2,
                };
                frame.render_widget(Clear, list_area);
                let items: Vec<ListItem> = p
                    .candidates
                    .iter()
                    .map(|c| {
                        // Command names get their help line; arguments stand alone.
                        let help = if c.trim_end().contains(' ') {
                            String::new()
                        } else {
                            crate::commands::palette_help(c).unwrap_or_default()
                        };
                        ListItem::new(Line::from(vec![
                            Span::styled(format!(" {c:<28}"), app.theme.text()),
                            Span::styled(help, app.theme.dim()),
                        ]))
                    })
                    .collect();
                let mut state = ListState::default().with_selected(Some(p.chosen));
                let list = List::new(items)
                    .block(
                        Block::bordered()
                            .border_style(app.theme.border(true))
                            .title(" Tab completes "),
                    )
                    .highlight_style(app.theme.selected());
                frame.render_stateful_widget(list, list_area, &mut state);
            }
            frame.render_widget(Clear, area);
            let [label, field] = ratatui::layout::Layout::horizontal([
                ratatui::layout::Constraint::Length(2),
                ratatui::layout::Constraint::Fill(1),
            ])
            .areas(area);
            frame.render_widget(Paragraph::new(Span::styled(" :", app.theme.key())), label);
            let mut input = p.input.clone();
            input.set_style(app.theme.text());
            frame.render_widget(&input, field);
        }
        Overlay::Picker(p) => {
            let height = (p.entries.len() as u16 + 2)
                .min(size.height.saturating_sub(4))
                .max(3);
            let area = centered(size, 70, height);
            frame.render_widget(Clear, area);
            let items: Vec<ListItem> = p
                .entries
                .iter()
                .map(|e| {
                    let mut spans = vec![
                        Span::styled(format!(" {:<24}", e.name), app.theme.text()),
                        Span::styled(e.detail.clone(), app.theme.dim()),
                    ];
                    if let Some(env) = &e.environment {
                        spans.push(Span::raw(" "));
                        spans.push(Span::styled(format!(" {env} "), app.theme.environment(env)));
                    }
                    ListItem::new(Line::from(spans))
                })
                .collect();
            let mut state = ListState::default().with_selected(Some(p.selected));
            let list = List::new(items)
                .block(
                    Block::bordered()
                        .title(" Servers — Enter connects, Esc closes ")
                        .border_style(app.theme.border(true)),
                )
                .highlight_style(app.theme.selected());
            frame.render_stateful_widget(list, area, &mut state);
        }
        Overlay::Images(p) => image_picker(frame, size, app, p),
    }
}

fn image_picker(frame: &mut Frame, size: Rect, app: &App, p: &crate::app::ImagePicker) {
    // As wide as the longest reference needs (a registry's host and path come first), and when the
    // screen is narrower the start is cut: the tag at the end is what tells the rows apart.
    let longest = p
        .candidates
        .iter()
        .map(|c| format::printable(&c.label()).chars().count())
        .max()
        .unwrap_or(0);
    let width = (longest as u16)
        .saturating_add(84)
        .max(112)
        .min(size.width.saturating_sub(2));
    // The note (why the registry could not be read) wraps between words under the list.
    let note: Vec<String> = p
        .note
        .as_deref()
        .map(|n| super::fit::wrap(&format::printable(n), width.saturating_sub(3) as usize, 0))
        .unwrap_or_default();
    let note_lines = note.len() as u16;
    let height = (p.candidates.len() as u16 + 2 + note_lines)
        .min(size.height.saturating_sub(4))
        .max(5);
    let area = centered(size, width, height);
    frame.render_widget(Clear, area);
    let tag_width = (area.width as usize).saturating_sub(82).max(16);
    let keep_end = |label: String| {
        let n = label.chars().count();
        if n <= tag_width {
            label
        } else {
            let tail: String = label.chars().skip(n + 1 - tag_width).collect();
            format!("…{tail}")
        }
    };
    let items: Vec<ListItem> = p
        .candidates
        .iter()
        .map(|c| {
            let mark = if c.current {
                Span::styled(" running", app.theme.dim())
            } else if c.previous {
                Span::styled(" previous", app.theme.key())
            } else if c.never_ran && p.forward {
                // Where a deploy goes: no warning.
                Span::styled(" newer", app.theme.key())
            } else if c.never_ran {
                Span::styled(" newer · never ran", app.theme.warning())
            } else {
                Span::raw("")
            };
            // The digest says which build a tag is; an image only the server knows goes by id.
            let id = c
                .digest()
                .and_then(|d| d.split_once(':').map(|(_, h)| h))
                .unwrap_or_else(|| c.id.trim_start_matches("sha256:"));
            let id = format::printable(id);
            let place = if c.on_server {
                app.theme.dim()
            } else {
                app.theme.key()
            };
            ListItem::new(Line::from(vec![
                Span::styled(
                    format!(" {:<tag_width$}", keep_end(format::printable(&c.label()))),
                    app.theme.text(),
                ),
                Span::styled(format!(" {:<23}", c.place()), place),
                Span::styled(format!(" {:<12}", &id[..id.len().min(12)]), app.theme.dim()),
                Span::styled(
                    format!(" {:>9}", format::age(c.created, app.now)),
                    app.theme.dim(),
                ),
                Span::styled(
                    format!(
                        " {:>9} ",
                        if c.size > 0 {
                            format::bytes(c.size as u64)
                        } else {
                            "-".into()
                        }
                    ),
                    app.theme.dim(),
                ),
                mark,
            ]))
        })
        .collect();
    let verb = if p.forward { "Deploy" } else { "Roll" };
    let block = Block::bordered()
        .title(format!(
            " {verb} {} to — Enter plans (a registry tag is pulled first; nothing runs before you confirm), Esc closes ",
            format::printable(&p.name)
        ))
        .title_bottom(Line::from(" image · where · digest · created · size ").alignment(Alignment::Right))
        .border_style(app.theme.border(true));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [list_area, note_area] = ratatui::layout::Layout::vertical([
        ratatui::layout::Constraint::Fill(1),
        ratatui::layout::Constraint::Length(note_lines),
    ])
    .areas(inner);
    let mut state = ListState::default().with_selected(Some(p.selected));
    let list = List::new(items).highlight_style(app.theme.selected());
    frame.render_stateful_widget(list, list_area, &mut state);
    if !note.is_empty() {
        let lines: Vec<Line> = note
            .into_iter()
            .map(|row| Line::from(Span::styled(format!(" {row}"), app.theme.warning())))
            .collect();
        frame.render_widget(Paragraph::new(lines), note_area);
    }
}

fn bottom_line(size: Rect) -> Rect {
    Rect {
        x: size.x,
        y: size.y + size.height.saturating_sub(1),
        width: size.width,
        height: 1,
    }
}

fn centered(size: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(size.width.saturating_sub(2));
    let h = height.min(size.height.saturating_sub(2));
    Rect {
        x: size.x + (size.width - w) / 2,
        y: size.y + (size.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The help box's width on `size`: room for the key column and a line of text, never wider than
/// the screen.
fn help_width(size: Rect) -> u16 {
    100.min(size.width.saturating_sub(2))
}

fn help(frame: &mut Frame, size: Rect, app: &App, scroll: u16) {
    use super::fit::wrap;
    const KEYS: usize = 24;
    let theme = &app.theme;
    let read_only = app.target.as_ref().is_some_and(|t| t.read_only);
    let inner = help_width(size).saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    // A row's text wraps between words under its own column; the key column stays clear.
    let push = |lines: &mut Vec<Line<'static>>, keys: String, what: &str, note: Option<&str>| {
        let text = match note {
            Some(n) => format!("{what}  {n}"),
            None => what.to_string(),
        };
        for (i, row) in wrap(&text, inner.saturating_sub(KEYS), 0)
            .into_iter()
            .enumerate()
        {
            let lead = if i == 0 {
                Span::styled(format!("  {keys:<22}"), theme.key())
            } else {
                Span::raw(" ".repeat(KEYS))
            };
            // The read-only note is the end of the text: drawn as a warning where it starts.
            let spans = match note.and_then(|n| row.find(n).map(|at| (n, at))) {
                Some((_, at)) => vec![
                    lead,
                    Span::styled(row[..at].to_string(), theme.text()),
                    Span::styled(row[at..].to_string(), theme.warning()),
                ],
                None => vec![lead, Span::styled(row, theme.text())],
            };
            lines.push(Line::from(spans));
        }
    };
    for (scope, rows) in app.keymap.help(app.scope()) {
        lines.push(Line::from(Span::styled(scope.title(), theme.title(true))));
        for (keys, what) in rows {
            let disabled = read_only
                && crate::commands::Intent::ALL
                    .iter()
                    .any(|i| i.refused_when_read_only() && i.help() == what);
            push(
                &mut lines,
                keys.to_string(),
                what,
                disabled.then_some("(read-only: disabled)"),
            );
        }
        lines.push(Line::default());
    }
    lines.push(Line::from(Span::styled("Commands (:)", theme.title(true))));
    // The view's own commands first, then the rest: every command works from every view.
    let chain = app.scope().chain();
    let rank = |i: crate::commands::Intent| {
        chain
            .iter()
            .position(|s| *s == i.scope())
            .unwrap_or(chain.len())
    };
    let mut commands: Vec<_> = crate::commands::Intent::palette_commands().collect();
    commands.sort_by_key(|(i, _)| rank(*i));
    for (intent, form) in commands {
        let mut text = format!(":{}", form.help_line());
        if read_only && intent.refused_when_read_only() {
            text.push_str("  (read-only: disabled)");
        }
        for (i, row) in wrap(&text, inner.saturating_sub(2), 4)
            .into_iter()
            .enumerate()
        {
            let style = if i == 0 && !row.contains("(read-only") {
                theme.text()
            } else if row.contains("(read-only") {
                theme.warning()
            } else {
                theme.text()
            };
            lines.push(Line::from(Span::styled(format!("  {row}"), style)));
        }
    }
    lines.push(Line::default());
    for row in wrap(
        "Mouse: click selects, wheel scrolls.  Any key closes.",
        inner,
        0,
    ) {
        lines.push(Line::from(Span::styled(row, theme.dim())));
    }
    let height = (lines.len() as u16 + 2).min(size.height.saturating_sub(2));
    let area = centered(size, help_width(size), height);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" Help ")
        .title_alignment(Alignment::Center)
        .border_style(theme.border(true));
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

fn confirm(frame: &mut Frame, size: Rect, app: &App, c: &crate::app::Confirm) {
    let wrap = |lines, width| crate::app::details::wrap_indented(lines, width, 2);
    let theme = &app.theme;
    let production = app.target.as_ref().is_some_and(|t| t.is_production());
    let width = 90.min(size.width.saturating_sub(2));
    let inner_width = width.saturating_sub(2) as usize;
    let rows = |lines: &[String]| -> Vec<Line> {
        lines
            .iter()
            .flat_map(|l| wrap_words(l, inner_width, 2))
            .map(|l| Line::from(Span::styled(l, theme.text())))
            .collect()
    };
    let summary = rows(&c.summary);
    let steps = rows(&c.body);
    let prompt_line = match &c.typed {
        Some(expected) => Line::from(vec![
            Span::styled("Type ", theme.text()),
            Span::styled(expected.clone(), theme.key()),
            Span::styled(" and press Enter to go ahead, Esc to cancel:", theme.text()),
        ]),
        None => Line::from(vec![
            Span::styled("y", theme.key()),
            Span::styled(" / Enter go ahead   ", theme.text()),
            Span::styled("n", theme.key()),
            Span::styled(" / Esc cancel", theme.text()),
        ]),
    };
    let prompt = wrap(vec![prompt_line], inner_width);
    let input_rows = u16::from(c.typed.is_some());
    // The prompt and its field are placed first, then the summary, then whatever room is left
    // goes to the steps: the prompt is always on screen, however long the plan.
    let avail = size.height.saturating_sub(4);
    let prompt_h = (prompt.len() as u16 + input_rows).min(avail);
    let gaps = if steps.is_empty() { 1 } else { 3 };
    let summary_h = (summary.len() as u16).min(avail.saturating_sub(prompt_h + gaps + 1));
    let wanted_steps = steps.len() as u16;
    let steps_h = wanted_steps.min(avail.saturating_sub(prompt_h + summary_h + gaps));
    let inner_h = summary_h + gaps + steps_h + prompt_h;
    let area = centered(size, width, inner_h + 2);
    frame.render_widget(Clear, area);
    let border = if production {
        theme.error()
    } else {
        theme.border(true)
    };
    let mut title = vec![Span::styled(format!(" {} ", c.title), theme.title(true))];
    if let Some(label) = app.target.as_ref().and_then(|t| t.environment.as_deref()) {
        title.push(Span::styled(
            format!(" {} ", label.to_uppercase()),
            theme.environment(label),
        ));
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(border);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut y = inner.y;
    let mut place = |h: u16| {
        let r = Rect {
            y,
            height: h.min(inner.bottom().saturating_sub(y)),
            ..inner
        };
        y += r.height;
        r
    };
    frame.render_widget(Paragraph::new(summary), place(summary_h));
    if !steps.is_empty() {
        place(1);
        let max_scroll = wanted_steps.saturating_sub(steps_h);
        let scroll = c.scroll.min(max_scroll);
        let header = if max_scroll > 0 {
            format!(
                "Steps and engine calls ({}–{} of {} lines, ↑↓ PgUp PgDn scroll)",
                scroll + 1,
                scroll + steps_h,
                wanted_steps
            )
        } else {
            "Steps and engine calls".to_string()
        };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(header, theme.dim()))),
            place(1),
        );
        frame.render_widget(Paragraph::new(steps).scroll((scroll, 0)), place(steps_h));
    }
    place(1);
    let prompt_area = place(prompt_h);
    let text_rows = prompt_area.height.saturating_sub(input_rows);
    frame.render_widget(
        Paragraph::new(prompt),
        Rect {
            height: text_rows,
            ..prompt_area
        },
    );
    if c.typed.is_some() && prompt_area.height > text_rows {
        let field = Rect {
            y: prompt_area.y + text_rows,
            height: 1,
            ..prompt_area
        };
        let mut input = c.input.clone();
        input.set_style(theme.selected());
        frame.render_widget(&input, field);
    }
}

/// Greedy word wrap of plain text at `width` columns, continuation rows indented by `indent`; a
/// word longer than a row is split.
fn wrap_words(text: &str, width: usize, indent: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    if width <= indent + 1 || text.width() <= width {
        return vec![text.to_string()];
    }
    let lead: String = text.chars().take_while(|c| *c == ' ').collect();
    let mut out = Vec::new();
    let mut row = lead.clone();
    for word in text[lead.len()..].split(' ') {
        let sep = if row.trim().is_empty() { "" } else { " " };
        if row.width() + sep.len() + word.width() <= width {
            row.push_str(sep);
            row.push_str(word);
            continue;
        }
        if !row.trim().is_empty() {
            out.push(std::mem::replace(&mut row, " ".repeat(indent)));
        }
        let mut rest = word.to_string();
        while row.width() + rest.width() > width {
            let room = width - row.width();
            let cut: String = rest.chars().take(room.max(1)).collect();
            rest = rest.chars().skip(cut.chars().count()).collect();
            row.push_str(&cut);
            out.push(std::mem::replace(&mut row, " ".repeat(indent)));
        }
        row.push_str(&rest);
    }
    if !row.trim().is_empty() {
        out.push(row);
    }
    out
}

fn prompt(frame: &mut Frame, size: Rect, app: &App, p: &crate::app::Prompt) {
    use crate::ssh::PromptRequest;
    let theme = &app.theme;
    let (title, lines, secret): (&str, Vec<Line>, bool) = match &p.request {
        PromptRequest::RegistryLogin { registry } => {
            let registry = format::printable(registry);
            let ask = match &p.username {
                None => "Username (Enter; Esc cancels):".to_string(),
                Some(u) => format!(
                    "Password for {} (Enter; Esc cancels):",
                    format::printable(u)
                ),
            };
            (
                " Registry login ",
                vec![
                    Line::from(format!(
                        "Registry {registry} asks for a login; no docker config (the server's, this machine's) has one."
                    )),
                    Line::from(Span::styled(
                        "Kept in memory while connected, never saved; `docker login` on the server keeps one.",
                        theme.dim(),
                    )),
                    Line::from(ask),
                ],
                true,
            )
        }
        PromptRequest::Passphrase { key } => (
            " Key passphrase ",
            vec![Line::from(format!(
                "The key {} is encrypted. Passphrase (Enter; Esc cancels):",
                key.display()
            ))],
            true,
        ),
        PromptRequest::Password { user_host } => (
            " Password ",
            vec![Line::from(format!(
                "Password for {user_host} (Enter; Esc cancels):"
            ))],
            true,
        ),
        PromptRequest::UnknownHost {
            host,
            port,
            key_type,
            fingerprint,
        } => (
            " Unknown host ",
            vec![
                Line::from(format!(
                    "The authenticity of host {host} (port {port}) can't be established."
                )),
                Line::from(vec![
                    Span::styled(format!("{key_type} key fingerprint is "), theme.text()),
                    Span::styled(fingerprint.clone(), theme.key()),
                ]),
                Line::from(
                    "Compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server).",
                ),
                Line::default(),
                Line::from(vec![
                    Span::styled("r", theme.key()),
                    Span::styled(" refuse   ", theme.text()),
                    Span::styled("o", theme.key()),
                    Span::styled(" accept once   ", theme.text()),
                    Span::styled("s", theme.key()),
                    Span::styled(" accept and save to known_hosts", theme.text()),
                ]),
            ],
            false,
        ),
    };
    // Rows the wrapped text takes (a wrapped line by words may need one more than by width).
    let text_width = usize::from(size.width.saturating_sub(4).min(94)).max(1);
    let rows: usize = lines
        .iter()
        .map(|l| match l.width() {
            w if w <= text_width => 1,
            w => w.div_ceil(text_width) + 1,
        })
        .sum();
    let height = rows as u16 + 2 + u16::from(secret);
    let area = centered(size, 96, height);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(Span::styled(title, theme.title(true)))
        .border_style(theme.warning());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let text_area = Rect {
        height: inner.height.saturating_sub(u16::from(secret)),
        ..inner
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        text_area,
    );
    if secret && inner.height > 0 {
        let field = Rect {
            y: inner.y + inner.height - 1,
            height: 1,
            ..inner
        };
        let mut input = p.input.clone();
        input.set_style(theme.selected());
        frame.render_widget(&input, field);
    }
}
