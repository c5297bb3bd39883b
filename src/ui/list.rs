//! The container list: compose projects as folding groups, one row per container.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row as TableRow, Table};

use super::stats::level_style;
use crate::app::layout::Areas;
use crate::app::{App, Focus, Row};
use crate::compose::Drift;
use crate::engine::model::{Container, Health, short_id};
use crate::format::{compact_bytes, health_text, pair, percent, printable, truncate, uptime};

struct Column {
    title: &'static str,
    /// What a cell of this column can hold at most, when its content does not say (figures).
    width: u16,
    /// The narrowest it is shown at: a column that cannot get this much is left out.
    min: u16,
    /// Whether its width follows its content (names, images, ports, uptimes).
    by_content: bool,
    /// Columns with a higher number drop first on a narrow terminal, in the order an on-call
    /// engineer can spare them: ids and PIDs first, then IO rates, then ports and limits; name,
    /// state, health and uptime (or exit code and age) stay.
    priority: u8,
}

const fn col(title: &'static str, width: u16, priority: u8) -> Column {
    Column {
        title,
        width,
        min: width,
        by_content: false,
        priority,
    }
}

const fn content(title: &'static str, min: u16, priority: u8) -> Column {
    Column {
        title,
        width: min,
        min,
        by_content: true,
        priority,
    }
}

const COLUMNS: &[Column] = &[
    content("NAME", 12, 0),
    col("STATE", 10, 0),
    content("HEALTH", 11, 1),
    content("UPTIME", 12, 1),
    col("RST", 3, 5),
    col("CPU%", 6, 3),
    col("MEM", 6, 3),
    col("MEM%", 4, 5),
    col("NET ↓↑/s", 13, 6),
    col("BLOCK r w/s", 13, 6),
    col("PIDS", 4, 7),
    content("IMAGE", 10, 2),
    col("ID", 12, 7),
    content("PORTS", 8, 4),
];

/// Columns of this priority and higher go before any name or image is cut.
const EXTRAS_FROM: u8 = 3;

/// The columns shown in `inner` columns and the width of each: every column gets what its
/// content needs; when that does not fit, the widest of the columns that follow their content
/// gives way first, so a name is never cut while a wider column has room to spare; a column
/// that cannot get its minimum is left out, the least needed first.
fn layout_columns(inner: u16, need: impl Fn(usize) -> u16) -> (Vec<usize>, Vec<usize>) {
    let mut cols: Vec<usize> = (0..COLUMNS.len()).collect();
    let needs: Vec<u16> = (0..COLUMNS.len())
        .map(|i| {
            let c = &COLUMNS[i];
            let title = c.title.chars().count() as u16;
            if c.by_content {
                need(i).max(title).max(c.min)
            } else {
                c.width.max(title)
            }
        })
        .collect();
    let floor = |i: usize| COLUMNS[i].min.min(needs[i]);
    let spacing = |n: usize| n.saturating_sub(1) as u16;
    // The least needed column goes; among equals the rightmost.
    let drop_least = |cols: &mut Vec<usize>, above: u8| -> bool {
        let least = cols
            .iter()
            .enumerate()
            .filter(|(_, i)| COLUMNS[**i].priority > above)
            .max_by_key(|(k, i)| (COLUMNS[**i].priority, *k))
            .map(|(k, _)| k);
        match least {
            Some(k) => {
                cols.remove(k);
                true
            }
            None => false,
        }
    };
    // First the extras go, so names and images are whole; then, only if the rest cannot fit even
    // cut to their minimum, the columns that matter more.
    while cols.iter().map(|&i| needs[i]).sum::<u16>() + spacing(cols.len()) > inner
        && drop_least(&mut cols, EXTRAS_FROM - 1)
    {}
    while cols.len() > 1
        && cols.iter().map(|&i| floor(i)).sum::<u16>() + spacing(cols.len()) > inner
        && drop_least(&mut cols, 0)
    {}
    let room = inner.saturating_sub(spacing(cols.len()));
    let mut widths: Vec<u16> = cols.iter().map(|&i| needs[i]).collect();
    let mut total: u16 = widths.iter().sum();
    while total > room {
        // The widest column that may still give way loses one column.
        let Some(k) = (0..cols.len())
            .filter(|&k| COLUMNS[cols[k]].by_content && widths[k] > floor(cols[k]))
            .max_by_key(|&k| (widths[k], k))
        else {
            break;
        };
        widths[k] -= 1;
        total -= 1;
    }
    if total < room {
        // What is left goes to the last column, so the table reaches the border.
        if let Some(last) = widths.last_mut() {
            *last += room - total;
        }
    }
    (cols, widths.into_iter().map(usize::from).collect())
}

/// What each content column of the list needs to show every row whole.
fn content_need(app: &App, i: usize) -> u16 {
    use unicode_width::UnicodeWidthStr;
    let widest = |texts: &mut dyn Iterator<Item = String>| {
        texts.map(|t| t.width()).max().unwrap_or(0) as u16
    };
    let containers = || {
        app.list.rows.iter().filter_map(|r| match r {
            Row::Container { id } => app.containers.get(id),
            Row::Group { .. } => None,
        })
    };
    match COLUMNS[i].title {
        "NAME" => widest(&mut app.list.rows.iter().map(|r| {
            match r {
                Row::Group { key, .. } => format!("▾ {}", printable(key)),
                Row::Container { id } => app
                    .containers
                    .get(id)
                    .map(|c| format!("  {}", printable(&c.list_name())))
                    .unwrap_or_default(),
            }
        })),
        "UPTIME" => widest(&mut containers().map(|c| uptime(c, app.now))),
        "HEALTH" => widest(&mut containers().map(health_text)),
        "IMAGE" => widest(&mut containers().map(|c| {
            let image = printable(if c.is_kept() {
                c.kept_image()
            } else {
                &c.image
            });
            match app.compose.drift(c) {
                Some(Drift::Drifted { .. }) => format!("⚠ drift {image}"),
                _ => image,
            }
        })),
        "PORTS" => widest(&mut containers().map(|c| {
            c.ports
                .iter()
                .map(|p| p.short())
                .collect::<Vec<_>>()
                .join(" ")
        })),
        _ => COLUMNS[i].width,
    }
}

/// A name in `width`: cut before its marker (`· kept`, `· new`, `· rollback journal`), which
/// stays whole, with `…` where the name was cut.
fn fit_name(name: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    if name.width() <= width {
        return name.to_string();
    }
    if let Some((base, marker)) = name.rsplit_once(" · ") {
        let marker = format!(" · {marker}");
        if marker.width() + 2 <= width {
            return format!("{}{marker}", truncate(base, width - marker.width()));
        }
    }
    truncate(name, width)
}

pub fn draw(frame: &mut Frame, areas: &Areas, app: &App) {
    let theme = &app.theme;
    let focused = app.list.focus == Focus::List || !app.list.details_open;
    let shown = app
        .list
        .rows
        .iter()
        .filter(|r| matches!(r, Row::Container { .. }))
        .count();
    let mut title = vec![
        Span::styled(" containers ", theme.title(focused)),
        Span::styled(format!("{shown}/{} ", app.containers.len()), theme.dim()),
        Span::styled(format!("· sort {} ", app.list.sort.label()), theme.dim()),
    ];
    if !app.list.show_all {
        title.push(Span::styled("· running only ", theme.dim()));
    }
    if let Some(f) = &app.list.filter {
        title.push(Span::styled(
            format!("· filter “{}” ", truncate(&f.text(), 30)),
            theme.accent(),
        ));
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(theme.border(focused));
    let (cols, fit) = layout_columns(areas.list.width.saturating_sub(2), |i| content_need(app, i));
    let header = TableRow::new(cols.iter().map(|&i| Cell::from(COLUMNS[i].title)))
        .style(theme.column_header());
    let visible = app
        .list
        .rows
        .iter()
        .enumerate()
        .skip(app.list.offset)
        .take(areas.list_rows.max(1));
    let rows: Vec<TableRow> = visible
        .map(|(index, row)| {
            let r = match row {
                Row::Group {
                    key,
                    total,
                    running,
                    unhealthy,
                    collapsed,
                } => group_row(app, &cols, key, *total, *running, *unhealthy, *collapsed),
                Row::Container { id } => match app.containers.get(id) {
                    Some(c) => container_row(app, &cols, &fit, c),
                    None => TableRow::new(vec![Cell::from("")]),
                },
            };
            if index == app.list.selected {
                r.style(theme.selected())
            } else {
                r
            }
        })
        .collect();
    let widths: Vec<Constraint> = fit.iter().map(|&w| Constraint::Length(w as u16)).collect();
    let empty = app.list.rows.is_empty();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1);
    frame.render_widget(table, areas.list);
    if empty {
        let msg = if app.list.filter.is_some() {
            "no container matches the filter (Esc clears it)"
        } else if !app.listed {
            "listing containers…"
        } else if !app.list.show_all && !app.containers.is_empty() {
            "no running containers (a shows stopped ones)"
        } else {
            "no containers on this engine"
        };
        let area = ratatui::layout::Rect {
            height: 1,
            ..areas.list_body
        };
        frame.render_widget(
            ratatui::widgets::Paragraph::new(msg).style(theme.dim()),
            area,
        );
    }
}

fn group_row<'a>(
    app: &App,
    cols: &[usize],
    key: &str,
    total: usize,
    running: usize,
    unhealthy: usize,
    collapsed: bool,
) -> TableRow<'a> {
    let theme = &app.theme;
    let cells = cols.iter().map(|&i| match COLUMNS[i].title {
        "NAME" => Cell::from(Span::styled(
            format!("{} {}", if collapsed { "▸" } else { "▾" }, printable(key)),
            theme.group(),
        )),
        "STATE" => Cell::from(Span::styled(format!("{running}/{total} up"), theme.dim())),
        "HEALTH" if unhealthy > 0 => Cell::from(Span::styled(
            format!("✖ {unhealthy} bad"),
            theme.health(Health::Unhealthy),
        )),
        _ => Cell::from(""),
    });
    TableRow::new(cells.collect::<Vec<_>>())
}

/// Whole words that fit `width`, joined by `sep`, with `+N` for the ones left out: a value is
/// never cut in the middle.
fn fit_words(words: &[String], sep: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        let more = words.len() - i - 1;
        let candidate = if out.is_empty() {
            w.clone()
        } else {
            format!("{out}{sep}{w}")
        };
        let tail = if more > 0 {
            format!(" +{more}")
        } else {
            String::new()
        };
        if candidate.width() + tail.width() > width {
            let left = words.len() - i;
            return if out.is_empty() {
                truncate(w, width)
            } else {
                format!("{out} +{left}")
            };
        }
        out = candidate;
    }
    out
}

/// Uptime or exit code and age in `width`: `exit 137 · 54s ago`, then without "ago", never a cut word.
fn fit_uptime(text: String, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    if text.width() <= width {
        return text;
    }
    let short = text.trim_end_matches(" ago").to_string();
    if short.width() <= width {
        return short;
    }
    let words: Vec<String> = short.split(" · ").map(str::to_string).collect();
    // `kept · from app:v2 · 12m` keeps what and since when; the image column names the image.
    if words.len() > 2 {
        let ends = format!("{} · {}", words[0], words[words.len() - 1]);
        if ends.width() <= width {
            return ends;
        }
    }
    fit_words(&words[..1], "", width)
}

fn container_row<'a>(app: &App, cols: &[usize], fit: &[usize], c: &Container) -> TableRow<'a> {
    let theme = &app.theme;
    // Only running containers are read; a stopped one keeps no stale numbers.
    // While stale (link or engine lost) the figures are not current: dashes, not old numbers.
    let stale = app.is_stale();
    let stats = app
        .stats
        .latest(&c.id)
        .filter(|_| c.state.is_up() && !stale);
    let dash = || {
        Cell::from(Span::styled(
            "—",
            if stale { theme.stale() } else { theme.dim() },
        ))
    };
    // What was last known, drawn as old rather than as a live green.
    let known = |style: ratatui::style::Style| if stale { theme.stale() } else { style };
    let name = c.list_name();
    let width = |k: usize| fit.get(k).copied().unwrap_or(usize::MAX);
    let cells = cols
        .iter()
        .enumerate()
        .map(|(k, &i)| match COLUMNS[i].title {
            "NAME" => Cell::from(format!(
                "  {}",
                fit_name(&printable(&name), width(k).saturating_sub(2))
            )),
            "STATE" => Cell::from(Span::styled(c.state.as_str(), known(theme.state(c.state)))),
            "HEALTH" => Cell::from(Span::styled(
                {
                    // `was unhealthy` where it fits, else the shorter `(unhealthy)`: history either way.
                    let h = health_text(c);
                    match h.strip_prefix("was ") {
                        Some(last) if h.chars().count() > width(k) => format!("({last})"),
                        _ => h,
                    }
                },
                known(if c.state.is_up() {
                    theme.health(c.health)
                } else {
                    theme.dim()
                }),
            )),
            "UPTIME" => Cell::from(Span::styled(
                fit_uptime(uptime(c, app.now), width(k)),
                known(if c.state.is_up() {
                    theme.text()
                } else {
                    theme.dim()
                }),
            )),
            "RST" => Cell::from(Span::styled(
                c.restart_count.to_string(),
                if c.restart_count > 0 {
                    theme.warning()
                } else {
                    theme.dim()
                },
            )),
            "CPU%" => match stats.and_then(|s| s.cpu) {
                Some(p) => Cell::from(Span::styled(percent(p), level_style(theme, p))),
                None => dash(),
            },
            "MEM" => match stats.and_then(|s| s.mem_used) {
                Some(m) => Cell::from(compact_bytes(m)),
                None => dash(),
            },
            "MEM%" => match stats.and_then(|s| s.mem_percent()) {
                Some(p) => Cell::from(Span::styled(format!("{p:.0}%"), level_style(theme, p))),
                None => dash(),
            },
            "NET ↓↑/s" => match stats {
                Some(s) if s.net_rx.is_some() => Cell::from(pair(s.net_rx, s.net_tx)),
                _ => dash(),
            },
            "BLOCK r w/s" => match stats {
                Some(s) if s.blk_read.is_some() => Cell::from(pair(s.blk_read, s.blk_write)),
                _ => dash(),
            },
            "PIDS" => match stats.and_then(|s| s.pids) {
                Some(n) => Cell::from(n.to_string()),
                None => dash(),
            },
            "IMAGE" => {
                let image = printable(if c.is_kept() {
                    c.kept_image()
                } else {
                    &c.image
                });
                // Drift first: it is what the next `up -d` changes, and must survive a narrow column.
                match app.compose.drift(c) {
                    Some(Drift::Drifted { .. }) => {
                        use unicode_width::UnicodeWidthStr;
                        // The word where it fits; in a narrow column the sign, and the tag whole.
                        let mark = if "⚠ drift ".width() + image.width() <= width(k) {
                            "⚠ drift "
                        } else {
                            "⚠ "
                        };
                        Cell::from(Line::from(vec![
                            Span::styled(truncate(mark, width(k)), theme.warning()),
                            Span::styled(
                                truncate(&image, width(k).saturating_sub(mark.width())),
                                theme.warning(),
                            ),
                        ]))
                    }
                    _ => Cell::from(truncate(&image, width(k))),
                }
            }
            "ID" => Cell::from(Span::styled(short_id(&c.id).to_string(), theme.dim())),
            "PORTS" => Cell::from(fit_words(
                &c.ports.iter().map(|p| p.short()).collect::<Vec<_>>(),
                " ",
                width(k),
            )),
            _ => Cell::from(""),
        });
    TableRow::new(cells.collect::<Vec<_>>())
}
