//! `update` fed with keys, clicks and engine news: the list, the palette, confirmations and runbook keys.

use super::*;
use crate::action::{EngineEvent, RunbookMsg, SharedPlan};
use crate::fixtures;
use crossterm::event::{KeyEventState, MouseButton, MouseEvent, MouseEventKind};

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}
fn code(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

pub fn app_with(list: Vec<Container>) -> App {
    let mut app = App::new(
        Config::default(),
        Theme::default(),
        Keymap::default(),
        fixtures::now(),
    );
    app.update(Action::Resize(120, 30));
    let _ = app.connect(Target::local());
    app.update(Action::Engine {
        session: app.session,
        event: EngineEvent::Connected {
            transport: "unix socket".into(),
            version: EngineVersion::default(),
        },
    });
    app.update(Action::Engine {
        session: app.session,
        event: EngineEvent::Snapshot(list),
    });
    app
}

fn names(app: &App) -> Vec<String> {
    app.list
        .rows
        .iter()
        .map(|r| match r {
            Row::Group { key, .. } => format!("[{key}]"),
            Row::Container { id } => app.containers[id].name.clone(),
        })
        .collect()
}

#[test]
fn groups_by_project_with_standalone_last() {
    let app = app_with(fixtures::shop());
    assert_eq!(
        names(&app),
        vec![
            "[shop]",
            "shop-db-1",
            "shop-migrate-1",
            "shop-web-1",
            "shop-web-2",
            "shop-worker-1",
            "[standalone]",
            "nightly-backup",
            "reporting"
        ]
    );
    // The selection lands on a container, not on the first header.
    assert_eq!(app.selected_container().unwrap().name, "shop-db-1");
}

#[test]
fn toggle_all_hides_stopped() {
    let mut app = app_with(fixtures::shop());
    app.update(key('a'));
    assert!(!names(&app).contains(&"shop-migrate-1".to_string()));
    assert!(!names(&app).contains(&"[standalone]".to_string()));
    app.update(key('a'));
    assert!(names(&app).contains(&"reporting".to_string()));
}

#[test]
fn sort_by_state_puts_trouble_first() {
    let mut app = app_with(fixtures::shop());
    app.update(key('s'));
    assert_eq!(app.list.sort, SortKey::State);
    let n = names(&app);
    assert_eq!(&n[1..3], &["shop-web-2", "shop-migrate-1"]);
    app.update(key('s'));
    assert_eq!(app.list.sort, SortKey::Uptime);
    // Most recently started first: web-2 started 2 minutes ago.
    assert_eq!(names(&app)[1], "shop-web-2");
}

#[test]
fn filter_substring_and_regex() {
    let mut app = app_with(fixtures::shop());
    app.update(key('/'));
    for c in "postgres".chars() {
        app.update(key(c));
    }
    assert_eq!(names(&app), vec!["[shop]", "shop-db-1"]);
    app.update(code(KeyCode::Enter));
    assert!(matches!(app.overlay, Overlay::None));
    assert!(app.list.filter.is_some());
    app.update(code(KeyCode::Esc));
    assert!(
        app.list.filter.is_none(),
        "Esc in the list clears the filter"
    );
    app.update(key('/'));
    for c in "~^shop-web-[0-9]$".chars() {
        app.update(key(c));
    }
    assert_eq!(names(&app), vec!["[shop]", "shop-web-1", "shop-web-2"]);
    // A half-typed regex keeps the last good filter and warns.
    app.update(key('('));
    assert_eq!(names(&app), vec!["[shop]", "shop-web-1", "shop-web-2"]);
    assert!(app.status.as_ref().unwrap().text.starts_with("bad regex"));
    app.update(code(KeyCode::Esc));
    assert!(app.list.filter.is_none());
    assert!(matches!(app.overlay, Overlay::None));
}

#[test]
fn filter_finds_a_container_by_the_start_of_its_id() {
    let containers = fixtures::shop();
    let db = containers.iter().find(|c| c.name == "shop-db-1").unwrap();
    let prefix = db.id[..12].to_string();
    let mut app = app_with(containers.clone());
    app.update(key('/'));
    for c in prefix.chars() {
        app.update(key(c));
    }
    assert_eq!(names(&app), vec!["[shop]", "shop-db-1"]);
    app.update(code(KeyCode::Esc));
    // Fewer than 6 digits, or not the start of the ID: not an ID.
    for text in [&db.id[..5], &db.id[1..13]] {
        let filter = crate::grouping::Filter::parse(text).unwrap().unwrap();
        assert!(
            containers
                .iter()
                .all(|c| !filter.matches(c) || c.name.contains(text)),
            "{text}"
        );
    }
}

#[test]
fn collapse_and_expand_project() {
    let mut app = app_with(fixtures::shop());
    app.update(code(KeyCode::Char(' ')));
    assert_eq!(
        names(&app),
        vec!["[shop]", "[standalone]", "nightly-backup", "reporting"]
    );
    assert_eq!(app.list.selected, 0);
    app.update(code(KeyCode::Enter));
    assert_eq!(names(&app).len(), 9, "Enter on a folded group unfolds it");
}

#[test]
fn navigation_is_bounded() {
    let mut app = app_with(fixtures::shop());
    for _ in 0..50 {
        app.update(key('j'));
    }
    assert_eq!(app.list.selected, app.list.rows.len() - 1);
    app.update(key('g'));
    assert_eq!(app.list.selected, 0);
    app.update(code(KeyCode::End));
    assert_eq!(app.selected_container().unwrap().name, "reporting");
    app.update(code(KeyCode::PageUp));
    assert_eq!(app.list.selected, 0);
}

#[test]
fn selection_follows_container_across_updates() {
    let mut app = app_with(fixtures::shop());
    app.update(key('j'));
    app.update(key('j'));
    let chosen = app.selected_container().unwrap().id.clone();
    let mut newcomer = fixtures::replica("shop", "api", 1);
    newcomer.name = "shop-api-1".into();
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Changed(Box::new(newcomer)),
    });
    assert_eq!(app.selected_container().unwrap().id, chosen);
    assert!(names(&app).contains(&"shop-api-1".to_string()));
    app.update(Action::Engine {
        session,
        event: EngineEvent::Gone(chosen.clone()),
    });
    assert!(app.selected_container().is_some_and(|c| c.id != chosen));
}

#[test]
fn stale_news_from_an_old_session_is_ignored() {
    let mut app = app_with(fixtures::shop());
    let old = app.session;
    let _ = app.connect(Target::local());
    app.update(Action::Engine {
        session: old,
        event: EngineEvent::Snapshot(fixtures::shop()),
    });
    assert!(app.containers.is_empty());
}

#[test]
fn details_and_reveal_are_per_container() {
    let mut app = app_with(fixtures::shop());
    assert_eq!(app.selected_container().unwrap().name, "shop-db-1");
    app.update(code(KeyCode::Enter));
    assert!(app.list.details_open);
    app.update(code(KeyCode::Enter));
    assert_eq!(app.list.focus, Focus::Details);
    app.update(key('x'));
    let db = app.selected_container().unwrap().id.clone();
    assert_eq!(app.list.revealed.as_deref(), Some(db.as_str()));
    app.update(code(KeyCode::Esc));
    assert!(!app.list.details_open);
    app.update(key('j'));
    assert_ne!(app.selected_container().unwrap().id, db);
    // `x` on a container with nothing masked reveals nothing (the footer says so): no container
    // other than the chosen one is ever revealed.
    app.update(key('x'));
    assert_eq!(app.list.revealed.as_deref(), Some(db.as_str()));
}

#[test]
fn palette_completes_and_runs() {
    let mut app = app_with(fixtures::shop());
    app.update(key(':'));
    app.update(key('t'));
    app.update(key('h'));
    let Overlay::Palette(p) = &app.overlay else {
        panic!("palette open")
    };
    // A command that takes an argument completes with its space.
    assert_eq!(p.candidates, vec!["theme "]);
    app.update(code(KeyCode::Tab));
    app.update(key(' '));
    app.update(key('l'));
    let Overlay::Palette(p) = &app.overlay else {
        panic!("palette open")
    };
    assert_eq!(p.candidates, vec!["theme light"]);
    app.update(code(KeyCode::Tab));
    app.update(code(KeyCode::Enter));
    assert_eq!(app.theme.name, "light");
    assert_eq!(app.run_palette("theme nope"), vec![]);
    assert_eq!(app.status.as_ref().unwrap().level, Level::Error);
    app.run_palette("inspect shop-web-2");
    assert_eq!(app.selected_container().unwrap().name, "shop-web-2");
    assert!(app.list.details_open);
    app.run_palette("frobnicate");
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("unknown command ':frobnicate'")
    );
    app.run_palette("q");
    assert!(app.should_quit);
}

#[test]
fn logs_by_name_resolves_container_service_project() {
    let mut app = app_with(fixtures::shop());
    let cmds = app.run_palette("logs shop-db-1");
    assert!(matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 1));
    let cmds = app.run_palette("logs web");
    assert!(matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 2));
    let cmds = app.run_palette("logs shop");
    assert!(matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 5));
    assert!(app.run_palette("logs nothing").is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("no container, service or project named 'nothing'")
    );
}

#[test]
fn mouse_click_selects_and_wheel_scrolls() {
    let mut app = app_with(fixtures::shop());
    let body = app.areas().list_body;
    let click = |row: u16| {
        Action::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: body.x + 3,
            row: body.y + row,
            modifiers: KeyModifiers::NONE,
        })
    };
    app.update(click(3));
    assert_eq!(app.list.selected, 3);
    app.update(click(200));
    assert_eq!(
        app.list.selected, 3,
        "a click below the rows changes nothing"
    );
    app.update(Action::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: body.x,
        row: body.y,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.list.selected, 6);
}

#[test]
fn help_opens_and_any_key_closes() {
    let mut app = app_with(fixtures::shop());
    app.update(key('?'));
    assert!(matches!(app.overlay, Overlay::Help { .. }));
    app.update(key('j'));
    assert!(matches!(app.overlay, Overlay::Help { scroll: 1 }));
    app.update(key('z'));
    assert!(matches!(app.overlay, Overlay::None));
    // Key releases (kitty protocol) are ignored.
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    release.state = KeyEventState::NONE;
    app.update(Action::Key(release));
    assert!(!app.should_quit);
    app.update(key('q'));
    assert!(app.should_quit);
}

#[test]
fn connection_goes_stale_and_heals() {
    let mut app = app_with(fixtures::shop());
    let s = app.session;
    app.update(Action::Engine {
        session: s,
        event: EngineEvent::Stale("events stream ended".into()),
    });
    assert!(matches!(app.connection, Connection::Stale { .. }));
    assert_eq!(app.containers.len(), 7, "the last state stays on screen");
    app.update(Action::Engine {
        session: s,
        event: EngineEvent::Live,
    });
    assert!(matches!(app.connection, Connection::Connected { .. }));
}

#[test]
fn typed_confirmation_needs_the_exact_name() {
    let mut app = app_with(fixtures::shop());
    app.ask(
        "Restart web",
        vec!["restart 2 containers".into()],
        Some("web".into()),
        vec![Command::Resync],
    );
    for c in "we".chars() {
        assert!(app.update(key(c)).is_empty());
    }
    assert!(
        app.update(code(KeyCode::Enter)).is_empty(),
        "a prefix does not confirm"
    );
    assert!(matches!(app.overlay, Overlay::Confirm(_)));
    assert!(app.update(key('b')).is_empty());
    assert_eq!(app.update(code(KeyCode::Enter)), vec![Command::Resync]);
    assert!(matches!(app.overlay, Overlay::None));

    app.ask("Stop web", vec![], None, vec![Command::Resync]);
    assert!(app.update(key('x')).is_empty(), "other keys do nothing");
    assert!(app.update(code(KeyCode::Esc)).is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("nothing was changed")
    );
    app.ask("Stop web", vec![], None, vec![Command::Resync]);
    assert_eq!(app.update(key('y')), vec![Command::Resync]);
}

fn plan(title: &str, subject: &str, steps: usize) -> SharedPlan {
    SharedPlan(std::sync::Arc::new(fixtures::plan(title, subject, steps)))
}

#[test]
fn runbook_keys_plan_confirm_then_run() {
    let mut app = app_with(fixtures::shop());
    app.run_palette("inspect shop-web-2");
    app.update(code(KeyCode::Esc));
    let cmds = app.update(key('R'));
    assert!(
        matches!(&cmds[..], [Command::PlanRunbook(Request::Action { kind: ActionKind::Restart, name, .. })] if name == "shop-web-2"),
        "{cmds:?}"
    );
    // The plan comes back: a yes/no question on a non-production server.
    let p = plan("restart shop-web-2", "shop-web-2", 2);
    assert!(
        app.update(Action::Runbook(RunbookMsg::Planned(Ok(p.clone()))))
            .is_empty()
    );
    assert!(
        matches!(&app.overlay, Overlay::Confirm(c) if c.typed.is_none() && c.body[0].starts_with("1. "))
    );
    let cmds = app.update(key('y'));
    assert_eq!(cmds, vec![Command::RunPlan(p)]);
    assert_eq!(app.view, View::Runbook);
    app.update(Action::Runbook(RunbookMsg::Event(
        crate::runbook::RunEvent::StepStarted { step: 0 },
    )));
    assert!(app.run.as_ref().unwrap().steps[0].running);
    // While it runs, q asks twice.
    app.update(key('q'));
    assert!(!app.should_quit);
    assert!(app.update(key('R')).is_empty() || app.status.is_some());
    app.update(key('q'));
    assert!(app.should_quit);
}

#[test]
fn production_asks_for_the_name_and_read_only_refuses() {
    let mut app = app_with(fixtures::shop());
    let mut t = Target::local();
    t.environment = Some("production".into());
    app.target = Some(t.clone());
    let p = plan("rollback web", "web", 3);
    app.update(Action::Runbook(RunbookMsg::Planned(Ok(p))));
    assert!(matches!(&app.overlay, Overlay::Confirm(c) if c.typed.as_deref() == Some("web")));
    app.update(code(KeyCode::Esc));

    t.read_only = true;
    app.target = Some(t);
    assert!(app.update(key('R')).is_empty());
    assert!(
        app.status.as_ref().unwrap().text.contains("read-only"),
        "{:?}",
        app.status
    );
    assert!(app.update(key('P')).is_empty());
    // A shell could change anything: refused with the reason, like every mutating key.
    app.status = None;
    assert!(app.update(key('e')).is_empty(), "no shell on read-only");
    let said = &app.status.as_ref().unwrap().text;
    assert!(
        said.contains("read-only") && said.contains("shell"),
        "{said}"
    );
    // Looking is not changing: the audit view still opens.
    assert_eq!(app.update(key('A')), vec![Command::LoadAudit]);
}

#[test]
fn a_failed_plan_is_an_error_message() {
    let mut app = app_with(fixtures::shop());
    app.update(Action::Runbook(RunbookMsg::Planned(Err(
        "no earlier image of shop/web to roll back to".into(),
    ))));
    assert_eq!(app.status.as_ref().unwrap().level, Level::Error);
    assert!(matches!(app.overlay, Overlay::None));
}

/// The journal cannot be written (not on production): the console asks, as the CLI's --force
/// does; y plans the same rollback again with force, Esc leaves nothing planned.
#[test]
fn an_unwritable_journal_is_asked_and_yes_plans_with_force() {
    let mut app = app_with(fixtures::shop());
    let request = Request::Rollback(RollbackRequest {
        name: "web".into(),
        project: Some("shop".into()),
        ..Default::default()
    });
    let why = "the run journal cannot be written (read-only file system): a run cut off without it cannot be found or recovered";
    app.update(Action::Runbook(RunbookMsg::JournalUnwritable {
        request: request.clone(),
        why: why.into(),
    }));
    assert!(matches!(app.overlay, Overlay::Confirm(_)));
    assert_eq!(
        app.update(key('y')),
        vec![Command::PlanRunbook(Request::Rollback(RollbackRequest {
            name: "web".into(),
            project: Some("shop".into()),
            force: true,
            ..Default::default()
        }))]
    );
    app.update(Action::Runbook(RunbookMsg::JournalUnwritable {
        request,
        why: why.into(),
    }));
    assert_eq!(app.update(code(KeyCode::Esc)), vec![]);
    assert!(matches!(app.overlay, Overlay::None));
}

#[test]
fn palette_runbook_commands() {
    let mut app = app_with(fixtures::shop());
    assert_eq!(
        app.run_palette("rollback shop/web v1"),
        vec![Command::PlanRunbook(Request::Rollback(RollbackRequest {
            name: "web".into(),
            project: Some("shop".into()),
            to: Some("v1".into()),
            ..Default::default()
        }))]
    );
    assert_eq!(
        app.run_palette("migrate-status shop-db-1"),
        vec![Command::PlanRunbook(Request::Migrate(MigrateRequest {
            name: "shop-db-1".into(),
            status: true,
            ..Default::default()
        }))]
    );
    assert!(app.run_palette("restart").is_empty());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .starts_with("usage: :restart NAME")
    );
    assert_eq!(
        app.palette_candidates("rollback shop/w"),
        vec!["rollback shop/web", "rollback shop/worker"]
    );
}

#[test]
fn notify_test_from_the_palette_posts_only_with_webhooks() {
    let mut app = app_with(fixtures::shop());
    assert!(app.run_palette("notify-test").is_empty());
    let status = app.status.as_ref().unwrap();
    assert_eq!(status.level, Level::Warn);
    assert!(
        status.text.contains("no [[notify]] webhook"),
        "{}",
        status.text
    );
    app.config = crate::config::file::parse(
        "[[notify]]\nkind = \"generic\"\nurl = \"https://hooks.example.invalid/x\"\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap();
    assert_eq!(app.run_palette("notify-test"), vec![Command::NotifyTest]);
    assert!(app.status.as_ref().unwrap().text.contains("1 webhook(s)"));
    // The same from another view: it only says something in the status line.
    app.update(Action::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('E'),
    )));
    assert_eq!(app.run_palette("notify-test"), vec![Command::NotifyTest]);
}

#[test]
fn the_backup_key_plans_a_backup_of_the_selected_database_and_runs_it_after_a_yes() {
    let mut app = app_with(fixtures::shop());
    // `:backup shop/db` plans the service's backup.
    assert_eq!(
        app.run_palette("backup shop/db"),
        vec![Command::PlanRunbook(Request::Backup(
            crate::runbook::BackupRequest {
                name: "db".into(),
                project: Some("shop".into()),
            }
        ))]
    );
    app.run_palette("inspect shop-db-1");
    app.update(code(KeyCode::Esc));
    let cmds = app.update(key('b'));
    assert_eq!(
        cmds,
        vec![Command::PlanRunbook(Request::Backup(
            crate::runbook::BackupRequest {
                name: "shop-db-1".into(),
                project: None,
            }
        ))]
    );
    let p = plan("back up shop/db", "shop/db", 1);
    app.update(Action::Runbook(RunbookMsg::Planned(Ok(p.clone()))));
    assert!(matches!(&app.overlay, Overlay::Confirm(c) if c.typed.is_none()));
    assert_eq!(app.update(key('y')), vec![Command::RunPlan(p)]);
    assert_eq!(app.view, View::Runbook);
}
