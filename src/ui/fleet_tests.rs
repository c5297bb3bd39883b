//! Snapshot tests of the fleet view: loading, filled in with trouble first, production in red.

use ratatui::style::Color;

use super::tests::render;
use crate::action::Action;
use crate::app::App;
use crate::fixtures;
use crate::fleet::{ContainerSummary, ServerRow};
use crate::keymap::Keymap;
use crate::theme::Theme;

const CONFIG: &str = r#"
[servers.app-1]
target = "deploy@127.0.0.1:2201"
environment = "production"
[servers.app-2]
target = "deploy@127.0.0.1:2202"
environment = "production"
[servers.worker]
target = "deploy@127.0.0.1:2203"
environment = "staging"
[servers.db]
target = "deploy@127.0.0.1:2204"
[servers.old-box]
target = "deploy@127.0.0.1:2205"
"#;

/// berth started with several servers and none named: the fleet opens, nothing answered yet.
pub(super) fn fleet_app(w: u16, h: u16) -> App {
    let config = crate::config::file::parse(CONFIG, std::path::Path::new("berth.toml")).unwrap();
    let mut app = App::new(config, Theme::default(), Keymap::default(), fixtures::now());
    app.update(Action::Resize(w, h));
    let commands = app.start(None);
    assert_eq!(
        commands,
        vec![crate::app::Command::WatchFleet { round: 1 }],
        "several servers and none named: the fleet, not the picker"
    );
    app
}

pub(super) fn answered(
    server: &str,
    env: Option<&str>,
    running: usize,
    unhealthy: usize,
) -> ServerRow {
    ServerRow {
        server: server.into(),
        environment: env.map(Into::into),
        reachable: Some(true),
        rtt_ms: Some(3),
        engine: Some("27.3.1".into()),
        containers: ContainerSummary {
            running,
            total: running + 1,
            unhealthy,
            restarting: 0,
            exited_recently: 0,
        },
        cpu_percent: Some(12.0),
        mem_percent: Some(41.0),
        disk_percent: Some(63),
        last_change: Some("restart shop/web ok · 2026-12-02 03:10".into()),
        ..Default::default()
    }
}

pub(super) fn unreachable(
    server: &str,
    env: Option<&str>,
    reason: &str,
    detail: &str,
) -> ServerRow {
    ServerRow {
        server: server.into(),
        environment: env.map(Into::into),
        reachable: Some(false),
        error: Some(reason.into()),
        error_detail: Some(detail.into()),
        ..Default::default()
    }
}

#[test]
fn fleet_loading() {
    let app = fleet_app(150, 12);
    let t = render(&app);
    let text = format!("{}", t.backend());
    assert_eq!(text.matches("… connecting").count(), 5, "{text}");
    assert!(text.contains("0 answered, waiting for 5"), "{text}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn fleet_mixed_reachable_and_unreachable_trouble_first() {
    let mut app = fleet_app(150, 12);
    let round = app.fleet.round;
    for row in [
        answered("db", None, 4, 0),
        answered("app-2", Some("production"), 6, 1),
        unreachable(
            "old-box",
            None,
            "host key changed",
            "REMOTE HOST IDENTIFICATION HAS CHANGED for [127.0.0.1]:2205",
        ),
        answered("app-1", Some("production"), 6, 0),
    ] {
        app.update(Action::Fleet { round, row });
    }
    // A row from an older watch is stale news: dropped.
    app.update(Action::Fleet {
        round: round - 1,
        row: unreachable("db", None, "timeout", "old"),
    });
    let t = render(&app);
    let text = format!("{}", t.backend());
    let line_of = |name: &str| {
        text.lines()
            .position(|l| l.contains(&format!("│{name} ")))
            .unwrap_or_else(|| panic!("no row for {name} in\n{text}"))
    };
    // Unreachable, then unhealthy, then production, then the rest; the silent one waits last.
    assert!(line_of("old-box") < line_of("app-2"));
    assert!(line_of("app-2") < line_of("app-1"));
    assert!(line_of("app-1") < line_of("db"));
    assert!(line_of("db") < line_of("worker"));
    assert!(text.contains("4 answered, waiting for 1"), "{text}");
    assert!(text.contains("✖ host key changed"), "{text}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn fleet_production_is_red() {
    let mut app = fleet_app(150, 12);
    let round = app.fleet.round;
    app.update(Action::Fleet {
        round,
        row: answered("app-1", Some("production"), 6, 0),
    });
    let t = render(&app);
    let buffer = t.backend().buffer();
    let (x, y) = (0..buffer.area.height)
        .flat_map(|y| (0..buffer.area.width).map(move |x| (x, y)))
        .find(|&(x, y)| {
            buffer[(x, y)].symbol() == "p"
                && buffer[(x + 1, y)].symbol() == "r"
                && buffer[(x + 2, y)].symbol() == "o"
        })
        .expect("production is on screen");
    let style = Theme::default().environment("production");
    assert_eq!(buffer[(x, y)].bg, style.bg.unwrap_or(Color::Reset));
    assert_ne!(
        buffer[(x, y)].bg,
        Theme::default()
            .environment("staging")
            .bg
            .unwrap_or(Color::Reset)
    );
    insta::assert_snapshot!(t.backend());
}

/// Two server entries that reach one engine (the same engine ID): its unhealthy container is one
/// in the header, and the second entry says whose engine it sees.
#[test]
fn fleet_counts_an_engine_reached_twice_once() {
    let mut app = fleet_app(150, 12);
    let round = app.fleet.round;
    for name in ["app-1", "app-2"] {
        let mut row = answered(name, Some("production"), 6, 1);
        row.engine_id = Some("ABCD:EFGH".into());
        app.update(Action::Fleet { round, row });
    }
    let mut db = answered("db", None, 4, 0);
    db.engine_id = Some("OTHER".into());
    app.update(Action::Fleet { round, row: db });
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("✖ 1 unhealthy"), "{text}");
    assert!(!text.contains("✖ 2 unhealthy"), "{text}");
    assert!(text.contains("3 entries reach 2 engines"), "{text}");
    assert!(text.contains("same engine as app-1"), "{text}");
}

/// A server whose link was lost: its last figures stay, marked `~`, with how long ago it was
/// last read by the fixed clock; each retry's reason replaces the last; its RTT is never the
/// outage's length; the selected row's whole error is on screen, wrapped.
#[test]
fn fleet_a_lost_server_shows_its_age_and_marks_old_figures() {
    let mut app = fleet_app(120, 20);
    let round = app.fleet.round;
    let mut row = answered("old-box", None, 4, 0);
    row.read_at = Some(fixtures::now() - chrono::Duration::seconds(70));
    app.update(Action::Fleet { round, row });
    let detail = "cannot connect to 127.0.0.1:2205: Connection refused (os error 111); is sshd running there? Check with `ssh -p 2205 deploy@127.0.0.1` and start it with `systemctl start ssh`";
    app.update(Action::Fleet {
        round,
        row: unreachable("old-box", None, "refused", detail),
    });
    let r = app
        .fleet
        .rows
        .iter()
        .find(|r| r.server == "old-box")
        .unwrap();
    assert!(r.stale(), "{r:?}");
    assert_eq!(r.stale_for(fixtures::now()).as_deref(), Some("1m"));
    // The lost server comes first (trouble first); Home selects it.
    super::tests::press(&mut app, "g");
    assert_eq!(app.fleet.selected_row().unwrap().server, "old-box");
    let t = render(&app);
    let text = format!("{}", t.backend());
    assert!(text.contains("✖ refused · 1m"), "{text}");
    assert!(text.contains("old-box · last read 1m ago"), "{text}");
    assert!(text.contains("~3ms") && text.contains("~27.3.1"), "{text}");
    assert!(text.contains("~12%"), "stale CPU marked: {text}");
    // The end of the error, past what the column holds, is in the wrapped line below.
    assert!(text.contains("systemctl start ssh"), "{text}");
    insta::assert_snapshot!(t.backend());

    // The next retry fails another way: the reason follows it, the age stays the last read's.
    app.update(Action::Fleet {
        round,
        row: unreachable(
            "old-box",
            None,
            "timeout",
            "no answer within the connect timeout (10 s)",
        ),
    });
    let text = format!("{}", render(&app).backend());
    assert!(
        text.contains("✖ timeout · 1m") && !text.contains("✖ refused"),
        "{text}"
    );
    assert!(text.contains("connect timeout (10 s)"), "{text}");
}

/// `/` asks for the text in the palette; the answer lists where each match runs, a service on
/// several servers as one line with its replicas under it, unreachable servers named as not searched.
#[test]
fn fleet_find_across_servers() {
    use crate::engine::model::{Health, State};
    let mut app = fleet_app(110, 16);
    let round = app.fleet.round;
    let web = |name: &str, health: Health| {
        let mut c = fixtures::container(name);
        c.project = Some("shop".into());
        c.service = Some("web".into());
        c.image = "shop-web:1.4".into();
        c.state = State::Running;
        c.health = health;
        c
    };
    let mut row = answered("app-1", Some("production"), 2, 0);
    row.listing = std::sync::Arc::new(vec![
        web("shop-web-1", Health::Healthy),
        web("shop-web-2", Health::Healthy),
    ]);
    app.update(Action::Fleet { round, row });
    let mut row = answered("app-2", Some("production"), 2, 1);
    row.listing = std::sync::Arc::new(vec![
        web("shop-web-1", Health::Healthy),
        web("shop-web-2", Health::Unhealthy),
        fixtures::container("postgres"),
    ]);
    app.update(Action::Fleet { round, row });
    app.update(Action::Fleet {
        round,
        row: unreachable("old-box", None, "timeout", "no answer"),
    });
    super::tests::press(&mut app, "/web");
    app.update(Action::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Enter,
        crossterm::event::KeyModifiers::NONE,
    )));
    assert_eq!(
        app.fleet.query.as_deref(),
        Some("web"),
        "{:?} {:?}",
        app.status,
        app.view
    );
    let t = render(&app);
    let text = format!("{}", t.backend());
    assert!(
        text.contains("shop/web on app-1, app-2 · 3/4 healthy"),
        "{text}"
    );
    assert!(text.contains("not searched: old-box"), "{text}");
    assert!(!text.contains("postgres"), "{text}");
    insta::assert_snapshot!(t.backend());
    // Esc clears the search, back to the servers.
    app.update(Action::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Esc,
        crossterm::event::KeyModifiers::NONE,
    )));
    assert_eq!(app.fleet.query, None);
    assert_eq!(app.view, crate::app::View::Fleet);
}

/// A run across a group, with no console open: the line above the steps marks app-1 done and
/// app-2 running; once it stopped there, app-2 failed and worker was not started.
#[test]
fn group_run_view() {
    use crate::app::View;
    use crate::app::group_run::GroupRun;
    use crate::fleet::group::Outcome;
    use std::sync::Arc;
    let mut app = fleet_app(110, 16);
    let plans: Vec<Arc<crate::runbook::Plan>> = ["app-1", "app-2", "worker"]
        .iter()
        .map(|server| {
            let mut plan = fixtures::plan("restart shop/web", "shop/web", 2);
            plan.target = server.to_string();
            Arc::new(plan)
        })
        .collect();
    app.start_run(plans[1].clone());
    app.group_run = Some(GroupRun {
        group: "app".into(),
        servers: vec!["app-1".into(), "app-2".into(), "worker".into()],
        plans,
        current: 1,
        outcome: None,
    });
    app.view = View::Runbook;
    insta::assert_snapshot!("group_run_in_progress", render(&app).backend());
    if let Some(g) = &mut app.group_run {
        g.outcome = Some(Outcome {
            done: vec!["app-1".into()],
            failed: Some(("app-2".into(), "web did not become healthy".into())),
            not_started: vec!["worker".into()],
        });
    }
    insta::assert_snapshot!("group_run_stopped", render(&app).backend());
}

/// A config with 200 servers: the fleet opens with 200 pending rows, fills in as they answer
/// (unreachable ones first), the header counts them, and the window of rows follows the
/// selection down to the last server and back.
#[test]
fn two_hundred_servers_fill_in_and_the_rows_follow_the_selection() {
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "[servers.s{i:03}]\ntarget = \"deploy@127.0.0.1:{}\"\n",
            2200 + i
        ));
    }
    let config = crate::config::file::parse(&text, std::path::Path::new("berth.toml")).unwrap();
    let mut app = App::new(config, Theme::default(), Keymap::default(), fixtures::now());
    app.update(Action::Resize(150, 30));
    assert_eq!(
        app.start(None),
        vec![crate::app::Command::WatchFleet { round: 1 }]
    );
    assert_eq!(app.fleet.rows.len(), 200);
    assert!(format!("{}", render(&app).backend()).contains("fleet · 200 servers"));
    for i in 0..200 {
        let name = format!("s{i:03}");
        let row = if i % 20 == 0 {
            answered(&name, None, 3, 0)
        } else {
            unreachable(&name, None, "refused", "connection refused")
        };
        app.update(Action::Fleet { round: 1, row });
    }
    assert_eq!(app.fleet.answered(), 200);
    let screen = format!("{}", render(&app).backend());
    assert!(screen.contains("✖ 190 unreachable"), "{screen}");
    assert!(
        app.fleet.rows[..190]
            .iter()
            .all(|r| r.reachable == Some(false)),
        "unreachable first"
    );
    // End reaches the last server, which the window then shows; Home the first again.
    super::tests::press(&mut app, "G");
    assert_eq!(app.fleet.selected_row().unwrap().server, "s180");
    let screen = format!("{}", render(&app).backend());
    assert!(screen.contains("s180"), "{screen}");
    assert!(!screen.contains("s001 "), "{screen}");
    super::tests::press(&mut app, "g");
    let screen = format!("{}", render(&app).backend());
    assert!(screen.contains("s001 "), "{screen}");
}
