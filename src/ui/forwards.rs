//! The console's port forwards on screen: `⇄ 8080→web:8080` in the header, the port picker and
//! the panel that lists them.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, List, ListItem, ListState, Paragraph};

use super::overlay::centered;
use crate::app::App;
use crate::app::forwards::PortPicker;
use crate::format::printable;

/// The header's forwards: each one while they fit (`⇄ 8080→web:8080 5432→db:5432`), else a count.
pub fn header_forms<'a>(app: &App) -> Option<Vec<Vec<Span<'a>>>> {
    let entries = &app.forwards.entries;
    if entries.is_empty() {
        return None;
    }
    // While the link is down the forwards wait for it, as the list does.
    let style = if app.is_stale() {
        app.theme.stale()
    } else {
        app.theme.key()
    };
    let all: Vec<String> = entries.iter().map(|f| f.label()).collect();
    let count = match entries.len() {
        1 => "  ⇄ 1 forward".to_string(),
        n => format!("  ⇄ {n} forwards"),
    };
    Some(vec![
        vec![Span::styled(format!("  ⇄ {}", all.join(" ")), style)],
        vec![Span::styled(count, style)],
    ])
}

pub fn port_picker(frame: &mut Frame, size: Rect, app: &App, p: &PortPicker) {
    let height = (p.ports.len() as u16 + 2)
        .min(size.height.saturating_sub(4))
        .max(3);
    let area = centered(size, 72, height);
    frame.render_widget(Clear, area);
    let items: Vec<ListItem> = p
        .ports
        .iter()
        .map(|port| {
            ListItem::new(Line::from(vec![
                Span::styled(format!(" {port:<6}"), app.theme.text()),
                Span::styled("tcp", app.theme.dim()),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(p.selected));
    let title = format!(
        " Forward which port of {}? Enter forwards, Esc closes ",
        printable(&p.container)
    );
    let list = List::new(items)
        .block(
            Block::bordered()
                .title(title)
                .border_style(app.theme.border(true)),
        )
        .highlight_style(app.theme.selected());
    frame.render_stateful_widget(list, area, &mut state);
}

pub fn panel(frame: &mut Frame, size: Rect, app: &App, selected: usize) {
    let entries = &app.forwards.entries;
    let height = (entries.len().max(1) as u16 + 2)
        .min(size.height.saturating_sub(4))
        .max(3);
    let area = centered(size, 110, height);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .title(" Port forwards — d stops the selected one, Esc closes ")
        .border_style(app.theme.border(true));
    if entries.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                " none: f on a running container forwards one of its ports",
                app.theme.dim(),
            ))
            .block(block),
            area,
        );
        return;
    }
    let stale = app.is_stale();
    let items: Vec<ListItem> = entries
        .iter()
        .map(|f| {
            let url = f.url().unwrap_or_else(|| "starting…".into());
            let mut spans = vec![
                Span::styled(format!(" {url:<24}"), app.theme.text()),
                Span::styled(
                    format!(" → {}:{:<6}", printable(&f.container), f.port),
                    app.theme.text(),
                ),
            ];
            if stale {
                spans.push(Span::styled(
                    " link down: waits for the reconnect",
                    app.theme.stale(),
                ));
            } else if !f.via.is_empty() {
                spans.push(Span::styled(
                    format!(" via {}", printable(&f.via)),
                    app.theme.dim(),
                ));
            }
            if f.failures > 0 {
                spans.push(Span::styled(
                    format!(" · {} failed", f.failures),
                    app.theme.warning(),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(selected));
    let list = List::new(items)
        .block(block)
        .highlight_style(app.theme.selected());
    frame.render_stateful_widget(list, area, &mut state);
}
