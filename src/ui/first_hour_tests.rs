//! Render and update tests for the rough edges of a first hour: the details pane scrolls to the
//! end of anything, footer messages expire and belong to their container, keys on an error screen
//! change nothing behind it, a plan's prompt is always on screen, and list columns drop in the
//! order an on-call engineer can spare them, never cutting a value mid-word.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::tests::{press, render, shop};
use crate::action::Level;
use crate::action::{Action, EngineEvent};
use crate::app::{App, Overlay};
use crate::config::Config;
use crate::engine::model::{Container, State};
use crate::fixtures;
use crate::keymap::Keymap;
use crate::target::Target;
use crate::theme::Theme;

fn app_with(list: Vec<Container>, target: Target, w: u16, h: u16) -> App {
    let mut app = App::new(
        Config::default(),
        Theme::default(),
        Keymap::default(),
        fixtures::now(),
    );
    app.update(Action::Resize(w, h));
    let _ = app.connect(target);
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Connected {
            transport: "unix socket".into(),
            version: Default::default(),
        },
    });
    app.update(Action::Engine {
        session,
        event: EngineEvent::Snapshot(list),
    });
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn screen(app: &App) -> String {
    format!("{}", render(app).backend())
}

fn footer(app: &App) -> String {
    let t = render(app);
    let buf = t.backend().buffer();
    let y = buf.area.height - 1;
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

#[test]
fn details_scroll_reaches_every_field_after_a_huge_label() {
    let mut c = fixtures::container("labelled");
    c.labels.insert("a-huge".into(), "y".repeat(10_000));
    c.labels.insert("zz-last".into(), "the-very-end".into());
    let mut app = app_with(vec![c], Target::local(), 120, 40);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Enter);
    assert!(!screen(&app).contains("the-very-end"));
    press(&mut app, "G");
    let max = app.list.details_scroll;
    assert!(max > 10, "the label wraps to many rows: {max}");
    assert!(
        screen(&app).contains("zz-last = the-very-end"),
        "{}",
        screen(&app)
    );
    // One `k` moves back at once (the offset never runs past the end).
    press(&mut app, "k");
    assert_eq!(app.list.details_scroll, max - 1);
    // `j` and PgDn reach the same end and stop there.
    press(&mut app, "g");
    for _ in 0..500 {
        press(&mut app, "j");
    }
    assert_eq!(app.list.details_scroll, max);
    press(&mut app, "g");
    for _ in 0..50 {
        key(&mut app, KeyCode::PageDown);
    }
    assert_eq!(app.list.details_scroll, max);
    assert!(screen(&app).contains("the-very-end"));
    insta::assert_snapshot!(render(&app).backend());
}

/// A 100 KB label is shown whole: its last word is reachable, and rows break between words.
#[test]
fn details_show_a_100_kb_label_whole_wrapped_between_words() {
    let words: Vec<String> = (0..12_500).map(|n| format!("word{n:03}")).collect();
    let mut value = words.join(" ");
    value.push_str(" END-OF-LABEL");
    assert!(value.len() > 100_000);
    let mut c = fixtures::container("labelled");
    c.labels.insert("big".into(), value);
    let mut app = app_with(vec![c], Target::local(), 120, 40);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Enter);
    press(&mut app, "G");
    let end = screen(&app);
    assert!(end.contains("END-OF-LABEL"), "{end}");
    // Every row of the value ends with a whole word: `word01` is never split from its `1`.
    let rows =
        crate::app::details::wrap(vec![ratatui::text::Line::from(words[..200].join(" "))], 60);
    for r in &rows {
        let text: String = r.spans.iter().map(|s| s.content.as_ref()).collect();
        for w in text.split_whitespace() {
            assert!(
                w.len() == "word000".len(),
                "a word cut at the edge: {w:?} in {text:?}"
            );
        }
    }
}

#[test]
fn reveal_works_from_the_list_and_says_when_there_is_nothing() {
    let mut app = shop(120, 40);
    let db = app.selected_container().unwrap().id.clone();
    assert!(!app.list.details_open);
    press(&mut app, "x");
    assert_eq!(app.list.revealed.as_deref(), Some(db.as_str()));
    assert!(
        app.list.details_open,
        "x from the list opens the pane it reveals in"
    );
    assert!(
        footer(&app).contains("secrets revealed"),
        "{}",
        footer(&app)
    );
    key(&mut app, KeyCode::Enter);
    press(&mut app, "G");
    assert!(screen(&app).contains("POSTGRES_PASSWORD=hunter2"));
    // The message belongs to db: another row, and it is gone.
    key(&mut app, KeyCode::Esc);
    press(&mut app, "j");
    assert_ne!(app.selected_container().unwrap().id, db);
    assert!(!footer(&app).contains("secrets"), "{}", footer(&app));
    // A container with nothing masked: the footer says x did nothing, and nothing is revealed.
    press(&mut app, "x");
    assert_eq!(app.list.revealed.as_deref(), Some(db.as_str()));
    assert!(
        footer(&app).contains("no secret values to reveal"),
        "{}",
        footer(&app)
    );
}

#[test]
fn footer_messages_expire_errors_included() {
    let mut app = shop(100, 20);
    app.notify(Level::Info, "sorted by name");
    app.update(Action::Tick(fixtures::now() + chrono::Duration::seconds(7)));
    assert!(app.status.is_none());
    app.notify(Level::Error, "something failed");
    app.update(Action::Tick(
        fixtures::now() + chrono::Duration::seconds(15),
    ));
    assert!(app.status.is_some(), "an error stays long enough to read");
    app.update(Action::Tick(
        fixtures::now() + chrono::Duration::seconds(40),
    ));
    assert!(app.status.is_none(), "and then goes");
}

#[test]
fn keys_on_an_error_screen_change_nothing_behind_it() {
    let mut app = shop(100, 20);
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::ConnectFailed("cannot reach the Docker engine".into()),
    });
    let (sort, all, selected) = (app.list.sort, app.list.show_all, app.list.selected);
    press(&mut app, "sajjG ");
    assert_eq!(app.list.sort, sort);
    assert_eq!(app.list.show_all, all);
    assert_eq!(app.list.selected, selected);
    assert!(!app.list.details_open);
    // Help and quit still work.
    press(&mut app, "?");
    assert!(matches!(app.overlay, Overlay::Help { .. }));
}

fn production() -> Target {
    let mut t = Target::from_endpoint("prod", crate::target::Endpoint::Tcp("10.0.0.1:2375".into()));
    t.environment = Some("production".into());
    t
}

#[test]
fn a_long_plan_never_hides_its_prompt() {
    let mut app = app_with(fixtures::shop(), production(), 160, 45);
    let mut plan = fixtures::plan("rollback web to shop/web:v1", "shop/web", 40);
    plan.confirm_as = "web".into();
    plan.notes.push(
        "each new container keeps the old one's configuration: env, command, entrypoint, mounts, networks and aliases, ports, labels (compose's too), restart policy, health check, user, working dir"
            .into(),
    );
    let plan = crate::action::SharedPlan(std::sync::Arc::new(plan));
    app.notify(Level::Info, "planning rollback web …");
    app.update(Action::Runbook(crate::action::RunbookMsg::Planned(Ok(
        plan,
    ))));
    assert!(app.status.is_none(), "the planning note ends with the plan");
    let text = screen(&app);
    assert!(text.contains("Type web and press Enter"), "{text}");
    assert!(text.contains("On local: 40 steps."), "{text}");
    assert!(text.contains("1–"), "the steps say they scroll: {text}");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let text = screen(&app);
    assert!(text.contains("(3–"), "{text}");
    assert!(text.contains("Type web and press Enter"), "{text}");
    // Letters go into the field, arrows did not.
    press(&mut app, "web");
    let Overlay::Confirm(c) = &app.overlay else {
        panic!("still confirming")
    };
    assert_eq!(c.input.lines().join(""), "web");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn a_small_terminal_still_shows_the_prompt() {
    let mut app = app_with(fixtures::shop(), production(), 80, 16);
    let plan = crate::action::SharedPlan(std::sync::Arc::new(fixtures::plan(
        "restart web",
        "web",
        30,
    )));
    app.update(Action::Runbook(crate::action::RunbookMsg::Planned(Ok(
        plan,
    ))));
    assert!(screen(&app).contains("Type web and"), "{}", screen(&app));
}

#[test]
fn wide_list_keeps_uptime_whole_and_drops_ids_first() {
    let mut list = fixtures::shop();
    let mut dead = fixtures::replica("shop", "cron", 1);
    dead.state = State::Exited;
    dead.exit_code = Some(137);
    dead.finished_at = Some(fixtures::now() - chrono::Duration::seconds(54));
    list.push(dead);
    // Wide enough for every column at the width its content needs: all of them, whole.
    let mut app = app_with(list.clone(), Target::local(), 160, 18);
    if !app.list.show_all {
        press(&mut app, "a");
    }
    let text = screen(&app);
    assert!(text.contains("exit 137 · 54s ago"), "{text}");
    assert!(text.contains("PIDS") && text.contains(" ID "), "{text}");
    insta::assert_snapshot!(render(&app).backend());
    // Narrower: ids and PIDs go first, then IO rates; limits and ports stay, names whole.
    let mut app = app_with(list, Target::local(), 130, 18);
    if !app.list.show_all {
        press(&mut app, "a");
    }
    let text = screen(&app);
    assert!(text.contains("exit 137 · 54s ago"), "{text}");
    assert!(text.contains("MEM%") && text.contains("PORTS"), "{text}");
    assert!(text.contains("nightly-backup"), "{text}");
    assert!(!text.contains("PIDS"), "{text}");
    assert!(!text.contains(" ID "), "ids go first: {text}");
    assert!(!text.contains("BLOCK"), "{text}");
}
