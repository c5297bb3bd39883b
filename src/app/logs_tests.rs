//! The log view fed with keys and log news: open and close, follow, search, filter, since, copy and save.

use super::*;
use crate::action::Action;
use crate::fixtures;
use crossterm::event::KeyModifiers;

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}
fn code(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}
fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(key(c));
    }
}

/// The shop, with the logs of web-1 open and 100 lines in.
fn with_logs() -> (App, u64) {
    let mut app = super::super::tests::app_with(fixtures::shop());
    let cmds = app.run_palette("logs shop-web-1");
    let [Command::OpenLogs { view, options, .. }] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    assert_eq!(options.tail, Tail::Lines(1000));
    assert!(options.follow && options.since.is_none());
    let view = *view;
    app.update(Action::Logs {
        view,
        event: LogEvent::Lines(fixtures::log_lines(100, 1)),
    });
    (app, view)
}

fn cursor_text(app: &App) -> String {
    let v = app.logs.as_ref().unwrap();
    v.buffer
        .by_seq(v.cursor_seq().unwrap())
        .unwrap()
        .text
        .to_string()
}

#[test]
fn opening_and_closing_starts_and_stops_the_stream() {
    let (mut app, view) = with_logs();
    assert_eq!(app.view, View::Logs);
    assert_eq!(app.scope(), crate::keymap::Scope::Logs);
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 100);
    // News from an earlier view is dropped.
    app.update(Action::Logs {
        view: view - 1,
        event: LogEvent::Lines(fixtures::log_lines(5, 1)),
    });
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 100);
    assert_eq!(app.update(code(KeyCode::Esc)), vec![Command::CloseLogs]);
    assert_eq!(app.view, View::Containers);
    assert!(app.logs.is_none());
    // `L` on the list opens the selected container; ctrl-l its service.
    let cmds = app.update(key('L'));
    assert!(matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 1));
    app.update(code(KeyCode::Esc));
    app.run_palette("inspect shop-web-2");
    app.update(code(KeyCode::Esc));
    let cmds = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('l'),
        KeyModifiers::CONTROL,
    )));
    assert!(
        matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 2)
            && app.logs.as_ref().unwrap().title == "shop/web"
    );
    assert_eq!(app.logs.as_ref().unwrap().sources[1].prefix, "web-2");
}

#[test]
fn scrolling_up_pauses_and_end_follows_again() {
    let (mut app, view) = with_logs();
    assert!(app.logs.as_ref().unwrap().follow);
    app.update(key('k'));
    let v = app.logs.as_ref().unwrap();
    assert!(!v.follow);
    assert!(cursor_text(&app).starts_with("seq=99 "));
    app.update(Action::Logs {
        view,
        event: LogEvent::Lines(fixtures::log_lines(7, 1)),
    });
    assert_eq!(app.logs.as_ref().unwrap().new_lines(), 7);
    assert!(
        cursor_text(&app).starts_with("seq=99 "),
        "the view stays put"
    );
    app.update(key('g'));
    assert!(cursor_text(&app).starts_with("seq=1 "));
    app.update(key('G'));
    assert!(app.logs.as_ref().unwrap().follow);
    app.update(key('f'));
    assert!(!app.logs.as_ref().unwrap().follow);
    app.update(key('f'));
    assert!(app.logs.as_ref().unwrap().follow);
}

#[test]
fn search_moves_between_matches() {
    let (mut app, _) = with_logs();
    app.update(key('/'));
    typed(&mut app, "level=error");
    app.update(code(KeyCode::Enter));
    assert!(
        cursor_text(&app).starts_with("seq=100 "),
        "case ignored by default"
    );
    app.update(key('N'));
    assert!(cursor_text(&app).starts_with("seq=90 "));
    app.update(key('n'));
    assert!(cursor_text(&app).starts_with("seq=100 "));
    app.update(key('n'));
    assert!(cursor_text(&app).starts_with("seq=10 "), "wraps around");
    app.update(key('/'));
    typed(&mut app, "(");
    app.update(code(KeyCode::Enter));
    assert!(app.status.as_ref().unwrap().text.starts_with("bad regex"));
    assert_eq!(
        app.logs.as_ref().unwrap().search.as_ref().unwrap().text,
        "level=error"
    );
}

#[test]
fn filter_keeps_matching_lines_and_inverts() {
    let (mut app, view) = with_logs();
    app.update(key('F'));
    typed(&mut app, "level=(warn|error)");
    app.update(code(KeyCode::Enter));
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 20);
    app.update(key('v'));
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 80);
    app.update(key('v'));
    // New lines are filtered as they come.
    app.update(Action::Logs {
        view,
        event: LogEvent::Lines(fixtures::log_lines(10, 1)),
    });
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 22);
    app.update(key('i'));
    assert_eq!(
        app.logs.as_ref().unwrap().buffer.len(),
        0,
        "matching case: no lower-case levels"
    );
    app.update(key('i'));
    app.run_palette("grep !INFO");
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 22);
    // Esc clears the filter first, then closes.
    assert!(app.update(code(KeyCode::Esc)).is_empty());
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 110);
    app.run_palette("grep seq=1\\b");
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 2);
}

#[test]
fn since_reopens_and_bad_input_changes_nothing() {
    let (mut app, view) = with_logs();
    app.update(key('w'));
    assert!(app.run_palette("since 15x").is_empty());
    let s = app.status.clone().unwrap();
    assert_eq!(s.level, Level::Error);
    assert!(s.text.starts_with("bad since '15x'"), "{}", s.text);
    assert_eq!(app.logs.as_ref().unwrap().id, view, "view unchanged");
    assert_eq!(app.logs.as_ref().unwrap().buffer.len(), 100);
    let cmds = app.run_palette("since 15m");
    let [
        Command::OpenLogs {
            options, view: v2, ..
        },
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!(
        options.since,
        Some(app.now - chrono::TimeDelta::minutes(15))
    );
    assert_eq!(options.tail, Tail::All);
    assert_ne!(*v2, view);
    let v = app.logs.as_ref().unwrap();
    assert!(v.wrap, "settings survive the reopen");
    assert!(v.buffer.is_empty());
    assert_eq!(
        app.palette_candidates("since 1"),
        vec!["since 15m", "since 1d", "since 1h"]
    );
}

#[test]
fn toggles_copy_and_save() {
    let (mut app, _) = with_logs();
    app.update(key('t'));
    app.update(key('w'));
    let v = app.logs.as_ref().unwrap();
    assert!(v.timestamps && v.wrap && !v.utc);
    app.update(key('T'));
    assert!(app.logs.as_ref().unwrap().utc);
    app.update(key('k'));
    let cmds = app.update(key('y'));
    assert_eq!(cmds, vec![Command::Copy(cursor_text(&app))]);
    let cmds = app.update(key('s'));
    let [
        Command::SaveLogs {
            file,
            lines,
            sources,
            timestamps,
        },
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!(lines.len(), 100);
    let text = crate::logs::format_lines(sources, *timestamps, lines);
    assert!(
        file.to_string_lossy()
            .starts_with("berth-shop-web-1-20261124-030000"),
        "{file:?}"
    );
    let text = String::from_utf8_lossy(&text);
    assert_eq!(text.lines().count(), 100);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("seq=1 level=INFO msg=request handled path=/api/orders/1")
    );
}

#[test]
fn switching_server_closes_the_view() {
    let (mut app, _) = with_logs();
    let _ = app.connect(crate::target::Target::local());
    assert!(app.logs.is_none());
    assert_eq!(app.view, View::Containers);
}

#[test]
fn the_view_handles_its_own_keys_without_the_app() {
    let (app, _) = with_logs();
    let mut v = app.logs.clone().unwrap();
    // Its own keys change it and say what they did; the app's keys are not its business.
    assert_eq!(v.handle(Intent::LogWrap, 10), LogStep::Done);
    assert!(v.wrap);
    assert_eq!(
        v.handle(Intent::LogRight, 10),
        LogStep::Say(
            Level::Info,
            "lines wrap: w turns wrap off to scroll sideways".into()
        )
    );
    assert_eq!(
        v.handle(Intent::LogNext, 10),
        LogStep::Say(Level::Info, "no search (/ starts one)".into())
    );
    assert_eq!(v.handle(Intent::Up, 10), LogStep::Done);
    assert!(!v.follow, "moving up pauses");
    assert!(matches!(v.handle(Intent::LogCopy, 10), LogStep::Copy(t) if !t.is_empty()));
    for app_key in [Intent::Back, Intent::LogSave, Intent::Quit, Intent::Events] {
        assert_eq!(v.handle(app_key, 10), LogStep::NotMine, "{app_key:?}");
    }
}
