//! Snapshot tests of the log view: following a project with prefixes, paused with a new-lines
//! marker, search and filter, wrap and sideways scrolling, reconnects, its help and its keys.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::tests::{app_sized, find_text, press, press_code, render, shop};
use crate::action::Action;
use crate::app::App;
use crate::fixtures;
use crate::target::Target;

/// The shop with a log view open on `name` and `lines` fixture lines over its sources.
fn logs_app(name: &str, lines: usize, w: u16, h: u16) -> App {
    let mut app = shop(w, h);
    let cmds = app.run_palette(&format!("logs {name}"));
    let [crate::app::Command::OpenLogs { view, ids, .. }] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    let event = crate::logs::LogEvent::Lines(fixtures::log_lines(lines, ids.len() as u16));
    app.update(Action::Logs { view: *view, event });
    app
}

fn log_view_id(app: &App) -> u64 {
    app.logs.as_ref().unwrap().id
}

#[test]
fn logs_following_a_project_with_prefixes() {
    let app = logs_app("shop", 40, 100, 16);
    let t = render(&app);
    // Stderr lines are marked in the gutter, ERROR lines coloured.
    let (x, y) = find_text(&t, "seq=35 ").expect("seq=35 on screen");
    let row_start = t.backend().buffer()[(1, y)].clone();
    assert_eq!(row_start.symbol(), "▍");
    assert_eq!(row_start.fg, app.theme.stderr().fg.unwrap());
    let (ex, ey) = find_text(&t, "seq=40 ").expect("seq=40 on screen");
    assert_eq!(
        t.backend().buffer()[(ex, ey)].fg,
        app.theme.error().fg.unwrap()
    );
    assert_ne!(
        t.backend().buffer()[(x, y)].fg,
        app.theme.error().fg.unwrap()
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn logs_paused_with_new_lines_marker() {
    let mut app = logs_app("shop-web-1", 40, 100, 14);
    press(&mut app, "kkk");
    let view = log_view_id(&app);
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(fixtures::log_lines(12, 1)),
    });
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn logs_search_highlight() {
    let mut app = logs_app("shop-web-1", 40, 100, 14);
    press(&mut app, "/");
    press(&mut app, "orders/3");
    press_code(&mut app, KeyCode::Enter);
    let t = render(&app);
    let (x, y) = find_text(&t, "orders/3").expect("match on screen");
    assert_eq!(
        t.backend().buffer()[(x, y)].bg,
        app.theme.search_match().bg.unwrap()
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn logs_filter_inverted_and_timestamps() {
    let mut app = logs_app("web", 40, 110, 14);
    app.run_palette("grep !level=info");
    press(&mut app, "T");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn logs_wrap_long_lines_and_sgr() {
    let mut app = logs_app("shop-web-1", 3, 70, 14);
    let view = log_view_id(&app);
    let long = format!(
        "\x1b[32mgreen\x1b[0m start {} end\x1b]0;title\x07",
        "abcdefghij".repeat(12)
    );
    let line = crate::logs::LogLine::new(
        fixtures::now().timestamp_nanos_opt().unwrap(),
        0,
        crate::logs::StreamKind::Stdout,
        long.as_bytes(),
        0,
    );
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(vec![line]),
    });
    press(&mut app, "w");
    let t = render(&app);
    let (x, y) = find_text(&t, "green").expect("green on screen");
    assert_eq!(
        t.backend().buffer()[(x, y)].fg,
        ratatui::style::Color::Indexed(2)
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn logs_reconnecting_on_production() {
    let mut target =
        Target::from_endpoint("prod", crate::target::Endpoint::Tcp("10.0.0.1:2375".into()));
    target.environment = Some("production".into());
    let mut app = app_sized(fixtures::shop(), target, 100, 12);
    let cmds = app.run_palette("logs shop-db-1");
    assert_eq!(cmds.len(), 1);
    let view = log_view_id(&app);
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(fixtures::log_lines(10, 1)),
    });
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Status {
            source: 0,
            status: crate::logs::SourceStatus::Reconnecting {
                attempt: 2,
                error: "connection reset by peer".into(),
            },
        },
    });
    let t = render(&app);
    assert!(find_text(&t, "PRODUCTION").is_some(), "the banner stays");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn logs_help_lists_the_log_keys() {
    let mut app = logs_app("shop-web-1", 5, 100, 40);
    press(&mut app, "?");
    let t = render(&app);
    for needle in ["Logs", "follow new lines", "ignore case", "OSC 52"] {
        assert!(find_text(&t, needle).is_some(), "{needle} in the help");
    }
    insta::assert_snapshot!(t.backend());
}

#[test]
fn host_key_leaves_the_log_view_for_the_host_view() {
    let mut app = logs_app("shop", 20, 120, 30);
    assert_eq!(app.view, crate::app::View::Logs);
    let cmds = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('H'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.view, crate::app::View::Host);
    assert!(app.logs.is_none());
    assert!(
        cmds.contains(&crate::app::Command::CloseLogs),
        "the stream is stopped: {cmds:?}"
    );
}

#[test]
fn log_lines_scroll_sideways_when_wrap_is_off() {
    let mut app = logs_app("shop-web-1", 3, 60, 12);
    let before = format!("{}", render(&app).backend());
    assert!(before.contains("seq=3 level=INFO"), "{before}");
    press(&mut app, "ll");
    assert_eq!(app.logs.as_ref().unwrap().h_offset, 16);
    let t = render(&app);
    let after = format!("{}", t.backend());
    assert!(!after.contains("seq=3 level=INFO"), "{after}");
    assert!(after.contains("msg=request handled"), "{after}");
    assert!(after.contains("→16"), "the title says how far: {after}");
    insta::assert_snapshot!(t.backend());
    // Back to the start, and wrap resets the offset.
    press(&mut app, "hhh");
    assert_eq!(app.logs.as_ref().unwrap().h_offset, 0);
    press(&mut app, "llw");
    assert_eq!(app.logs.as_ref().unwrap().h_offset, 0);
    assert!(app.logs.as_ref().unwrap().wrap);
}

#[test]
fn a_filter_set_while_scrolled_up_shows_its_matches() {
    let mut app = logs_app("shop-web-1", 400, 100, 20);
    // Scroll far up, past the lines the filter will keep at the end.
    for _ in 0..3 {
        press_code(&mut app, KeyCode::PageUp);
    }
    app.run_palette("grep seq=(39[0-9]|400) level");
    let t = render(&app);
    let shown = (390..=400)
        .filter(|i| find_text(&t, &format!("seq={i} ")).is_some())
        .count();
    assert_eq!(shown, 11, "every match is on screen:\n{}", t.backend());
    // A filter whose matches lie above the selection fills the screen up to it too.
    app.run_palette("grep seq=1[0-9] level");
    let t = render(&app);
    let shown = (10..=19)
        .filter(|i| find_text(&t, &format!("seq={i} ")).is_some())
        .count();
    assert_eq!(shown, 10, "{}", t.backend());
}

#[test]
fn a_search_that_wraps_says_so() {
    let mut app = logs_app("shop-web-1", 40, 100, 14);
    press(&mut app, "/");
    press(&mut app, "seq=3 ");
    press_code(&mut app, KeyCode::Enter);
    let status = |app: &App| {
        app.status
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    };
    assert!(!status(&app).contains("wrapped"), "{}", status(&app));
    press(&mut app, "n");
    assert!(status(&app).contains("search wrapped"), "{}", status(&app));
}

#[test]
fn a_log_view_says_reconnecting_then_resumed() {
    let mut app = logs_app("shop-web-1", 10, 110, 12);
    let view = log_view_id(&app);
    let status = |app: &mut App, status| {
        app.update(Action::Logs {
            view,
            event: crate::logs::LogEvent::Status { source: 0, status },
        })
    };
    status(
        &mut app,
        crate::logs::SourceStatus::Reconnecting {
            attempt: 1,
            error: "channel closed".into(),
        },
    );
    let t = render(&app);
    assert!(find_text(&t, "◌ reconnecting (try 1)").is_some());
    assert!(find_text(&t, "● following").is_none());
    status(
        &mut app,
        crate::logs::SourceStatus::Resumed { caught_up: 42 },
    );
    let t = render(&app);
    assert!(find_text(&t, "resumed · 42 lines caught up").is_some());
    assert!(find_text(&t, "● following").is_some());
}

/// A view whose bounds dropped lines says how many, which bound, and how to get them all.
#[test]
fn a_log_view_that_dropped_lines_says_so() {
    let mut app = shop(110, 14);
    app.config.logs.max_lines = 100;
    let cmds = app.run_palette("logs shop-web-1");
    let [crate::app::Command::OpenLogs { view, .. }] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    let view = *view;
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(fixtures::log_lines(100, 1)),
    });
    assert!(
        !format!("{}", render(&app).backend()).contains("dropped"),
        "nothing dropped, nothing said"
    );
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(fixtures::log_lines(130, 1)),
    });
    let text = format!("{}", render(&app).backend());
    assert!(
        text.contains(
            "⚠ 130 older lines dropped (max_lines 100) · :save-all writes the whole range to a file"
        ),
        "{text}"
    );
    // :save-all reads the range again into a file, past the bound.
    let cmds = app.run_palette("save-all");
    assert!(
        matches!(
            &cmds[..],
            [crate::app::Command::SaveAllLogs { options, .. }] if !options.follow
        ),
        "{cmds:?}"
    );
}
