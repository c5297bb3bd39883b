//! The timeline view: opened by its key, drawn from the timeline the runner built.

use chrono::TimeDelta;
use crossterm::event::KeyCode;

use super::tests::{press, press_code, render, shop};
use crate::action::Action;
use crate::app::{Command, View};
use crate::fixtures;
use crate::timeline::{EngineEvent, Inputs, build};

fn event(ago: i64, action: &str, code: Option<i64>) -> EngineEvent {
    EngineEvent {
        time: fixtures::now() - TimeDelta::seconds(ago),
        kind: "container".into(),
        action: action.into(),
        id: "abc".into(),
        name: "shop-web-2".into(),
        exit_code: code,
        project: Some("shop".into()),
        service: Some("web".into()),
        swarm_service: None,
        from_state: false,
    }
}

#[test]
fn timeline_view() {
    let mut app = shop(110, 14);
    let session = app.session;
    let commands = app.update(Action::Key(crossterm::event::KeyEvent::new(
        KeyCode::Char('I'),
        crossterm::event::KeyModifiers::NONE,
    )));
    assert_eq!(commands, vec![Command::LoadTimeline(vec![])]);
    let inputs = Inputs {
        server: "local".into(),
        since: Some(fixtures::now() - TimeDelta::hours(24)),
        now: fixtures::now(),
        engine: vec![
            event(7200, "start", None),
            event(120, "health_status: unhealthy", None),
            event(60, "die", Some(3)),
            event(59, "start", None),
        ],
        engine_total: 4,
        logs: vec![(
            ("abc".into(), fixtures::now() - TimeDelta::seconds(60)),
            vec!["connecting to db".into(), "fatal: db unreachable".into()],
        )],
        ..Default::default()
    };
    app.update(Action::Timeline {
        session,
        result: Ok(Box::new(build(&inputs))),
    });
    assert_eq!(app.view, View::Timeline);
    insta::assert_snapshot!(render(&app).backend());
    // A timeline of an older session is not shown.
    press_code(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Containers);
    app.update(Action::Timeline {
        session: session + 7,
        result: Ok(Box::new(build(&inputs))),
    });
    assert_eq!(app.view, View::Containers);
    press(&mut app, ":");
    for c in "timeline shop/web".chars() {
        press(&mut app, &c.to_string());
    }
    let commands = app.update(Action::Key(crossterm::event::KeyEvent::new(
        KeyCode::Enter,
        crossterm::event::KeyModifiers::NONE,
    )));
    assert_eq!(
        commands,
        vec![Command::LoadTimeline(vec!["shop/web".into()])]
    );
}
