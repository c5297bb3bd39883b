//! Snapshot tests of the swarm views: stacks → services → tasks, the nodes, and what a worker says.

use super::tests::{press, render, shop};
use crate::action::Action;
use crate::fixtures;

pub(super) fn swarm_app(keys: &str) -> crate::app::App {
    let mut app = shop(150, 22);
    press(&mut app, keys);
    let session = app.session;
    app.update(Action::Swarm {
        session,
        result: Ok(fixtures::swarm()),
    });
    app
}

fn text(app: &crate::app::App) -> String {
    format!("{}", render(app).backend())
}

#[test]
fn swarm_services_by_stack_with_tasks() {
    let app = swarm_app("Z");
    let t = text(&app);
    for want in [
        "▾ shop",
        "▾ (no stack)",
        "web",
        "2/3",
        "rollback_completed: update",
        "slot 1 @vps-1",
        "pending",
        "non-zero exit (137)",
        "global",
        "healthy",
    ] {
        assert!(t.contains(want), "{want} missing:\n{t}");
    }
    assert!(
        !t.contains('\u{1b}') && !t.contains('\u{7}'),
        "the hostile stack label is cleaned"
    );
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn swarm_tasks_with_their_stats_on_this_node() {
    let mut app = swarm_app("Z");
    let session = app.session;
    for batch in fixtures::stats_readings(&format!("{:0<64}", "t1"), 0.25) {
        app.update(Action::Engine {
            session,
            event: crate::action::EngineEvent::Stats(batch),
        });
    }
    let t = text(&app);
    assert!(t.contains("25.0% 48.0M"), "{t}");
    assert!(t.contains("— other node"), "{t}");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn swarm_tasks_on_a_node_listed_as_a_server_read_there_or_say_why_not() {
    let mut app = shop(150, 22);
    app.config.servers.insert(
        "vps-2".into(),
        crate::config::ServerConfig {
            target: "deploy@vps-2.example".into(),
            ..Default::default()
        },
    );
    press(&mut app, "Z");
    let session = app.session;
    app.update(Action::Swarm {
        session,
        result: Ok(fixtures::swarm()),
    });
    let slot2 = |t: &str| -> String {
        t.lines()
            .find(|l| l.contains("slot 2 @vps-2"))
            .unwrap_or_else(|| panic!("slot 2's row:\n{t}"))
            .to_string()
    };
    assert!(slot2(&text(&app)).contains("— reaching"), "{}", text(&app));
    for batch in fixtures::stats_readings(&format!("{:0<64}", "t2"), 0.25) {
        app.update(Action::Engine {
            session,
            event: crate::action::EngineEvent::NodeStats {
                server: "vps-2".into(),
                reading: Ok(batch),
            },
        });
    }
    let t = text(&app);
    assert!(slot2(&t).contains("25.0% 48.0M"), "{t}");
    assert!(!t.contains("— other node"), "{t}");
    insta::assert_snapshot!(render(&app).backend());
    // Its health, from the node's own listing.
    assert!(!slot2(&t).contains("healthy"), "{t}");
    app.update(Action::Engine {
        session,
        event: crate::action::EngineEvent::NodeHealth {
            server: "vps-2".into(),
            health: vec![(
                format!("{:0<64}", "t2"),
                crate::engine::model::Health::Healthy,
            )],
        },
    });
    assert!(slot2(&text(&app)).contains("healthy"), "{}", text(&app));

    // The link broke after the connect: readings bring nothing, and the old numbers go stale.
    let later = app.now + chrono::Duration::seconds(45);
    app.update(Action::Tick(later));
    let t = text(&app);
    assert!(slot2(&t).contains("— stale"), "{t}");
    assert!(slot2(&t).contains("vps-2: no numbers for"), "{t}");
    assert!(!slot2(&t).contains("25.0%"), "{t}");

    app.update(Action::Engine {
        session,
        event: crate::action::EngineEvent::NodeStats {
            server: "vps-2".into(),
            reading: Err("ssh: connection refused".into()),
        },
    });
    let t = text(&app);
    assert!(slot2(&t).contains("— unreachable"), "{t}");
    assert!(
        slot2(&t).contains("vps-2: ssh: connection refused"),
        "the reason where the container id was: {t}"
    );
}

/// The line of `name`'s service row (two spaces, then the name).
fn service_line<'a>(t: &'a str, name: &str) -> &'a str {
    t.lines()
        .find(|l| l.starts_with(&format!("\"│  {name} ")))
        .unwrap_or_else(|| panic!("{name}'s row:\n{t}"))
}

#[test]
fn a_service_row_sums_the_cpu_and_memory_of_its_tasks_berth_reads() {
    let mut app = swarm_app("Z");
    let session = app.session;
    let t = text(&app);
    // Nothing read yet: web's one task here is unread, api's too; a service with no running
    // task shows nothing.
    assert!(service_line(&t, "web").contains(" —  "), "{t}");
    assert!(!service_line(&t, "evil_x").contains('—'), "{t}");
    // web: slot 1 here (25 %), slot 2 on vps-2; cron: its one task here (10 %); api: global,
    // one task here (40 %) and one on vps-2. Both web and api leave a task out (`+`).
    for (id, busy) in [("t1", 0.25), ("tc1", 0.10), ("ta1", 0.40)] {
        for batch in fixtures::stats_readings(&format!("{id:0<64}"), busy) {
            app.update(Action::Engine {
                session,
                event: crate::action::EngineEvent::Stats(batch),
            });
        }
    }
    let t = text(&app);
    assert!(service_line(&t, "web").contains(" 25.0% 48.0M+ "), "{t}");
    assert!(service_line(&t, "api").contains(" 40.0% 48.0M+ "), "{t}");
    assert!(service_line(&t, "cron").contains(" 10.0% 48.0M "), "{t}");
    assert!(!service_line(&t, "cron").contains('+'), "{t}");
}

#[test]
fn swarm_nodes() {
    let app = swarm_app("N");
    let t = text(&app);
    assert!(
        t.contains("vps-1") && t.contains("★") && t.contains("drain") && t.contains("down"),
        "{t}"
    );
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn swarm_on_a_worker_names_the_managers() {
    let mut app = shop(150, 12);
    press(&mut app, "Z");
    let t = text(&app);
    assert!(t.contains("reading the swarm"), "{t}");
    let session = app.session;
    app.update(Action::Swarm {
        session,
        result: Err(crate::swarm::worker_message(&["10.0.0.1:2377".into()])),
    });
    let t = text(&app);
    assert!(
        t.contains("swarm worker") && t.contains("10.0.0.1:2377"),
        "{t}"
    );
    insta::assert_snapshot!(render(&app).backend());
}
