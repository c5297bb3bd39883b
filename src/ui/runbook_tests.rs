//! Snapshot tests of the runbook's screens: the production confirmation, the run view in progress
//! and after a failed, restored run, the audit view, the image pickers of a rollback and of a
//! deploy, and the registry login a pull asks for.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::tests::{app_sized, press, render, shop};
use crate::action::Action;
use crate::app::App;
use crate::fixtures;
use crate::target::Target;

fn run_events(app: &mut App, events: Vec<crate::runbook::RunEvent>) {
    for e in events {
        app.update(Action::Runbook(crate::action::RunbookMsg::Event(e)));
    }
}

#[test]
fn production_confirmation_dialog() {
    let mut target =
        Target::from_endpoint("prod", crate::target::Endpoint::Tcp("10.0.0.1:2375".into()));
    target.environment = Some("production".into());
    let mut app = app_sized(fixtures::shop(), target, 110, 20);
    let plan = crate::action::SharedPlan(std::sync::Arc::new(fixtures::plan(
        "rollback web to shop/web:v1",
        "web",
        3,
    )));
    app.update(Action::Runbook(crate::action::RunbookMsg::Planned(Ok(
        plan,
    ))));
    press(&mut app, "we");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn run_view_in_progress_and_failed() {
    use crate::runbook::{Outcome, RunEvent, RunResult, StepStatus};
    use std::time::Duration;
    let mut app = shop(110, 20);
    app.start_run(std::sync::Arc::new(fixtures::plan(
        "rollback web",
        "web",
        3,
    )));
    run_events(
        &mut app,
        vec![
            RunEvent::StepStarted { step: 0 },
            RunEvent::StepFinished {
                step: 0,
                outcome: Outcome {
                    ok: true,
                    status: StepStatus::Ok,
                    message: "created".into(),
                    duration: Duration::from_millis(1200),
                },
            },
            RunEvent::StepStarted { step: 1 },
            RunEvent::Output {
                step: 1,
                line: "try 1/5: web-1 starting".into(),
            },
        ],
    );
    insta::assert_snapshot!("run_in_progress", render(&app).backend());
    run_events(
        &mut app,
        vec![
            RunEvent::StepFinished {
                step: 1,
                outcome: Outcome {
                    ok: false,
                    status: StepStatus::Failed,
                    message: "unhealthy after 5 tries".into(),
                    duration: Duration::from_secs(25),
                },
            },
            RunEvent::StepFinished {
                step: 0,
                outcome: Outcome {
                    ok: true,
                    status: StepStatus::Undone,
                    message: "old container restored, healthy".into(),
                    duration: Duration::ZERO,
                },
            },
            RunEvent::StepFinished {
                step: 2,
                outcome: Outcome {
                    ok: true,
                    status: StepStatus::Skipped,
                    message: "not reached".into(),
                    duration: Duration::ZERO,
                },
            },
            RunEvent::Done {
                result: RunResult {
                    ok: false,
                    message: "rollback failed; the old container is back and healthy".into(),
                    duration: Duration::from_secs(31),
                    images_before: vec![],
                    images_after: vec![],
                    metrics: serde_json::Map::new(),
                },
            },
        ],
    );
    insta::assert_snapshot!("run_failed_and_restored", render(&app).backend());
}

/// A backup taken from the list's key: its progress (bytes, rate) in the run view.
#[test]
fn backup_run_view_shows_the_dump_progress() {
    use crate::runbook::RunEvent;
    let mut app = shop(120, 12);
    let mut plan = fixtures::plan("back up shop/db", "shop/db", 1);
    plan.steps[0] = crate::runbook::Step::new(
        "dump the postgres database of shop/db (in shop-db-1) into /var/backups/berth/shop/db on the server",
        vec![],
    );
    plan.notes.clear();
    app.start_run(std::sync::Arc::new(plan));
    run_events(
        &mut app,
        vec![
            RunEvent::StepStarted { step: 0 },
            RunEvent::Output {
                step: 0,
                line: "48.0 MiB written, 12.0 MiB/s".into(),
            },
        ],
    );
    insta::assert_snapshot!("backup_in_progress", render(&app).backend());
}

#[test]
fn audit_view() {
    let mut app = shop(120, 10);
    let entry = |action: &str, result: &str, minutes: i64| crate::runbook::AuditEntry {
        time: fixtures::now() - chrono::Duration::minutes(minutes),
        user: "alice".into(),
        server: "prod".into(),
        environment: Some("production".into()),
        action: action.into(),
        target: "web".into(),
        parameters: serde_json::Value::Null,
        images_before: vec![],
        images_after: vec![],
        result: result.into(),
        message: "rollback to shop/web:v1".into(),
        duration_ms: 31_000,
        ssh_user: None,
    };
    let entries = vec![entry("restart", "ok", 30), entry("rollback", "failed", 5)];
    app.update(Action::Runbook(crate::action::RunbookMsg::Audit(Ok(
        entries,
    ))));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn rollback_image_picker() {
    use crate::action::RunbookMsg;
    use crate::app::{Command, Overlay};
    use crate::runbook::Candidate;
    use crate::runbook::{Request, RollbackRequest};
    let mut app = shop(120, 24);
    // `B` on a service asks for its candidates first; nothing is planned yet.
    press(&mut app, "jjj");
    let cmds = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('B'),
        KeyModifiers::NONE,
    )));
    let Some(Command::LoadCandidates {
        name,
        project,
        forward: false,
    }) = cmds.first().cloned()
    else {
        panic!("B should list the candidates: {cmds:?}");
    };
    assert_eq!((name.as_str(), project.as_deref()), ("web", Some("shop")));
    let at = |h: i64| Some(fixtures::now() - chrono::Duration::hours(h));
    let image = |id: &str, tag: &str, hours: i64, current: bool, previous: bool| Candidate {
        id: format!("sha256:{id}"),
        tags: vec![tag.into()],
        digests: vec![],
        created: at(hours),
        size: 48_000_000,
        current,
        previous,
        never_ran: hours < 2,
        on_server: true,
        in_registry: tag.ends_with("v2"),
        registry_digest: tag
            .ends_with("v2")
            .then(|| "sha256:b2b2b2b2b2b2b2b2b2b2".into()),
    };
    let mut candidates = vec![
        image("d4d4d4d4d4d4d4d4", "shop/web:bad", 1, false, false),
        image("c3c3c3c3c3c3c3c3", "shop/web:v3", 2, true, false),
        image("b2b2b2b2b2b2b2b2", "shop/web:v2", 30, false, true),
        image("a1a1a1a1a1a1a1a1", "shop/web:v1", 200, false, false),
    ];
    // A release pruned from the server that its registry still has.
    candidates.push(Candidate {
        id: String::new(),
        tags: vec!["shop/web:v0".into()],
        digests: vec![],
        created: at(400),
        size: 20_000_000,
        current: false,
        previous: false,
        never_ran: false,
        on_server: false,
        in_registry: true,
        registry_digest: Some("sha256:0f0f0f0f0f0f0f0f0f0f".into()),
    });
    app.update(Action::Runbook(RunbookMsg::Candidates {
        name: name.clone(),
        project: project.clone(),
        forward: false,
        result: Ok((
            candidates,
            Some("registry docker.io: 120 tags; digests and dates for the last 30 listed".into()),
        )),
    }));
    let Overlay::Images(p) = &app.overlay else {
        panic!("the picker is open");
    };
    assert_eq!(
        p.selected, 2,
        "the previous image is preselected, never the newer one that never ran"
    );
    let t = render(&app);
    insta::assert_snapshot!(t.backend());
    // Enter on the running image says so; on another it plans a rollback to that image.
    press(&mut app, "k");
    let cmds = app.update(Action::Key(KeyEvent::from(KeyCode::Enter)));
    assert!(cmds.is_empty());
    assert!(matches!(app.overlay, Overlay::Images(_)));
    press(&mut app, "jj");
    let cmds = app.update(Action::Key(KeyEvent::from(KeyCode::Enter)));
    assert_eq!(
        cmds,
        vec![Command::PlanRunbook(Request::Rollback(RollbackRequest {
            name,
            project,
            to: Some("shop/web:v1".into()),
            ..Default::default()
        }))]
    );
    assert!(matches!(app.overlay, Overlay::None));
}

#[test]
fn deploy_picker_aims_forward() {
    use crate::action::RunbookMsg;
    use crate::app::{Command, Overlay};
    use crate::runbook::Candidate;
    use crate::runbook::{Request, RollbackRequest};
    let mut app = shop(120, 24);
    // `V` on a service asks for the same candidates as a rollback, aimed forward.
    press(&mut app, "jjj");
    let cmds = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('V'),
        KeyModifiers::NONE,
    )));
    assert_eq!(
        cmds,
        vec![Command::LoadCandidates {
            name: "web".into(),
            project: Some("shop".into()),
            forward: true,
        }]
    );
    let at = |h: i64| Some(fixtures::now() - chrono::Duration::hours(h));
    let image = |tag: &str, hours: i64, current: bool, on_server: bool| Candidate {
        id: if on_server {
            format!("sha256:{hours:0>16}")
        } else {
            String::new()
        },
        tags: vec![tag.into()],
        digests: vec![],
        created: at(hours),
        size: if on_server { 48_000_000 } else { 0 },
        current,
        previous: false,
        never_ran: hours < 30,
        on_server,
        in_registry: true,
        registry_digest: Some(format!("sha256:{}", tag[tag.len() - 1..].repeat(20))),
    };
    let candidates = vec![
        image(
            "registry.example.com:5000/team/shop/web:v5",
            1,
            false,
            false,
        ),
        image("shop/web:v4", 5, false, false),
        image("shop/web:v3", 30, true, true),
        image("shop/web:v2", 200, false, true),
    ];
    app.update(Action::Runbook(RunbookMsg::Candidates {
        name: "web".into(),
        project: Some("shop".into()),
        forward: true,
        result: Ok((candidates, None)),
    }));
    let Overlay::Images(p) = &app.overlay else {
        panic!("the picker is open");
    };
    assert_eq!(p.selected, 0, "the newest tag after the current one");
    insta::assert_snapshot!(render(&app).backend());
    // A reference longer than the screen keeps its tag: the start is cut. Enter plans a deploy,
    // exactly the request `berth deploy web -p shop --to REFERENCE` makes.
    let cmds = app.update(Action::Key(KeyEvent::from(KeyCode::Enter)));
    assert_eq!(
        cmds,
        vec![Command::PlanRunbook(Request::Rollback(RollbackRequest {
            name: "web".into(),
            project: Some("shop".into()),
            to: Some("registry.example.com:5000/team/shop/web:v5".into()),
            forward: true,
            ..Default::default()
        }))]
    );
    assert!(matches!(app.overlay, Overlay::None));
    // The palette: `:deploy shop/web v4` plans at once; without a tag it lists the candidates.
    let cmds = app.run_palette("deploy shop/web v4");
    assert_eq!(
        cmds,
        vec![Command::PlanRunbook(Request::Rollback(RollbackRequest {
            name: "web".into(),
            project: Some("shop".into()),
            to: Some("v4".into()),
            forward: true,
            ..Default::default()
        }))]
    );
    let cmds = app.run_palette("deploy shop/web");
    assert!(
        matches!(&cmds[..], [Command::LoadCandidates { forward: true, .. }]),
        "{cmds:?}"
    );
}

#[test]
fn registry_login_popup_shows_the_username_and_masks_the_password() {
    use crate::action::Reply;
    use crate::app::{Command, Overlay};
    use crate::ssh::{PromptAnswer, PromptRequest, Secret};
    let mut app = shop(120, 24);
    let (reply, _answer) = Reply::new();
    app.update(Action::Prompt(
        PromptRequest::RegistryLogin {
            registry: "registry.example.com".into(),
        },
        reply,
    ));
    // An empty username is not an answer: the popup keeps asking.
    assert!(
        app.update(Action::Key(KeyEvent::from(KeyCode::Enter)))
            .is_empty()
    );
    press(&mut app, "deploy");
    assert!(
        app.update(Action::Key(KeyEvent::from(KeyCode::Enter)))
            .is_empty()
    );
    press(&mut app, "s3cret");
    let t = render(&app);
    insta::assert_snapshot!(t.backend());
    let screen = format!("{:?}", t.backend().buffer());
    assert!(!screen.contains("s3cret"), "the password is masked");
    let cmds = app.update(Action::Key(KeyEvent::from(KeyCode::Enter)));
    let [Command::Answer(_, answer)] = &cmds[..] else {
        panic!("{cmds:?}");
    };
    assert_eq!(
        answer,
        &PromptAnswer::Login {
            username: "deploy".into(),
            password: Secret::new("s3cret"),
        }
    );
    assert!(
        matches!(app.overlay, Overlay::None),
        "the secret left with the answer"
    );
    // Esc cancels at either field.
    let (reply, _answer) = Reply::new();
    app.update(Action::Prompt(
        PromptRequest::RegistryLogin {
            registry: "registry.example.com".into(),
        },
        reply,
    ));
    let cmds = app.update(Action::Key(KeyEvent::from(KeyCode::Esc)));
    assert!(
        matches!(&cmds[..], [Command::Answer(_, PromptAnswer::Cancel)]),
        "{cmds:?}"
    );
}
