//! The console's port forwards: `f` asks which port when there are several, the header shows
//! each forward, `T` lists them and `d` stops one; a removed container's forward stops.

use crossterm::event::KeyCode;

use super::tests::{app_sized, press, press_code, render};
use crate::action::{Action, EngineEvent};
use crate::app::{App, Command, Overlay};
use crate::engine::model::Port;
use crate::fixtures;
use crate::forward::{ConnectionFailed, ForwardEvent};
use crate::keymap::Intent;
use crate::target::Target;

fn tcp(port: u16) -> Port {
    Port {
        host_ip: None,
        host_port: None,
        container_port: port,
        protocol: "tcp".into(),
    }
}

/// The shop, with the db exposing 5432 and 9187 (its metrics).
fn shop_with_db_ports() -> App {
    let mut list = fixtures::shop();
    for c in list.iter_mut().filter(|c| c.name == "shop-db-1") {
        c.ports = vec![tcp(9187), tcp(5432)];
    }
    app_sized(list, Target::local(), 120, 16)
}

fn id_of(app: &App, name: &str) -> String {
    app.containers
        .values()
        .find(|c| c.name == name)
        .map(|c| c.id.clone())
        .unwrap()
}

fn started(commands: &[Command]) -> (u64, u16, Option<u16>) {
    match commands {
        [
            Command::StartForward {
                id, port, local, ..
            },
        ] => (*id, *port, *local),
        other => panic!("expected one StartForward, got {other:?}"),
    }
}

fn listening(app: &mut App, id: u64, local: u16, via: &str) {
    let session = app.session;
    app.update(Action::Forward {
        session,
        id,
        event: ForwardEvent::Listening {
            local: ([127, 0, 0, 1], local).into(),
            via: via.into(),
        },
    });
}

#[test]
fn forward_a_port_see_it_in_the_header_and_stop_it_from_the_panel() {
    let mut app = shop_with_db_ports();
    // Several ports: f asks which one, lowest first.
    let db = id_of(&app, "shop-db-1");
    let _ = app.run_command(Intent::Inspect, Some("shop-db-1"));
    press_code(&mut app, KeyCode::Esc);
    press(&mut app, "f");
    let Overlay::Ports(p) = &app.overlay else {
        panic!("a port picker: {:?}", app.overlay)
    };
    assert_eq!(p.ports, vec![5432, 9187]);
    insta::assert_snapshot!("port_picker", render(&app).backend());
    let commands = app.update(Action::Key(crossterm::event::KeyEvent::new(
        KeyCode::Enter,
        crossterm::event::KeyModifiers::NONE,
    )));
    let (db_fwd, port, local) = started(&commands);
    assert_eq!((port, local), (5432, None));
    assert!(
        matches!(&commands[0], Command::StartForward { container_id, .. } if *container_id == db)
    );
    listening(
        &mut app,
        db_fwd,
        5432,
        "172.18.0.4:5432 (network shop_default)",
    );

    // One port: f forwards it at once; the palette names another local port.
    let (web_fwd, port, local) =
        started(&app.run_command(Intent::Forward, Some("shop-web-1 8080 18080")));
    assert_eq!((port, local), (8080, Some(18080)));
    listening(
        &mut app,
        web_fwd,
        18080,
        "127.0.0.1:8080 (its published port)",
    );
    // A connection that fails is said; the forward stays.
    let session = app.session;
    app.update(Action::Forward {
        session,
        id: web_fwd,
        event: ForwardEvent::Connection(ConnectionFailed {
            peer: ([127, 0, 0, 1], 40000).into(),
            reason: "shop-web-1:8080 could not be reached: connection refused".into(),
        }),
    });
    assert_eq!(app.forwards.entries.len(), 2);
    let t = render(&app);
    let header = format!("{:?}", t.backend());
    assert!(
        header.contains("⇄ 5432→shop-db-1:5432 18080→shop-web-1:8080"),
        "{header}"
    );
    insta::assert_snapshot!("forwards_in_the_header", t.backend());

    press(&mut app, "T");
    assert!(matches!(app.overlay, Overlay::Forwards { selected: 0 }));
    insta::assert_snapshot!("forwards_panel", render(&app).backend());
    assert_eq!(
        app.update(Action::Key(crossterm::event::KeyEvent::new(
            KeyCode::Char('d'),
            crossterm::event::KeyModifiers::NONE,
        ))),
        vec![Command::StopForward(db_fwd)]
    );
    assert_eq!(app.forwards.entries.len(), 1);
    assert_eq!(app.forwards.entries[0].id, web_fwd);

    // The container removed: its forward stops and says why.
    let web = id_of(&app, "shop-web-1");
    let commands = app.update(Action::Engine {
        session,
        event: EngineEvent::Gone(web),
    });
    assert!(
        commands.contains(&Command::StopForward(web_fwd)),
        "{commands:?}"
    );
    assert!(app.forwards.entries.is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("shop-web-1 is gone")
    );
}

#[test]
fn a_forward_that_cannot_start_is_said_and_not_listed() {
    let mut app = shop_with_db_ports();
    let (id, ..) = started(&app.run_command(Intent::Forward, Some("shop-web-1 8080 8080")));
    let session = app.session;
    app.update(Action::Forward {
        session,
        id,
        event: ForwardEvent::Failed(
            "cannot listen on 127.0.0.1:8080: Address in use (os error 98): pick another local port"
                .into(),
        ),
    });
    assert!(app.forwards.entries.is_empty());
    let status = &app.status.as_ref().unwrap().text;
    assert!(
        status.contains("Address in use") && status.contains("pick another"),
        "{status}"
    );
    // A stopped container is refused before anything starts.
    let _ = app.run_command(Intent::Inspect, Some("shop-migrate-1"));
    press_code(&mut app, KeyCode::Esc);
    assert!(app.run_command(Intent::Forward, None).is_empty());
    assert!(app.status.as_ref().unwrap().text.contains("is not running"));
}

/// A forward changes nothing on the server: allowed on a read-only one, where a shell is not.
#[test]
fn a_forward_is_allowed_on_a_read_only_server() {
    let mut target = Target::local();
    target.read_only = true;
    let mut app = app_sized(fixtures::shop(), target, 120, 16);
    assert!(app.run_command(Intent::Shell, None).is_empty());
    let (_, port, _) = started(&app.run_command(Intent::Forward, Some("shop-web-1")));
    assert_eq!(port, 8080);
}
