//! Docker Swarm on the real engine: the test engine is made a single-node swarm manager
//! (`docker swarm init --advertise-addr 127.0.0.1`) when it is not one already, and left again
//! afterwards only if these tests made it one. The tests of this file run one at a time (they share
//! the engine's one swarm and one of them drains its only node). Services are created with the
//! FROM-scratch fixtures through the docker CLI (the API), a stack with `docker stack deploy`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{
    BERTH_TIMEOUT, OutputWithin, Scope, docker, docker_try, fresh_home, isolate, wait_until,
};

static SWARM: Mutex<()> = Mutex::new(());

/// A stack of two services on the web fixture, stopped within a second.
const TWO_WEB_SERVICES: &str = "version: \"3.8\"\nservices:\n  a:\n    image: berth-test/web:v1\n    stop_grace_period: 1s\n  b:\n    image: berth-test/web:v1\n    stop_grace_period: 1s\n";

/// The swarm for one test: held alone, with the services it created removed and the swarm left
/// at the end when this guard made it.
struct Swarm {
    created: bool,
    services: Vec<String>,
    stacks: Vec<String>,
    scope: Scope,
    home: PathBuf,
    _lock: MutexGuard<'static, ()>,
}

impl Swarm {
    fn join(area: &str) -> Swarm {
        let lock = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        let created = if state.trim() == "active" {
            false
        } else {
            // Right after a `swarm leave` the engine may still be tearing the old swarm down.
            let mut said = String::new();
            let inited = wait_until(Duration::from_secs(20), Duration::from_secs(1), || {
                let (ok, out) = docker_try(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
                said = out;
                ok || docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim() == "active"
            });
            assert!(inited, "docker swarm init: {said}");
            true
        };
        Swarm {
            created,
            services: Vec::new(),
            stacks: Vec::new(),
            scope: Scope::new(area),
            home: fresh_home(),
            _lock: lock,
        }
    }

    fn name(&self, suffix: &str) -> String {
        self.scope.name(suffix)
    }

    /// `docker service create` with a unique name; returns it once every task runs.
    fn service(&mut self, suffix: &str, args: &[&str]) -> String {
        let name = self.name(suffix);
        let mut all = vec!["service", "create", "--detach", "--name", name.as_str()];
        all.extend_from_slice(args);
        docker(&all);
        self.services.push(name.clone());
        name
    }

    /// `docker stack deploy` of `compose` (written to a temporary file) under a unique name.
    fn stack(&mut self, compose: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "stack.yml", compose);
        let stack = self.scope.project();
        let (ok, out) = docker_try(&["stack", "deploy", "-c", file.to_str().unwrap(), &stack]);
        assert!(ok, "stack deploy: {out}");
        self.stacks.push(stack.clone());
        stack
    }

    /// Waits until `docker service ls` says every wanted task runs.
    fn wait_running(&self, name: &str, n: usize) {
        let want = format!("{n}/{n}");
        assert!(
            wait_until(Duration::from_secs(90), Duration::from_millis(300), || {
                docker_try(&[
                    "service",
                    "ls",
                    "--filter",
                    &format!("name={name}"),
                    "--format",
                    "{{.Name}} {{.Replicas}}",
                ])
                .1
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [name, want.as_str()])
            }),
            "{name} never reached {want}: {}",
            docker_try(&["service", "ps", "--no-trunc", name]).1
        );
    }

    /// berth with this test's own HOME (so its audit log is this test's).
    fn berth(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        isolate(&mut c, &self.home);
        c.args(args).output_within(BERTH_TIMEOUT).unwrap()
    }

    fn audit(&self) -> String {
        text(&self.berth(&["audit", "--json"]))
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        for s in &self.stacks {
            let _ = docker_try(&["stack", "rm", s]);
        }
        for s in &self.services {
            let _ = docker_try(&["service", "rm", s]);
        }
        // The tasks' containers go with their services; wait so the next test starts clean.
        let prefix = self.scope.prefix.clone();
        wait_until(Duration::from_secs(30), Duration::from_millis(300), || {
            docker_try(&["ps", "-aq", "--filter", &format!("name={prefix}")])
                .1
                .trim()
                .is_empty()
        });
        if self.created {
            let _ = docker_try(&["swarm", "leave", "--force"]);
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

fn service_image(name: &str) -> String {
    docker(&[
        "service",
        "inspect",
        "-f",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        name,
    ])
    .split('@')
    .next()
    .unwrap_or("")
    .to_string()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn services_nodes_tasks_and_logs_of_a_stack_and_a_service() {
    let mut swarm = Swarm::join("swls");
    let stack = swarm.stack(
        "version: \"3.8\"\nservices:\n  web:\n    image: berth-test/web:v1\n    deploy:\n      replicas: 2\n  log:\n    image: berth-test/logger:latest\n    environment:\n      LOG_INTERVAL: \"0.2\"\n",
    );
    let web = format!("{stack}_web");
    let log = format!("{stack}_log");
    swarm.wait_running(&web, 2);
    swarm.wait_running(&log, 1);
    let lone = swarm.service("lone", &["--mode", "global", "berth-test/web:v2"]);
    swarm.wait_running(&lone, 1);

    let out = swarm.berth(&["services", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let services = json(&out);
    let find = |n: &str| {
        services
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing: {services}"))
    };
    let w = find(&web);
    assert_eq!(w["stack"], stack.as_str());
    assert_eq!(w["mode"], "replicated");
    assert_eq!(
        (w["running"].as_u64(), w["desired"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(w["image"], "berth-test/web:v1");
    assert!(w["update_state"].is_null(), "never updated: {w}");
    let l = find(&lone);
    assert_eq!(l["mode"], "global");
    assert!(l["stack"].is_null());

    let table = text(&swarm.berth(&["services"]));
    assert!(
        table.contains(&stack) && table.contains("2/2") && table.contains("(no stack)"),
        "{table}"
    );

    let out = swarm.berth(&["nodes", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let nodes = json(&out);
    let me = &nodes[0];
    assert_eq!(me["role"], "manager");
    assert_eq!(me["leader"], true);
    assert_eq!(me["availability"], "active");
    assert_eq!(me["status"], "ready");
    assert!(me["tasks"].as_u64().unwrap() >= 4, "{me}");

    // ps: a stack lists its tasks, with node, state and health of the local containers.
    let out = swarm.berth(&["ps", &stack]);
    let ps = text(&out);
    assert!(out.status.success(), "{ps}");
    assert!(
        ps.contains(&format!("{web}.1")) && ps.contains(&format!("{web}.2")),
        "{ps}"
    );
    assert!(ps.contains("running"), "{ps}");
    let out = swarm.berth(&["ps", &web, "--json"]);
    let tasks = json(&out);
    assert_eq!(tasks.as_array().unwrap().len(), 2, "{tasks}");
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(500), || {
            json(&swarm.berth(&["ps", &web, "--json"]))
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["health"] == "healthy")
        }),
        "the local tasks' health: {}",
        text(&swarm.berth(&["ps", &web, "--json"]))
    );

    // logs: the service's tasks through the manager, prefixed by task.
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(300),
        || { text(&swarm.berth(&["logs", &log])).contains("seq=3") }
    ));
    let out = swarm.berth(&["logs", &stack, "--since", "1h"]);
    let logs = text(&out);
    assert!(out.status.success(), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.starts_with(&format!("{log}.1")) && l.contains("| seq=")),
        "task prefixes: {logs}"
    );
    // stats: the stack's tasks on the manager's own node, read like containers.
    let out = swarm.berth(&["stats", &stack, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let stats = json(&out);
    let names: Vec<&str> = stats["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "2 web tasks and 1 log task: {stats}");
    assert!(names.iter().all(|n| n.starts_with(&stack)), "{names:?}");

    let out = swarm.berth(&["logs", "no-such-thing-anywhere"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("berth services"), "{}", text(&out));
}

#[test]
fn scale_update_rollback_and_restart_through_the_runbook() {
    let mut swarm = Swarm::join("swrb");
    let svc = swarm.service(
        "web",
        &[
            "--replicas",
            "1",
            "--stop-grace-period",
            "1s",
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&svc, 1);

    let out = swarm.berth(&["scale", &format!("{svc}=2"), "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Plan: scale") && said.contains("2 task(s) running"),
        "{said}"
    );
    swarm.wait_running(&svc, 2);

    let out = swarm.berth(&["rollback", &svc, "--to", "v2", "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("parallelism 1, order start-first, monitor 5 s, failure action rollback"),
        "the plan states the update config: {said}"
    );
    assert_eq!(service_image(&svc), "berth-test/web:v2");
    let services = json(&swarm.berth(&["services", "--json"]));
    let me = services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == svc.as_str())
        .unwrap()
        .clone();
    assert_eq!(me["update_state"], "completed", "{me}");
    assert_eq!(me["image"], "berth-test/web:v2");

    // The swarm's own rollback: back to the previous spec.
    let out = swarm.berth(&["rollback", &svc, "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("previous spec") && said.contains("rolled back"),
        "{said}"
    );
    assert_eq!(service_image(&svc), "berth-test/web:v1");

    let out = swarm.berth(&["restart", &svc, "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("force a rolling update") && said.contains("update completed"),
        "{said}"
    );
    swarm.wait_running(&svc, 2);

    // Every change audited: started, then its result.
    let audit = swarm.audit();
    for action in ["scale", "rollback", "restart"] {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("\"action\":\"{action}\""))
                    && l.contains("\"result\":\"started\"")),
            "{action} started: {audit}"
        );
    }
    assert!(
        audit
            .lines()
            .filter(|l| l.contains("\"result\":\"ok\""))
            .count()
            >= 4,
        "{audit}"
    );
}

#[test]
fn an_update_that_never_gets_healthy_is_rolled_back_by_the_swarm() {
    let mut swarm = Swarm::join("swbad");
    let svc = swarm.service(
        "web",
        &[
            "--replicas",
            "1",
            "--stop-grace-period",
            "1s",
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&svc, 1);
    let out = swarm.berth(&["rollback", &svc, "--to", "bad", "--yes"]);
    let said = text(&out);
    assert!(
        !out.status.success(),
        "an unhealthy image must fail: {said}"
    );
    assert!(
        said.contains("the swarm rolled") && said.contains("task errors"),
        "the swarm's rollback reported, with the task errors: {said}"
    );
    assert_eq!(
        service_image(&svc),
        "berth-test/web:v1",
        "the swarm put v1 back"
    );
    swarm.wait_running(&svc, 1);
    let audit = swarm.audit();
    assert!(
        audit.lines().any(|l| l.contains("\"result\":\"failed\"")),
        "{audit}"
    );
}

#[test]
fn bad_input_read_only_and_hostile_names() {
    let mut swarm = Swarm::join("swbadin");
    let svc = swarm.service("web", &["--replicas", "1", "berth-test/web:v1"]);
    // A stack label carrying an escape sequence (a hostile or broken deploy).
    let evil = swarm.service(
        "evil",
        &[
            "--replicas",
            "0",
            "--label",
            "com.docker.stack.namespace=ev\u{1b}[2J\u{1b}]0;owned\u{7}il",
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&svc, 1);

    let out = swarm.berth(&["services"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", text(&out));
    assert!(table.contains(&evil), "{table}");
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "escape sequences cleaned: {table:?}"
    );
    let out = swarm.berth(&["services", "--json"]);
    assert!(
        !out.stdout.contains(&0x1b),
        "JSON carries no raw escape either"
    );

    let out = swarm.berth(&["--read-only", "scale", &format!("{svc}=3"), "--yes"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("read-only"), "{}", text(&out));

    let out = swarm.berth(&["scale", "nope-no-such-service=2", "--yes"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("berth services"), "{}", text(&out));

    let out = swarm.berth(&["scale", &svc]);
    assert!(!out.status.success());
    assert!(text(&out).contains("SERVICE=REPLICAS"), "{}", text(&out));

    let out = swarm.berth(&["scale", &format!("{svc}=1"), "--yes"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already wants 1"), "{}", text(&out));

    let out = swarm.berth(&["rollback", &svc, "--yes"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no previous spec"), "{}", text(&out));

    // Not confirmed on a pipe without --yes: nothing changes.
    let out = swarm.berth(&["scale", &format!("{svc}=2")]);
    assert!(!out.status.success());
    assert_eq!(
        docker(&[
            "service",
            "inspect",
            "-f",
            "{{.Spec.Mode.Replicated.Replicas}}",
            &svc
        ]),
        "1"
    );
}

#[test]
fn draining_the_only_node_stops_its_tasks_and_activate_brings_them_back() {
    let mut swarm = Swarm::join("swdrain");
    let svc = swarm.service(
        "web",
        &[
            "--replicas",
            "1",
            "--stop-grace-period",
            "1s",
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&svc, 1);
    let node = docker(&["node", "ls", "--format", "{{.Hostname}}"]);
    let node = node.lines().next().unwrap().to_string();
    let out = swarm.berth(&["drain", &node, "--yes"]);
    let said = text(&out);
    // Activate whatever happened, so the engine is left usable.
    let back = swarm.berth(&["activate", &node, "--yes"]);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("no other node is active"),
        "the plan says where tasks go: {said}"
    );
    assert!(
        said.contains(&format!("{svc}.1")),
        "the plan names the task that moves: {said}"
    );
    assert!(said.contains("drained"), "{said}");
    assert!(back.status.success(), "{}", text(&back));
    swarm.wait_running(&svc, 1);
}

#[test]
fn console_swarm_view_shows_tasks_and_restarts_the_selected_service() {
    let mut swarm = Swarm::join("swtui");
    let svc = swarm.service(
        "web",
        &[
            "--replicas",
            "2",
            "--stop-grace-period",
            "1s",
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&svc, 2);
    let mut s = common::pty::Session::sized(40, 200, &[], &[]);
    assert!(
        s.wait_for("● live", Duration::from_secs(20)),
        "{}",
        s.text()
    );
    s.type_keys("Z");
    assert!(
        s.wait_for(&svc, Duration::from_secs(15)) && s.wait_for("slot 2", Duration::from_secs(10)),
        "the service and its tasks on screen:\n{}",
        s.text()
    );
    assert!(
        s.text().contains("2/2") && s.text().contains("healthy"),
        "{}",
        s.text()
    );
    // Row 0 is the "(no stack)" heading; the service is below it.
    s.type_keys("j");
    s.type_keys("R");
    assert!(
        s.wait_for("force a rolling update", Duration::from_secs(15)),
        "the plan:\n{}",
        s.text()
    );
    s.type_keys("y");
    assert!(
        s.wait_for("update completed", Duration::from_secs(150)),
        "the run verified:\n{}",
        s.text()
    );
    // Esc and N apart: together a terminal reads them as Alt-N.
    s.type_keys("\u{1b}");
    assert!(s.wait_for("NAME", Duration::from_secs(10)), "{}", s.text());
    s.type_keys("N");
    assert!(
        s.wait_for("AVAILABILITY", Duration::from_secs(10)),
        "{}",
        s.text()
    );
    assert!(s.text().contains("★"), "the leader marked:\n{}", s.text());
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

/// The CPU% the swarm view shows on the task line of `slot 1`, once it shows one.
fn slot_cpu(screen: &str) -> Option<f64> {
    let line = screen.lines().find(|l| l.contains("slot 1 @"))?;
    line.split_whitespace()
        .find_map(|w| w.strip_suffix('%')?.parse::<f64>().ok())
}

#[test]
fn console_swarm_view_shows_the_cpu_of_a_busy_task_on_this_node() {
    let mut swarm = Swarm::join("swcpu");
    // Held to half a core so the loop does not starve the shared machine.
    let svc = swarm.service(
        "busy",
        &[
            "--no-healthcheck",
            "--limit-cpu",
            "0.5",
            "--stop-grace-period",
            "1s",
            "berth-test/web:v1",
            "sh",
            "-c",
            "while :; do :; done",
        ],
    );
    swarm.wait_running(&svc, 1);
    let mut s = common::pty::Session::sized(30, 200, &[], &[]);
    assert!(
        s.wait_for("● live", Duration::from_secs(20)),
        "{}",
        s.text()
    );
    s.type_keys("Z");
    assert!(
        s.wait_for(&svc, Duration::from_secs(15))
            && s.wait_for("slot 1 @", Duration::from_secs(10)),
        "the service and its task on screen:\n{}",
        s.text()
    );
    let busy = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        slot_cpu(&s.text()).is_some_and(|cpu| cpu >= 10.0)
    });
    assert!(
        busy,
        "the busy task's line shows its CPU (read {:?}):\n{}",
        slot_cpu(&s.text()),
        s.text()
    );
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

fn inspect(name: &str, format: &str) -> String {
    docker(&["service", "inspect", "-f", format, name])
        .trim()
        .to_string()
}

#[test]
fn a_stack_restarts_and_rolls_back_service_after_service() {
    let mut swarm = Swarm::join("swstk");
    let stack = swarm.stack(TWO_WEB_SERVICES);
    let (a, b) = (format!("{stack}_a"), format!("{stack}_b"));
    swarm.wait_running(&a, 1);
    swarm.wait_running(&b, 1);

    // Restart: one plan over both services, each converged before the next starts.
    let out = swarm.berth(&["restart", &stack, "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("restart stack {stack} (2 service(s)"))
            && said.contains(&format!("force a rolling update of {a}"))
            && said.contains(&format!("force a rolling update of {b}")),
        "one plan listing each service's change: {said}"
    );
    for s in [&a, &b] {
        assert_eq!(inspect(s, "{{.Spec.TaskTemplate.ForceUpdate}}"), "1", "{s}");
    }
    let a_done = inspect(
        &a,
        "{{.UpdateStatus.CompletedAt.Format \"2006-01-02T15:04:05.000000000Z07:00\"}}",
    );
    let b_began = inspect(
        &b,
        "{{.UpdateStatus.StartedAt.Format \"2006-01-02T15:04:05.000000000Z07:00\"}}",
    );
    assert!(
        a_done <= b_began,
        "{b} started ({b_began}) only after {a} converged ({a_done})"
    );

    // b moves to v2 by hand; the stack's rollback takes each service to its previous spec.
    docker(&[
        "service",
        "update",
        "--quiet",
        "--image",
        "berth-test/web:v2",
        &b,
    ]);
    swarm.wait_running(&b, 1);
    let out = swarm.berth(&["rollback", &stack, "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("roll back stack {stack}"))
            && said.contains("berth-test/web:v2 → berth-test/web:v1"),
        "{said}"
    );
    assert_eq!(service_image(&b), "berth-test/web:v1");
    assert_eq!(inspect(&a, "{{.Spec.TaskTemplate.ForceUpdate}}"), "0");

    // --to names one image, not a stack's.
    let out = swarm.berth(&["rollback", &stack, "--to", "v2", "--yes"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is a stack"), "{}", text(&out));

    // Audited per service: each one started, then ok, for both actions.
    let audit = swarm.audit();
    for action in ["restart", "rollback"] {
        for s in [&a, &b] {
            let lines: Vec<&str> = audit
                .lines()
                .filter(|l| {
                    l.contains(&format!("\"action\":\"{action}\""))
                        && l.contains(&format!("\"target\":\"{s}\""))
                })
                .collect();
            assert!(
                lines.iter().any(|l| l.contains("\"result\":\"started\""))
                    && lines.iter().any(|l| l.contains("\"result\":\"ok\"")),
                "{action} {s} started and ok: {audit}"
            );
        }
    }
}

#[test]
fn a_stack_run_stops_at_the_first_service_that_fails_and_says_which_were_done() {
    let mut swarm = Swarm::join("swstkf");
    let stack = swarm.stack(TWO_WEB_SERVICES);
    let (a, b) = (format!("{stack}_a"), format!("{stack}_b"));
    swarm.wait_running(&a, 1);
    swarm.wait_running(&b, 1);
    // a's previous spec is an image that never gets healthy; b's is v1 (it runs v2).
    docker(&[
        "service",
        "update",
        "--detach",
        "--image",
        "berth-test/web:bad",
        &a,
    ]);
    docker(&[
        "service",
        "update",
        "--quiet",
        "--image",
        "berth-test/web:v1",
        &a,
    ]);
    docker(&[
        "service",
        "update",
        "--quiet",
        "--image",
        "berth-test/web:v2",
        &b,
    ]);
    swarm.wait_running(&a, 1);
    swarm.wait_running(&b, 1);

    let out = swarm.berth(&["rollback", &stack, "--yes"]);
    let said = text(&out);
    assert!(!out.status.success(), "a's rollback must fail: {said}");
    assert!(
        said.contains(&format!("stopped at {a}")) && said.contains(&format!("not run: {b}")),
        "which service stopped the run, which were not run: {said}"
    );
    assert_eq!(service_image(&b), "berth-test/web:v2", "b was left alone");
    let audit = swarm.audit();
    assert!(
        audit
            .lines()
            .any(|l| l.contains(&format!("\"target\":\"{a}\""))
                && l.contains("\"result\":\"failed\"")),
        "{audit}"
    );
    assert!(
        !audit
            .lines()
            .any(|l| l.contains(&format!("\"target\":\"{b}\""))),
        "b never started: {audit}"
    );
}
