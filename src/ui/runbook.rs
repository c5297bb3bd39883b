//! The run view: the plan's steps with their state, the live output of the run, and the result.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::app::group_run::GroupRun;
use crate::app::{App, RunState};
use crate::format::printable;
use crate::runbook::StepStatus;
use crate::theme::Theme;

fn step_line<'a>(
    theme: &Theme,
    i: usize,
    description: &str,
    s: &crate::app::runbook::StepState,
) -> Line<'a> {
    let (symbol, style) = match (s.running, s.status) {
        (true, _) => ("▶", theme.accent()),
        (_, Some(StepStatus::Ok)) => ("✓", theme.success()),
        (_, Some(StepStatus::Failed)) => ("✗", theme.error()),
        (_, Some(StepStatus::Undone)) => ("↺", theme.warning()),
        (_, Some(StepStatus::Skipped)) => ("-", theme.dim()),
        (false, None) => ("·", theme.dim()),
    };
    let mut spans = vec![
        Span::styled(format!(" {symbol} "), style),
        Span::styled(
            format!("{}. {}", i + 1, printable(description)),
            if s.running {
                theme.accent()
            } else {
                theme.text()
            },
        ),
    ];
    if s.status.is_some() {
        spans.push(Span::styled(
            format!("  {:.1}s", s.duration.as_secs_f64()),
            theme.dim(),
        ));
        if !s.message.is_empty() {
            spans.push(Span::styled(format!("  {}", printable(&s.message)), style));
        }
    }
    Line::from(spans)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let Some(run) = &app.run else {
        let block = Block::bordered()
            .title(" run ")
            .border_style(theme.border(true));
        frame.render_widget(
            Paragraph::new("no runbook has run in this session")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    };
    let area = match &app.group_run {
        Some(group) if area.height > 10 => {
            let [top, rest] =
                Layout::vertical([Constraint::Length(3), Constraint::Min(6)]).areas(area);
            draw_group(frame, top, app, group);
            rest
        }
        _ => area,
    };
    let steps_height = (run.steps.len() as u16 + run.plan.notes.len().min(4) as u16 + 3)
        .min(area.height / 2)
        .max(4);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(steps_height), Constraint::Min(3)]).areas(area);
    draw_steps(frame, top, app, run);
    draw_output(frame, bottom, app, run);
}

/// Where a run across a group is: each server done, running, failed or not started yet.
fn draw_group(frame: &mut Frame, area: Rect, app: &App, group: &GroupRun) {
    let theme = &app.theme;
    let current_failed = app
        .run
        .as_ref()
        .and_then(|r| r.result.as_ref())
        .is_some_and(|r| !r.ok);
    let mut spans = Vec::new();
    for (i, server) in group.servers.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" → ", theme.dim()));
        }
        let (mark, style) = match &group.outcome {
            Some(o) if o.done.contains(server) => ("✔", theme.success()),
            Some(o) if o.failed.as_ref().is_some_and(|(s, _)| s == server) => ("✖", theme.error()),
            Some(_) => ("·", theme.dim()),
            None if i < group.current => ("✔", theme.success()),
            None if i == group.current && current_failed => ("✖", theme.error()),
            None if i == group.current => ("▶", theme.accent()),
            None => ("·", theme.dim()),
        };
        spans.push(Span::styled(format!("{mark} {}", printable(server)), style));
    }
    let (state, style) = match &group.outcome {
        None => (
            format!("server {} of {}", group.current + 1, group.servers.len()),
            theme.accent(),
        ),
        Some(o) if o.ok() => ("done".to_string(), theme.success()),
        Some(o) => (
            format!("stopped · not started: {}", o.not_started.len()),
            theme.error(),
        ),
    };
    let title = Line::from(vec![
        Span::styled(
            format!(" group {} ", printable(&group.group)),
            theme.title(true),
        ),
        Span::styled(format!("· one at a time · {state} "), style),
    ]);
    let block = Block::bordered()
        .title(title)
        .border_style(theme.border(false));
    frame.render_widget(Paragraph::new(Line::from(spans)).block(block), area);
}

fn draw_steps(frame: &mut Frame, area: Rect, app: &App, run: &RunState) {
    let theme = &app.theme;
    let mut lines: Vec<Line> = run
        .plan
        .steps
        .iter()
        .zip(&run.steps)
        .enumerate()
        .map(|(i, (p, s))| step_line(theme, i, &p.description, s))
        .collect();
    for note in run.plan.notes.iter().take(4) {
        lines.push(Line::from(Span::styled(
            format!("   • {}", printable(note)),
            theme.dim(),
        )));
    }
    let (state, style) = match &run.result {
        None => ("running".to_string(), theme.accent()),
        Some(r) if r.ok => (
            format!("done in {:.1}s", r.duration.as_secs_f64()),
            theme.success(),
        ),
        Some(r) => (
            format!("FAILED after {:.1}s", r.duration.as_secs_f64()),
            theme.error(),
        ),
    };
    let mut title = vec![
        Span::styled(
            format!(" {} ", printable(&run.plan.title)),
            theme.title(true),
        ),
        Span::styled(format!("· {state} "), style),
    ];
    if let Some(env) = &run.plan.environment {
        title.push(Span::styled(
            format!(" {} ", env.to_uppercase()),
            theme.environment(env),
        ));
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(theme.border(true));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_output(frame: &mut Frame, area: Rect, app: &App, run: &RunState) {
    let theme = &app.theme;
    let inner_height = area.height.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(r) = &run.result {
        let style = if r.ok { theme.success() } else { theme.error() };
        lines.push(Line::from(Span::styled(printable(&r.message), style)));
        for (k, v) in &r.metrics {
            lines.push(Line::from(Span::styled(format!("  {k}: {v}"), theme.dim())));
        }
    }
    // Newest output at the bottom; scrolling moves back in time.
    let end = run.output.len().saturating_sub(run.scroll);
    let start = end.saturating_sub(inner_height.saturating_sub(lines.len()));
    let mut out: Vec<Line> = run
        .output
        .range(start..end)
        .map(|(step, line)| {
            Line::from(vec![
                Span::styled(format!("{:>2} │ ", step + 1), theme.dim()),
                Span::styled(printable(line), theme.text()),
            ])
        })
        .collect();
    out.extend(lines);
    let title = if run.scroll > 0 {
        format!(" output (scrolled back {}) ", run.scroll)
    } else {
        " output ".into()
    };
    let mut title = vec![Span::styled(title, theme.title(false))];
    if run.dropped > 0 {
        // The bound of the view, not of the run: the CLI prints every line.
        title.push(Span::styled(
            format!(
                "⚠ {} earlier lines dropped (the view keeps {}; the CLI prints them all) ",
                run.dropped,
                crate::app::runbook::RUN_OUTPUT_KEPT
            ),
            theme.warning(),
        ));
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(theme.border(false));
    frame.render_widget(
        Paragraph::new(out).block(block).wrap(Wrap { trim: false }),
        area,
    );
}
