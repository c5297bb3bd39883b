//! Where each part of the screen goes. Pure: `update` uses it too, to map mouse clicks to rows and
//! to know how many rows a page holds, so drawing and input always agree.

use ratatui::layout::{Constraint, Direction, Layout, Rect};

use crate::app::App;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Areas {
    pub header: Rect,
    pub banner: Option<Rect>,
    pub body: Rect,
    /// The list's block (with border).
    pub list: Rect,
    /// Where container rows are drawn (below the column header).
    pub list_body: Rect,
    pub list_rows: usize,
    pub details: Option<Rect>,
    /// The stats pane of the selection, under the list (and details) when open.
    pub stats: Option<Rect>,
    pub footer: Rect,
    pub too_small: bool,
}

/// The screen and what takes rows of it besides the list: the PRODUCTION banner and the stats pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub size: Rect,
    pub banner: bool,
    pub stats_pane: bool,
}

impl Screen {
    pub fn of(app: &App) -> Screen {
        Screen {
            size: app.size,
            // The fleet is no one server's: each row shows its own environment.
            banner: app.view != crate::app::View::Fleet
                && app
                    .target
                    .as_ref()
                    .and_then(|t| t.environment.as_ref())
                    .is_some(),
            stats_pane: app.monitor.pane_open,
        }
    }
}

pub fn areas(size: Rect, app: &App) -> Areas {
    let details = app.list.details_open && app.selected_container().is_some();
    arrange(
        Screen {
            size,
            ..Screen::of(app)
        },
        details,
    )
}

/// Where things go on `screen`, with the details pane beside the list when `details`.
pub fn arrange(screen: Screen, details: bool) -> Areas {
    let Screen {
        size,
        banner,
        stats_pane,
    } = screen;
    if size.width < MIN_WIDTH || size.height < MIN_HEIGHT {
        return Areas {
            too_small: true,
            body: size,
            ..Default::default()
        };
    }
    let [header, banner_area, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(if banner { 1 } else { 0 }),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(size);
    let full_body = body;
    let (body, stats) = if stats_pane && body.height >= 16 {
        let pane = (body.height * 2 / 5).clamp(10, 16);
        let [rest, pane_area] =
            Layout::vertical([Constraint::Min(6), Constraint::Length(pane)]).areas(body);
        (rest, Some(pane_area))
    } else {
        (body, None)
    };
    let (list, details) = if details {
        // Side by side on wide terminals, stacked on narrow ones.
        if body.width >= 150 {
            let [l, d] =
                Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                    .areas(body);
            (l, Some(d))
        } else {
            let [l, d] = Layout::default()
                .direction(Direction::Vertical)
                .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(body);
            (l, Some(d))
        }
    } else {
        (body, None)
    };
    // Border (1) and column header (1) above the rows, border (1) below.
    let list_body = Rect {
        x: list.x + 1,
        y: list.y + 2,
        width: list.width.saturating_sub(2),
        height: list.height.saturating_sub(3),
    };
    Areas {
        header,
        banner: banner.then_some(banner_area),
        body: full_body,
        list,
        list_body,
        list_rows: list_body.height as usize,
        details,
        stats,
        footer,
        too_small: false,
    }
}
