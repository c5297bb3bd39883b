//! What the fleet and swarm tables share: a themed header, and the window of rows that keeps the
//! selection on screen.

use ratatui::widgets::{Cell, Row};

use crate::theme::Theme;

/// A header row in the theme's column-header style.
pub fn header<'a>(titles: &[&'a str], theme: &Theme) -> Row<'a> {
    Row::new(
        titles
            .iter()
            .map(|h| Cell::from(*h).style(theme.column_header())),
    )
}

/// The rows a table of `len` items shows in `visible` lines: the window slides once the selection
/// reaches the bottom, so `selected` stays on screen, drawn in the selection style.
pub fn windowed<'a>(
    len: usize,
    selected: usize,
    visible: usize,
    theme: &Theme,
    row: impl Fn(usize) -> Row<'a>,
) -> Vec<Row<'a>> {
    window(len, selected, visible)
        .map(|i| {
            let r = row(i);
            if i == selected {
                r.style(theme.selected())
            } else {
                r
            }
        })
        .collect()
}

/// Which of `len` items a table of `visible` lines shows so that `selected` is on screen.
pub fn window(len: usize, selected: usize, visible: usize) -> std::ops::Range<usize> {
    let visible = visible.max(1);
    let offset = selected.saturating_sub(visible - 1);
    offset..len.min(offset + visible)
}
