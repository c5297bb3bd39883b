//! Kamal's containers on the real engine: labelled `service`/`role`/`destination` and named
//! `<service>-<role>-<destination>-<version>`, grouped app → role by `berth ps`, and reached by
//! their Kamal names from `berth logs`, `berth stats` and `berth restart`; an action on a role
//! acts on its current release only, and `NAME@DESTINATION` selects one destination.

use crate::common;

use std::process::Output;
use std::time::Duration;

use common::{BERTH_TIMEOUT, OutputWithin, Scope, berth, docker, text};

fn run(args: &[&str]) -> Output {
    berth()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output_within(BERTH_TIMEOUT)
        .unwrap()
}

/// Starts a container the way Kamal names and labels it.
fn run_kamal(scope: &Scope, role: &str, destination: &str, version: &str, say: &str) -> String {
    run_release(scope, role, Some(destination), version, say)
}

/// A Kamal container of `role`, in `destination` (`None`: the default destination).
fn run_release(
    scope: &Scope,
    role: &str,
    destination: Option<&str>,
    version: &str,
    say: &str,
) -> String {
    let app = scope.project();
    let suffix = match destination {
        Some(d) => format!("{role}-{d}-{version}"),
        None => format!("{role}-{version}"),
    };
    let mut labels = vec![format!("service={app}"), format!("role={role}")];
    if let Some(d) = destination {
        labels.push(format!("destination={d}"));
    }
    let command = format!("echo {say}; exec httpd -f -p 8080 -h /www");
    // It exits on SIGKILL only (httpd as PID 1): a stop waits out its timeout, 1 s here.
    let mut args: Vec<&str> = vec!["--stop-timeout", "1"];
    for l in &labels {
        args.extend(["--label", l.as_str()]);
    }
    args.extend(["berth-test/web:v1", "sh", "-c", command.as_str()]);
    scope.run(&suffix, &args)
}

fn state(id: &str) -> (String, String) {
    let s = docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.StartedAt}}",
        id,
    ]);
    let (status, started) = s.trim().split_once(' ').unwrap_or((s.trim(), ""));
    (status.to_string(), started.to_string())
}

/// `berth restart APP/ROLE` after a deploy: the previous release, stopped, stays stopped; the
/// current one restarts; the plan names the old one as left alone. `@staging` restarts the
/// staging destination's current release and nothing of the default destination.
#[test]
fn an_action_on_a_kamal_role_touches_the_current_release_only() {
    let scope = Scope::new("kamal-rel");
    let app = scope.project();
    let old = run_release(&scope, "web", None, "3f2a1c7", "old");
    docker(&["stop", "-t", "1", &old]);
    let current = run_release(&scope, "web", None, "9b8e4d2", "current");
    let staging = run_release(&scope, "web", Some("staging"), "9b8e4d2", "staging");
    let (old_state, old_started) = state(&old);
    assert_eq!(old_state, "exited");
    let (_, current_started) = state(&current);
    let (_, staging_started) = state(&staging);

    // The destination shows in the listing and in JSON.
    let out = run(&["ps", "--all", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let of = |id: &str| {
        rows.iter()
            .find(|r| r["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("{id} in {rows:?}"))
            .clone()
    };
    assert_eq!(of(&staging)["destination"], "staging");
    assert!(of(&current)["destination"].is_null(), "{:?}", of(&current));
    let out = run(&["ps", "--all"]);
    let t = text(&out);
    assert!(t.contains("web-staging-9b8e4d2"), "{t}");

    let out = run(&["restart", &format!("{app}/web@staging"), "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(state(&staging).1, staging_started, "staging restarted");
    assert_eq!(
        state(&current).1,
        current_started,
        "the default destination untouched"
    );

    let out = run(&["restart", &format!("{app}/web"), "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let (old_after, old_started_after) = state(&old);
    assert_eq!(
        (old_after.as_str(), old_started_after.as_str()),
        ("exited", old_started.as_str()),
        "the previous release stays stopped: {t}"
    );
    assert_ne!(
        state(&current).1,
        current_started,
        "the current release restarted: {t}"
    );
    assert!(
        t.contains("left alone") && t.contains(&format!("{app}-web-3f2a1c7")),
        "the plan names the old release: {t}"
    );

    // A dry run prints the plan and changes nothing.
    let (_, before) = state(&current);
    let out = run(&["restart", &format!("{app}/web"), "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Dry run"), "{}", text(&out));
    assert_eq!(state(&current).1, before);
}

#[test]
fn kamal_apps_group_as_app_and_role_and_answer_to_their_names() {
    let scope = Scope::new("kamal");
    let app = scope.project();
    run_kamal(&scope, "web", "staging", "4a5b6c7", "web-says-hi");
    let job_id = run_kamal(&scope, "job", "staging", "4a5b6c7", "job-says-hi");

    let out = run(&["ps", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mine: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["project"].as_str() == Some(app.as_str()))
        .collect();
    let mut roles: Vec<&str> = mine.iter().filter_map(|r| r["service"].as_str()).collect();
    roles.sort();
    assert_eq!(roles, ["job", "web"], "{mine:?}");
    assert!(
        mine.iter().all(|r| r["version"] == "4a5b6c7"),
        "the version comes from the container's name: {mine:?}"
    );

    // The plain list groups them under the app, each role with its version.
    let out = run(&["ps"]);
    let t = text(&out);
    let group = t
        .split_once(&format!("\n{app}\n"))
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("a group named after the app: {t}"));
    assert!(group.contains("web-staging-4a5b6c7"), "{t}");
    assert!(group.contains("job-staging-4a5b6c7"), "{t}");

    // Logs by app/role and by the app alone.
    let mut last = String::new();
    let found = common::wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let out = run(&["logs", &format!("{app}/web")]);
        last = text(&out);
        out.status.success() && last.contains("web-says-hi")
    });
    assert!(found, "{last}");
    assert!(!last.contains("job-says-hi"), "only the web role: {last}");
    let out = run(&["logs", &app]);
    let t = text(&out);
    assert!(
        t.contains("web-says-hi") && t.contains("job-says-hi"),
        "{t}"
    );

    let out = run(&["stats", &format!("{app}/web"), "--json"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("web-staging-4a5b6c7"), "{t}");
    assert!(!t.contains("job-staging"), "{t}");

    let started = docker(&["inspect", "-f", "{{.State.StartedAt}}", &job_id]);
    let out = run(&["restart", &format!("{app}/job"), "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let restarted = docker(&["inspect", "-f", "{{.State.StartedAt}}", &job_id]);
    assert_ne!(started, restarted, "the job role's container was restarted");
}
