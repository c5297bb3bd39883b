//! Draws the details pane for the selected container (its lines come from `app::details`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::details::{bottom, lines, wrap};
use crate::app::{App, Focus};
use crate::format::{printable, truncate};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(c) = app.selected_container() else {
        return;
    };
    let theme = &app.theme;
    let focused = app.list.focus == Focus::Details;
    let revealed = app.list.revealed.as_deref() == Some(c.id.as_str());
    let lines = lines(c, app.compose.drift(c), theme, app.now, revealed);
    let title = Line::from(vec![
        Span::styled(
            format!(" {} ", truncate(&printable(&c.display_name()), 60)),
            theme.title(focused),
        ),
        Span::styled(
            if revealed { "· secrets shown " } else { "" },
            theme.warning(),
        ),
    ]);
    let block = Block::bordered()
        .title(title)
        .border_style(theme.border(focused));
    let rows = wrap(lines, area.width.saturating_sub(2) as usize);
    let scroll = app.list.details_scroll.min(bottom(rows.len(), area));
    frame.render_widget(Paragraph::new(rows).block(block).scroll((scroll, 0)), area);
}
