//! The host view: the engine host's CPU, memory and disks with their recent history, and
//! `docker system df` (what images, containers, volumes and the build cache take and could free).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table};

use super::stats::level_style;
use crate::app::App;
use crate::app::stats::DfState;
use crate::format::{bytes, duration, interval_label, percent, printable};
use crate::keymap::Intent;
use crate::theme::Theme;

const BAR: usize = 20;

/// `██████░░░░` for a percentage.
fn bar<'a>(theme: &Theme, p: f64) -> Vec<Span<'a>> {
    let filled = ((p.clamp(0.0, 100.0) / 100.0) * BAR as f64).round() as usize;
    vec![
        Span::styled("█".repeat(filled), level_style(theme, p)),
        Span::styled("░".repeat(BAR - filled), theme.dim()),
    ]
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let disks = app
        .monitor
        .host
        .as_ref()
        .map(|h| h.health.disks.len())
        .unwrap_or(0) as u16;
    let host_height = (8 + disks).min(area.height.saturating_sub(8)).max(5);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(host_height), Constraint::Min(5)]).areas(area);
    draw_host(frame, top, app);
    draw_df(frame, bottom, app);
}

fn draw_host(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let source = app
        .monitor
        .host
        .as_ref()
        .map(|h| format!(" read by {} ", h.source))
        .unwrap_or_default();
    let block = Block::bordered()
        .border_style(theme.border(true))
        .title(Line::from(vec![
            Span::styled(" host ", theme.title(true)),
            super::stats::stale_mark(app),
        ]))
        .title_bottom(Line::from(Span::styled(source, theme.dim())));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(report) = &app.monitor.host else {
        let text = match &app.monitor.host_error {
            Some(e) => Span::styled(printable(e), theme.warning()),
            None => Span::styled("reading the host…", theme.dim()),
        };
        frame.render_widget(Paragraph::new(Line::from(text)), inner);
        return;
    };
    let h = &report.health;
    let [text_area, spark_area] =
        Layout::horizontal([Constraint::Min(60), Constraint::Percentage(30)]).areas(inner);
    let label = |s: &str| Span::styled(format!(" {s:<6}"), theme.dim());
    let mut lines = Vec::new();
    let mut cpu = vec![label("CPU")];
    match report.cpu_percent {
        Some(p) => {
            cpu.extend(bar(theme, p));
            cpu.push(Span::styled(
                format!(" {:>6}", percent(p)),
                level_style(theme, p),
            ));
        }
        None => cpu.push(Span::styled("measuring…", theme.dim())),
    }
    cpu.push(Span::styled(
        format!(
            "  {} cpus · load {:.2} {:.2} {:.2}",
            h.cpus, h.load[0], h.load[1], h.load[2]
        ),
        theme.dim(),
    ));
    lines.push(Line::from(cpu));
    let used = h.mem_used();
    let mem_p = h.mem_percent().unwrap_or(0.0);
    let mut mem = vec![label("MEM")];
    mem.extend(bar(theme, mem_p));
    mem.push(Span::styled(
        format!(" {:>6}", percent(mem_p)),
        level_style(theme, mem_p),
    ));
    mem.push(Span::styled(
        format!("  {} of {}", bytes(used), bytes(h.mem_total)),
        theme.dim(),
    ));
    lines.push(Line::from(mem));
    lines.push(Line::default());
    for d in &h.disks {
        let p = d.used_percent as f64;
        let mut line = vec![label("DISK")];
        line.extend(bar(theme, p));
        line.push(Span::styled(
            format!(" {:>6}", percent(p)),
            level_style(theme, p),
        ));
        line.push(Span::styled(
            format!("  {}", printable(&d.mount)),
            theme.text(),
        ));
        line.push(Span::styled(
            format!(" · {} free of {}", bytes(d.available), bytes(d.total)),
            theme.dim(),
        ));
        lines.push(Line::from(line));
    }
    lines.push(Line::default());
    let method = app
        .stats
        .method
        .as_ref()
        .map(|m| m.label())
        .unwrap_or_else(|| "not read yet".into());
    lines.push(Line::from(vec![
        Span::styled(" stats  ", theme.dim()),
        Span::styled(
            format!("every {} · {method}", interval_label(app.monitor.interval)),
            theme.text(),
        ),
    ]));
    frame.render_widget(Paragraph::new(lines), text_area);

    let [cpu_area, mem_area, _] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Min(0),
    ])
    .areas(spark_area);
    let spark = |title: &'static str, data: &std::collections::VecDeque<u64>, style| {
        // The newest reading at the right edge.
        let width = spark_area.width.saturating_sub(2) as usize;
        let start = data.len().saturating_sub(width);
        Sparkline::default()
            .block(
                Block::bordered()
                    .border_style(theme.border(false))
                    .title(Span::styled(title, theme.dim())),
            )
            .data(data.range(start..))
            .max(100)
            .style(style)
    };
    frame.render_widget(
        spark(" cpu % ", &app.monitor.host_cpu, theme.series(0)),
        cpu_area,
    );
    frame.render_widget(
        spark(" mem % ", &app.monitor.host_mem, theme.series(1)),
        mem_area,
    );
}

fn draw_df(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let hint = format!(" {} refreshes ", app.keymap.hint(Intent::Refresh));
    let when = match &app.monitor.df {
        DfState::Loaded { at, .. } => format!(
            " read {} ago ·{hint}",
            duration((app.now - *at).num_seconds())
        ),
        _ => hint,
    };
    let block = Block::bordered()
        .border_style(theme.border(false))
        .title(Span::styled(" docker system df ", theme.title(true)))
        .title_bottom(Line::from(Span::styled(when, theme.dim())));
    let usage = match &app.monitor.df {
        DfState::Loaded { usage, .. } => usage,
        other => {
            let text = match other {
                DfState::Failed(e) => Span::styled(printable(e), theme.error()),
                DfState::Loading => Span::styled("asking the engine…", theme.dim()),
                _ => Span::styled("not read yet", theme.dim()),
            };
            frame.render_widget(Paragraph::new(Line::from(text)).block(block), area);
            return;
        }
    };
    let header =
        Row::new(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]).style(theme.column_header());
    let rows: Vec<Row> = usage
        .rows()
        .iter()
        .map(|(name, r)| {
            let share = r.reclaimable_percent();
            let reclaim_style = if r.reclaimable > 0 {
                theme.warning()
            } else {
                theme.dim()
            };
            Row::new(vec![
                Cell::from(Span::styled(*name, theme.text())),
                Cell::from(r.total.to_string()),
                Cell::from(r.active.to_string()),
                Cell::from(bytes(r.size)),
                Cell::from(Span::styled(
                    format!("{} ({share:.0}%)", bytes(r.reclaimable)),
                    reclaim_style,
                )),
            ])
        })
        .collect();
    let total_reclaim: u64 = usage.rows().iter().map(|(_, r)| r.reclaimable).sum();
    let mut all = rows;
    all.push(Row::new(vec![Cell::from("")]));
    all.push(Row::new(vec![
        Cell::from(Span::styled("Could free", theme.dim())),
        Cell::from(""),
        Cell::from(""),
        Cell::from(""),
        Cell::from(Span::styled(
            format!("{}  (:prune frees it safely)", bytes(total_reclaim)),
            theme.accent(),
        )),
    ]));
    let table = Table::new(
        all,
        [
            Constraint::Length(15),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Min(20),
        ],
    )
    .header(header)
    .column_spacing(2)
    .block(block);
    frame.render_widget(table, area);
}
