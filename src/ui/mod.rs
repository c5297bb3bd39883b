//! Views: each only draws, from the app's state and the theme.

pub mod audit;
pub mod details;
pub mod events;
pub mod fit;
pub mod fleet;
mod forwards;
mod header;
pub mod host;
pub mod list;
pub mod logs;
pub mod overlay;
pub mod runbook;
pub mod stats;
pub mod swarm;
pub mod table;
pub mod timeline;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::action::Level;
use crate::app::layout;
use crate::app::{App, Connection, View};
use crate::format;
use crate::keymap::Intent;
use layout::{MIN_HEIGHT, MIN_WIDTH};

pub fn draw(frame: &mut Frame, app: &App) {
    let size = frame.area();
    let areas = layout::areas(size, app);
    let theme = &app.theme;
    frame.render_widget(Block::default().style(theme.base()), size);
    if areas.too_small {
        let text = vec![
            Line::from(Span::styled("Terminal too small", theme.warning())),
            Line::from(format!(
                "need {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}",
                size.width, size.height
            )),
        ];
        let y = size.height.saturating_sub(2) / 2;
        let area = Rect {
            y: size.y + y,
            height: size.height.min(2),
            ..size
        };
        // Even a too-small window says which environment it is looking at.
        banner(frame, Rect { height: 1, ..size }, app);
        frame.render_widget(
            Paragraph::new(text)
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    header::draw(frame, areas.header, app);
    match &app.connection {
        _ if app.view == View::Fleet => fleet::draw(frame, areas.body, app),
        _ if app.view == View::Runbook && app.group_run.is_some() => {
            runbook::draw(frame, areas.body, app)
        }
        Connection::Failed(err) => error_screen(frame, areas.body, app, err),
        Connection::Connecting if app.containers.is_empty() => {
            let name = app
                .target
                .as_ref()
                .map(|t| t.endpoint.to_string())
                .unwrap_or_default();
            centered_message(frame, areas.body, app, &format!("Connecting to {name} …"));
        }
        Connection::Idle => centered_message(frame, areas.body, app, "Pick a server"),
        _ if app.view == View::Swarm => swarm::draw_services(frame, areas.body, app),
        _ if app.view == View::Nodes => swarm::draw_nodes(frame, areas.body, app),
        _ if app.view == View::Events => events::draw(frame, areas.body, app),
        _ if app.view == View::Runbook => runbook::draw(frame, areas.body, app),
        _ if app.view == View::Audit => audit::draw(frame, areas.body, app),
        _ if app.view == View::Timeline => timeline::draw(frame, areas.body, app),
        _ if app.view == View::Logs => logs::draw(frame, areas.body, app),
        _ if app.view == View::Host => host::draw(frame, areas.body, app),
        _ => {
            list::draw(frame, &areas, app);
            if let Some(d) = areas.details {
                details::draw(frame, d, app);
            }
            if let Some(s) = areas.stats {
                stats::draw(frame, s, app);
            }
        }
    }
    footer(frame, areas.footer, app);
    if let Some(area) = areas.banner {
        banner(frame, area, app);
    }
    // Overlays (help, palette, confirm, picker) open below the banner, so none covers it.
    let below_banner = match areas.banner {
        Some(b) => Rect {
            y: b.bottom(),
            height: size.bottom().saturating_sub(b.bottom()),
            ..size
        },
        None => size,
    };
    overlay::draw(frame, below_banner, app);
}

/// The environment banner (`PRODUCTION · name · READ-ONLY`) of a labelled server; nothing otherwise.
fn banner(frame: &mut Frame, area: Rect, app: &App) {
    let Some(target) = app.target.as_ref() else {
        return;
    };
    let Some(label) = target.environment.as_deref() else {
        return;
    };
    let ro = if target.read_only {
        "  ·  READ-ONLY"
    } else {
        ""
    };
    let text = format!(" {}  ·  {}{ro} ", label.to_uppercase(), target.name);
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .style(app.theme.environment(label)),
        area,
    );
}

fn footer(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    if let Some(s) = app.visible_status() {
        let style = match s.level {
            Level::Info => theme.info(),
            Level::Warn => theme.warning(),
            Level::Error => theme.error(),
        };
        // A message longer than the line ends at a whole word, with `…`.
        let text = fit::shorten_words(&format!(" {}", s.text), area.width as usize);
        frame.render_widget(Paragraph::new(Line::from(Span::styled(text, style))), area);
        return;
    }
    let km = &app.keymap;
    let hints: &[(Intent, &str)] = match app.scope() {
        crate::keymap::Scope::Panel if app.view == View::Host => &[
            (Intent::Back, "back"),
            (Intent::Refresh, "refresh df"),
            (Intent::Palette, "command (:interval 5s)"),
            (Intent::Help, "help"),
            (Intent::Quit, "quit"),
        ],
        crate::keymap::Scope::Panel => &[
            (Intent::Back, "back"),
            (Intent::Down, "scroll"),
            (Intent::Events, "events"),
            (Intent::Audit, "audit"),
            (Intent::Help, "help"),
            (Intent::Quit, "quit"),
        ],
        crate::keymap::Scope::Swarm if app.view == View::Nodes => &[
            (Intent::Back, "back"),
            (Intent::Drain, "drain"),
            (Intent::Activate, "activate"),
            (Intent::SwarmView, "services"),
            (Intent::Refresh, "refresh"),
            (Intent::Help, "help"),
            (Intent::Quit, "quit"),
        ],
        crate::keymap::Scope::Swarm => &[
            (Intent::Back, "back"),
            (Intent::SwarmRestart, "restart"),
            (Intent::SwarmRollback, "rollback"),
            (Intent::Scale, "scale"),
            (Intent::NodesView, "nodes"),
            (Intent::Refresh, "refresh"),
            (Intent::Help, "help"),
            (Intent::Quit, "quit"),
        ],
        crate::keymap::Scope::Fleet => &[
            (Intent::FleetOpen, "open"),
            (Intent::FleetFind, "find"),
            (Intent::GroupRestart, "group restart"),
            (Intent::GroupRollback, "group rollback"),
            (Intent::Back, "back"),
            (Intent::Refresh, "refresh"),
            (Intent::Palette, "command"),
            (Intent::Help, "help"),
            (Intent::Quit, "quit"),
        ],
        crate::keymap::Scope::Logs => &[
            (Intent::Back, "back"),
            (Intent::LogFollow, "follow"),
            (Intent::LogSearch, "search"),
            (Intent::LogFilter, "filter"),
            (Intent::LogWrap, "wrap"),
            (Intent::LogTimestamps, "time"),
            (Intent::LogSave, "save"),
            (Intent::LogCopy, "copy"),
            (Intent::Help, "all keys"),
        ],
        crate::keymap::Scope::Details => &[
            (Intent::Back, "back"),
            (Intent::Reveal, "secrets"),
            (Intent::Logs, "logs"),
            (Intent::Help, "help"),
            (Intent::Quit, "quit"),
        ],
        _ => &[
            (Intent::Details, "details"),
            (Intent::Logs, "logs"),
            (Intent::Stats, "stats"),
            (Intent::Filter, "filter"),
            (Intent::Shell, "shell"),
            (Intent::Restart, "restart"),
            (Intent::Rollback, "rollback"),
            (Intent::Host, "host"),
            (Intent::Audit, "audit"),
            (Intent::Palette, "command"),
            (Intent::Help, "all keys"),
            (Intent::Quit, "quit"),
        ],
    };
    let read_only = app.target.as_ref().is_some_and(|t| t.read_only);
    let mut parts = vec![fit::Part::kept(0, vec![vec![Span::raw(" ")]])];
    for (n, (intent, label)) in hints.iter().enumerate() {
        // Where a key would change something, a read-only server says so instead.
        if read_only && intent.refused_when_read_only() {
            continue;
        }
        // A hint is shown whole or not at all: the later ones go first, help last.
        let priority = match intent {
            Intent::Help => 1,
            Intent::Quit | Intent::Back => 2,
            _ => 3 + n as u8,
        };
        parts.push(fit::Part::droppable(
            priority,
            vec![vec![
                Span::styled(km.hint(*intent), theme.key()),
                Span::styled(format!(" {label}  "), theme.dim()),
            ]],
        ));
    }
    if read_only
        && !matches!(
            app.scope(),
            crate::keymap::Scope::Panel | crate::keymap::Scope::Logs | crate::keymap::Scope::Fleet
        )
    {
        parts.push(fit::Part::kept(
            0,
            vec![
                vec![Span::styled(
                    "read-only: restart, stop, rollback… disabled",
                    theme.warning(),
                )],
                vec![Span::styled("read-only", theme.warning())],
            ],
        ));
    }
    frame.render_widget(Paragraph::new(fit::fit(parts, area.width as usize)), area);
}

fn centered_message(frame: &mut Frame, area: Rect, app: &App, text: &str) {
    let y = area.y + area.height / 2;
    let line = Rect {
        y,
        height: 1,
        ..area
    };
    frame.render_widget(
        Paragraph::new(text.to_string())
            .alignment(Alignment::Center)
            .style(app.theme.dim()),
        line,
    );
}

fn error_screen(frame: &mut Frame, area: Rect, app: &App, err: &str) {
    let theme = &app.theme;
    let width = area.width.saturating_sub(8).min(100);
    let height = 9.min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + area.height.saturating_sub(height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let km = &app.keymap;
    let text = vec![
        Line::from(Span::styled(format::printable(err), theme.text())),
        Line::default(),
        Line::from(vec![
            Span::styled(km.hint(Intent::Refresh), theme.key()),
            Span::styled(" retry   ", theme.dim()),
            Span::styled(km.hint(Intent::ServerPicker), theme.key()),
            Span::styled(" other server   ", theme.dim()),
            Span::styled(km.hint(Intent::Quit), theme.key()),
            Span::styled(" quit", theme.dim()),
        ]),
    ];
    let block = Block::bordered()
        .title(Span::styled(
            " Cannot reach the Docker engine ",
            theme.error(),
        ))
        .border_style(theme.error());
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
        popup,
    );
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod logs_tests;

#[cfg(test)]
mod runbook_tests;

#[cfg(test)]
mod stats_tests;

#[cfg(test)]
mod first_hour_tests;

#[cfg(test)]
mod drift_tests;

#[cfg(test)]
mod fleet_tests;

#[cfg(test)]
mod swarm_tests;

#[cfg(test)]
mod timeline_tests;

#[cfg(test)]
mod widths_tests;

#[cfg(test)]
mod forwards_tests;
