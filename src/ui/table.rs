//! What the fleet and swarm tables share: a themed header, and the window of rows that keeps the
//! selection on screen.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Cell, Row, Table};

use crate::theme::Theme;

/// Draws `rows` under `header` in `block`, over `area`, with `columns` (each its width and its
/// priority) fitted to the inside of the block by [`fit_widths`]: whole columns go, by priority,
/// on a narrow screen.
pub fn draw_fitted<'a>(
    frame: &mut Frame,
    area: Rect,
    header: Row<'a>,
    rows: Vec<Row<'a>>,
    block: Block<'a>,
    columns: &[(u16, u8)],
) {
    let widths = fit_widths(columns, area.width.saturating_sub(2));
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block)
            .column_spacing(0),
        area,
    );
}

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

/// Widths for a table drawn with `column_spacing(0)`: each column as `(width, priority)`, the last
/// one taking what is left (at least its width). Columns that do not fit go, the highest priority
/// number first (among equals the rightmost), and get a width of 0; a shown column carries its one
/// column of spacing, so a column is either whole or not there at all.
pub fn fit_widths(columns: &[(u16, u8)], inner: u16) -> Vec<ratatui::layout::Constraint> {
    use ratatui::layout::Constraint;
    let mut shown = vec![true; columns.len()];
    let used = |shown: &[bool]| -> u16 {
        columns
            .iter()
            .zip(shown)
            .filter(|(_, s)| **s)
            .map(|((w, _), _)| w + 1)
            .sum::<u16>()
            .saturating_sub(1)
    };
    while used(&shown) > inner {
        let least = (0..columns.len())
            .filter(|&k| shown[k] && columns[k].1 > 0)
            .max_by_key(|&k| (columns[k].1, k));
        match least {
            Some(k) => shown[k] = false,
            None => break,
        }
    }
    // A column left out before a wider one went may fit again: the most needed first.
    let mut out: Vec<usize> = (0..columns.len()).filter(|&k| !shown[k]).collect();
    out.sort_by_key(|&k| (columns[k].1, k));
    for k in out {
        shown[k] = true;
        if used(&shown) > inner {
            shown[k] = false;
        }
    }
    let last = shown.iter().rposition(|s| *s);
    columns
        .iter()
        .zip(&shown)
        .enumerate()
        .map(|(k, ((w, _), s))| match (s, Some(k) == last) {
            (false, _) => Constraint::Length(0),
            (true, true) => Constraint::Min(*w),
            (true, false) => Constraint::Length(w + 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Constraint;

    #[test]
    fn columns_that_do_not_fit_go_whole_by_priority() {
        let cols = [(10, 0), (5, 2), (5, 1), (8, 0)];
        assert_eq!(
            super::fit_widths(&cols, 40),
            vec![
                Constraint::Length(11),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Min(8)
            ]
        );
        // 10+1 + 5+1 + 8 = 25: the priority-2 column goes first.
        assert_eq!(
            super::fit_widths(&cols, 25),
            vec![
                Constraint::Length(11),
                Constraint::Length(0),
                Constraint::Length(6),
                Constraint::Min(8)
            ]
        );
    }
}
