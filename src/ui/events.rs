//! The events view: the engine's container events as they came, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use crate::action::EventRecord;
use crate::app::App;
use crate::format::{duration, printable};
use crate::theme::Theme;

fn action_style(theme: &Theme, e: &EventRecord) -> ratatui::style::Style {
    let a = e.action.as_str();
    if a == "oom"
        || a == "kill"
        || a.ends_with("unhealthy")
        || (a == "die" && e.exit_code.as_deref() != Some("0"))
    {
        theme.error()
    } else if a.ends_with(": healthy") || a == "start" {
        theme.success()
    } else if a == "destroy" || a == "stop" || a == "die" {
        theme.warning()
    } else {
        theme.text()
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(" events ", theme.title(true)),
            Span::styled(
                format!("{} kept, newest first ", app.events.records.len()),
                theme.dim(),
            ),
            Span::styled(
                match app.events.dropped {
                    0 => String::new(),
                    n => format!(
                        "· ⚠ {n} older events dropped (the view keeps {}) ",
                        crate::app::EVENTS_KEPT
                    ),
                },
                theme.warning(),
            ),
        ]))
        .border_style(theme.border(true));
    if app.events.records.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let msg =
            "no container events since berth connected; start or stop something and it shows here";
        frame.render_widget(Paragraph::new(msg).style(theme.dim()), inner);
        return;
    }
    let visible = area.height.saturating_sub(3) as usize;
    let rows: Vec<Row> = app
        .events
        .records
        .iter()
        .skip(app.events.scroll)
        .take(visible)
        .map(|e| {
            let age = duration((app.now - e.time).num_seconds());
            let detail = match (&e.exit_code, e.action.as_str()) {
                (Some(code), "die") => format!("exit {code}"),
                _ => String::new(),
            };
            Row::new(vec![
                Cell::from(Span::styled(
                    e.time.format("%H:%M:%S%.3f").to_string(),
                    theme.dim(),
                )),
                Cell::from(Span::styled(format!("{age} ago"), theme.dim())),
                Cell::from(printable(&e.name)),
                Cell::from(Span::styled(e.action.clone(), action_style(theme, e))),
                Cell::from(detail),
            ])
        })
        .collect();
    let header =
        Row::new(vec!["TIME (UTC)", "AGE", "CONTAINER", "EVENT", ""]).style(theme.column_header());
    let widths = [
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Fill(1),
        Constraint::Length(26),
        Constraint::Length(10),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block)
            .column_spacing(1),
        area,
    );
}
