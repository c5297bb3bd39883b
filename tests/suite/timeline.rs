//! `berth timeline` on the real engine: a container that dies after logging, a health check that
//! fails and a change berth made appear in time order, as text, JSON lines and Markdown; the
//! engine's events are kept in berth's own history for the next timeline.

use crate::common;

use std::time::Duration;

use common::{BERTH_TIMEOUT, OutputWithin, Scope, docker, fresh_home, inspect, isolate, text};

fn berth_in(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    isolate(&mut c, home);
    c.args(args).output_within(BERTH_TIMEOUT).unwrap()
}

#[test]
fn deaths_health_and_berths_runs_in_one_account() {
    let scope = Scope::new("timeline");
    let home = fresh_home();
    let project = scope.project();
    // A worker that logs, then dies with exit code 3.
    let worker = scope.run_service(
        "worker",
        1,
        &[
            "berth-test/logger",
            "sh",
            "-c",
            "echo starting up; echo 'last words \u{1b}[31mbefore\u{1b}[0m death'; exit 3",
        ],
    );
    assert_eq!(docker(&["wait", &worker]).trim(), "3");
    // A web replica whose health check fails.
    // Killed at once by a stop, so no probe runs during it.
    let web = scope.run_service("web", 1, &["--stop-signal", "KILL", "berth-test/web:bad"]);
    assert!(
        common::wait_until(Duration::from_secs(60), Duration::from_millis(250), || {
            inspect(&web, "{{.State.Health.Status}}") == "unhealthy"
        }),
        "the web replica never turned unhealthy"
    );
    // A change made through berth: audited, and its engine events follow it.
    let web_name = scope.name("web-1");
    let out = berth_in(&home, &["stop", &web_name, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inspect(&web, "{{.State.Running}}"), "false");

    let out = berth_in(&home, &["timeline", "--since", "30m", "--json", &project]);
    assert!(out.status.success(), "{}", text(&out));
    let entries: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool, what: &str| {
        entries
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no {what} in {entries:#?}"))
    };
    let worker_name = scope.name("worker-1");
    let death = find(
        &|e| e["subject"].as_str().unwrap_or("").contains(&worker_name) && e["exit_code"] == 3,
        "death with exit code 3",
    );
    let log: Vec<&str> = entries[death]["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    // The engine's own record agrees on the code; the last lines are there, sanitised.
    assert_eq!(inspect(&worker, "{{.State.ExitCode}}"), "3");
    assert_eq!(log, vec!["starting up", "last words before death"]);
    assert_eq!(entries[death]["bad"], true);
    let unhealthy = find(
        &|e| {
            e["subject"].as_str().unwrap_or("").contains(&web_name)
                && e["what"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("health: unhealthy")
        },
        "health change",
    );
    let started = find(
        &|e| e["source"] == "audit" && e["what"].as_str().unwrap_or("").starts_with("stop started"),
        "audit line of the stop",
    );
    // Its engine event, or the container's own record of it when the engine's events moved on.
    let stopped = find(
        &|e| {
            e["source"] == "engine"
                && e["subject"].as_str().unwrap_or("").contains(&web_name)
                && e["what"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("died, exit code")
        },
        "the web replica's death by the stop",
    );
    let ended = find(
        &|e| e["source"] == "audit" && e["what"].as_str().unwrap_or("").starts_with("stop ok"),
        "audit line of the stop's end",
    );
    assert!(death < unhealthy, "time order: {entries:#?}");
    assert!(
        unhealthy < started && started < stopped && stopped < ended,
        "{entries:#?}"
    );
    // The filter: nothing of another project.
    assert!(
        entries.iter().all(
            |e| e["source"] == "note" || e["subject"].as_str().unwrap_or("").contains(&project)
        ),
        "{entries:#?}"
    );

    let out = berth_in(&home, &["timeline", "--since", "30m", "--md", &project]);
    assert!(out.status.success(), "{}", text(&out));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("# Timeline: local\n"), "{md}");
    assert!(md.contains(" UTC** ("), "{md}");
    assert!(md.contains("died, exit code 3"), "{md}");
    assert!(md.contains("  last words before death\n"), "{md}");
    assert!(!md.contains('\u{1b}'));

    // The events the timeline read are in berth's history now, for when the engine forgets them.
    let history = home.join(".local/share/berth/events/local.jsonl");
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(
        kept.lines()
            .any(|l| l.contains(&worker) && l.contains("\"exit_code\":3")),
        "{kept}"
    );
}

#[test]
fn a_bad_since_is_one_line() {
    let home = fresh_home();
    let out = berth_in(&home, &["timeline", "--since", "yesterday-ish"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad since 'yesterday-ish'"), "{err}");
}
