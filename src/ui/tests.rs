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

pub(super) fn app_sized(list: Vec<Container>, target: Target, w: u16, h: u16) -> App {
    let mut app = connected_sized(target, w, h);
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Snapshot(list),
    });
    app
}

/// Connected to `target`, its first listing not yet arrived.
fn connected_sized(target: Target, w: u16, h: u16) -> App {
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

pub(super) fn press_code(app: &mut App, code: KeyCode) {
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
    // The column is as wide as what it holds: what the kept copy is the way back to, whole.
    assert!(text.contains("kept · from shop/web:v3 · 12m"), "{text}");
    assert!(text.contains("was unhealthy"), "{text}");
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

/// Where `text` starts on screen.
pub(super) fn find_text(t: &Terminal<TestBackend>, text: &str) -> Option<(u16, u16)> {
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

/// Where `text` starts on screen, at row `from` or below (past the header).
pub(super) fn find_text_below(
    t: &Terminal<TestBackend>,
    text: &str,
    from: u16,
) -> Option<(u16, u16)> {
    let buf = t.backend().buffer();
    for y in from..buf.area.height {
        let row: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(byte) = row.find(text) {
            return Some((row[..byte].chars().count() as u16, y));
        }
    }
    None
}

/// A rollback cut off on this server (an old container renamed aside with compose's labels still
/// on) is named in the header on connecting, with the key that offers finish or restore.
#[test]
fn header_names_a_rollback_cut_off() {
    use crate::engine::model::State;
    let mut list = fixtures::shop();
    let mut old = fixtures::replica("shop", "web", 1);
    old.name = "shop-web-1-berth-kept-20261124024800".into();
    old.id = "5c5c5c5c5c5c".repeat(5);
    old.state = State::Exited;
    list.push(old);
    let app = app_sized(list, Target::local(), 200, 14);
    let text = format!("{:?}", render(&app).backend());
    assert!(
        text.contains("⚠ shop-web-1: rollback cut off — B on it to finish or restore"),
        "{text}"
    );
    // Three cut off, on a read-only console: two names and a count, and the read-only mark
    // stays on the line (beside the name, before anything that grows).
    let mut list = fixtures::shop();
    for (i, service) in ["web", "api", "worker"].into_iter().enumerate() {
        let mut old = fixtures::replica("shop", service, 1);
        old.name = format!("shop-{service}-1-berth-kept-20261124024800");
        old.id = format!("{i}c5c5c5c5c5c").repeat(5);
        old.state = State::Exited;
        list.push(old);
    }
    let mut target = Target::local();
    target.read_only = true;
    let header = |width: u16| {
        let app = app_sized(list.clone(), target.clone(), width, 14);
        format!("{}", render(&app).backend())
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        header(120).contains("local · read-only  ● live"),
        "{}",
        header(120)
    );
    assert!(
        header(200).contains(" +1 more: rollback cut off — B on it"),
        "{}",
        header(200)
    );
    // A new container not yet under its name, from a run that started a minute ago: that run
    // may still be going from another machine, and the header says so.
    let mut list = fixtures::shop();
    let mut new = fixtures::replica("shop", "web", 1);
    new.name = "shop-web-1-berth-new-20261124024800".into();
    new.id = "6d6d6d6d6d6d".repeat(5);
    new.created = Some(fixtures::now() - chrono::Duration::seconds(70));
    list.push(new);
    let young = app_sized(list, Target::local(), 240, 14);
    let text = format!("{:?}", render(&young).backend());
    assert!(
        text.contains("⚠ shop-web-1: rollback cut off, or still running from elsewhere (started 1m ago) — if none runs, B on it"),
        "{text}"
    );
    let calm = app_sized(fixtures::shop(), Target::local(), 200, 14);
    let text = format!("{:?}", render(&calm).backend());
    assert!(!text.contains("cut off"), "{text}");
}

/// Connected, but the engine's first listing is still on its way: the console says it is listing,
/// never `● live` over "no containers"; once an (empty) listing arrives, it is live and empty.
#[test]
fn listing_until_the_first_list_arrives_then_live() {
    let mut app = connected_sized(Target::local(), 100, 10);
    let session = app.session;
    let t = render(&app);
    let text = format!("{:?}", t.backend());
    assert!(
        text.contains("◌ listing…") && text.contains("listing containers…"),
        "{text}"
    );
    assert!(
        !text.contains("● live") && !text.contains("no containers"),
        "{text}"
    );
    insta::assert_snapshot!("listing_before_the_first_list", t.backend());

    app.update(Action::Engine {
        session,
        event: EngineEvent::Snapshot(vec![]),
    });
    let t = render(&app);
    let text = format!("{:?}", t.backend());
    assert!(
        text.contains("● live") && text.contains("no containers on this engine"),
        "{text}"
    );
    assert!(!text.contains("listing"), "{text}");
    insta::assert_snapshot!("live_after_an_empty_list", t.backend());
}
