//! Compose drift on screen: the console reads each project's files once (again after a new
//! container or a runbook run), marks a replica that runs another image than its files declare
//! with `⚠ drift` in the list and says what runs and what compose says in the details pane.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::tests::{render, shop};
use crate::action::{Action, EngineEvent, RunbookMsg};
use crate::app::{App, Command};
use crate::compose::{
    Declared, LABEL_CONFIG_FILES, LABEL_WORKING_DIR, Project, ProjectKey, ProjectView,
};
use crate::engine::model::Container;
use crate::fixtures;

const DIR: &str = "/srv/shop";

/// The shop demo with the labels compose writes for where its files are.
fn with_compose_labels(mut list: Vec<Container>) -> Vec<Container> {
    for c in list.iter_mut().filter(|c| c.project.is_some()) {
        c.labels.insert(LABEL_WORKING_DIR.into(), DIR.into());
        c.labels
            .insert(LABEL_CONFIG_FILES.into(), format!("{DIR}/compose.yaml"));
    }
    list
}

fn key() -> ProjectKey {
    ProjectKey {
        project: "shop".into(),
        working_dir: DIR.into(),
        config_files: vec![format!("{DIR}/compose.yaml")],
    }
}

/// The files say web runs `shop/web:v3` (the replicas run v2) and worker `shop/worker:v2` (it does).
fn read_project() -> ProjectView {
    let declared = |image: &str| Declared {
        image: image.into(),
        template: image.into(),
        file: format!("{DIR}/compose.yaml"),
    };
    ProjectView::Read(Project {
        key: key(),
        services: BTreeMap::from([
            ("web".to_string(), declared("shop/web:v3")),
            ("worker".to_string(), declared("shop/worker:v2")),
        ]),
        env_text: String::new(),
        env: BTreeMap::new(),
    })
}

fn snapshot(app: &mut App, list: Vec<Container>) -> Vec<Command> {
    let session = app.session;
    reads(app.update(Action::Engine {
        session,
        event: EngineEvent::Snapshot(list),
    }))
}

/// The compose reads among an update's commands (it also asks for stats).
fn reads(cmds: Vec<Command>) -> Vec<Command> {
    cmds.into_iter()
        .filter(|c| matches!(c, Command::LoadComposeFiles(_)))
        .collect()
}

fn answer(app: &mut App, view: ProjectView) {
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::ComposeFiles(vec![(key(), view)]),
    });
}

fn screen(app: &App) -> String {
    format!("{}", render(app).backend())
}

#[test]
fn files_are_read_once_per_project_and_again_after_a_new_container_or_a_run() {
    let mut app = shop(160, 30);
    let list = with_compose_labels(fixtures::shop());
    assert_eq!(
        snapshot(&mut app, list.clone()),
        vec![Command::LoadComposeFiles(vec![key()])],
        "one read for the one project with files, none for the standalone container"
    );
    assert_eq!(snapshot(&mut app, list.clone()), vec![], "asked already");

    // A state change of a known container reads nothing; a new replica (an `up -d`) does.
    let session = app.session;
    let mut known = list[0].clone();
    known.restart_count += 1;
    let changed = reads(app.update(Action::Engine {
        session,
        event: EngineEvent::Changed(Box::new(known)),
    }));
    assert_eq!(changed, vec![]);
    let mut new = list[0].clone();
    new.id = "f00dfeed".repeat(8);
    let created = reads(app.update(Action::Engine {
        session,
        event: EngineEvent::Changed(Box::new(new)),
    }));
    assert_eq!(created, vec![Command::LoadComposeFiles(vec![key()])]);

    // A run that ended (a pin may have rewritten `.env`) reads every project again.
    app.run = Some(crate::app::RunState::new(
        std::sync::Arc::new(fixtures::plan("rollback web", "web", 1)),
        fixtures::now(),
    ));
    let done = reads(app.update(Action::Runbook(RunbookMsg::Event(
        crate::runbook::RunEvent::Done {
            result: crate::runbook::RunResult {
                ok: true,
                message: "web runs shop/web:v1 and is healthy".into(),
                duration: std::time::Duration::from_secs(9),
                images_before: vec![],
                images_after: vec![],
                metrics: serde_json::Map::new(),
            },
        },
    ))));
    assert_eq!(done, vec![Command::LoadComposeFiles(vec![key()])]);
}

#[test]
fn a_drifted_replica_is_marked_in_the_list_and_explained_in_the_details() {
    let mut app = shop(160, 30);
    let _ = snapshot(&mut app, with_compose_labels(fixtures::shop()));
    assert!(
        !screen(&app).contains("drift"),
        "nothing said before the files are read"
    );
    answer(&mut app, read_project());
    let list = screen(&app);
    assert_eq!(
        list.matches("⚠ drift shop/web:v2").count(),
        2,
        "both web replicas drift, worker and db do not:\n{list}"
    );
    // Rows go db, migrate, web-1: open web-1's details.
    super::tests::press(&mut app, "jj");
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let details = screen(&app);
    assert!(
        details.contains("runs shop/web:v2 · compose says shop/web:v3"),
        "{details}"
    );
    // Beside the details pane the extras give way first: the word and the tag whole.
    assert_eq!(
        details.matches("⚠ drift shop/web:v2").count(),
        2,
        "{details}"
    );
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn unreadable_files_say_drift_unknown_in_the_details_only() {
    let mut app = shop(200, 30);
    let _ = snapshot(&mut app, with_compose_labels(fixtures::shop()));
    answer(
        &mut app,
        ProjectView::Unreadable {
            path: format!("{DIR}/compose.yaml"),
            reason: "Permission denied".into(),
        },
    );
    assert!(!screen(&app).contains("⚠"), "{}", screen(&app));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let details = screen(&app);
    assert!(
        details.contains("unknown: /srv/shop/compose.yaml not readable (Permission denied)"),
        "{details}"
    );
}

/// A rollback that could pin offers it in its confirmation; Tab plans the pinned variant instead
/// (never a letter: on production letters are the typed name), and nothing runs without a yes.
#[test]
fn tab_in_the_confirmation_switches_to_the_pinned_plan() {
    use crate::runbook::{Request, RollbackRequest, Variant};
    let mut app = shop(160, 40);
    let pinned = Request::Rollback(RollbackRequest {
        name: "web".into(),
        project: Some("shop".into()),
        to: Some("shop/web:v1".into()),
        pin: true,
        ..Default::default()
    });
    let mut plan = fixtures::plan("rollback web to shop/web:v1", "shop/web", 3);
    plan.variant = Some(Variant {
        label: "pin WEB_TAG=v1 in .env".into(),
        request: pinned.clone(),
    });
    app.update(Action::Runbook(RunbookMsg::Planned(Ok(
        crate::action::SharedPlan(std::sync::Arc::new(plan)),
    ))));
    let text = screen(&app);
    assert!(
        text.contains("Tab: pin WEB_TAG=v1 in .env (plans again)"),
        "{text}"
    );
    let cmds = app.update(Action::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
    assert_eq!(cmds, vec![Command::PlanRunbook(pinned)]);
    assert!(
        matches!(app.overlay, crate::app::Overlay::None),
        "the old plan's confirmation is gone"
    );
    assert!(app.run.is_none(), "nothing ran");
}
