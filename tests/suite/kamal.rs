//! Kamal's containers on the real engine: labelled `service`/`role`/`destination` and named
//! `<service>-<role>-<destination>-<version>`, grouped app → role by `berth ps`, and reached by
//! their Kamal names from `berth logs`, `berth stats` and `berth restart`.

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
    let app = scope.project();
    let suffix = format!("{role}-{destination}-{version}");
    let labels = [
        format!("service={app}"),
        format!("role={role}"),
        format!("destination={destination}"),
    ];
    scope.run(
        &suffix,
        &[
            "--label",
            &labels[0],
            "--label",
            &labels[1],
            "--label",
            &labels[2],
            "berth-test/web:v1",
            "sh",
            "-c",
            &format!("echo {say}; exec httpd -f -p 8080 -h /www"),
        ],
    )
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
    assert!(group.contains("web-4a5b6c7"), "{t}");
    assert!(group.contains("job-4a5b6c7"), "{t}");

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
