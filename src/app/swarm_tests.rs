use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::action::{Action, EngineEvent};
use crate::app::Overlay;
use crate::engine::EngineVersion;
use crate::fixtures;
use crate::target::Target;

fn connected() -> App {
    connected_with(crate::config::Config::default())
}

fn connected_with(config: crate::config::Config) -> App {
    let mut app = App::new(
        config,
        crate::theme::Theme::default(),
        crate::keymap::Keymap::default(),
        fixtures::now(),
    );
    let _ = app.connect(Target::local());
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Connected {
            transport: "unix socket".into(),
            version: EngineVersion::default(),
        },
    });
    app
}

/// A key's commands, less the stats set that follows the view (tested on its own below).
fn key(app: &mut App, c: char) -> Vec<Command> {
    without_stats(app.update(Action::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    ))))
}

fn without_stats(mut commands: Vec<Command>) -> Vec<Command> {
    commands.retain(|c| !matches!(c, Command::WatchStats(_) | Command::WatchNodeStats(_)));
    commands
}

fn loaded(app: &mut App) {
    let session = app.session;
    app.update(Action::Swarm {
        session,
        result: Ok(fixtures::swarm()),
    });
}

#[test]
fn z_opens_the_swarm_reads_it_once_and_again_after_a_while() {
    let mut app = connected();
    let commands = key(&mut app, 'Z');
    assert_eq!(app.view, View::Swarm);
    assert_eq!(commands, vec![Command::LoadSwarm]);
    assert!(
        key(&mut app, 'j').is_empty(),
        "no second read while one is under way"
    );
    loaded(&mut app);
    assert!(!app.swarm.loading);
    // Stack shop first (services by name), the lone service, the hostile stack's heading.
    assert_eq!(
        app.swarm.rows[0],
        SwarmRow::Stack(Some("ev\u{1b}[2J\u{1b}]0;owned\u{7}il".into()))
    );
    assert!(app.swarm.rows.contains(&SwarmRow::Stack(None)));
    assert_eq!(
        app.update(Action::Tick(fixtures::now() + chrono::Duration::seconds(1))),
        vec![]
    );
    assert_eq!(
        app.update(Action::Tick(fixtures::now() + chrono::Duration::seconds(4))),
        vec![Command::LoadSwarm]
    );
    // News of an older session is dropped.
    app.update(Action::Swarm {
        session: app.session - 1,
        result: Err("old".into()),
    });
    assert!(app.swarm.error.is_none());
    key(&mut app, 'Z');
    assert_eq!(app.view, View::Containers, "Z again goes back");
}

#[test]
fn the_runbook_keys_act_on_the_selected_service_and_node() {
    let mut app = connected();
    key(&mut app, 'Z');
    loaded(&mut app);
    // On a stack's heading, restart and rollback plan the whole stack; scale needs a service.
    let heading = |app: &App, stack: Option<&str>| {
        app.swarm
            .rows
            .iter()
            .position(|r| *r == SwarmRow::Stack(stack.map(String::from)))
            .unwrap()
    };
    app.swarm.selected = heading(&app, Some("shop"));
    let stack = |action| {
        vec![Command::PlanRunbook(Request::Swarm(SwarmRequest {
            action,
            name: "shop".into(),
        }))]
    };
    assert_eq!(key(&mut app, 'R'), stack(SwarmAction::Restart));
    assert_eq!(key(&mut app, 'B'), stack(SwarmAction::Rollback));
    assert!(key(&mut app, '+').is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("select a service")
    );
    // The heading of the services outside any stack names nothing to act on.
    app.swarm.selected = heading(&app, None);
    assert!(key(&mut app, 'R').is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("select a service")
    );
    // A task row acts on its service.
    let task_row = app
        .swarm
        .rows
        .iter()
        .position(|r| matches!(r, SwarmRow::Task { task, .. } if task == "t2"))
        .unwrap();
    app.swarm.selected = task_row;
    let want = |action| {
        vec![Command::PlanRunbook(Request::Swarm(SwarmRequest {
            action,
            name: "shop_web".into(),
        }))]
    };
    assert_eq!(key(&mut app, 'R'), want(SwarmAction::Restart));
    assert_eq!(key(&mut app, 'B'), want(SwarmAction::Rollback));
    // Scale asks for the replicas in the palette, then plans.
    assert!(key(&mut app, '+').is_empty());
    assert!(matches!(&app.overlay, Overlay::Palette(p) if p.input.lines()[0] == "scale shop_web="));
    app.overlay = Overlay::None;
    assert_eq!(
        app.run_palette("scale shop_web=5"),
        want(SwarmAction::Scale(5))
    );
    assert!(app.run_palette("scale shop_web").is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("SERVICE=REPLICAS")
    );
    assert_eq!(
        app.run_palette("service-rollback shop_web v1"),
        want(SwarmAction::Image("v1".into()))
    );
    // Drain is a nodes-view key.
    assert!(key(&mut app, 'D').is_empty());
    key(&mut app, 'N');
    assert_eq!(app.view, View::Nodes);
    key(&mut app, 'j');
    assert_eq!(
        key(&mut app, 'U'),
        vec![Command::PlanRunbook(Request::Swarm(SwarmRequest {
            action: SwarmAction::Activate,
            name: "vps-2".into(),
        }))]
    );
}

#[test]
fn a_worker_or_plain_engine_says_why_and_read_only_refuses() {
    let mut app = connected();
    key(&mut app, 'N');
    let session = app.session;
    app.update(Action::Swarm {
        session,
        result: Err(crate::swarm::worker_message(&["10.0.0.1:2377".into()])),
    });
    assert!(app.swarm.error.as_ref().unwrap().contains("10.0.0.1:2377"));
    let mut app = connected();
    if let Some(t) = &mut app.target {
        t.read_only = true;
    }
    key(&mut app, 'Z');
    loaded(&mut app);
    app.swarm.selected = 1;
    assert!(key(&mut app, 'R').is_empty());
    assert!(app.status.as_ref().unwrap().text.contains("read-only"));
}

#[test]
fn l_opens_the_logs_of_the_selected_service_or_stack_and_esc_comes_back() {
    let mut app = connected();
    key(&mut app, 'Z');
    loaded(&mut app);
    // The hostile stack's service never started a container: it says so and opens nothing.
    let idle_row = app
        .swarm
        .rows
        .iter()
        .position(|r| matches!(r, SwarmRow::Service(_)))
        .unwrap();
    app.swarm.selected = idle_row;
    assert!(key(&mut app, 'L').is_empty());
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.text.contains("nothing has logged")),
        "{:?}",
        app.status
    );
    let snapshot = app.swarm.snapshot.clone().unwrap();
    let service_row = app
        .swarm
        .rows
        .iter()
        .position(|r| match r {
            SwarmRow::Service(id) => snapshot
                .tasks_of(id)
                .iter()
                .any(|t| t.container_id.is_some()),
            _ => false,
        })
        .unwrap();
    app.swarm.selected = service_row;
    let service = app.swarm.selected_service().unwrap().clone();
    let commands = key(&mut app, 'L');
    let [Command::OpenLogs { ids, .. }] = &commands[..] else {
        panic!("{commands:?} {:?}", app.status)
    };
    assert!(!ids.is_empty());
    assert!(
        ids.iter()
            .all(|id| id.starts_with(crate::logs::stream::TASK_SOURCE)),
        "task logs through the manager: {ids:?}"
    );
    assert_eq!(app.view, View::Logs);
    assert_eq!(app.logs.as_ref().unwrap().title, service.name);
    assert_eq!(
        without_stats(app.update(Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)))),
        vec![Command::CloseLogs]
    );
    assert_eq!(app.view, View::Swarm, "Esc returns to the swarm view");

    // A stack's heading: every service of the stack.
    let stack_row = (0..service_row)
        .rev()
        .find(|i| matches!(app.swarm.rows[*i], SwarmRow::Stack(Some(_))))
        .expect("the service's stack heading");
    app.swarm.selected = stack_row;
    let commands = key(&mut app, 'L');
    let [Command::OpenLogs { ids: stack_ids, .. }] = &commands[..] else {
        panic!("{commands:?}")
    };
    assert!(stack_ids.len() >= ids.len(), "the stack holds the service");
    assert!(app.logs.as_ref().unwrap().title.starts_with("stack "));

    // The nodes view has no service to read.
    app.update(Action::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    key(&mut app, 'N');
    assert!(key(&mut app, 'L').is_empty());
    assert_eq!(app.view, View::Nodes);
}

fn task_stats(app: &mut App, container: &str, busy: f64) {
    let session = app.session;
    for batch in fixtures::stats_readings(container, busy) {
        app.update(Action::Engine {
            session,
            event: EngineEvent::Stats(batch),
        });
    }
}

#[test]
fn the_swarm_view_reads_stats_of_the_running_tasks_on_this_node_only() {
    let mut app = connected();
    key(&mut app, 'Z');
    let session = app.session;
    let commands = app.update(Action::Swarm {
        session,
        result: Ok(fixtures::swarm()),
    });
    let Some(Command::WatchStats(ids)) = commands.last().cloned() else {
        panic!("the swarm's news asks for the local tasks' stats: {commands:?}");
    };
    let container = |task: &str| format!("{task:0<64}");
    for local in ["t1", "ta1", "tc1"] {
        assert!(ids.contains(&container(local)), "{local} is read: {ids:?}");
    }
    // On the other node, not running, or not started: not read.
    for other in ["t2", "ta2", "t3old", "t3new"] {
        assert!(!ids.contains(&container(other)), "{other} is not read");
    }
    // The numbers stay though no container of the list has that id.
    task_stats(&mut app, &container("t1"), 0.5);
    let point = app
        .stats
        .latest(&container("t1"))
        .expect("t1's numbers kept");
    assert_eq!(point.cpu.map(|c| c.round()), Some(50.0));
    // Back to the list: the tasks are no longer read.
    let commands = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('Z'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.view, View::Containers);
    match commands.last() {
        Some(Command::WatchStats(ids)) => assert!(!ids.contains(&container("t1"))),
        other => panic!("the list's set again: {other:?}"),
    }
}

/// The swarm view on a console whose config has one server, `name` at `target`, once the
/// swarm is read; the commands that read asked for.
fn swarm_with_server(name: &str, target: &str) -> (App, Vec<Command>) {
    let mut config = crate::config::Config::default();
    config.servers.insert(
        name.into(),
        crate::config::ServerConfig {
            target: target.into(),
            ..Default::default()
        },
    );
    let mut app = connected_with(config);
    key(&mut app, 'Z');
    let session = app.session;
    let commands = app.update(Action::Swarm {
        session,
        result: Ok(fixtures::swarm()),
    });
    (app, commands)
}

#[test]
fn tasks_on_a_node_the_config_lists_as_a_server_are_read_there_and_say_why_when_they_cannot_be() {
    let (mut app, commands) = swarm_with_server("vps-2", "deploy@vps-2.example");
    let session = app.session;
    let container = |task: &str| format!("{task:0<64}");
    let Some(Command::WatchNodeStats(wanted)) = commands
        .iter()
        .find(|c| matches!(c, Command::WatchNodeStats(_)))
        .cloned()
    else {
        panic!("the tasks on vps-2 are read there: {commands:?}");
    };
    assert_eq!(
        wanted.keys().collect::<Vec<_>>(),
        vec!["vps-2"],
        "{wanted:?}"
    );
    let on_vps2 = &wanted["vps-2"];
    assert!(on_vps2.contains(&container("t2")), "{on_vps2:?}");
    for not_there in ["t1", "t3old", "t3new"] {
        assert!(!on_vps2.contains(&container(not_there)), "{not_there}");
    }
    assert_eq!(
        app.node_reading(&container("t2"))
            .map(|(s, n)| (s, n.reach.clone())),
        Some(("vps-2", crate::app::NodeReach::Connecting))
    );
    // Nothing changed: not asked again.
    assert!(
        !app.update(Action::Tick(fixtures::now()))
            .iter()
            .any(|c| matches!(c, Command::WatchNodeStats(_)))
    );

    for batch in fixtures::stats_readings(&container("t2"), 0.5) {
        app.update(Action::Engine {
            session,
            event: EngineEvent::NodeStats {
                server: "vps-2".into(),
                reading: Ok(batch),
            },
        });
    }
    let (_, node) = app.node_reading(&container("t2")).unwrap();
    assert_eq!(node.reach, crate::app::NodeReach::Reading);
    assert_eq!(
        node.store
            .latest(&container("t2"))
            .and_then(|p| p.cpu)
            .map(|c| c.round()),
        Some(50.0)
    );
    assert!(
        app.stats.latest(&container("t2")).is_none(),
        "kept apart from the connected engine's numbers"
    );

    app.update(Action::Engine {
        session,
        event: EngineEvent::NodeStats {
            server: "vps-2".into(),
            reading: Err("connection refused".into()),
        },
    });
    assert_eq!(
        app.node_reading(&container("t2")).unwrap().1.reach,
        crate::app::NodeReach::Failed("connection refused".into())
    );

    // Back to the list: the node is no longer read, and its numbers go.
    let commands = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('Z'),
        KeyModifiers::NONE,
    )));
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::WatchNodeStats(w) if w.is_empty())),
        "{commands:?}"
    );
    assert!(app.node_reading(&container("t2")).is_none());
    assert!(app.monitor.nodes.is_empty());
}

#[test]
fn the_connected_server_and_unlisted_nodes_are_not_read_as_other_nodes() {
    // vps-1 is the node berth is connected to; a server at its name is the same engine.
    let (_, commands) = swarm_with_server("vps-1", "root@vps-1");
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::WatchNodeStats(_))),
        "{commands:?}"
    );
}
