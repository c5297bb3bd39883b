//! `update` does no IO: what needs a file (the server list, resolving a server name, a theme file)
//! leaves as a `Command` and comes back as an `Action`.

use super::tests::app_with;
use super::*;
use crate::fixtures;
use crate::target::KnownServer;

fn server(name: &str) -> KnownServer {
    KnownServer {
        name: name.into(),
        detail: "ssh config".into(),
        environment: None,
    }
}

#[test]
fn the_picker_opens_on_what_is_known_and_asks_for_the_rest() {
    let mut app = app_with(fixtures::shop());
    let cmds = app.update(Action::Key(KeyEvent::from(KeyCode::Char('S'))));
    assert_eq!(cmds, vec![Command::LoadServers]);
    let Overlay::Picker(p) = &app.overlay else {
        panic!("the picker opens at once");
    };
    assert_eq!(p.entries[0].name, "local");
    // The list arrives; the picker shows it and keeps the selection on the same name.
    let mut list = app.servers.clone();
    list.push(server("db-primary"));
    app.update(Action::Servers(list));
    let Overlay::Picker(p) = &app.overlay else {
        panic!("still open");
    };
    assert_eq!(p.entries.len(), 2);
    assert_eq!(p.entries[p.selected].name, "local");
    // `:server` completion offers what was read.
    assert_eq!(
        app.palette_candidates("server db"),
        vec!["server db-primary".to_string()]
    );
}

#[test]
fn a_server_name_is_resolved_by_the_runner_then_connected() {
    let mut app = app_with(fixtures::shop());
    assert_eq!(
        app.run_palette("server db-primary"),
        vec![Command::ResolveServer("db-primary".into())]
    );
    let mut t = Target::local();
    t.name = "db-primary".into();
    let cmds = app.update(Action::ServerResolved(Ok(t.clone())));
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Connect(t) if t.name == "db-primary")),
        "{cmds:?}"
    );
    assert!(
        app.update(Action::ServerResolved(Err("unknown server 'x'".into())))
            .is_empty()
    );
    assert_eq!(app.status.as_ref().unwrap().level, Level::Error);
}

#[test]
fn a_theme_file_is_read_by_the_runner() {
    let mut app = app_with(fixtures::shop());
    assert_eq!(
        app.run_palette("theme ./mine.toml"),
        vec![Command::LoadTheme("./mine.toml".into())]
    );
    assert_eq!(
        app.theme.name, "dark",
        "nothing changes before the file is read"
    );
    app.update(Action::ThemeLoaded {
        name: "./mine.toml".into(),
        result: Ok(Theme::builtin("light").unwrap()),
    });
    assert_eq!(app.theme.name, "light");
    // A built-in theme needs no file.
    assert!(app.run_palette("theme high-contrast").is_empty());
    assert_eq!(app.theme.name, "high-contrast");
}

#[test]
fn without_a_target_the_console_starts_on_the_picker() {
    let mut app = App::new(
        crate::config::Config::default(),
        Theme::default(),
        Keymap::default(),
        fixtures::now(),
    );
    assert_eq!(app.start(None), vec![Command::LoadServers]);
    assert!(matches!(app.overlay, Overlay::Picker(_)));
}
