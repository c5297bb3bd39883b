//! Fitting a line of parts into a width by priority: the least important part shortens first, then
//! goes, so what matters most is on every width; nothing is cut inside a word.

use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

/// One part of a line: its forms from the fullest to the shortest, and for each step to the next
/// form how much that step costs (higher: taken sooner). A part that may go altogether ends its
/// forms with an empty one.
pub struct Part<'a> {
    forms: Vec<Vec<Span<'a>>>,
    /// `steps[i]`: the priority of going from `forms[i]` to `forms[i + 1]`; never rising, so a
    /// part's steps are taken in order.
    steps: Vec<u8>,
}

impl<'a> Part<'a> {
    /// A part whose steps through `forms`, then out, each have `priority`.
    pub fn droppable(priority: u8, mut forms: Vec<Vec<Span<'a>>>) -> Part<'a> {
        forms.push(Vec::new());
        Part::kept(priority, forms)
    }

    /// A part that shortens through `forms` (each step `priority`) and stays.
    pub fn kept(priority: u8, forms: Vec<Vec<Span<'a>>>) -> Part<'a> {
        let steps = vec![priority; forms.len().saturating_sub(1)];
        Part { forms, steps }
    }

    /// A part with a priority per step: `steps[i]` takes `forms[i]` to `forms[i + 1]`.
    pub fn stepped(forms: Vec<Vec<Span<'a>>>, steps: Vec<u8>) -> Part<'a> {
        debug_assert_eq!(steps.len() + 1, forms.len());
        debug_assert!(steps.windows(2).all(|w| w[0] >= w[1]));
        Part { forms, steps }
    }
}

fn spans_width(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.content.width()).sum()
}

/// The parts, in their order, each in the fullest form the width allows. The steps that shorten
/// them are taken in one fixed order, whatever the width (the highest priority first, among equals
/// the rightmost part first), until the line fits; so a wider screen never shows less. What still
/// does not fit is cut at the end with `…`.
pub fn fit<'a>(parts: Vec<Part<'a>>, width: usize) -> Line<'a> {
    let mut order: Vec<(u8, usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.steps.iter().enumerate().map(move |(i, &pr)| (pr, k, i)))
        .collect();
    order.sort_by_key(|&(pr, k, i)| (std::cmp::Reverse(pr), std::cmp::Reverse(k), i));
    let mut form = vec![0usize; parts.len()];
    let mut total: usize = parts.iter().map(|p| spans_width(&p.forms[0])).sum();
    for (_, k, i) in order {
        if total <= width {
            break;
        }
        if form[k] != i {
            // A step of this part out of turn (equal priorities): its earlier step comes first.
            continue;
        }
        total = total - spans_width(&parts[k].forms[i]) + spans_width(&parts[k].forms[i + 1]);
        form[k] = i + 1;
    }
    let mut spans: Vec<Span<'a>> = parts
        .into_iter()
        .zip(form)
        .flat_map(|(mut p, f)| std::mem::take(&mut p.forms[f]))
        .collect();
    cut_spans(&mut spans, width);
    Line::from(spans)
}

/// Spans cut to `width` columns, the last one ending in `…` when anything was cut.
pub fn cut_spans(spans: &mut Vec<Span>, width: usize) {
    if spans_width(spans) <= width {
        return;
    }
    use unicode_width::UnicodeWidthChar;
    // One column is kept for the `…` that says something was cut.
    let room = width.saturating_sub(1);
    let mut used = 0;
    let mut out = Vec::new();
    for s in spans.drain(..) {
        let w = s.content.width();
        if used + w <= room {
            used += w;
            out.push(s);
            continue;
        }
        let mut text = String::new();
        for ch in s.content.chars() {
            let cw = ch.width().unwrap_or(0);
            if used + cw > room {
                break;
            }
            used += cw;
            text.push(ch);
        }
        if width > 0 {
            text.push('…');
        }
        out.push(Span::styled(text, s.style));
        break;
    }
    *spans = out;
}

/// `text` in `width` columns: whole, or its words up to the last that fits, then `…`.
pub fn shorten_words(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let room = width.saturating_sub(1);
    let mut out = String::new();
    for (i, word) in text.split(' ').enumerate() {
        let next = if i == 0 {
            word.to_string()
        } else {
            format!("{out} {word}")
        };
        if next.width() > room {
            break;
        }
        out = next;
    }
    if out.trim().is_empty() {
        // One word wider than the line: only then is a word cut.
        return crate::format::truncate(text, width);
    }
    format!("{}…", out.trim_end())
}

/// Words of `text` joined into rows of at most `width` columns; continuation rows start with
/// `indent` spaces. A word longer than a row is the only thing ever cut, with `…`.
pub fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(indent + 2);
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let lead = if rows.is_empty() { 0 } else { indent };
        let sep = usize::from(!row.is_empty());
        if !row.is_empty() && lead + row.width() + sep + word.width() > width {
            rows.push(std::mem::take(&mut row));
        }
        let lead = if rows.is_empty() { 0 } else { indent };
        if !row.is_empty() {
            row.push(' ');
        }
        if lead + word.width() > width {
            row.push_str(&crate::format::truncate(word, width - lead));
        } else {
            row.push_str(word);
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            if i == 0 {
                r
            } else {
                format!("{}{r}", " ".repeat(indent))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn the_least_important_part_gives_way_first() {
        let parts = || {
            vec![
                Part::kept(0, vec![vec![Span::raw("name")]]),
                Part::droppable(5, vec![vec![Span::raw(" · extra words")]]),
                Part::kept(
                    1,
                    vec![
                        vec![Span::raw(" ● live · 3 ms")],
                        vec![Span::raw(" ● live")],
                    ],
                ),
            ]
        };
        assert_eq!(text(&fit(parts(), 80)), "name · extra words ● live · 3 ms");
        assert_eq!(text(&fit(parts(), 20)), "name ● live · 3 ms");
        assert_eq!(text(&fit(parts(), 12)), "name ● live");
        assert_eq!(text(&fit(parts(), 8)), "name ● …");
    }

    #[test]
    fn wrap_breaks_between_words() {
        assert_eq!(
            wrap("roll the service back: pick the image", 16, 2),
            vec!["roll the service", "  back: pick the", "  image"]
        );
        assert_eq!(wrap("", 10, 2), vec![""]);
        assert_eq!(
            shorten_words("rollback of web failed: timeout", 20),
            "rollback of web…"
        );
        assert_eq!(wrap("abcdefghijkl", 6, 0), vec!["abcde…"]);
    }
}
