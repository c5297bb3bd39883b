//! The timeline view: what happened on the server, oldest first, deaths with their last log
//! lines, berth's runs, where the engine's history ends.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::App;
use crate::timeline::render::LineKind;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let panel = &app.timeline;
    let scope = match panel.names.as_slice() {
        [] => String::new(),
        names => format!("of {} ", crate::format::printable(&names.join(" "))),
    };
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(" timeline ", theme.title(true)),
            Span::styled(
                format!("{scope}last 24h, oldest first, times in UTC "),
                theme.dim(),
            ),
        ]))
        .border_style(theme.border(true));
    let visible = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = panel
        .lines
        .iter()
        .skip(panel.scroll)
        .take(visible)
        .map(|l| {
            let style = match l.kind {
                LineKind::Heading => theme.header(),
                LineKind::Normal => theme.text(),
                LineKind::Bad => theme.error(),
                LineKind::Note => theme.warning(),
                LineKind::Log => theme.dim(),
            };
            // The lines were sanitised when they were made.
            Line::from(Span::styled(l.text.clone(), style))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
