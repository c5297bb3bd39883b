//! Views: each only draws, from the app's state and the theme.

pub mod audit;
pub mod details;
pub mod events;
pub mod fleet;
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
    header(frame, areas.header, app);
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

fn header(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let mut spans = vec![
        Span::styled(" berth ", theme.accent()),
        Span::styled("│ ", theme.dim()),
    ];
    if app.view == View::Fleet {
        spans.extend(fleet::header_spans(app));
        frame.render_widget(
            Paragraph::new(Line::from(spans)).style(theme.header()),
            area,
        );
        return;
    }
    if let Some(t) = &app.target {
        spans.push(Span::styled(t.name.clone(), theme.title(true)));
        // Beside the name, before anything of variable length that could push it off the line
        // (on production the banner under the header says it already).
        if t.read_only && !t.is_production() {
            spans.push(Span::styled(" · read-only", theme.warning()));
        }
        spans.push(Span::styled(" · ", theme.dim()));
    }
    match &app.connection {
        Connection::Connected { transport, version } if !app.is_stale() => {
            spans.push(Span::styled(
                format!(
                    "{transport} · Docker {} (API {})",
                    version.engine, version.api
                ),
                theme.dim(),
            ));
            let live = match &app.link {
                Some(crate::ssh::LinkStatus::Connected { rtt }) => Span::styled(
                    format!("  ● live · {} ms", rtt.as_millis()),
                    theme.success(),
                ),
                _ => Span::styled("  ● live", theme.success()),
            };
            spans.push(live);
        }
        Connection::Connected { transport, .. } | Connection::Stale { transport, .. } => {
            spans.push(Span::styled(transport.clone(), theme.dim()));
            spans.extend(stale_spans(app));
        }
        Connection::Connecting => spans.push(Span::styled("connecting…", theme.warning())),
        Connection::Failed(_) => spans.push(Span::styled("✖ not connected", theme.error())),
        Connection::Idle => {}
    }
    let total = app.containers.len();
    let running = app
        .containers
        .values()
        .filter(|c| c.state == crate::engine::model::State::Running)
        .count();
    let unhealthy = app
        .containers
        .values()
        .filter(|c| c.current_health() == crate::engine::model::Health::Unhealthy)
        .count();
    if total > 0 {
        spans.push(Span::styled("  │ ", theme.dim()));
        spans.push(Span::styled(
            format!("{running}/{total} running"),
            theme.text(),
        ));
        if unhealthy > 0 {
            spans.push(Span::styled(
                format!("  ✖ {unhealthy} unhealthy"),
                theme.error(),
            ));
        }
    }
    // Not while this console runs a plan: its own run's journal is on the server meanwhile.
    if app.run.as_ref().is_none_or(|r| r.result.is_some()) {
        let cut = crate::runbook::rollback::cut_off_runs(app.containers.values());
        if !cut.is_empty() {
            // Two names and a count: the line must still hold the host's numbers after it.
            let names = match &cut[..] {
                [a, b, _, ..] => format!("{a}, {b} +{} more", cut.len() - 2),
                _ => cut.join(", "),
            };
            // A journal the server holds is also a run still going from another machine: say
            // so while it is young enough to be one.
            let live = crate::runbook::rollback::may_still_run(app.containers.values(), app.now);
            let text = match live {
                Some(age) => format!(
                    "  ⚠ rollback cut off, or still running from elsewhere (started {} ago): {names} — if none runs, B on it to finish or restore",
                    format::duration(age.num_seconds())
                ),
                None => format!("  ⚠ rollback cut off: {names} — B on it to finish or restore"),
            };
            spans.push(Span::styled(text, theme.warning()));
        }
    }
    if let Some(host) = &app.monitor.host {
        spans.push(Span::styled("  │ ", theme.dim()));
        spans.extend(host_summary(app, host));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.header()),
        area,
    );
}

/// `◌ stale 12s · reconnecting (try 3)` and why, for the header: how old the screen is and what
/// berth is doing about it.
fn stale_spans<'a>(app: &App) -> Vec<Span<'a>> {
    use crate::ssh::LinkStatus;
    let theme = &app.theme;
    let age = app
        .stale_since
        .map(|t| format::duration((app.now - t).num_seconds()))
        .unwrap_or_else(|| "0s".into());
    let engine_reason = match &app.connection {
        Connection::Stale { reason, .. } => Some(reason.as_str()),
        _ => None,
    };
    let (doing, why) = match &app.link {
        Some(LinkStatus::Reconnecting {
            attempt,
            last_error,
        }) => (
            format!("reconnecting (try {})", attempt.max(&1)),
            Some(last_error.clone()),
        ),
        Some(LinkStatus::Unanswered { silent }) => (
            format!("no answer for {}s", silent.as_secs()),
            Some("keepalives unanswered".to_string()),
        ),
        Some(LinkStatus::Connecting) => ("connecting".to_string(), None),
        Some(LinkStatus::Failed { error }) => ("not reconnecting".to_string(), Some(error.clone())),
        _ => (
            format!("reconnecting (try {})", app.stale_tries.max(1)),
            engine_reason.map(str::to_string),
        ),
    };
    let mut spans = vec![Span::styled(
        format!("  ◌ stale {age} · {doing}"),
        theme.stale(),
    )];
    if let Some(why) = why.filter(|w| !w.is_empty()) {
        spans.push(Span::styled(
            format!(" · {}", format::truncate(&format::printable(&why), 50)),
            theme.dim(),
        ));
    }
    spans
}

/// `host cpu 12% · mem 41% · disk 63%` for the header: the worst disk counts.
fn host_summary<'a>(app: &App, host: &crate::stats::host::HostReport) -> Vec<Span<'a>> {
    let theme = &app.theme;
    let h = &host.health;
    let mut spans = vec![Span::styled("host ", theme.dim())];
    let part = |name: &str, p: Option<f64>, spans: &mut Vec<Span<'a>>| {
        if let Some(p) = p {
            if spans.len() > 1 {
                spans.push(Span::styled(" · ", theme.dim()));
            }
            spans.push(Span::styled(format!("{name} "), theme.dim()));
            // Old figures keep their value but lose their traffic-light colour.
            let style = if app.is_stale() {
                theme.stale()
            } else {
                stats::level_style(theme, p)
            };
            spans.push(Span::styled(format!("{p:.0}%"), style));
        }
    };
    part("cpu", host.cpu_percent, &mut spans);
    part("mem", h.mem_percent(), &mut spans);
    let disk = h.disks.iter().map(|d| d.used_percent).max().map(f64::from);
    part("disk", disk, &mut spans);
    spans
}

fn footer(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    if let Some(s) = app.visible_status() {
        let style = match s.level {
            Level::Info => theme.info(),
            Level::Warn => theme.warning(),
            Level::Error => theme.error(),
        };
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(format!(" {}", s.text), style))),
            area,
        );
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
    let mut spans = vec![Span::raw(" ")];
    for (intent, label) in hints {
        // Where a key would change something, a read-only server says so instead.
        if read_only && intent.refused_when_read_only() {
            continue;
        }
        spans.push(Span::styled(km.hint(*intent), theme.key()));
        spans.push(Span::styled(format!(" {label}  "), theme.dim()));
    }
    if read_only
        && !matches!(
            app.scope(),
            crate::keymap::Scope::Panel | crate::keymap::Scope::Logs | crate::keymap::Scope::Fleet
        )
    {
        spans.push(Span::styled(
            "read-only: restart, stop, rollback… disabled",
            theme.warning(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
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
