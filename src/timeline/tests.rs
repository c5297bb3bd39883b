use chrono::{DateTime, TimeZone, Utc};

use super::render::{LineKind, json_lines, lines, markdown};
use super::*;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, h, m, s).unwrap()
}

fn event(time: DateTime<Utc>, action: &str, name: &str, code: Option<i64>) -> EngineEvent {
    EngineEvent {
        time,
        kind: "container".into(),
        action: action.into(),
        id: format!("id-{name}"),
        name: name.into(),
        exit_code: code,
        project: Some("shop".into()),
        service: Some(
            name.trim_start_matches("shop-")
                .trim_end_matches("-1")
                .into(),
        ),
        swarm_service: None,
        from_state: false,
    }
}

fn audit(time: DateTime<Utc>, result: &str) -> AuditEntry {
    AuditEntry {
        time,
        user: "ana@laptop".into(),
        server: "prod".into(),
        environment: None,
        action: "restart".into(),
        target: "shop/web".into(),
        parameters: serde_json::Value::Null,
        images_before: vec![],
        images_after: vec![],
        result: result.into(),
        message: String::new(),
        duration_ms: 10,
        ssh_user: None,
    }
}

fn inputs() -> Inputs {
    Inputs {
        server: "prod".into(),
        since: None,
        now: at(12, 0, 0),
        ..Default::default()
    }
}

#[test]
fn merges_engine_history_and_audit_in_time_order() {
    let mut i = inputs();
    i.engine = vec![
        event(at(11, 0, 0), "die", "shop-web-1", Some(3)),
        event(at(11, 0, 1), "start", "shop-web-1", None),
        // Noise: a health probe's exec.
        event(at(11, 0, 2), "exec_start: sh -c true", "shop-web-1", None),
    ];
    i.engine_total = 3;
    // The history holds one event the engine still has too, and an older one.
    i.history = vec![
        event(
            at(10, 55, 0),
            "health_status: unhealthy",
            "shop-web-1",
            None,
        ),
        event(at(11, 0, 0), "die", "shop-web-1", Some(3)),
    ];
    i.audit = vec![audit(at(11, 0, 0), "started"), audit(at(11, 0, 5), "ok")];
    i.logs = vec![(
        ("id-shop-web-1".into(), at(11, 0, 0)),
        vec!["boom \u{1b}[2Jcleared".into()],
    )];
    let t = build(&i);
    let whats: Vec<&str> = t.entries.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(
        whats,
        vec![
            "health: unhealthy",
            "the engine's history begins here: the engine restarted and its earlier events are gone; the entries before come from berth's own history of this server",
            "died, exit code 3",
            "restart started by ana@laptop",
            "started",
            "restart ok by ana@laptop",
        ]
    );
    let death = &t.entries[2];
    assert!(death.bad);
    assert_eq!(death.exit_code, Some(3));
    let text = lines(&t);
    let log = text.iter().find(|l| l.kind == LineKind::Log).unwrap();
    assert!(log.text.ends_with("│ boom cleared"), "{}", log.text);
    assert!(!text.iter().any(|l| l.text.contains('\u{1b}')));
}

#[test]
fn repeats_collapse_and_quiet_stretches_are_one_line() {
    let mut i = inputs();
    i.engine = (0..5)
        .map(|n| event(at(9, 0, n), "die", "shop-worker-1", Some(1)))
        .chain([event(at(11, 30, 0), "oom", "shop-worker-1", None)])
        .collect();
    i.engine_total = ENGINE_EVENTS_KEPT;
    let t = build(&i);
    assert_eq!(t.entries.len(), 4, "{:#?}", t.entries);
    assert!(t.entries[0].what.contains("keeps only its last 256 events"));
    assert_eq!(t.entries[1].repeated, 5);
    assert_eq!(t.entries[1].first_time, Some(at(9, 0, 0)));
    assert_eq!(t.entries[1].time, at(9, 0, 4));
    assert_eq!(t.entries[2].what, "quiet for 2h29m");
    assert_eq!(t.entries[3].what, "out of memory (OOM kill)");
    let text = lines(&t);
    assert!(
        text[2].text.ends_with("(×5 since 09:00:00)"),
        "{}",
        text[2].text
    );
}

#[test]
fn the_filter_and_the_window_choose_entries() {
    let mut i = inputs();
    i.engine = vec![
        event(at(10, 0, 0), "die", "shop-web-1", Some(0)),
        event(at(11, 0, 0), "die", "shop-web-1", Some(1)),
        event(at(11, 0, 0), "die", "shop-db-1", Some(1)),
    ];
    i.engine_total = 3;
    i.since = Some(at(10, 30, 0));
    i.names = vec!["shop/web".into()];
    i.audit = vec![audit(at(11, 1, 0), "failed")];
    let t = build(&i);
    let subjects: Vec<&str> = t.entries.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, vec!["shop/web (shop-web-1)", "restart shop/web"]);
    assert!(t.entries[1].bad);
}

#[test]
fn an_empty_engine_history_says_so() {
    let mut i = inputs();
    i.history = vec![event(at(9, 0, 0), "die", "shop-web-1", Some(2))];
    let t = build(&i);
    assert_eq!(t.entries.len(), 3);
    assert!(
        t.entries[2]
            .what
            .contains("it restarted and its history is gone")
    );
}

#[test]
fn markdown_and_json() {
    let mut i = inputs();
    i.engine = vec![event(at(11, 0, 0), "die", "shop-`web`-1", Some(3))];
    i.engine_total = 1;
    i.logs = vec![(
        ("id-shop-`web`-1".into(), at(11, 0, 0)),
        vec!["```".into(), "last".into()],
    )];
    let t = build(&i);
    let md = markdown(&t);
    assert!(md.starts_with("# Timeline: prod\n"), "{md}");
    assert!(md.contains("**2026-12-07 11:00:00 UTC**"), "{md}");
    assert!(md.contains("`shop/'web' (shop-'web'-1)`"), "{md}");
    assert_eq!(md.matches("```").count(), 2, "{md}");
    let json = json_lines(&t);
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1]["exit_code"], 3);
    assert_eq!(objects[1]["log"][1], "last");
    assert_eq!(objects[1]["source"], "engine");
}
