//! Docker Swarm on engines of the tests' own: each test starts a dockerd in network and UTS
//! namespaces of its own (`common::dockerd`), makes it a single-node swarm manager
//! (`docker swarm init --advertise-addr 127.0.0.1`, loopback of its namespace) and stops it at
//! the end. The shared engine other test binaries use is never made a swarm, so these tests run
//! beside every other one, and a machine whose engine already is a swarm is left untouched.
//! Services are created with the FROM-scratch fixtures through the docker CLI (the API), a stack
//! with `docker stack deploy`.

use crate::common;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::dockerd::Dockerd;
use common::pty::Session;
use common::relay::Relay;
use common::{BERTH_TIMEOUT, DOCKER_TIMEOUT, OutputWithin, Scope, fresh_home, isolate, wait_until};

thread_local! {
    /// The manager engine of the test running on this thread (`unix://…`): the docker CLI calls
    /// and berth of this file talk to it. Each test runs on a thread of its own.
    static MANAGER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The manager engine's address for `docker -H`, `DOCKER_HOST` and a config's `target`.
fn manager() -> String {
    MANAGER.with(|m| {
        m.borrow()
            .clone()
            .expect("a Swarm::join on this test's thread")
    })
}

fn manager_cmd(args: &[&str]) -> Command {
    let mut c = common::docker_cmd();
    c.arg("-H").arg(manager()).args(args);
    c
}

/// The docker CLI on this test's manager: trimmed stdout; panics when it fails or hangs.
fn docker(args: &[&str]) -> String {
    let out = manager_cmd(args)
        .output_within(DOCKER_TIMEOUT)
        .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The docker CLI on this test's manager: success and combined output, never panicking.
fn docker_try(args: &[&str]) -> (bool, String) {
    match manager_cmd(args).output_within(DOCKER_TIMEOUT) {
        Ok(o) => (o.status.success(), text(&o)),
        Err(e) => (false, e.to_string()),
    }
}

/// A stack of two services on the web fixture, stopped within a second.
const TWO_WEB_SERVICES: &str = "version: \"3.8\"\nservices:\n  a:\n    image: berth-test/web:v1\n    stop_grace_period: 1s\n  b:\n    image: berth-test/web:v1\n    stop_grace_period: 1s\n";

/// The swarm of one test: a manager engine of its own, made a swarm at the start; the services
/// it created are removed and the engine stopped at the end.
struct Swarm {
    services: Vec<String>,
    stacks: Vec<String>,
    scope: Scope,
    home: PathBuf,
    engine: Dockerd,
}

impl Swarm {
    fn join(area: &str) -> Swarm {
        let scope = Scope::new(area);
        // A hostname is at most 64 bytes; the scope's prefix carries the pid and a counter.
        let hostname = scope.name("mgr");
        assert!(hostname.len() <= 64, "{hostname}");
        let engine = Dockerd::start_as(&hostname);
        engine.load_images(&[
            "berth-test/web:v1",
            "berth-test/web:v2",
            "berth-test/logger:latest",
        ]);
        MANAGER.with(|m| *m.borrow_mut() = Some(engine.host()));
        // A node that stops answering is marked down after a few heartbeats: 1 s apart instead
        // of 5, so the tests that kill a worker wait seconds for the swarm to notice, not a
        // quarter minute (berth reads the node's state as the swarm reports it either way).
        engine.docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--dispatcher-heartbeat",
            "1s",
        ]);
        Swarm {
            services: Vec::new(),
            stacks: Vec::new(),
            scope,
            home: fresh_home(),
            engine,
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

    /// The replicated service `web` of `replicas` web tasks stopped within `grace`, once every
    /// task runs.
    fn web_service(&mut self, replicas: usize, grace: &str) -> String {
        let n = replicas.to_string();
        let svc = self.service(
            "web",
            &[
                "--replicas",
                &n,
                "--stop-grace-period",
                grace,
                "berth-test/web:v1",
            ],
        );
        self.wait_running(&svc, replicas);
        svc
    }

    /// The stack of `TWO_WEB_SERVICES` once both services' one task runs: the stack's name and
    /// its services `a` and `b`.
    fn two_service_stack(&mut self) -> (String, String, String) {
        let stack = self.stack(TWO_WEB_SERVICES);
        let (a, b) = (format!("{stack}_a"), format!("{stack}_b"));
        self.wait_running(&a, 1);
        self.wait_running(&b, 1);
        (stack, a, b)
    }

    /// One task of a busy loop, held to half a core so it does not starve the shared machine;
    /// `placement` adds to `docker service create`'s flags (a constraint).
    fn busy_service(&mut self, placement: &[&str]) -> String {
        let mut args = vec![
            "--no-healthcheck",
            "--limit-cpu",
            "0.5",
            "--stop-grace-period",
            "1s",
        ];
        args.extend_from_slice(placement);
        args.extend(["berth-test/web:v1", "sh", "-c", "while :; do :; done"]);
        self.service("busy", &args)
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
        self.berth_cmd(args).output_within(BERTH_TIMEOUT).unwrap()
    }

    fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        isolate(&mut c, &self.home);
        c.env("DOCKER_HOST", self.engine.host());
        c.args(args);
        c
    }

    fn audit(&self) -> String {
        text(&self.berth(&["audit", "--json"]))
    }

    /// Whether `berth audit --json` has a line of `action` ending as `result` that also holds
    /// `holding` (a reason, a target); the whole audit for the failure message.
    fn audited(&self, action: &str, result: &str, holding: &str) -> (bool, String) {
        let audit = self.audit();
        let found = audit.lines().any(|l| {
            l.contains(&format!("\"action\":\"{action}\""))
                && l.contains(&format!("\"result\":\"{result}\""))
                && l.contains(holding)
        });
        (found, audit)
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        // The engine is this test's own and goes with it (`Dockerd`'s drop removes its
        // containers and stops it); the services first, so a worker still joined sees them go.
        for s in &self.stacks {
            let _ = docker_try(&["stack", "rm", s]);
        }
        for s in &self.services {
            let _ = docker_try(&["service", "rm", s]);
        }
        let _ = self.engine.docker_try(&["swarm", "leave", "--force"]);
        MANAGER.with(|m| *m.borrow_mut() = None);
    }
}

/// A second node of the swarm: a dockerd of the test's own (`common::dockerd`) in network and UTS
/// namespaces of its own, named `hostname`, joined as a worker. The manager's port 2377 reaches it
/// through a relay on the loopback of its namespace (`common::relay`), so both ends of every
/// connection are loopback. It has the web fixtures loaded, and leaves the swarm (and the manager
/// forgets it) when dropped, so declare it after the `Swarm` it joined.
struct Worker {
    engine: Dockerd,
    relay: Option<Relay>,
    hostname: String,
    node_id: String,
}

impl Worker {
    fn join(swarm: &Swarm, suffix: &str) -> Worker {
        // A hostname is at most 64 bytes; the scope's prefix carries the pid and a counter.
        let hostname = swarm.name(suffix);
        assert!(hostname.len() <= 64, "{hostname}");
        let engine = Dockerd::start_as(&hostname);
        engine.load_images(&["berth-test/web:v1", "berth-test/web:v2"]);
        let relay = Relay::between_netns(engine.pid(), swarm.engine.pid(), 2377);
        let token = docker(&["swarm", "join-token", "-q", "worker"]);
        engine.docker(&[
            "swarm",
            "join",
            "--advertise-addr",
            "127.0.0.1",
            "--token",
            &token,
            "127.0.0.1:2377",
        ]);
        // The worker knows its node id once the manager has accepted it, not always at once.
        let mut node_id = String::new();
        wait_until(Duration::from_secs(30), Duration::from_millis(300), || {
            node_id = engine
                .docker_try(&["info", "--format", "{{.Swarm.NodeID}}"])
                .1;
            !node_id.is_empty()
        });
        assert!(
            !node_id.is_empty(),
            "the worker has no node id: {}",
            engine.log()
        );
        let worker = Worker {
            engine,
            relay: Some(relay),
            hostname,
            node_id,
        };
        assert!(
            wait_until(Duration::from_secs(30), Duration::from_millis(300), || {
                worker.status() == "ready"
            }),
            "the worker never got ready: {}",
            docker_try(&["node", "ls"]).1
        );
        worker
    }

    /// The node's status as the manager sees it (`ready`, `down` …).
    fn status(&self) -> String {
        docker_try(&["node", "inspect", "-f", "{{.Status.State}}", &self.node_id])
            .1
            .trim()
            .to_string()
    }

    /// The node's engine dies at once, as a crashed host would.
    fn kill(&mut self) {
        self.engine.kill();
        self.relay = None;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A killed engine is started again (without the relay: it must not rejoin) so it stops
        // its containers and unmounts its data root itself.
        if self.engine.revive() {
            self.engine.docker_try(&["swarm", "leave", "--force"]);
        }
        self.relay = None;
        let _ = docker_try(&["node", "rm", "--force", &self.node_id]);
    }
}

/// The node each task of `service` that is wanted running is on, per `berth ps --json`.
fn placement(swarm: &Swarm, service: &str) -> Vec<(String, String)> {
    let tasks = json(&swarm.berth(&["ps", service, "--json"]));
    let mut out: Vec<(String, String)> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task"].as_str().unwrap_or("?").to_string(),
                t["node"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    out.sort();
    out
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
    let svc = swarm.web_service(1, "1s");

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
    let svc = swarm.web_service(1, "1s");
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

    // Replicas out of range, and a scale to 0 on production: one line each, nothing changes.
    let out = swarm.berth(&["scale", &format!("{svc}=-1"), "--yes"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("replicas cannot be negative (-1)"),
        "{}",
        text(&out)
    );
    let out = swarm.berth(&["scale", &format!("{svc}=10000"), "--yes"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("10000 replicas is more than berth scales to (1000)"),
        "{}",
        text(&out)
    );
    let config = production_config(&swarm);
    let out = swarm.berth(&[
        "--config",
        &config,
        "-s",
        "p",
        "scale",
        &format!("{svc}=0"),
        "--yes",
        "--confirm",
        &svc,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!(
            "scaling {svc} to 0 on production stops every task"
        )),
        "{}",
        text(&out)
    );

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
fn draining_the_last_node_is_refused_before_anything_changes() {
    let mut swarm = Swarm::join("swdrain");
    let svc = swarm.web_service(1, "1s");
    let node = manager_hostname();
    let task = running_tasks(&svc);
    let out = swarm.berth(&["drain", &node, "--yes"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "node {node} is the swarm's last active node and its last manager"
        )) && said.contains("no node could take them"),
        "one line says why and what to do: {said}"
    );
    assert_eq!(
        docker(&["node", "inspect", "self", "-f", "{{.Spec.Availability}}"]),
        "active"
    );
    assert_eq!(running_tasks(&svc), task, "the task runs on, untouched");
    assert!(
        !swarm.audit().contains("\"action\":\"drain\""),
        "nothing ran, nothing audited: {}",
        swarm.audit()
    );
}

/// A service with every part of a spec berth does not model itself: a health check, a secret,
/// a config, mounts, placement, resources, labels, update and rollback configs, a published
/// port. berth's update to a tag changes its image only, and its scale its replicas only: every
/// other byte of the engine's JSON stays, and no running task is replaced by the scale.
#[test]
fn an_update_changes_only_the_image_and_a_scale_only_the_replicas_restarting_no_task() {
    let mut swarm = Swarm::join("swspec");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "secret.txt", "s3cret\n");
    let file = file.to_str().unwrap();
    let secret = swarm.name("secret");
    docker(&["secret", "create", &secret, file]);
    let config = swarm.name("config");
    docker(&["config", "create", &config, file]);
    let volume = swarm.name("data");
    let svc = swarm.service(
        "full",
        &[
            "--no-resolve-image",
            "--replicas",
            "3",
            "--stop-grace-period",
            "1s",
            "--health-cmd",
            "wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "3",
            "--secret",
            &secret,
            "--config",
            &format!("source={config},target=/etc/app.conf"),
            "--mount",
            &format!("type=volume,source={volume},target=/data"),
            "--mount",
            "type=tmpfs,target=/cache",
            "--constraint",
            "node.role==manager",
            "--placement-pref",
            "spread=node.labels.zone",
            "--reserve-memory",
            "8M",
            "--limit-memory",
            "64M",
            "--limit-cpu",
            "0.5",
            "--label",
            "team=ops",
            "--container-label",
            "tier=web",
            "--env",
            "GREETING=hi",
            "--update-parallelism",
            "1",
            "--update-delay",
            "0s",
            "--update-monitor",
            "5s",
            "--update-order",
            "start-first",
            "--update-failure-action",
            "rollback",
            "--rollback-parallelism",
            "2",
            "--rollback-order",
            "stop-first",
            "--rollback-monitor",
            "3s",
            "--rollback-failure-action",
            "continue",
            "--publish",
            "published=18080,target=8080",
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&svc, 3);
    let before = spec_of(&svc);
    let cs = &before["TaskTemplate"]["ContainerSpec"];
    assert!(
        cs["Healthcheck"]["Test"].is_array()
            && cs["Secrets"].is_array()
            && cs["Configs"].is_array()
            && cs["Mounts"].as_array().map(Vec::len) == Some(2)
            && before["TaskTemplate"]["Placement"]["Constraints"].is_array()
            && before["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"].is_number()
            && before["RollbackConfig"]["Order"] == "stop-first"
            && before["EndpointSpec"]["Ports"][0]["PublishedPort"] == 18080,
        "the service carries every part: {before:#}"
    );

    let out = swarm.berth(&["rollback", &svc, "--to", "v2", "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("spec unchanged except image berth-test/web:v1 → berth-test/web:v2"),
        "the plan shows the spec's diff: {said}"
    );
    let mut expected = before.clone();
    expected["TaskTemplate"]["ContainerSpec"]["Image"] = "berth-test/web:v2".into();
    assert_eq!(spec_of(&svc), expected, "only the image changed");
    swarm.wait_running(&svc, 3);

    let before = spec_of(&svc);
    let tasks = running_tasks(&svc);
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    let out = swarm.berth(&["scale", &format!("{svc}=5"), "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("spec unchanged except replicas 3 → 5")
            && said.contains("3 task(s) that run now keep running"),
        "the plan shows the spec's diff and what it promises: {said}"
    );
    let mut expected = before.clone();
    expected["Mode"]["Replicated"]["Replicas"] = 5.into();
    assert_eq!(spec_of(&svc), expected, "only the replicas changed");
    let after = running_tasks(&svc);
    assert_eq!(after.len(), 5, "{after:?}");
    assert!(
        tasks.iter().all(|t| after.contains(t)),
        "no task was replaced: before {tasks:?}, after {after:?}"
    );
}

/// The run's word is the engine's: a scale whose steps all succeed, while someone else changed
/// the service's spec during its wait (held there by the debug build's test hook), ends failed,
/// saying what differs from what the plan promised, on the CLI and in the audit.
#[test]
fn a_scale_whose_spec_was_changed_meanwhile_fails_and_says_what_differs() {
    let mut swarm = Swarm::join("swpost");
    let svc = swarm.web_service(1, "1s");
    let mut scale = swarm.berth_cmd(&["scale", &format!("{svc}=2"), "--yes"]);
    scale.env("BERTH_TEST_HOLD_STEP", "2");
    let scale = std::thread::spawn(move || scale.output_within(BERTH_TIMEOUT));
    // Step 1 wrote the replicas; the wait (step 2) is held for 10 s.
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            inspect(&svc, "{{.Spec.Mode.Replicated.Replicas}}") == "2"
        }),
        "berth never set the replicas"
    );
    docker(&[
        "service",
        "update",
        "--detach",
        "--label-add",
        "intruder=yes",
        &svc,
    ]);
    let out = scale.join().unwrap().expect("berth scale ends");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("FAILED:")
            && said.contains("the engine does not show what the plan promised")
            && said.contains("Labels.intruder (none) → yes"),
        "the CLI says what differs: {said}"
    );
    swarm.wait_running(&svc, 2);
    let (failed, audit) = swarm.audited("scale", "failed", "Labels.intruder");
    assert!(
        failed,
        "the audit says failed, with the difference: {audit}"
    );
}

/// Every task of the worker is pinned there: a drain leaves them nowhere to go. The plan says
/// so, and the run ends failed, naming the service below its count.
#[test]
fn a_drain_with_nowhere_to_go_fails_and_names_the_services_below_their_count() {
    let mut swarm = Swarm::join("swnowhere");
    let worker = Worker::join(&swarm, "w");
    let on_worker = format!("node.hostname=={}", worker.hostname);
    let svc = swarm.service(
        "pinned",
        &[
            "--no-resolve-image",
            "--replicas",
            "2",
            "--stop-grace-period",
            "1s",
            "--constraint",
            &on_worker,
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&svc, 2);

    let out = swarm.berth(&["drain", &worker.hostname, "--yes"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("2 task(s) will stop: no node can take them")
            && said.contains(&format!("no active node meets its constraint {on_worker}")),
        "the plan says the tasks stop, and why: {said}"
    );
    assert!(
        said.contains(&format!("below their desired count: {svc} 0/2")),
        "the result names the service below its count: {said}"
    );
    assert_eq!(
        docker(&[
            "node",
            "inspect",
            "-f",
            "{{.Spec.Availability}}",
            &worker.node_id
        ]),
        "drain"
    );
    assert!(running_tasks(&svc).is_empty(), "the engine runs none");
    let (failed, audit) = swarm.audited("drain", "failed", &format!("{svc} 0/2"));
    assert!(
        failed,
        "the failed drain audited with the service below its count: {audit}"
    );
}

/// The ids of the tasks of `service` that run, sorted.
fn running_tasks(service: &str) -> Vec<String> {
    let mut ids: Vec<String> = docker(&[
        "service",
        "ps",
        "--no-trunc",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.ID}} {{.CurrentState}}",
        service,
    ])
    .lines()
    .filter(|l| l.split_whitespace().nth(1) == Some("Running"))
    .filter_map(|l| l.split_whitespace().next().map(String::from))
    .collect();
    ids.sort();
    ids
}

/// The service's spec as the engine writes it (`docker service inspect`).
fn spec_of(service: &str) -> serde_json::Value {
    let all: serde_json::Value =
        serde_json::from_str(&docker(&["service", "inspect", service])).unwrap();
    all[0]["Spec"].clone()
}

/// The manager's hostname as the swarm names it (its engine's UTS namespace's).
fn manager_hostname() -> String {
    docker(&["node", "inspect", "self", "-f", "{{.Description.Hostname}}"])
}

/// A replicated service of `n` web tasks, waited for until its tasks run on both nodes.
fn spread_service(swarm: &mut Swarm, worker: &Worker, n: usize, grace: &str) -> String {
    let svc = swarm.web_service(n, grace);
    let manager = manager_hostname();
    let mut nodes = Vec::new();
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(500), || {
            let p = placement(swarm, &svc);
            nodes = p.iter().map(|(_, n)| n.clone()).collect();
            nodes.contains(&manager) && nodes.contains(&worker.hostname)
        }),
        "the swarm spreads {svc} over {manager} and {}: {nodes:?}",
        worker.hostname
    );
    svc
}

#[test]
fn a_worker_drained_through_berth_moves_its_tasks_to_the_manager_and_says_where() {
    let mut swarm = Swarm::join("swdw");
    let worker = Worker::join(&swarm, "w");
    let manager = manager_hostname();
    let svc = spread_service(&mut swarm, &worker, 4, "1s");

    // Multi-node placement: every task is on one of the two nodes, by hostname.
    let before = placement(&swarm, &svc);
    assert_eq!(before.len(), 4, "{before:?}");
    assert!(
        before
            .iter()
            .all(|(_, n)| *n == manager || *n == worker.hostname),
        "{before:?}"
    );
    let on_worker: Vec<&String> = before
        .iter()
        .filter(|(_, n)| *n == worker.hostname)
        .map(|(t, _)| t)
        .collect();
    let nodes = json(&swarm.berth(&["nodes", "--json"]));
    let row = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["hostname"] == worker.hostname.as_str())
        .unwrap_or_else(|| panic!("the worker in berth nodes: {nodes}"));
    assert_eq!(
        (&row["role"], &row["leader"], &row["status"]),
        (
            &serde_json::json!("worker"),
            &serde_json::json!(false),
            &serde_json::json!("ready")
        ),
        "{row}"
    );

    let out = swarm.berth(&["drain", &worker.hostname, "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for t in &on_worker {
        assert!(
            said.contains(&format!("{t}: moves (room on {manager})")),
            "the plan says {t} moves to {manager}: {said}"
        );
    }
    assert!(
        said.contains(&format!("{} drained:", worker.hostname)),
        "{said}"
    );
    for t in &on_worker {
        assert!(
            said.contains(&format!("{t} → {manager} (running)")),
            "the result says where {t} went: {said}"
        );
    }
    // The swarm agrees: every task runs on the manager now, the worker is drained.
    swarm.wait_running(&svc, 4);
    let after = placement(&swarm, &svc);
    assert!(after.iter().all(|(_, n)| *n == manager), "{after:?}");
    assert_eq!(
        docker(&[
            "node",
            "inspect",
            "-f",
            "{{.Spec.Availability}}",
            &worker.node_id
        ]),
        "drain"
    );
    for result in ["started", "ok"] {
        let target = format!("\"target\":\"{}\"", worker.hostname);
        let (found, audit) = swarm.audited("drain", result, &target);
        assert!(found, "drain {result} audited: {audit}");
    }

    let out = swarm.berth(&["activate", &worker.hostname, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        docker(&[
            "node",
            "inspect",
            "-f",
            "{{.Spec.Availability}}",
            &worker.node_id
        ]),
        "active"
    );
}

#[test]
fn a_worker_that_goes_down_mid_drain_ends_the_wait_with_a_clear_report() {
    let mut swarm = Swarm::join("swdown");
    let mut worker = Worker::join(&swarm, "w");
    let manager = manager_hostname();
    // httpd as PID 1 ignores SIGTERM: each task on the worker takes its whole minute of grace
    // to stop, so the drain is still going when the worker dies.
    let svc = spread_service(&mut swarm, &worker, 4, "60s");
    let on_worker: Vec<String> = placement(&swarm, &svc)
        .into_iter()
        .filter(|(_, n)| *n == worker.hostname)
        .map(|(t, _)| t)
        .collect();

    let mut drain = swarm.berth_cmd(&["drain", &worker.hostname, "--yes"]);
    let drain = std::thread::spawn(move || drain.output_within(BERTH_TIMEOUT));
    let drained = wait_until(Duration::from_secs(60), Duration::from_millis(100), || {
        docker_try(&[
            "node",
            "inspect",
            "-f",
            "{{.Spec.Availability}}",
            &worker.node_id,
        ])
        .1
        .trim()
            == "drain"
    });
    assert!(drained, "berth never set the worker to drain");
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            placement(&swarm, &svc)
                .iter()
                .all(|(_, n)| *n != worker.hostname)
        }),
        "the tasks on the worker are no longer wanted running there"
    );
    worker.kill();

    let out = drain
        .join()
        .unwrap()
        .expect("berth drain ends within its bound");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "node {} went down during the drain",
            worker.hostname
        )) && said.contains("not known to have stopped"),
        "{said}"
    );
    assert!(
        !said.contains("after 120 s"),
        "the wait ended on the node going down, not on its bound: {said}"
    );
    for t in &on_worker {
        assert!(
            said.contains(&format!("{t} → {manager} (running)")),
            "the report says where {t} went: {said}"
        );
    }
    assert_eq!(worker.status(), "down");
    // `docker service ls` still counts the dead node's last-reported tasks; berth's ps lists the
    // tasks wanted running: all four on the manager, running.
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(500), || {
            let tasks = json(&swarm.berth(&["ps", &svc, "--json"]));
            let tasks = tasks.as_array().unwrap();
            tasks.len() == 4
                && tasks
                    .iter()
                    .all(|t| t["node"] == manager.as_str() && t["state"] == "running")
        }),
        "{}",
        text(&swarm.berth(&["ps", &svc]))
    );
    let (failed, audit) = swarm.audited("drain", "failed", "went down during the drain");
    assert!(failed, "the failed drain audited with why: {audit}");
}

#[test]
fn console_swarm_view_shows_tasks_and_restarts_the_selected_service() {
    let mut swarm = Swarm::join("swtui");
    let svc = swarm.web_service(2, "1s");
    let mut s = swarm_view(40, &[], &[], &[&shown(&svc), "slot 2"]);
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

/// The console (`rows` × 200) once live, switched to the swarm view (`Z`) and showing each of
/// `lines`.
fn swarm_view(rows: u16, args: &[&str], envs: &[(&str, &str)], lines: &[&str]) -> Session {
    let host = manager();
    let mut envs = envs.to_vec();
    envs.push(("DOCKER_HOST", host.as_str()));
    let mut s = Session::sized(rows, 200, args, &envs);
    assert!(
        s.wait_for("● live", Duration::from_secs(20)),
        "{}",
        s.text()
    );
    s.type_keys("Z");
    for line in lines {
        assert!(
            s.wait_for(line, Duration::from_secs(15)),
            "the swarm view shows {line:?}:\n{}",
            s.text()
        );
    }
    s
}

/// As much of a lone service's name as the swarm view's NAME column always shows: it cuts names
/// past 26 characters, and the harness's names grow with the pid and the test's counter.
fn shown(service: &str) -> String {
    service.chars().take(25).collect()
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
    let svc = swarm.busy_service(&[]);
    swarm.wait_running(&svc, 1);
    let mut s = swarm_view(30, &[], &[], &[&shown(&svc), "slot 1 @"]);
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

/// The task line of `slot 1` on the screen.
fn slot_line(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains("slot 1 @"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn console_swarm_view_reads_a_task_on_a_worker_the_config_lists_as_a_server() {
    // A short area: the NAME column shows 25 characters, which must reach `bu`sy and `we`b.
    let mut swarm = Swarm::join("swn");
    let worker = Worker::join(&swarm, "w");
    let on_worker = format!("node.hostname=={}", worker.hostname);
    let svc = swarm.busy_service(&["--constraint", &on_worker]);
    swarm.wait_running(&svc, 1);
    // A task with a health check on the worker too (the busy one has none).
    let web = swarm.service(
        "web",
        &[
            "--stop-grace-period",
            "1s",
            "--constraint",
            &on_worker,
            "berth-test/web:v1",
        ],
    );
    swarm.wait_running(&web, 1);
    let home = swarm.home.display().to_string();
    // The worker is a server named as its hostname; the console is on the manager's engine.
    let config = |worker_target: &str| {
        let path = swarm
            .home
            .join(format!("nodes-{}.toml", worker_target.len()));
        std::fs::write(
            &path,
            format!(
                "[servers.manager]\ntarget = \"{}\"\n\n[servers.\"{}\"]\ntarget = \"{worker_target}\"\n",
                manager(),
                worker.hostname
            ),
        )
        .unwrap();
        path.display().to_string()
    };

    // Its entry points at a socket that is not there: the task says why it has no numbers.
    let missing = swarm.home.join("no-such.sock");
    let broken = config(&format!("unix://{}", missing.display()));
    let mut s = swarm_view(
        30,
        &["--config", &broken, "-s", "manager"],
        &[("HOME", home.as_str())],
        &[&shown(&svc), "slot 1 @"],
    );
    let why = format!("{}: ", worker.hostname);
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            let line = slot_line(&s.text());
            line.contains("— unreachable") && line.contains(&why[..why.len().min(20)])
        }),
        "the worker's task names its server and why it cannot be read:\n{}",
        s.text()
    );
    s.quit_ok();

    // Its entry is the worker's engine: the busy task's CPU is read there.
    let good = config(&worker.engine.host());
    let mut s = swarm_view(
        30,
        &["--config", &good, "-s", "manager"],
        &[("HOME", home.as_str())],
        &[&shown(&svc), "slot 1 @"],
    );
    let busy = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        slot_cpu(&s.text()).is_some_and(|cpu| cpu >= 10.0)
    });
    assert!(
        busy,
        "the worker's busy task shows its CPU (read {:?}):\n{}",
        slot_cpu(&s.text()),
        s.text()
    );
    assert!(
        slot_line(&s.text()).contains(&format!(
            "@{}",
            &worker.hostname[..worker.hostname.len().min(10)]
        )),
        "the line read is the worker's task:\n{}",
        s.text()
    );
    assert!(!s.text().contains("— other node"), "{}", s.text());
    // The web task's health is read there too: the manager reports task states, not health.
    let web_task = |screen: &str| -> String {
        screen
            .lines()
            .skip_while(|l| !l.contains(&shown(&web)))
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            web_task(&s.text()).contains("healthy")
        }),
        "the worker's web task shows its health:\n{}",
        s.text()
    );
    s.quit_ok();

    // `berth stats SERVICE` reads it there too, and says why when it cannot.
    let out = swarm.berth(&["--config", &good, "-s", "manager", "stats", &svc, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = json(&out)["containers"].clone();
    let row = rows
        .as_array()
        .and_then(|r| r.first())
        .unwrap_or_else(|| panic!("one row: {}", text(&out)));
    assert!(
        row["name"]
            .as_str()
            .is_some_and(|n| n.ends_with(&format!(" @{}", worker.hostname))),
        "named with its server: {row}"
    );
    assert!(
        row["cpu_percent"].as_f64().is_some_and(|c| c >= 10.0),
        "the busy task's CPU: {row}"
    );
    // `berth ps SERVICE` shows the worker's task's health, read on the worker.
    let out = swarm.berth(&["--config", &good, "-s", "manager", "ps", &web, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let tasks = json(&out);
    let running = tasks
        .as_array()
        .and_then(|t| t.iter().find(|t| t["state"] == "running"))
        .unwrap_or_else(|| panic!("a running task: {}", text(&out)))
        .clone();
    assert_eq!(running["health"], "healthy", "{running}");
    // Its server cannot be read: the listing still comes, its health unknown, and says why.
    let out = swarm.berth(&["--config", &broken, "-s", "manager", "ps", &web]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "the health of the tasks on server {} is unknown",
            worker.hostname
        )),
        "{}",
        text(&out)
    );
    let out = swarm.berth(&["--config", &broken, "-s", "manager", "stats", &svc]);
    assert!(
        !out.status.success(),
        "nothing could be read: {}",
        text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "their node is server {}, which cannot be read",
            worker.hostname
        )),
        "{err}"
    );
}

fn inspect(name: &str, format: &str) -> String {
    docker(&["service", "inspect", "-f", format, name])
        .trim()
        .to_string()
}

#[test]
fn a_stack_restarts_and_rolls_back_service_after_service() {
    let mut swarm = Swarm::join("swstk");
    let (stack, a, b) = swarm.two_service_stack();

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

    // --to TAG: every service to that tag of its own repository, one after another.
    let out = swarm.berth(&["rollback", &stack, "--to", "v2", "--yes"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("roll back stack {stack} to v2 (2 service(s)"))
            && said.contains(&format!(
                "update {a}'s image berth-test/web:v1 → berth-test/web:v2"
            ))
            && said.contains(&format!(
                "update {b}'s image berth-test/web:v1 → berth-test/web:v2"
            )),
        "{said}"
    );
    assert_eq!(service_image(&a), "berth-test/web:v2");
    assert_eq!(service_image(&b), "berth-test/web:v2");
    // A service already on the tag is left out and named; none left is refused.
    let out = swarm.berth(&["rollback", &stack, "--to", "v2", "--yes"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no service of stack") && text(&out).contains("already runs"),
        "{}",
        text(&out)
    );
    // A full image reference names one image, which a stack's services do not share.
    let out = swarm.berth(&["rollback", &stack, "--to", "berth-test/web:v1", "--yes"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--to takes a tag"), "{}", text(&out));
    assert_eq!(service_image(&a), "berth-test/web:v2");

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
    let (stack, a, b) = swarm.two_service_stack();
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

/// A config where the test engine is the server `p`, a production one.
fn production_config(swarm: &Swarm) -> String {
    let path = swarm.home.join("production.toml");
    std::fs::write(
        &path,
        format!(
            "[servers.p]\ntarget = \"{}\"\nenvironment = \"production\"\n",
            manager()
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn force_updates(services: &[&String]) -> Vec<String> {
    services
        .iter()
        .map(|s| inspect(s, "{{.Spec.TaskTemplate.ForceUpdate}}"))
        .collect()
}

#[test]
fn a_stack_on_production_runs_only_with_the_stacks_name_typed() {
    let mut swarm = Swarm::join("swprod");
    let (stack, a, b) = swarm.two_service_stack();
    let config = production_config(&swarm);
    let on_p = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str(), "-s", "p"];
        all.extend_from_slice(args);
        swarm.berth(&all)
    };

    let out = on_p(&["restart", &stack, "--yes"]);
    let said = text(&out);
    assert!(!out.status.success(), "--yes alone on production: {said}");
    assert!(
        said.contains("production") && said.contains(&format!("--confirm {stack}")),
        "says what to type: {said}"
    );
    // A service's name is not the stack's.
    let out = on_p(&["restart", &stack, "--yes", "--confirm", &a]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(force_updates(&[&a, &b]), ["0", "0"], "nothing restarted");
    assert!(
        !swarm.audit().contains("\"action\":\"restart\""),
        "nothing audited: {}",
        swarm.audit()
    );

    let out = on_p(&["restart", &stack, "--yes", "--confirm", &stack]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("each converged"), "{said}");
    assert_eq!(force_updates(&[&a, &b]), ["1", "1"]);
    let audit = swarm.audit();
    for s in [&a, &b] {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("\"target\":\"{s}\""))
                    && l.contains("\"result\":\"ok\"")
                    && l.contains("\"environment\":\"production\"")),
            "{s} audited on production: {audit}"
        );
    }
}

#[test]
fn console_r_and_b_on_a_stack_heading_run_every_service_of_the_stack() {
    let mut swarm = Swarm::join("swstkui");
    let (stack, a, b) = swarm.two_service_stack();
    let config = production_config(&swarm);
    let home = swarm.home.display().to_string();
    // Tall enough for the stack's four steps and the typed prompt under them.
    // The container list shows the tasks' containers already: wait for the swarm view's own
    // task lines.
    let mut s = swarm_view(
        60,
        &["--config", &config, "-s", "p"],
        &[("HOME", home.as_str())],
        &["slot 1 @"],
    );
    // The selection starts on row 0: the stack's heading (the only stack on the engine).
    s.type_keys("R");
    assert!(
        s.wait_for(&format!("restart stack {stack}"), Duration::from_secs(15)),
        "one plan for the stack:\n{}",
        s.text()
    );
    // Read once the popup is whole (its last line is the typed prompt).
    assert!(
        s.wait_for(
            &format!("Type {stack} and press Enter"),
            Duration::from_secs(5)
        ),
        "production: the stack's name is typed:\n{}",
        s.text()
    );
    let plan = s.text();
    assert!(
        plan.contains(&format!("force a rolling update of {a}"))
            && plan.contains(&format!("force a rolling update of {b}")),
        "{plan}"
    );
    // `y` is no yes on production: it is a letter of the typed text, and Enter on a wrong text
    // runs nothing.
    s.type_keys("y\r");
    assert!(
        s.wait_for("exactly to confirm", Duration::from_secs(5)),
        "{}",
        s.text()
    );
    assert_eq!(force_updates(&[&a, &b]), ["0", "0"], "{}", s.text());
    s.type_keys("\u{7f}");
    s.type_keys(&format!("{stack}\r"));
    assert!(
        s.wait_for("each converged", Duration::from_secs(150)),
        "the stack's run:\n{}",
        s.text()
    );
    assert_eq!(force_updates(&[&a, &b]), ["1", "1"]);

    // Esc leaves the run view for the container list; Z is the swarm view again, its selection
    // still on the stack's heading.
    s.type_keys("\u{1b}");
    assert!(s.wait_for("NAME", Duration::from_secs(10)), "{}", s.text());
    s.type_keys("Z");
    assert!(
        s.wait_for("slot 1 @", Duration::from_secs(15)),
        "back in the swarm view:\n{}",
        s.text()
    );
    s.type_keys("B");
    assert!(
        s.wait_for(&format!("roll back stack {stack}"), Duration::from_secs(15)),
        "one rollback plan for the stack:\n{}",
        s.text()
    );
    s.type_keys(&format!("{stack}\r"));
    assert!(
        s.wait_for("each converged", Duration::from_secs(150))
            && s.wait_for("roll back stack", Duration::from_secs(1)),
        "the stack's rollback:\n{}",
        s.text()
    );
    // The swarm's rollback to the previous spec: the forced update undone on both.
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(300), || {
            force_updates(&[&a, &b]) == ["0", "0"]
        }),
        "{:?}",
        force_updates(&[&a, &b])
    );
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    let audit = swarm.audit();
    for action in ["restart", "rollback"] {
        for svc in [&a, &b] {
            assert!(
                audit
                    .lines()
                    .any(|l| l.contains(&format!("\"action\":\"{action}\""))
                        && l.contains(&format!("\"target\":\"{svc}\""))
                        && l.contains("\"result\":\"ok\"")),
                "{action} {svc} audited: {audit}"
            );
        }
    }
}

#[test]
fn a_stack_runs_audit_warnings_show_under_each_services_own_steps() {
    let mut swarm = Swarm::join("swaudw");
    let (stack, _a, _b) = swarm.two_service_stack();
    // The audit log's path is a directory: every audit write fails, and says so.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("audit.jsonl")).unwrap();
    let out = swarm
        .berth_cmd(&["restart", &stack, "--yes", "--json"])
        .env("BERTH_DATA_DIR", data.path())
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Each service has two steps (the update, the wait): a's are 0 and 1, b's 2 and 3.
    let starts: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "step_started")
        .filter_map(|e| e["step"].as_u64())
        .collect();
    assert_eq!(starts, [0, 1, 2, 3], "{said}");
    let warned: Vec<u64> = events
        .iter()
        .filter(|e| {
            e["event"] == "output"
                && e["line"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("warning: "))
        })
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        warned,
        [0, 1, 2, 3],
        "each service's started and result warnings under its first and last step: {said}"
    );
}
