//! The stats pane: the selection's CPU, memory, network and block IO as charts over the kept
//! history, with the current numbers and how they are read.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use crate::app::App;
use crate::format::printable;
use crate::format::{compact_bytes, interval_label, pair, percent, rate};
use crate::stats::Point;
use crate::theme::Theme;

/// Green, then amber from 70 %, red from 90 %.
pub fn level_style(theme: &Theme, percent: f64) -> Style {
    if percent >= 90.0 {
        theme.error()
    } else if percent >= 70.0 {
        theme.warning()
    } else {
        theme.success()
    }
}

/// A round upper bound for a byte chart: 1, 2 or 5 × a power of ten, in KiB, MiB, GiB…
fn nice_bytes(max: f64, floor: f64) -> f64 {
    let v = max.max(floor);
    let unit = 1024f64.powi((v.log(1024.0).floor() as i32).max(0));
    nice_ceiling(v / unit, 1.0) * unit
}

/// A round upper bound for a chart's y axis.
fn nice_ceiling(max: f64, floor: f64) -> f64 {
    let v = max.max(floor);
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if v <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let selected = app.selected_container();
    let name = selected
        .map(|c| printable(&c.display_name()))
        .unwrap_or_else(|| "—".into());
    let method = app
        .stats
        .method
        .as_ref()
        .map(|m| m.label())
        .unwrap_or_else(|| "waiting for the first reading".into());
    let block = Block::bordered()
        .border_style(theme.border(false))
        .title(Line::from(vec![
            Span::styled(" stats ", theme.title(true)),
            Span::styled(format!("· {name} "), theme.text()),
            stale_mark(app),
        ]))
        .title_bottom(Line::from(Span::styled(
            format!(
                " every {} · {method} ",
                interval_label(app.monitor.interval)
            ),
            theme.dim(),
        )));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(c) = selected else {
        frame.render_widget(
            Paragraph::new("select a container to see its stats").style(theme.dim()),
            inner,
        );
        return;
    };
    if !c.state.is_up() {
        frame.render_widget(
            Paragraph::new(format!("{} is {}: no stats", name, c.state.as_str()))
                .style(theme.dim()),
            inner,
        );
        return;
    }
    let Some((history, latest)) = app.stats.history(&c.id).and_then(|h| Some((h, *h.back()?)))
    else {
        frame.render_widget(Paragraph::new("reading…").style(theme.dim()), inner);
        return;
    };
    let [summary, charts] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(inner);
    frame.render_widget(Paragraph::new(summary_line(theme, &latest)), summary);

    let step = app.monitor.interval.as_secs_f64();
    let span = (app.stats.capacity().saturating_sub(1)) as f64 * step;
    let series = |f: &dyn Fn(&Point) -> Option<f64>| -> Vec<(f64, f64)> {
        let n = history.len();
        history
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some(((i as f64 - (n - 1) as f64) * step, f(p)?)))
            .collect()
    };
    let cpu = series(&|p| p.cpu);
    let mem = series(&|p| p.mem_used.map(|m| m as f64));
    let rx = series(&|p| p.net_rx);
    let tx = series(&|p| p.net_tx);
    let rd = series(&|p| p.blk_read);
    let wr = series(&|p| p.blk_write);

    // Four in a row where there is room across (or too little room down for two rows).
    let cells: Vec<Rect> = if charts.width >= 120 || charts.height < 12 {
        Layout::horizontal([Constraint::Ratio(1, 4); 4])
            .split(charts)
            .to_vec()
    } else {
        let [top, bottom] = Layout::vertical([Constraint::Ratio(1, 2); 2]).areas(charts);
        let [a, b] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(top);
        let [c2, d] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(bottom);
        vec![a, b, c2, d]
    };
    // Titles carry the current values, each coloured like its line: no legend box needed.
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let cpu_title = Line::from(vec![
        Span::styled(" CPU ", theme.text()),
        Span::styled(or_dash(latest.cpu.map(percent)), theme.series(0)),
        Span::raw(" "),
    ]);
    let mem_title = Line::from(vec![
        Span::styled(" MEM ", theme.text()),
        Span::styled(or_dash(latest.mem_used.map(compact_bytes)), theme.series(1)),
        Span::styled(
            latest
                .mem_limit
                .map(|l| format!(" / {} ", compact_bytes(l)))
                .unwrap_or_else(|| " ".into()),
            theme.dim(),
        ),
    ]);
    let two = |name: &'static str, a: (&str, Option<f64>), b: (&str, Option<f64>), k: usize| {
        Line::from(vec![
            Span::styled(format!(" {name} "), theme.text()),
            Span::styled(
                format!("{}{}", a.0, or_dash(a.1.map(rate))),
                theme.series(k),
            ),
            Span::raw(" "),
            Span::styled(
                format!("{}{}", b.0, or_dash(b.1.map(rate))),
                theme.series(k + 1),
            ),
            Span::raw(" "),
        ])
    };
    let net_title = two("NET", ("↓", latest.net_rx), ("↑", latest.net_tx), 2);
    let io_title = two("IO", ("r ", latest.blk_read), ("w ", latest.blk_write), 4);
    let pct = |v: f64| format!("{v:.0}%");
    let by = |v: f64| compact_bytes(v as u64);
    let per_s = |v: f64| rate(v);

    frame.render_widget(
        make_chart(theme, span, cpu_title, 0, vec![&cpu], Scale::Percent, &pct),
        cells[0],
    );
    frame.render_widget(
        make_chart(theme, span, mem_title, 1, vec![&mem], Scale::Bytes, &by),
        cells[1],
    );
    frame.render_widget(
        make_chart(
            theme,
            span,
            net_title,
            2,
            vec![&rx, &tx],
            Scale::Bytes,
            &per_s,
        ),
        cells[2],
    );
    frame.render_widget(
        make_chart(
            theme,
            span,
            io_title,
            4,
            vec![&rd, &wr],
            Scale::Bytes,
            &per_s,
        ),
        cells[3],
    );
}

#[derive(Clone, Copy)]
enum Scale {
    Percent,
    Bytes,
}

fn make_chart<'a>(
    theme: &Theme,
    span: f64,
    title: Line<'a>,
    first_series: usize,
    sets: Vec<&'a [(f64, f64)]>,
    scale: Scale,
    label: &dyn Fn(f64) -> String,
) -> Chart<'a> {
    let max = sets
        .iter()
        .flat_map(|d| d.iter().map(|(_, y)| *y))
        .fold(0.0f64, f64::max);
    let top = match scale {
        Scale::Percent => nice_ceiling(max, 1.0),
        Scale::Bytes => nice_bytes(max, 1024.0),
    };
    let datasets: Vec<Dataset> = sets
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme.series(first_series + i))
                .data(data)
        })
        .collect();
    Chart::new(datasets)
        .block(
            Block::bordered()
                .border_style(theme.border(false))
                .title(title),
        )
        .x_axis(
            Axis::default()
                .bounds([-span, 0.0])
                .labels(vec![
                    Span::styled(format!("-{}", minutes(span)), theme.dim()),
                    Span::styled("now", theme.dim()),
                ])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(vec![
                    Span::styled("0", theme.dim()),
                    Span::styled(label(top), theme.dim()),
                ])
                .style(theme.dim()),
        )
}

fn minutes(secs: f64) -> String {
    if secs >= 120.0 {
        format!("{:.0}m", secs / 60.0)
    } else {
        format!("{secs:.0}s")
    }
}

fn summary_line<'a>(theme: &Theme, p: &Point) -> Line<'a> {
    let mut spans = vec![Span::styled(" CPU ", theme.dim())];
    match p.cpu {
        Some(c) => spans.push(Span::styled(percent(c), level_style(theme, c))),
        None => spans.push(Span::styled("—", theme.dim())),
    }
    spans.push(Span::styled("   MEM ", theme.dim()));
    spans.push(Span::styled(
        p.mem_used.map(compact_bytes).unwrap_or_else(|| "—".into()),
        theme.text(),
    ));
    if let Some(l) = p.mem_limit {
        spans.push(Span::styled(
            format!(" / {}", compact_bytes(l)),
            theme.dim(),
        ));
    }
    if let Some(m) = p.mem_percent() {
        spans.push(Span::styled(
            format!(" ({})", percent(m)),
            level_style(theme, m),
        ));
    }
    spans.push(Span::styled("   PIDS ", theme.dim()));
    spans.push(Span::styled(
        p.pids.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
        theme.text(),
    ));
    spans.push(Span::styled("   NET ", theme.dim()));
    spans.push(Span::styled(pair(p.net_rx, p.net_tx), theme.text()));
    spans.push(Span::styled("   BLOCK ", theme.dim()));
    spans.push(Span::styled(
        match (p.blk_read, p.blk_write) {
            (Some(r), Some(w)) => format!("r {} w {}", rate(r), rate(w)),
            _ => "—".into(),
        },
        theme.text(),
    ));
    Line::from(spans)
}

/// `◌ stale · last readings ` in the title while the link or engine is lost: the charts and
/// numbers below are what was last read, not what runs now. Empty otherwise.
pub(super) fn stale_mark(app: &App) -> Span<'static> {
    if app.is_stale() {
        Span::styled("◌ stale · last readings ", app.theme.stale())
    } else {
        Span::raw("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_units() {
        assert_eq!(compact_bytes(512), "512B");
        assert_eq!(compact_bytes(1536), "1.5K");
        assert_eq!(compact_bytes(200 * 1024 * 1024), "200M");
        assert_eq!(rate(2048.4), "2.0K/s");
        assert_eq!(percent(3.04), "3.0%");
        assert_eq!(percent(250.0), "250%");
        assert_eq!(nice_ceiling(0.0, 1.0), 1.0);
        assert_eq!(nice_ceiling(37.0, 1.0), 50.0);
        assert_eq!(nice_ceiling(101.0, 1.0), 200.0);
        assert_eq!(
            nice_bytes(76.0 * 1024.0 * 1024.0, 1024.0),
            100.0 * 1024.0 * 1024.0
        );
        assert_eq!(nice_bytes(0.0, 1024.0), 1024.0);
    }
}
