//! The header line: the server, the link's state and what is wrong first, on every width; the
//! rest (counts, the host's numbers, the engine's version) as the width allows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::Paragraph;

use super::fit::{Part, fit};
use super::stats;
use crate::app::{App, Connection, View};
use crate::format;

/// The order in which the header gives way: a higher number is shortened or left out sooner.
/// The server, the link's state and the unhealthy count never go.
mod rank {
    pub const BRAND: u8 = 9;
    /// The engine's version, then the transport.
    pub const ENGINE_VERSION: u8 = 8;
    pub const ENGINE: u8 = 7;
    pub const HOST: u8 = 6;
    /// The warning's advice, then its longer forms.
    pub const WARNING_ADVICE: u8 = 5;
    /// The link's round trip, or why it is stale.
    pub const DETAIL: u8 = 5;
    pub const RUNNING: u8 = 4;
    /// The port forwards one by one, before their count.
    pub const FORWARDS: u8 = 5;
    pub const WARNING: u8 = 3;
    /// A stale link's `· reconnecting (try 3)`, keeping `◌ stale 12s`.
    pub const LINK: u8 = 2;
    pub const KEPT: u8 = 0;
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    // Without the brand the line still starts one column in, as every line of the screen does.
    let mut parts = vec![Part::kept(
        rank::BRAND,
        vec![
            vec![
                Span::styled(" berth ", theme.accent()),
                Span::styled("│ ", theme.dim()),
            ],
            vec![Span::raw(" ")],
        ],
    )];
    if app.view == View::Fleet {
        parts.extend(super::fleet::header_parts(app));
    } else {
        parts.extend(server_parts(app));
    }
    frame.render_widget(
        Paragraph::new(fit(parts, area.width as usize)).style(theme.header()),
        area,
    );
}

fn server_parts<'a>(app: &App) -> Vec<Part<'a>> {
    let theme = &app.theme;
    let mut parts = Vec::new();
    if let Some(t) = &app.target {
        let mut name = vec![Span::styled(format::printable(&t.name), theme.title(true))];
        // Beside the name, before anything of variable length (on production the banner under
        // the header says it already).
        if t.read_only && !t.is_production() {
            name.push(Span::styled(" · read-only", theme.warning()));
        }
        parts.push(Part::kept(rank::KEPT, vec![name]));
    }
    match &app.connection {
        Connection::Connected { transport, version } if !app.is_stale() => {
            // Live is said once the engine has listed what it runs, not before.
            let state = if app.listed {
                Span::styled("  ● live", theme.success())
            } else {
                Span::styled("  ◌ listing…", theme.warning())
            };
            parts.push(Part::kept(rank::KEPT, vec![vec![state]]));
            if let Some(crate::ssh::LinkStatus::Connected { rtt }) = &app.link {
                parts.push(Part::droppable(
                    rank::DETAIL,
                    vec![vec![Span::styled(
                        format!(" · {} ms", rtt.as_millis()),
                        theme.success(),
                    )]],
                ));
            }
            parts.push(Part::stepped(
                vec![
                    vec![Span::styled(
                        format!(
                            "  {transport} · Docker {} (API {})",
                            version.engine, version.api
                        ),
                        theme.dim(),
                    )],
                    vec![Span::styled(format!("  {transport}"), theme.dim())],
                    Vec::new(),
                ],
                vec![rank::ENGINE_VERSION, rank::ENGINE],
            ));
        }
        Connection::Connected { transport, .. } | Connection::Stale { transport, .. } => {
            let (state, why) = stale_parts(app);
            parts.push(Part::kept(rank::LINK, state));
            if let Some(why) = why {
                parts.push(Part::droppable(rank::DETAIL, vec![vec![why]]));
            }
            parts.push(Part::droppable(
                rank::ENGINE,
                vec![vec![Span::styled(format!("  {transport}"), theme.dim())]],
            ));
        }
        Connection::Connecting => parts.push(Part::kept(
            rank::KEPT,
            vec![vec![Span::styled("  connecting…", theme.warning())]],
        )),
        Connection::Failed(_) => parts.push(Part::kept(
            rank::KEPT,
            vec![vec![Span::styled("  ✖ not connected", theme.error())]],
        )),
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
        parts.push(Part::droppable(
            rank::RUNNING,
            vec![vec![
                Span::styled("  │ ", theme.dim()),
                Span::styled(format!("{running}/{total} running"), theme.text()),
            ]],
        ));
    }
    if unhealthy > 0 {
        parts.push(Part::kept(
            rank::KEPT,
            vec![vec![Span::styled(
                format!("  ✖ {unhealthy} unhealthy"),
                theme.error(),
            )]],
        ));
    }
    if let Some(mut forms) = cut_off_forms(app) {
        // Shorter forms as the width asks; the shortest, naming the containers, goes last.
        let mut steps = vec![rank::WARNING_ADVICE; forms.len() - 1];
        steps.push(rank::WARNING);
        forms.push(Vec::new());
        parts.push(Part::stepped(forms, steps));
    }
    if let Some(forms) = super::forwards::header_forms(app) {
        // The count never goes: a port open on this machine is always said.
        parts.push(Part::stepped(forms, vec![rank::FORWARDS]));
    }
    if let Some(host) = &app.monitor.host {
        let mut summary = vec![Span::styled("  │ ", theme.dim())];
        summary.extend(host_summary(app, host));
        parts.push(Part::droppable(rank::HOST, vec![summary]));
    }
    parts
}

/// A rollback cut off on this server, named first, then what to do, in shorter forms as the
/// width asks. Not while this console runs a plan: its own run's journal is on the server then.
fn cut_off_forms<'a>(app: &App) -> Option<Vec<Vec<Span<'a>>>> {
    let theme = &app.theme;
    if app.run.as_ref().is_some_and(|r| r.result.is_none()) {
        return None;
    }
    let cut = crate::runbook::rollback::cut_off_runs(app.containers.values());
    if cut.is_empty() {
        return None;
    }
    let names = match &cut[..] {
        [a, b, _, ..] => format!("{a}, {b} +{} more", cut.len() - 2),
        _ => cut.join(", "),
    };
    let first = match &cut[..] {
        [one] => one.clone(),
        [a, ..] => format!("{a} +{} more", cut.len() - 1),
        [] => String::new(),
    };
    // A journal the server holds is also a run still going from another machine: say so while
    // it is young enough to be one.
    let live = crate::runbook::rollback::may_still_run(app.containers.values(), app.now);
    let texts = match live {
        Some(age) => {
            let age = format::duration(age.num_seconds());
            vec![
                format!(
                    "  ⚠ {names}: rollback cut off, or still running from elsewhere (started {age} ago) — if none runs, B on it to finish or restore"
                ),
                format!("  ⚠ {names}: rollback cut off, or still running (started {age} ago)"),
                format!(" ⚠ {first}: rollback cut off or running"),
            ]
        }
        None => vec![
            format!("  ⚠ {names}: rollback cut off — B on it to finish or restore"),
            format!(" ⚠ {first}: rollback cut off"),
        ],
    };
    Some(
        texts
            .into_iter()
            .map(|t| vec![Span::styled(t, theme.warning())])
            .collect(),
    )
}

/// `◌ stale 12s · reconnecting (try 3)` (shorter: `◌ stale 12s`) and why, for the header: how old
/// the screen is and what berth is doing about it.
fn stale_parts<'a>(app: &App) -> (Vec<Vec<Span<'a>>>, Option<Span<'a>>) {
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
    let state = vec![
        vec![Span::styled(
            format!("  ◌ stale {age} · {doing}"),
            theme.stale(),
        )],
        vec![Span::styled(format!("  ◌ stale {age}"), theme.stale())],
    ];
    let why = why.filter(|w| !w.is_empty()).map(|why| {
        Span::styled(
            format!(" · {}", format::truncate(&format::printable(&why), 50)),
            theme.dim(),
        )
    });
    (state, why)
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
