//! Every width from 60 to 300 columns: what the header and the list keep, and where each field
//! first appears whole. `cargo test --lib widths_tests -- --nocapture` prints the table.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::tests::{app_sized, render};
use crate::action::{Action, EngineEvent};
use crate::app::App;
use crate::engine::model::State;
use crate::fixtures;
use crate::target::Target;

/// The shop with a rollback cut off, an SSH link answering in 3 ms and the host's numbers: every
/// field the header can show.
pub(super) fn busy_app(width: u16) -> App {
    let mut list = fixtures::shop();
    let mut old = fixtures::replica("shop", "web", 1);
    old.name = "shop-web-1-berth-kept-20261124024800".into();
    old.id = "5c5c5c5c5c5c".repeat(5);
    old.state = State::Exited;
    list.push(old);
    let mut app = app_sized(list, Target::local(), width, 14);
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Link(crate::ssh::LinkStatus::Connected {
            rtt: std::time::Duration::from_millis(3),
        }),
    });
    super::stats_tests::feed_host(&mut app);
    app
}

pub(super) fn row(t: &Terminal<TestBackend>, y: u16) -> String {
    let buf = t.backend().buffer();
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

const HEADER_FIELDS: &[&str] = &[
    "local",
    "● live",
    "✖ 1 unhealthy",
    "rollback cut off",
    "4/8 running",
    "3 ms",
    "host cpu",
    "disk 93%",
    "unix socket",
    "Docker 27.3.1",
    "berth",
];

const LIST_COLUMNS: &[&str] = &[
    "NAME", "STATE", "HEALTH", "UPTIME", "CPU%", "MEM ", "IMAGE", "RST", "MEM%", "PORTS", "NET",
    "BLOCK", "PIDS", "ID",
];

/// For each field, the first width in 60..=300 at which row `y` shows it, and whether it stays at
/// every wider width. Each width is drawn once.
fn first_widths(fields: &[&str], y: u16, app: impl Fn(u16) -> App) -> Vec<Option<(u16, bool)>> {
    let rows: Vec<String> = (60..=300u16).map(|w| row(&render(&app(w)), y)).collect();
    fields
        .iter()
        .map(|field| {
            let seen: Vec<bool> = rows.iter().map(|r| r.contains(field)).collect();
            let first = seen.iter().position(|s| *s)?;
            Some((60 + first as u16, seen[first..].iter().all(|s| *s)))
        })
        .collect()
}

#[test]
fn header_keeps_the_state_at_every_width_and_reports_where_fields_appear() {
    let mut table = String::new();
    let header = first_widths(HEADER_FIELDS, 0, busy_app);
    for (field, first) in HEADER_FIELDS.iter().zip(&header) {
        table.push_str(&format!("header {field:<18} {first:?}\n"));
    }
    let columns = first_widths(LIST_COLUMNS, 2, |w| {
        app_sized(fixtures::shop(), Target::local(), w, 14)
    });
    for (col, first) in LIST_COLUMNS.iter().zip(&columns) {
        table.push_str(&format!("column {col:<18} {first:?}\n"));
    }
    println!("{table}");
    // Once a field shows, it stays at every wider width.
    for (field, first) in HEADER_FIELDS
        .iter()
        .chain(LIST_COLUMNS)
        .zip(header.iter().chain(&columns))
    {
        assert!(
            matches!(first, Some((_, true))),
            "{field}: {first:?}\n{table}"
        );
    }
    // The server, the link and the unhealthy count, at every width, in that order.
    for w in 60..=300u16 {
        let header = row(&render(&busy_app(w)), 0);
        let at = |f: &str| header.find(f);
        let (name, live, bad) = (at("local"), at("● live"), at("✖ 1 unhealthy"));
        assert!(
            name.is_some() && live.is_some() && bad.is_some(),
            "{w} columns: {header}"
        );
        assert!(name < live && live < bad, "{w} columns: {header}");
    }
}

/// The widths every screen is recorded at.
const WIDTHS: [u16; 5] = [60, 80, 120, 160, 220];

fn resized(mut app: App, w: u16, h: u16) -> App {
    app.update(Action::Resize(w, h));
    app
}

/// Each screen at each width: what it keeps is what the snapshot shows.
fn snap_widths(name: &str, app: impl Fn(u16) -> App) {
    for w in WIDTHS {
        let app = app(w);
        insta::assert_snapshot!(format!("{name}_{w}"), render(&app).backend());
    }
}

#[test]
fn list_at_every_width() {
    snap_widths("list", busy_app);
}

#[test]
fn fleet_at_every_width() {
    use super::fleet_tests::{answered, fleet_app, unreachable};
    snap_widths("fleet", |w| {
        let mut app = fleet_app(w, 12);
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
        app
    });
}

#[test]
fn swarm_at_every_width() {
    snap_widths("swarm", |w| {
        resized(super::swarm_tests::swarm_app("Z"), w, 22)
    });
}

#[test]
fn help_at_every_width() {
    snap_widths("help", |w| {
        let mut app = app_sized(fixtures::shop(), Target::local(), w, 30);
        super::tests::press(&mut app, "?");
        app
    });
    // No help line is cut inside a word: every row of the box ends at a word or the border.
    for w in WIDTHS {
        let mut app = app_sized(fixtures::shop(), Target::local(), w, 200);
        super::tests::press(&mut app, "?");
        let t = render(&app);
        let text = format!("{}", t.backend());
        for cut in [
            "(asks f│",
            "(read-only: dis│",
            "selected contai│",
            "(Esc re│",
        ] {
            assert!(!text.contains(cut), "{w} columns cut a word: {cut}\n{text}");
        }
    }
}

fn confirming(w: u16, h: u16) -> App {
    let mut target =
        Target::from_endpoint("prod", crate::target::Endpoint::Tcp("10.0.0.1:2375".into()));
    target.environment = Some("production".into());
    let mut app = app_sized(fixtures::shop(), target, w, h);
    let plan = crate::action::SharedPlan(std::sync::Arc::new(fixtures::plan(
        "rollback web to shop/web:v1",
        "web",
        3,
    )));
    app.update(Action::Runbook(crate::action::RunbookMsg::Planned(Ok(
        plan,
    ))));
    app
}

#[test]
fn confirmation_at_every_width() {
    snap_widths("confirm", |w| {
        let mut app = confirming(w, 24);
        super::tests::press(&mut app, "we");
        app
    });
}

/// The footer shows each hint whole or not at all.
#[test]
fn footers_never_cut_a_hint() {
    for w in 60..=160u16 {
        let app = app_sized(fixtures::shop(), Target::local(), w, 14);
        let t = render(&app);
        let footer = row(&t, 13);
        let trimmed = footer.trim_end();
        for tail in [" hos", " qui", " comman", " all ke", " rollbac"] {
            assert!(!trimmed.ends_with(tail), "{w}: {footer}");
        }
        assert!(trimmed.contains("? all keys"), "{w}: {footer}");
    }
}

/// 1×1, 10 000 columns and back, and a resize while a confirmation waits for its typed name: no
/// panic, the typed letters kept, the confirmation still readable, and it still answers.
#[test]
fn resizing_to_extremes_loses_nothing() {
    let mut app = confirming(110, 24);
    super::tests::press(&mut app, "we");
    for (w, h) in [(1, 1), (10_000, 40), (0, 0), (60, 10), (2, 300), (110, 24)] {
        app.update(Action::Resize(w, h));
        // Drawn at the size it was told (a zero-sized backend is not drawable: skip the draw).
        if w > 0 && h > 0 {
            let _ = render(&app);
        }
    }
    // The letters typed before survive; the rest of the name completes the confirmation.
    super::tests::press(&mut app, "b");
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("Type web"), "{text}");
    assert!(text.contains("web"), "{text}");
    let commands = {
        app.update(Action::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Enter,
            crossterm::event::KeyModifiers::NONE,
        )))
    };
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, crate::app::Command::RunPlan(_))),
        "the typed name went through after the resizes: {commands:?}"
    );
    // Every view at 1×1 and 10 000 columns draws.
    for keys in ["", "?", "E", "A", "Z", ":"] {
        for (w, h) in [(1, 1), (10_000, 12), (61, 10)] {
            let mut app = app_sized(fixtures::shop(), Target::local(), 100, 20);
            super::tests::press(&mut app, keys);
            app.update(Action::Resize(w, h));
            let _ = render(&app);
        }
    }
}
