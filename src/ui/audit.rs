//! The audit view: every change berth made, newest first, from the audit log.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use crate::app::App;
use crate::format::{printable, truncate};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(" audit log ", theme.title(true)),
            Span::styled(
                format!("{} entries, newest first ", app.audit.entries.len()),
                theme.dim(),
            ),
            Span::styled(
                if app.audit.older {
                    "· ⚠ older entries not shown: `berth audit -n N` prints them "
                } else {
                    ""
                },
                theme.warning(),
            ),
        ]))
        .border_style(theme.border(true));
    if app.audit.entries.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new("nothing has been changed through berth yet").style(theme.dim()),
            inner,
        );
        return;
    }
    let visible = area.height.saturating_sub(3) as usize;
    let rows: Vec<Row> = app
        .audit
        .entries
        .iter()
        .rev()
        .skip(app.audit.scroll)
        .take(visible)
        .map(|e| {
            let ok = e.result == "ok";
            Row::new(vec![
                Cell::from(Span::styled(
                    e.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                    theme.dim(),
                )),
                Cell::from(printable(&e.user)),
                Cell::from(Line::from(vec![
                    Span::raw(printable(&e.server)),
                    Span::styled(
                        e.environment
                            .as_ref()
                            .map(|env| format!(" ({env})"))
                            .unwrap_or_default(),
                        theme.dim(),
                    ),
                ])),
                Cell::from(printable(&e.action)),
                Cell::from(printable(&e.target)),
                Cell::from(Span::styled(
                    e.result_text(),
                    match e.result.as_str() {
                        _ if ok => theme.success(),
                        // A run's opening line: neither good nor bad news by itself.
                        "started" => theme.dim(),
                        _ => theme.error(),
                    },
                )),
                Cell::from(Span::styled(
                    format!("{:.1}s", e.duration_ms as f64 / 1000.0),
                    theme.dim(),
                )),
                Cell::from(truncate(&printable(&e.message), 120)),
            ])
        })
        .collect();
    let header = Row::new(vec![
        "TIME (UTC)",
        "USER",
        "SERVER",
        "ACTION",
        "TARGET",
        "RESULT",
        "TOOK",
        "MESSAGE",
    ])
    .style(theme.column_header());
    let widths = [
        Constraint::Length(19),
        Constraint::Length(10),
        Constraint::Length(18),
        Constraint::Length(9),
        Constraint::Length(18),
        Constraint::Length(15),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block)
            .column_spacing(1),
        area,
    );
}
