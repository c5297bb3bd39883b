//! Snapshot tests of every view in its states, on ratatui's TestBackend with fixed data and clock.

use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::action::{Action, EngineEvent};
use crate::app::App;
use crate::config::Config;
use crate::engine::EngineVersion;
use crate::engine::model::{Container, Health};
use crate::fixtures;
use crate::keymap::Keymap;
use crate::target::Target;
use crate::theme::Theme;

fn app_sized(list: Vec<Container>, target: Target, w: u16, h: u16) -> App {
    let mut app = App::new(
        Config::default(),
        Theme::default(),
        Keymap::default(),
        fixtures::now(),
    );
    app.update(Action::Resize(w, h));
    let _ = app.connect(target);
    let session = app.session;
    let version = EngineVersion {
        engine: "27.3.1".into(),
        api: "1.47".into(),
        os: "linux".into(),
        arch: "amd64".into(),
    };
    app.update(Action::Engine {
        session,
        event: EngineEvent::Connected {
            transport: "unix socket".into(),
            version,
        },
    });
    app.update(Action::Engine {
        session,
        event: EngineEvent::Snapshot(list),
    });
    app
}

pub(super) fn shop(w: u16, h: u16) -> App {
    app_sized(fixtures::shop(), Target::local(), w, h)
}

pub(super) fn render(app: &App) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(app.size.width, app.size.height)).unwrap();
    t.draw(|f| super::draw(f, app)).unwrap();
    t
}

pub(super) fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
}

fn press_code(app: &mut App, code: KeyCode) {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

#[test]
fn list_wide() {
    insta::assert_snapshot!(render(&shop(160, 16)).backend());
}

/// After a rollback: the kept old container sits under its service as `web-1 · kept` with what it
/// is the way back to, never a second `web-1`; a stopped container's last probe is history
/// (`was unhealthy`, dimmed) and counts in neither the header nor the project's bad total.
#[test]
fn list_shows_kept_containers_and_stopped_health_as_history() {
    use crate::engine::model::{LABEL_KEPT_IMAGE, LABEL_KEPT_NAME, State};
    let mut list = fixtures::shop();
    // web-2 serves again (healthy); its old copy was kept, stopped, after it last failed its probe.
    for c in list.iter_mut().filter(|c| c.name == "shop-web-2") {
        c.health = Health::Healthy;
    }
    let mut kept = fixtures::replica("shop", "web", 1);
    kept.name = "shop-web-1-berth-kept-20261124024800".into();
    kept.id = "4b4b4b4b4b4b".repeat(5);
    kept.labels.clear();
    kept.labels.insert(
        "berth.kept.com.docker.compose.project".into(),
        "shop".into(),
    );
    kept.labels
        .insert("berth.kept.com.docker.compose.service".into(), "web".into());
    kept.labels
        .insert(LABEL_KEPT_NAME.into(), "shop-web-1".into());
    kept.labels
        .insert(LABEL_KEPT_IMAGE.into(), "shop/web:v3".into());
    kept.image = "sha256:c3c3c3c3c3c3".into();
    kept.state = State::Exited;
    kept.exit_code = Some(137);
    kept.health = Health::Unhealthy;
    kept.has_healthcheck = true;
    kept.finished_at = fixtures::minutes_ago(12);
    list.push(kept);
    let app = app_sized(list, Target::local(), 140, 14);
    let t = render(&app);
    let text = format!("{:?}", t.backend());
    assert!(text.contains("web-1 · kept"), "{text}");
    assert!(text.contains("kept · 12m"), "{text}");
    assert!(
        text.contains("shop/web:v3"),
        "the image it is the way back to: {text}"
    );
    assert!(text.contains("(unhealthy)"), "{text}");
    assert!(
        !text.contains("✖"),
        "nothing counts as unhealthy now: {text}"
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn list_narrow_drops_columns() {
    insta::assert_snapshot!(render(&shop(80, 14)).backend());
}

#[test]
fn details_masked() {
    let mut app = shop(120, 40);
    press_code(&mut app, KeyCode::Enter);
    press_code(&mut app, KeyCode::Enter);
    press(&mut app, "G");
    let t = render(&app);
    let text = format!("{}", t.backend());
    assert!(text.contains("POSTGRES_PASSWORD=••••••••"), "{text}");
    assert!(text.contains("postgres://shop:••••@db:5432/shop"), "{text}");
    assert!(!text.contains("hunter2"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn details_revealed_side_by_side() {
    let mut app = shop(160, 40);
    press_code(&mut app, KeyCode::Enter);
    press_code(&mut app, KeyCode::Enter);
    press(&mut app, "x");
    let t = render(&app);
    let text = format!("{}", t.backend());
    assert!(text.contains("POSTGRES_PASSWORD=hunter2"));
    insta::assert_snapshot!(t.backend());
}

#[test]
fn details_of_unhealthy_shows_probe_output() {
    let mut app = shop(120, 40);
    app.run_palette("inspect shop-web-2");
    let text = format!("{}", render(&app).backend());
    assert!(
        text.contains("exit 1 wget: server returned error"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}

#[test]
fn help_overlay() {
    let mut app = shop(100, 44);
    press(&mut app, "?");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn palette_with_completions() {
    let mut app = shop(100, 20);
    press(&mut app, ":logs w");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn filter_active() {
    let mut app = shop(100, 12);
    press(&mut app, "/web");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn too_small() {
    insta::assert_snapshot!(render(&shop(40, 8)).backend());
}

#[test]
fn connection_failed() {
    let mut app = shop(100, 14);
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::ConnectFailed(
            "permission denied on /var/run/docker.sock: your user is not in the `docker` group. Fix: `sudo usermod -aG docker $USER`, then log in again".into(),
        ),
    });
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn production_banner_and_stale() {
    let mut target =
        Target::from_endpoint("prod", crate::target::Endpoint::Tcp("10.0.0.1:2375".into()));
    target.environment = Some("production".into());
    target.read_only = true;
    let mut app = app_sized(fixtures::shop(), target, 120, 12);
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Stale("connection reset by peer".into()),
    });
    let t = render(&app);
    let banner_cell = &t.backend().buffer()[(1, 1)];
    assert_eq!(
        banner_cell.bg,
        app.theme.environment("production").bg.unwrap()
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn empty_engine() {
    insta::assert_snapshot!(render(&app_sized(vec![], Target::local(), 90, 8)).backend());
}

#[test]
fn hostile_names_and_huge_labels_render_sanely() {
    let mut c = fixtures::container("");
    c.labels.insert("x".into(), "y".repeat(10_000));
    c.image = "evil\u{1b}[2J\u{7}image".into();
    let mut other = fixtures::container("\u{1b}]0;pwned\u{7}name");
    other.env.push(format!("HUGE={}", "z".repeat(10_000)));
    let mut app = app_sized(vec![c, other], Target::local(), 100, 30);
    press_code(&mut app, KeyCode::Enter);
    let t = render(&app);
    let text = format!("{}", t.backend());
    assert!(!text.contains('\u{1b}'));
    assert!(!text.contains('\u{7}'));
    assert!(
        text.contains("<"),
        "a nameless container shows its short id"
    );
}

#[test]
fn health_has_colour_and_symbol() {
    let app = shop(160, 16);
    let t = render(&app);
    let buf = t.backend().buffer();
    let area = buf.area;
    let mut found = false;
    for y in 0..area.height {
        for x in 0..area.width {
            if buf[(x, y)].symbol() == "✖" && buf[(x + 2, y)].symbol() == "u" {
                assert_eq!(
                    buf[(x, y)].fg,
                    app.theme.health(Health::Unhealthy).fg.unwrap()
                );
                found = true;
            }
        }
    }
    assert!(found, "an unhealthy row shows ✖ unhealthy");
}

#[test]
fn every_theme_renders() {
    for name in Theme::names() {
        let mut app = shop(120, 20);
        app.theme = Theme::load(name).unwrap();
        press_code(&mut app, KeyCode::Enter);
        let t = render(&app);
        assert!(
            format!("{}", t.backend()).contains("shop-db-1")
                || format!("{}", t.backend()).contains("db-1")
        );
    }
    let _ = Utc::now();
}

#[test]
fn server_picker() {
    let mut app = shop(100, 16);
    press(&mut app, "S");
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("Servers — Enter connects"));
    assert!(text.contains("local engine"));
}

#[test]
fn events_view() {
    let mut app = shop(100, 10);
    let session = app.session;
    for (i, (action, code)) in [
        ("start", None),
        ("health_status: unhealthy", None),
        ("die", Some("137")),
        ("oom", None),
    ]
    .into_iter()
    .enumerate()
    {
        let record = crate::action::EventRecord {
            time: fixtures::now() - chrono::Duration::seconds(40 - i as i64 * 10),
            action: action.into(),
            id: "abc".into(),
            name: "shop-web-2".into(),
            exit_code: code.map(str::to_string),
        };
        app.update(Action::Engine {
            session,
            event: EngineEvent::Event(record),
        });
    }
    press(&mut app, "E");
    insta::assert_snapshot!(render(&app).backend());
    press_code(&mut app, KeyCode::Esc);
    assert_eq!(app.view, crate::app::View::Containers);
}

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

/// The shop with a log view open on `name` and `lines` fixture lines over its sources.
fn logs_app(name: &str, lines: usize, w: u16, h: u16) -> App {
    let mut app = shop(w, h);
    let cmds = app.run_palette(&format!("logs {name}"));
    let [crate::app::Command::OpenLogs { view, ids, .. }] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    let event = crate::logs::LogEvent::Lines(fixtures::log_lines(lines, ids.len() as u16));
    app.update(Action::Logs { view: *view, event });
    app
}

fn log_view_id(app: &App) -> u64 {
    app.logs.as_ref().unwrap().id
}

/// Where `text` starts on screen.
fn find_text(t: &Terminal<TestBackend>, text: &str) -> Option<(u16, u16)> {
    let buf = t.backend().buffer();
    let area = buf.area;
    for y in 0..area.height {
        let row: String = (0..area.width)
            .map(|x| buf[(x, y)].symbol())
            .collect::<String>();
        if let Some(byte) = row.find(text) {
            let x = row[..byte].chars().count() as u16;
            return Some((x, y));
        }
    }
    None
}

#[test]
fn logs_following_a_project_with_prefixes() {
    let app = logs_app("shop", 40, 100, 16);
    let t = render(&app);
    // Stderr lines are marked in the gutter, ERROR lines coloured.
    let (x, y) = find_text(&t, "seq=35 ").expect("seq=35 on screen");
    let row_start = t.backend().buffer()[(1, y)].clone();
    assert_eq!(row_start.symbol(), "▍");
    assert_eq!(row_start.fg, app.theme.stderr().fg.unwrap());
    let (ex, ey) = find_text(&t, "seq=40 ").expect("seq=40 on screen");
    assert_eq!(
        t.backend().buffer()[(ex, ey)].fg,
        app.theme.error().fg.unwrap()
    );
    assert_ne!(
        t.backend().buffer()[(x, y)].fg,
        app.theme.error().fg.unwrap()
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn logs_paused_with_new_lines_marker() {
    let mut app = logs_app("shop-web-1", 40, 100, 14);
    press(&mut app, "kkk");
    let view = log_view_id(&app);
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(fixtures::log_lines(12, 1)),
    });
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn logs_search_highlight() {
    let mut app = logs_app("shop-web-1", 40, 100, 14);
    press(&mut app, "/");
    press(&mut app, "orders/3");
    press_code(&mut app, KeyCode::Enter);
    let t = render(&app);
    let (x, y) = find_text(&t, "orders/3").expect("match on screen");
    assert_eq!(
        t.backend().buffer()[(x, y)].bg,
        app.theme.search_match().bg.unwrap()
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn logs_filter_inverted_and_timestamps() {
    let mut app = logs_app("web", 40, 110, 14);
    app.run_palette("grep !level=info");
    press(&mut app, "T");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn logs_wrap_long_lines_and_sgr() {
    let mut app = logs_app("shop-web-1", 3, 70, 14);
    let view = log_view_id(&app);
    let long = format!(
        "\x1b[32mgreen\x1b[0m start {} end\x1b]0;title\x07",
        "abcdefghij".repeat(12)
    );
    let line = crate::logs::LogLine::new(
        fixtures::now().timestamp_nanos_opt().unwrap(),
        0,
        crate::logs::StreamKind::Stdout,
        long.as_bytes(),
        0,
    );
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(vec![line]),
    });
    press(&mut app, "w");
    let t = render(&app);
    let (x, y) = find_text(&t, "green").expect("green on screen");
    assert_eq!(
        t.backend().buffer()[(x, y)].fg,
        ratatui::style::Color::Indexed(2)
    );
    insta::assert_snapshot!(t.backend());
}

#[test]
fn logs_reconnecting_on_production() {
    let mut target =
        Target::from_endpoint("prod", crate::target::Endpoint::Tcp("10.0.0.1:2375".into()));
    target.environment = Some("production".into());
    let mut app = app_sized(fixtures::shop(), target, 100, 12);
    let cmds = app.run_palette("logs shop-db-1");
    assert_eq!(cmds.len(), 1);
    let view = log_view_id(&app);
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Lines(fixtures::log_lines(10, 1)),
    });
    app.update(Action::Logs {
        view,
        event: crate::logs::LogEvent::Status {
            source: 0,
            status: crate::logs::SourceStatus::Reconnecting {
                attempt: 2,
                error: "connection reset by peer".into(),
            },
        },
    });
    let t = render(&app);
    assert!(find_text(&t, "PRODUCTION").is_some(), "the banner stays");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn production_banner_stays_over_every_overlay_and_when_too_small() {
    let mut target =
        Target::from_endpoint("prod", crate::target::Endpoint::Tcp("10.0.0.1:2375".into()));
    target.environment = Some("production".into());
    let mut app = app_sized(fixtures::shop(), target.clone(), 100, 30);
    press(&mut app, "?");
    let t = render(&app);
    assert!(find_text(&t, "Help").is_some(), "the help overlay is open");
    assert!(
        find_text(&t, "PRODUCTION").is_some(),
        "help must not cover the banner"
    );
    press_code(&mut app, KeyCode::Esc);
    press(&mut app, ":");
    let t = render(&app);
    assert!(
        find_text(&t, "PRODUCTION").is_some(),
        "the palette must not cover the banner"
    );
    let small = app_sized(fixtures::shop(), target, 30, 6);
    let t = render(&small);
    assert!(
        find_text(&t, "too small").is_some(),
        "the too-small notice is shown"
    );
    assert!(
        find_text(&t, "PRODUCTION").is_some(),
        "too small still names the environment"
    );
}

#[test]
fn logs_help_lists_the_log_keys() {
    let mut app = logs_app("shop-web-1", 5, 100, 40);
    press(&mut app, "?");
    let t = render(&app);
    for needle in ["Logs", "follow new lines", "ignore case", "OSC 52"] {
        assert!(find_text(&t, needle).is_some(), "{needle} in the help");
    }
    insta::assert_snapshot!(t.backend());
}

#[test]
fn host_key_leaves_the_log_view_for_the_host_view() {
    let mut app = logs_app("shop", 20, 120, 30);
    assert_eq!(app.view, crate::app::View::Logs);
    let cmds = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('H'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.view, crate::app::View::Host);
    assert!(app.logs.is_none());
    assert!(
        cmds.contains(&crate::app::Command::CloseLogs),
        "the stream is stopped: {cmds:?}"
    );
}

#[test]
fn log_lines_scroll_sideways_when_wrap_is_off() {
    let mut app = logs_app("shop-web-1", 3, 60, 12);
    let before = format!("{}", render(&app).backend());
    assert!(before.contains("seq=3 level=INFO"), "{before}");
    press(&mut app, "ll");
    assert_eq!(app.logs.as_ref().unwrap().h_offset, 16);
    let t = render(&app);
    let after = format!("{}", t.backend());
    assert!(!after.contains("seq=3 level=INFO"), "{after}");
    assert!(after.contains("msg=request handled"), "{after}");
    assert!(after.contains("→16"), "the title says how far: {after}");
    insta::assert_snapshot!(t.backend());
    // Back to the start, and wrap resets the offset.
    press(&mut app, "hhh");
    assert_eq!(app.logs.as_ref().unwrap().h_offset, 0);
    press(&mut app, "llw");
    assert_eq!(app.logs.as_ref().unwrap().h_offset, 0);
    assert!(app.logs.as_ref().unwrap().wrap);
}

#[test]
fn a_silent_link_turns_the_screen_stale_then_live() {
    use crate::ssh::LinkStatus;
    use std::time::Duration;
    let mut app = app_sized(fixtures::shop(), Target::local(), 140, 14);
    let session = app.session;
    let link = |app: &mut App, status| {
        app.update(Action::Engine {
            session,
            event: EngineEvent::Link(status),
        })
    };
    link(
        &mut app,
        LinkStatus::Connected {
            rtt: Duration::from_millis(3),
        },
    );
    assert!(find_text(&render(&app), "● live · 3 ms").is_some());
    link(
        &mut app,
        LinkStatus::Unanswered {
            silent: Duration::from_secs(3),
        },
    );
    let t = render(&app);
    assert!(
        find_text(&t, "● live").is_none(),
        "never live over a silent link"
    );
    assert!(find_text(&t, "◌ stale 0s · no answer for 3s").is_some());
    app.update(Action::Tick(
        fixtures::now() + chrono::Duration::seconds(12),
    ));
    link(
        &mut app,
        LinkStatus::Reconnecting {
            attempt: 3,
            last_error: "keepalive timeout".into(),
        },
    );
    let t = render(&app);
    let (x, y) = find_text(&t, "◌ stale 12s · reconnecting (try 3)").expect("stale header");
    assert_eq!(
        t.backend().buffer()[(x, y)].fg,
        app.theme.stale().fg.unwrap()
    );
    // Rows keep what was last known, drawn stale; the figures are dashes.
    let (sx, sy) = find_text_below(&t, "running", 3).expect("a running row");
    assert_eq!(
        t.backend().buffer()[(sx, sy)].fg,
        app.theme.stale().fg.unwrap()
    );
    insta::assert_snapshot!(t.backend());
    link(
        &mut app,
        LinkStatus::Connected {
            rtt: Duration::from_millis(4),
        },
    );
    let t = render(&app);
    assert!(find_text(&t, "● live · 4 ms").is_some());
    assert!(find_text(&t, "stale").is_none());
    assert_ne!(
        t.backend().buffer()[(sx, sy)].fg,
        app.theme.stale().fg.unwrap()
    );
}

#[test]
fn the_engine_stream_breaking_counts_its_tries() {
    let mut app = app_sized(fixtures::shop(), Target::local(), 140, 12);
    let session = app.session;
    for _ in 0..2 {
        app.update(Action::Engine {
            session,
            event: EngineEvent::Stale("connection refused".into()),
        });
    }
    let t = render(&app);
    assert!(find_text(&t, "◌ stale 0s · reconnecting (try 2) · connection refused").is_some());
    app.update(Action::Engine {
        session,
        event: EngineEvent::Live,
    });
    assert!(find_text(&render(&app), "● live").is_some());
    assert_eq!(app.stale_since, None);
}

#[test]
fn a_filter_set_while_scrolled_up_shows_its_matches() {
    let mut app = logs_app("shop-web-1", 400, 100, 20);
    // Scroll far up, past the lines the filter will keep at the end.
    for _ in 0..3 {
        press_code(&mut app, KeyCode::PageUp);
    }
    app.run_palette("grep seq=(39[0-9]|400) level");
    let t = render(&app);
    let shown = (390..=400)
        .filter(|i| find_text(&t, &format!("seq={i} ")).is_some())
        .count();
    assert_eq!(shown, 11, "every match is on screen:\n{}", t.backend());
    // A filter whose matches lie above the selection fills the screen up to it too.
    app.run_palette("grep seq=1[0-9] level");
    let t = render(&app);
    let shown = (10..=19)
        .filter(|i| find_text(&t, &format!("seq={i} ")).is_some())
        .count();
    assert_eq!(shown, 10, "{}", t.backend());
}

#[test]
fn a_search_that_wraps_says_so() {
    let mut app = logs_app("shop-web-1", 40, 100, 14);
    press(&mut app, "/");
    press(&mut app, "seq=3 ");
    press_code(&mut app, KeyCode::Enter);
    let status = |app: &App| {
        app.status
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    };
    assert!(!status(&app).contains("wrapped"), "{}", status(&app));
    press(&mut app, "n");
    assert!(status(&app).contains("search wrapped"), "{}", status(&app));
}

#[test]
fn a_log_view_says_reconnecting_then_resumed() {
    let mut app = logs_app("shop-web-1", 10, 110, 12);
    let view = log_view_id(&app);
    let status = |app: &mut App, status| {
        app.update(Action::Logs {
            view,
            event: crate::logs::LogEvent::Status { source: 0, status },
        })
    };
    status(
        &mut app,
        crate::logs::SourceStatus::Reconnecting {
            attempt: 1,
            error: "channel closed".into(),
        },
    );
    let t = render(&app);
    assert!(find_text(&t, "◌ reconnecting…").is_some());
    assert!(find_text(&t, "● following").is_none());
    status(
        &mut app,
        crate::logs::SourceStatus::Resumed { caught_up: 42 },
    );
    let t = render(&app);
    assert!(find_text(&t, "resumed · 42 lines caught up").is_some());
    assert!(find_text(&t, "● following").is_some());
}

/// Where `text` starts on screen, at row `from` or below (past the header).
fn find_text_below(t: &Terminal<TestBackend>, text: &str, from: u16) -> Option<(u16, u16)> {
    let buf = t.backend().buffer();
    for y in from..buf.area.height {
        let row: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(byte) = row.find(text) {
            return Some((row[..byte].chars().count() as u16, y));
        }
    }
    None
}
