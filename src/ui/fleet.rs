//! The fleet view: one row per configured server, trouble first, filled in as each answers.

use super::fit::Part;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use crate::app::App;
use crate::fleet::{GroupRow, ServerRow};
use crate::format::{printable, truncate};
use crate::theme::Theme;

/// The fleet's header: how many servers, how many answered, and what is wrong (kept on every
/// width), in the parts `super::fit` fits to the line.
pub fn header_parts<'a>(app: &App) -> Vec<Part<'a>> {
    let theme = &app.theme;
    let rows = &app.fleet.rows;
    let mut parts = vec![Part::kept(
        0,
        vec![
            vec![
                Span::styled("fleet", theme.title(true)),
                Span::styled(
                    format!(
                        " · {} server{}",
                        rows.len(),
                        if rows.len() == 1 { "" } else { "s" }
                    ),
                    theme.dim(),
                ),
            ],
            vec![Span::styled("fleet", theme.title(true))],
        ],
    )];
    let answered = app.fleet.answered();
    if answered < rows.len() {
        let waiting = rows.len() - answered;
        parts.push(Part::kept(
            1,
            vec![
                vec![Span::styled(
                    format!(" · {answered} answered, waiting for {waiting}"),
                    theme.warning(),
                )],
                vec![Span::styled(
                    format!(" · waiting for {waiting}"),
                    theme.warning(),
                )],
            ],
        ));
    }
    let down = rows.iter().filter(|r| r.reachable == Some(false)).count();
    if down > 0 {
        parts.push(Part::kept(
            1,
            vec![vec![Span::styled(
                format!("  ✖ {down} unreachable"),
                theme.error(),
            )]],
        ));
    }
    // Containers are counted per engine: entries that reach one engine count it once.
    let engines = crate::fleet::distinct_engines(rows);
    let unhealthy: usize = engines.iter().map(|r| r.containers.unhealthy).sum();
    let reachable = rows.iter().filter(|r| r.reachable == Some(true)).count();
    if engines.len() < reachable {
        parts.push(Part::droppable(
            3,
            vec![vec![Span::styled(
                format!(
                    " · {reachable} entries reach {} engine{}",
                    engines.len(),
                    if engines.len() == 1 { "" } else { "s" }
                ),
                theme.dim(),
            )]],
        ));
    }
    if unhealthy > 0 {
        parts.push(Part::kept(
            2,
            vec![vec![Span::styled(
                format!("  ✖ {unhealthy} unhealthy"),
                theme.error(),
            )]],
        ));
    }
    parts
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    if let Some(query) = &app.fleet.query {
        return draw_found(frame, area, app, query);
    }
    let groups = GroupRow::of(&app.config.group_list(), &app.fleet.rows);
    // Groups above the servers, as long as the servers keep most of the screen.
    let group_height = (groups.len() as u16 + 3).min(area.height / 3);
    if groups.is_empty() || group_height < 4 {
        return draw_servers(frame, area, app);
    }
    let [top, rest] =
        Layout::vertical([Constraint::Length(group_height), Constraint::Min(4)]).areas(area);
    draw_groups(frame, top, app, &groups);
    draw_servers(frame, rest, app);
}

/// One line per group: its members, how many are up, their containers summed.
fn draw_groups(frame: &mut Frame, area: Rect, app: &App, groups: &[GroupRow]) {
    let theme = &app.theme;
    let header = super::table::header(
        &[
            "GROUP", "UP", "RUN/ALL", "UNHLT", "RSTRT", "EXIT", "SERVERS",
        ],
        theme,
    );
    let rows: Vec<Row> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let up = if g.unreachable > 0 {
                Span::styled(
                    format!("{}/{}", g.reachable, g.servers.len()),
                    theme.error(),
                )
            } else {
                Span::raw(format!("{}/{}", g.reachable, g.servers.len()))
            };
            let count = |n: usize, bad: Style| {
                Cell::from(Span::styled(
                    n.to_string(),
                    if n > 0 { bad } else { theme.dim() },
                ))
            };
            let row = Row::new(vec![
                Cell::from(printable(&g.group)),
                Cell::from(up),
                Cell::from(format!("{}/{}", g.containers.running, g.containers.total)),
                count(g.containers.unhealthy, theme.error()),
                count(g.containers.restarting, theme.warning()),
                count(g.containers.exited_recently, theme.warning()),
                Cell::from(Span::styled(printable(&g.servers.join(", ")), theme.dim())),
            ]);
            if app.fleet.group == Some(i) {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(18),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Min(10),
    ];
    let focused = app.fleet.group.is_some();
    let block = Block::bordered()
        .title(Span::styled(" groups ", theme.title(focused)))
        .border_style(theme.border(focused));
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

fn draw_servers(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let fleet = &app.fleet;
    let focused = fleet.group.is_none();
    let block = Block::bordered()
        .title(Span::styled(
            " servers, trouble first ",
            theme.title(focused),
        ))
        .border_style(theme.border(focused));
    if fleet.rows.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new("no servers in the config: add [servers.NAME] entries")
                .style(theme.dim()),
            inner,
        );
        return;
    }
    let header = super::table::header(
        &[
            "SERVER",
            "ENV",
            "STATUS",
            "RTT",
            "ENGINE",
            "RUN/ALL",
            "UNHLT",
            "RSTRT",
            "EXIT",
            "CPU",
            "MEM",
            "DISK",
            "LAST CHANGE / ERROR",
        ],
        theme,
    );
    // The selected server's whole error, wrapped under the table: the row's column cuts it.
    let error = fleet
        .selected_row()
        .filter(|_| focused)
        .and_then(|r| r.error_detail.as_deref().map(|d| (r, d)));
    let area = match error {
        Some((r, detail)) if area.height >= 10 => {
            let [table, below] =
                Layout::vertical([Constraint::Min(6), Constraint::Length(4)]).areas(area);
            let block = Block::bordered()
                .title(Span::styled(
                    match r.stale_for(app.now) {
                        Some(age) => format!(" {} · last read {age} ago ", printable(&r.server)),
                        None => format!(" {} ", printable(&r.server)),
                    },
                    theme.title(false),
                ))
                .border_style(theme.border(false));
            frame.render_widget(
                Paragraph::new(printable(detail))
                    .style(theme.error())
                    .wrap(ratatui::widgets::Wrap { trim: true })
                    .block(block),
                below,
            );
            table
        }
        _ => area,
    };
    let visible = area.height.saturating_sub(3) as usize;
    let now = app.now;
    let line = |i: usize| server_row(&fleet.rows[i], &fleet.rows, now, theme);
    let rows: Vec<Row> = if focused {
        super::table::windowed(fleet.rows.len(), fleet.selected, visible, theme, line)
    } else {
        // The selection is on a group: the servers keep their window, unhighlighted.
        super::table::window(fleet.rows.len(), fleet.selected, visible)
            .map(line)
            .collect()
    };
    // On a narrow screen the server, its state, its containers and what is wrong stay; the
    // engine's version, the round trip and the host's numbers go first.
    super::table::draw_fitted(
        frame,
        area,
        header,
        rows,
        block,
        &[
            (18, 0),
            (11, 1),
            (18, 0),
            (6, 4),
            (9, 5),
            (7, 0),
            (5, 0),
            (5, 3),
            (4, 3),
            (4, 4),
            (4, 4),
            (4, 4),
            (10, 2),
        ],
    );
}

fn server_row<'a>(
    r: &ServerRow,
    all: &[ServerRow],
    now: chrono::DateTime<chrono::Utc>,
    theme: &Theme,
) -> Row<'a> {
    let up = r.reachable == Some(true);
    // Figures left from before the link was lost are marked `~` and dimmed.
    let stale = r.stale();
    let mark = |t: String| if stale { format!("~{t}") } else { t };
    let count = |n: usize, bad: Style| {
        if !up {
            Cell::from(Span::styled("-", theme.dim()))
        } else if n > 0 {
            Cell::from(Span::styled(n.to_string(), bad))
        } else {
            Cell::from(Span::styled("0", theme.dim()))
        }
    };
    let percent = |p: Option<f64>| match p {
        Some(p) if stale => Cell::from(Span::styled(format!("~{p:.0}%"), theme.dim())),
        Some(p) => Cell::from(Span::styled(
            format!("{p:.0}%"),
            super::stats::level_style(theme, p),
        )),
        None => Cell::from(Span::styled("-", theme.dim())),
    };
    let status = match (r.reachable, &r.error) {
        (Some(true), _) => Span::styled("● ok", theme.success()),
        // The age of the figures stays on screen; a long reason gives way (it is whole below).
        (Some(false), Some(e)) => match r.stale_for(now) {
            Some(age) => {
                let room = 18usize.saturating_sub(age.chars().count() + 5);
                Span::styled(
                    format!("✖ {} · {age}", truncate(&printable(e), room)),
                    theme.error(),
                )
            }
            None => Span::styled(format!("✖ {}", printable(e)), theme.error()),
        },
        (Some(false), None) => Span::styled("✖ unreachable", theme.error()),
        (None, _) => Span::styled("… connecting", theme.warning()),
    };
    let env = match r.environment.as_deref() {
        Some(label) => Span::styled(truncate(&printable(label), 11), theme.environment(label)),
        None => Span::styled("-", theme.dim()),
    };
    let dim_or = |text: Option<String>| match text {
        Some(t) if stale => Cell::from(Span::styled(mark(t), theme.dim())),
        Some(t) => Cell::from(t),
        None => Cell::from(Span::styled("-", theme.dim())),
    };
    let shared = crate::fleet::same_engine_as(all, r)
        .filter(|_| up)
        .map(|other| format!("same engine as {} · ", printable(other)))
        .unwrap_or_default();
    Row::new(vec![
        Cell::from(printable(&r.server)),
        Cell::from(env),
        Cell::from(status),
        dim_or(r.rtt_ms.map(|ms| format!("{ms}ms"))),
        dim_or(r.engine.as_deref().map(printable)),
        dim_or(up.then(|| format!("{}/{}", r.containers.running, r.containers.total))),
        count(r.containers.unhealthy, theme.error()),
        count(r.containers.restarting, theme.warning()),
        count(r.containers.exited_recently, theme.warning()),
        percent(r.cpu_percent),
        percent(r.mem_percent),
        percent(r.disk_percent.map(f64::from)),
        // An unreachable server's error is worth more than its last change; how old its
        // figures are comes first, so a narrow column still shows it.
        match (&r.error_detail, &r.last_change) {
            (Some(detail), _) => Cell::from(Span::styled(
                match r.stale_for(now) {
                    Some(age) => format!("last read {age} ago · {}", printable(detail)),
                    None => printable(detail),
                },
                theme.dim(),
            )),
            (None, Some(change)) => Cell::from(format!("{shared}{}", printable(change))),
            (None, None) if !shared.is_empty() => {
                Cell::from(Span::styled(shared.clone(), theme.dim()))
            }
            (None, None) => Cell::from(Span::styled("-", theme.dim())),
        },
    ])
}

/// Where the matches of `/` run: one line per service (or lone container) across servers, its
/// replicas per server under it.
fn draw_found(frame: &mut Frame, area: Rect, app: &App, query: &str) {
    let theme = &app.theme;
    let found = app.fleet_found();
    let unsearched: Vec<&str> = app
        .fleet
        .rows
        .iter()
        .filter(|r| r.reachable != Some(true))
        .map(|r| r.server.as_str())
        .collect();
    let mut title = vec![
        Span::styled(format!(" '{}' ", printable(query)), theme.title(true)),
        Span::styled(
            format!("{} found on every reachable server ", found.len()),
            theme.dim(),
        ),
    ];
    if !unsearched.is_empty() {
        title.push(Span::styled(
            format!("· not searched: {} ", printable(&unsearched.join(", "))),
            theme.warning(),
        ));
    }
    let block = Block::bordered()
        .title(ratatui::text::Line::from(title))
        .border_style(theme.border(true));
    let mut lines: Vec<ratatui::text::Line> = Vec::new();
    let mut selected_line = 0;
    for (i, f) in found.iter().enumerate() {
        let line = ratatui::text::Line::from(vec![
            Span::styled(printable(&f.key), theme.title(true)),
            Span::styled(" on ", theme.dim()),
            Span::raw(printable(&f.servers().join(", "))),
            Span::styled(" · ", theme.dim()),
            Span::raw(f.state_summary()),
        ]);
        if i == app.fleet.found {
            selected_line = lines.len();
            lines.push(line.style(theme.selected()));
        } else {
            lines.push(line);
        }
        for r in &f.replicas {
            lines.push(ratatui::text::Line::from(vec![
                Span::raw("    "),
                Span::raw(format!("{:<18} ", truncate(&printable(&r.server), 18))),
                Span::raw(format!("{:<28} ", truncate(&printable(&r.name), 28))),
                Span::styled(format!("{:<10} ", r.state.as_str()), theme.state(r.state)),
                Span::styled(health_word(r.health), theme.health(r.health)),
            ]));
        }
    }
    if found.is_empty() {
        lines.push(ratatui::text::Line::from(Span::styled(
            "nothing matches on the servers that answered",
            theme.dim(),
        )));
    }
    // The selected match stays on screen: the lines scroll once it would pass the bottom.
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = super::table::window(lines.len(), selected_line, visible).start as u16;
    frame.render_widget(Paragraph::new(lines).block(block).scroll((scroll, 0)), area);
}

fn health_word(h: crate::engine::model::Health) -> &'static str {
    use crate::engine::model::Health;
    match h {
        Health::Healthy => "● healthy",
        Health::Unhealthy => "✖ unhealthy",
        Health::Starting => "◐ starting",
        Health::None => "· none",
    }
}
