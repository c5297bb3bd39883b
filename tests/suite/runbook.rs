//! The runbook against the real engine: rollback (success, failure with restore, recovery), prune
//! keeping rollback images, migrate output and exit codes, guards, and the audit log.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth::engine::{self, Engine};
use berth::runbook::{self, AuditLog, RunEvent, RunOptions, RunResult, StepStatus};
use berth::ssh::SshOptions;
use berth::target::Target;
use common::{Scope, docker, docker_try, free_port, http_get, inspect, web_service};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Small health settings: the web fixtures check every second.
const FAST: &str = "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), format!("{FAST}{extra}")).unwrap();
        Env { dir }
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// The audit's closing lines (each run also writes a `started` line first).
    fn audit(&self) -> Vec<berth::runbook::AuditEntry> {
        AuditLog::at(self.data().join("audit.jsonl"))
            .read_last(100)
            .unwrap()
            .into_iter()
            .filter(|e| e.result != "started")
            .collect()
    }
    /// Runs the berth binary with this config and data dir; stdin is not a terminal.
    fn berth(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        common::isolate(&mut c, &self.dir.path().join("home"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("BERTH_DATA_DIR", self.data())
            .output_within(BERTH_TIMEOUT)
            .unwrap()
    }
}

/// Image tags made for one test, removed afterwards (the shared fixtures keep their own tags).
struct Tags(Vec<String>);

impl Tags {
    fn tag(&mut self, from: &str, to: &str) {
        docker(&["tag", from, to]);
        self.0.push(to.to_string());
    }
}

impl Drop for Tags {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = docker_try(&["rmi", t]);
        }
    }
}

/// The kept copy of `name` after a rollback (`NAME-berth-kept-…`).
fn kept_of(name: &str) -> String {
    let filter = format!("name={name}-berth-kept-");
    let ids = docker(&["ps", "-aq", "--filter", &filter]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "one kept copy of {name}: {ids:?}");
    ids[0].to_string()
}

async fn local() -> Engine {
    engine::connect(&Target::local(), &SshOptions::default())
        .await
        .unwrap()
}

async fn run_plan(plan: runbook::Plan, engine: Engine, audit: &Path) -> (RunResult, Vec<RunEvent>) {
    let (tx, mut rx) = mpsc::channel(runbook::EVENT_CHANNEL);
    let opts = RunOptions {
        audit: Some(AuditLog::at(audit)),
        remote: None,
        notify: None,
        ended: None,
    };
    let task = tokio::spawn(runbook::execute_with(
        plan,
        engine,
        tx,
        CancellationToken::new(),
        opts,
    ));
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (task.await.unwrap(), events)
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_v2_to_v1_serves_v1_on_the_same_port_with_the_same_config() {
    let scope = Scope::new("runbook");
    let mut tags = Tags(Vec::new());
    let repo = scope.name("app");
    tags.tag("berth-test/web:v1", &format!("{repo}:v1"));
    tags.tag("berth-test/web:v2", &format!("{repo}:v2"));
    let port = free_port();
    let name = web_service(&scope, &format!("{repo}:v2"), port);
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
    let old_id = inspect(&name, "{{.Id}}");

    let engine = local().await;
    let env = Env::new("");
    let config = berth::config::file::load(Some(&env.config())).unwrap().0;
    let req = runbook::RollbackRequest {
        name: "web".into(),
        project: Some(scope.project()),
        to: Some("v1".into()),
        ..Default::default()
    };
    let plan = runbook::plan_rollback(&engine, &config, &req)
        .await
        .unwrap();
    assert!(plan.mutating);
    assert!(
        plan.notes.iter().any(|n| n.contains("fixed host port")),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.notes.iter().any(|n| n.contains(&format!("{repo}:v1"))),
        "candidates are listed: {:?}",
        plan.notes
    );
    let audit = env.data().join("audit.jsonl");
    let (result, events) = run_plan(plan, engine, &audit).await;
    assert!(result.ok, "{result:?}\n{events:#?}");
    assert!(result.metrics.contains_key("gap_ms"));
    assert!(matches!(events.last(), Some(RunEvent::Done { .. })));

    // Same name, same port, serving v1, same env and labels; the old one kept, stopped.
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    assert_eq!(inspect(&name, "{{.Config.Image}}"), format!("{repo}:v1"));
    assert!(inspect(&name, "{{json .Config.Env}}").contains("FOO=bar"));
    assert_eq!(
        inspect(&name, "{{index .Config.Labels \"team\"}}"),
        "payments"
    );
    assert_eq!(
        inspect(
            &name,
            "{{index .Config.Labels \"com.docker.compose.service\"}}"
        ),
        "web"
    );
    assert_eq!(
        inspect(&name, "{{index .Config.Labels \"berth.rollback.from\"}}"),
        old_id
    );
    assert_eq!(
        inspect(&name, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    // The old container stays, stopped, as a copy compose cannot see: its compose labels set aside
    // (restore gives them back), restart policy off while kept, the original gone.
    assert!(
        !docker_try(&["inspect", &old_id]).0,
        "the original is replaced by its kept copy"
    );
    let kept = kept_of(&name);
    assert_eq!(inspect(&kept, "{{.State.Running}}"), "false");
    assert_eq!(
        inspect(
            &kept,
            "{{index .Config.Labels \"com.docker.compose.project\"}}"
        ),
        "",
        "compose must not count the kept container as a replica"
    );
    assert_eq!(
        inspect(
            &kept,
            "{{index .Config.Labels \"berth.kept.com.docker.compose.service\"}}"
        ),
        "web"
    );
    assert_eq!(inspect(&kept, "{{.HostConfig.RestartPolicy.Name}}"), "no");
    assert_eq!(
        inspect(&kept, "{{index .Config.Labels \"berth.kept.image\"}}"),
        format!("{repo}:v2")
    );
    assert!(inspect(&kept, "{{json .Config.Env}}").contains("FOO=bar"));

    let entries = AuditLog::at(&audit).read_last(10).unwrap();
    let phases: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.result.as_str()))
        .collect();
    assert_eq!(phases, vec![("rollback", "started"), ("rollback", "ok")]);
    assert!(
        entries[1]
            .images_after
            .iter()
            .any(|i| i.starts_with("sha256:"))
    );
    assert!(
        entries[1].message.contains("now:") && entries[1].message.contains(&format!("{repo}:v1")),
        "the final line says what serves now: {}",
        entries[1].message
    );
    // The downtime is what a client on the published port saw, named as such: the old one stops
    // before the new one starts on the same port, so some probes must go unanswered.
    assert!(
        entries[1].message.contains("clients saw")
            && entries[1]
                .message
                .contains(&format!("probes every 50 ms on :{port} failed")),
        "the downtime figure names what it measures: {}",
        entries[1].message
    );
    let failed = result.metrics["client_probes_failed"].as_u64().unwrap();
    let gap_ms = result.metrics["client_gap_ms"].as_u64().unwrap();
    assert!(
        failed >= 1 && gap_ms > 0 && result.metrics["client_probes"].as_u64() > Some(failed),
        "{:?}",
        result.metrics
    );

    // Prune (scoped to this test's names) keeps what rollback needs: the current image and the one
    // the kept container runs; a stopped container of ours goes, the kept old one stays.
    // Images no other test runs: a shared fixture may be in use by a parallel test's container.
    distinct_image(&mut tags, &format!("{repo}:bad"), 98);
    distinct_image(&mut tags, &format!("{repo}:logger"), 99);
    docker(&[
        "create",
        "--name",
        &scope.name("junk"),
        &format!("{repo}:v1"),
    ]);
    let out = env.berth(&["prune", "--keep", "0", "--only", &scope.prefix, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let (has_v1, _) = docker_try(&["image", "inspect", &format!("{repo}:v1")]);
    let (has_v2, _) = docker_try(&["image", "inspect", &format!("{repo}:v2")]);
    let (has_bad, _) = docker_try(&["image", "inspect", &format!("{repo}:bad")]);
    let (has_logger, _) = docker_try(&["image", "inspect", &format!("{repo}:logger")]);
    assert!(
        has_v1 && has_v2,
        "rollback images must survive prune: {}",
        text(&out)
    );
    assert!(
        !has_bad && !has_logger,
        "unused images of the repo go with --keep 0: {}",
        text(&out)
    );
    assert!(
        !docker_try(&["inspect", &scope.name("junk")]).0,
        "the stopped container is pruned"
    );
    assert!(
        docker_try(&["inspect", &kept]).0,
        "the kept old container survives prune"
    );
    // The shared fixtures only lost our tags.
    assert!(docker_try(&["image", "inspect", "berth-test/web:bad"]).0);
    assert_eq!(
        env.audit().last().map(|e| e.action.clone()),
        Some("prune".into())
    );
}

#[test]
fn rollback_to_a_failing_image_restores_the_old_container() {
    let scope = Scope::new("runbook");
    let port = free_port();
    let name = web_service(&scope, "berth-test/web:v2", port);
    let old_id = inspect(&name, "{{.Id}}");
    let env = Env::new("");
    let out = env.berth(&["rollback", &name, "--to", "berth-test/web:bad", "--yes"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("restored") && t.contains("healthy"), "{t}");
    // Exactly the old container, under its name, healthy, serving v2; nothing berth made is left.
    assert_eq!(inspect(&name, "{{.Id}}"), old_id);
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
    let filter = format!("name={}", scope.prefix);
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &filter]).lines().count(),
        1
    );
    let audit = env.audit();
    assert_eq!(
        audit.last().map(|e| (e.action.as_str(), e.result.as_str())),
        Some(("rollback", "failed"))
    );
}

#[test]
fn rollback_recovers_a_half_done_rollback() {
    recovers_a_half_done_rollback("-berth-kept-");
}

/// A run an older berth left cut off set the old container aside under another mark.
#[test]
fn rollback_recovers_a_half_done_rollback_of_an_older_berth() {
    recovers_a_half_done_rollback("-berth-old-");
}

fn recovers_a_half_done_rollback(mark: &str) {
    let scope = Scope::new("runbook");
    let port = free_port();
    let name = web_service(&scope, "berth-test/web:v2", port);
    // What a cut-off rollback leaves: the old container stopped and renamed, nothing started yet.
    docker(&["stop", "-t", "1", &name]);
    let kept = format!("{name}{mark}20260101000000");
    docker(&["rename", &name, &kept]);
    let env = Env::new("");
    let dry = env.berth(&["rollback", &name, "--dry-run"]);
    let t = text(&dry);
    assert!(
        dry.status.success() && t.contains("interrupted rollback") && t.contains("restore"),
        "{t}"
    );
    let out = env.berth(&["rollback", "web", "-p", &scope.project(), "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert!(
        !docker_try(&["inspect", &kept]).0,
        "the kept name is gone: it is the live container again"
    );
    assert_eq!(
        env.audit().last().map(|e| e.action.clone()),
        Some("rollback-recover".into())
    );
}

/// What a rollback killed during its health wait leaves (fixed port): the old container stopped and
/// renamed with compose's labels still on, the new one under the service's name, unverified.
fn killed_during_health_wait(scope: &Scope, port: u16) -> (String, String, String) {
    let name = web_service(scope, "berth-test/web:v2", port);
    let old_id = inspect(&name, "{{.Id}}");
    docker(&["stop", "-t", "1", &name]);
    let kept = format!("{name}-berth-kept-20260101000000");
    docker(&["rename", &name, &kept]);
    let project = format!("com.docker.compose.project={}", scope.project());
    let from = format!("berth.rollback.from={old_id}");
    let publish = format!("127.0.0.1:{port}:8080");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &project,
        "--label",
        "com.docker.compose.service=web",
        "--label",
        "com.docker.compose.container-number=1",
        "--label",
        &from,
        "--label",
        "berth.rollback.id=20260101000000-1",
        "-p",
        &publish,
        "berth-test/web:v1",
    ]);
    (name, old_id, kept)
}

#[test]
fn recover_finish_verifies_the_new_container_and_keeps_the_old_one_out_of_compose() {
    let scope = Scope::new("runbook");
    let port = free_port();
    let (name, old_id, kept) = killed_during_health_wait(&scope, port);
    let env = Env::new("");
    let project = scope.project();
    // A plain rollback on the service sees the cut-off run first and says what it found.
    let dry = env.berth(&["rollback", "web", "-p", &project, "--dry-run"]);
    let t = text(&dry);
    assert!(
        dry.status.success() && t.contains("did not finish") && t.contains(&kept),
        "{t}"
    );
    let out = env.berth(&["recover", "web", "-p", &project, "--yes"]);
    assert!(
        !out.status.success(),
        "a choice is required: {}",
        text(&out)
    );
    let out = env.berth(&["recover", "web", "-p", &project, "--finish", "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("now:") && t.contains("berth-test/web:v1"), "{t}");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert!(
        !docker_try(&["inspect", &old_id]).0,
        "the raw old container is replaced"
    );
    let copy = kept_of(&name);
    assert_eq!(
        inspect(
            &copy,
            "{{index .Config.Labels \"com.docker.compose.project\"}}"
        ),
        ""
    );
    let lines = AuditLog::at(env.data().join("audit.jsonl"))
        .read_last(10)
        .unwrap();
    let phases: Vec<&str> = lines.iter().map(|e| e.result.as_str()).collect();
    assert_eq!(phases, vec!["interrupted", "started", "ok"], "{lines:#?}");
    assert!(
        lines[0].message.contains("20260101000000-1"),
        "{:?}",
        lines[0]
    );
    // Nothing left to recover.
    let out = env.berth(&["recover", "web", "-p", &project, "--restore", "--yes"]);
    assert!(
        !out.status.success() && text(&out).contains("nothing to recover"),
        "{}",
        text(&out)
    );
}

#[test]
fn recover_restore_puts_the_old_container_back_exactly() {
    let scope = Scope::new("runbook");
    let port = free_port();
    let (name, old_id, _kept) = killed_during_health_wait(&scope, port);
    let env = Env::new("");
    let out = env.berth(&[
        "recover",
        "web",
        "-p",
        &scope.project(),
        "--restore",
        "--yes",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(
        inspect(&name, "{{.Id}}"),
        old_id,
        "the very old container, under its name"
    );
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
    let filter = format!("name={}", scope.prefix);
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &filter]).lines().count(),
        1
    );
    assert_eq!(
        env.audit()
            .last()
            .map(|e| (e.action.as_str(), e.result.as_str())),
        Some(("rollback-recover", "ok"))
    );
}

/// berth killed (-9) during the first stop leaves nothing renamed or created on the server: only
/// the run journal knows. The stop it sent still ends (PID 1 of the fixture ignores SIGTERM, so the
/// stop takes its whole timeout). Its lock refuses the next rollback, pointing at `berth recover`,
/// which finds the run, waits that stop out, starts the old container again and verifies it — one
/// container serving, the audit says so.
#[test]
fn berth_killed_during_the_stop_is_found_by_its_journal_and_restored() {
    use std::io::BufRead;
    let scope = Scope::new("runbook");
    let port = free_port();
    let name = common::slow_stop_web(&scope, port);
    let old_id = inspect(&name, "{{.Id}}");
    let env = Env::new("");
    let project = scope.project();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--config")
        .arg(env.config())
        .args([
            "rollback",
            "web",
            "-p",
            &project,
            "--to",
            "berth-test/web:v1",
            "--yes",
        ])
        .env("BERTH_DATA_DIR", env.data())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take(200)
    {
        let at_stop = line.starts_with("→ 1.");
        seen.push(line);
        if at_stop {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.starts_with("→ 1.")), "{seen:?}");
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    let _ = child.wait();
    let journal = std::fs::read_dir(env.data().join("runs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(journal, 1, "the killed run left its journal");

    let out = env.berth(&["rollback", "web", "-p", &project, "--yes"]);
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("is locked") && t.contains("berth recover web"),
        "{t}"
    );
    let out = env.berth(&["recover", "web", "-p", &project, "--restore", "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("run journal") && t.contains("restored"), "{t}");
    assert_eq!(inspect(&name, "{{.Id}}"), old_id);
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));
    let filter = format!("name={}", scope.prefix);
    assert_eq!(
        docker(&["ps", "-q", "--filter", &filter]).lines().count(),
        1
    );
    let lines = AuditLog::at(env.data().join("audit.jsonl"))
        .read_last(10)
        .unwrap();
    let phases: Vec<(&str, &str)> = lines
        .iter()
        .map(|e| (e.action.as_str(), e.result.as_str()))
        .collect();
    assert_eq!(
        phases,
        vec![
            ("rollback", "started"),
            ("rollback-recover", "interrupted"),
            ("rollback-recover", "started"),
            ("rollback-recover", "ok"),
        ]
    );
    assert!(lines[3].message.contains("now:") && lines[3].message.contains("berth-test/web:v2"));
    assert_eq!(
        std::fs::read_dir(env.data().join("runs"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "the recovery closes the journal"
    );
}

#[test]
fn production_refuses_yes_alone() {
    let scope = Scope::new("runbook");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let env = Env::new(
        "[servers.p]\ntarget = \"unix:///var/run/docker.sock\"\nenvironment = \"production\"\n",
    );
    let before = inspect(&name, "{{.State.StartedAt}}");
    let out = env.berth(&["-s", "p", "restart", &name, "--yes"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    // One rule for every action: the service as the list shows it (`web`, or PROJECT/web while
    // another project on the engine has a `web` too).
    assert!(
        t.contains("production")
            && (t.contains("--confirm web ")
                || t.contains(&format!("--confirm {}/web ", scope.project()))),
        "{t}"
    );
    let out = env.berth(&[
        "-s",
        "p",
        "restart",
        &name,
        "--yes",
        "--confirm",
        "something-else",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        inspect(&name, "{{.State.StartedAt}}"),
        before,
        "nothing was restarted"
    );
    assert!(env.audit().is_empty());
    let out = env.berth(&["-s", "p", "restart", &name, "--yes", "--confirm", &name]);
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(inspect(&name, "{{.State.StartedAt}}"), before);
    let audit = env.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].environment.as_deref(), Some("production"));
    assert_eq!(
        (audit[0].action.as_str(), audit[0].result.as_str()),
        ("restart", "ok")
    );
}

#[test]
fn read_only_refuses_everything_mutating() {
    let scope = Scope::new("runbook");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let env =
        Env::new("[servers.ro]\ntarget = \"unix:///var/run/docker.sock\"\nread_only = true\n");
    let started = inspect(&name, "{{.State.StartedAt}}");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--read-only", "restart", &name, "--yes"],
        vec!["--read-only", "stop", &name, "--yes"],
        vec!["--read-only", "kill", &name, "--yes"],
        vec!["--read-only", "rm", &name, "--yes"],
        vec!["--read-only", "start", &name, "--yes"],
        vec![
            "--read-only",
            "migrate",
            &name,
            "--command",
            "true",
            "--yes",
        ],
        vec!["--read-only", "rollback", &name, "--to", "v2", "--yes"],
        vec!["--read-only", "prune", "--only", &scope.prefix, "--yes"],
        vec!["-s", "ro", "restart", &name, "--yes"],
        vec!["-s", "ro", "prune", "--only", &scope.prefix, "--yes"],
    ];
    for args in &cases {
        let out = env.berth(args);
        let t = text(&out);
        assert!(!out.status.success(), "{args:?} must be refused: {t}");
        assert!(t.contains("read-only"), "{args:?}: {t}");
    }
    assert_eq!(inspect(&name, "{{.State.StartedAt}}"), started);
    assert!(env.audit().is_empty());
    // Reading is still allowed.
    assert!(
        env.berth(&["--read-only", "prune", "--dry-run", "--only", &scope.prefix])
            .status
            .success()
    );
    assert!(env.berth(&["--read-only", "audit"]).status.success());
}

#[test]
fn non_tty_needs_yes() {
    let scope = Scope::new("runbook");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let env = Env::new("");
    let out = env.berth(&["stop", &name]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(inspect(&name, "{{.State.Running}}"), "true");
}

/// The run's word is the engine's: a stop of a service's two replicas whose first replica was
/// started again while the second stopped (the run held there by the debug build's test hook)
/// reports every step done, yet ends failed naming the replica that runs, on the CLI and in the
/// audit.
#[test]
fn a_stop_whose_replica_was_started_again_meanwhile_fails_naming_it() {
    let scope = Scope::new("runbook");
    scope.run_service("web", 1, &["--stop-timeout", "1", "berth-test/web:v1"]);
    scope.run_service("web", 2, &["--stop-timeout", "1", "berth-test/web:v1"]);
    let (one, two) = (scope.name("web-1"), scope.name("web-2"));
    let env = Env::new("");
    let mut stop = Command::new(env!("CARGO_BIN_EXE_berth"));
    common::isolate(&mut stop, &env.dir.path().join("home"))
        .arg("--config")
        .arg(env.config())
        .args(["stop", "web", "-p", &scope.project(), "--yes"])
        .env("BERTH_DATA_DIR", env.data())
        .env("BERTH_TEST_HOLD_STEP", "2");
    let stop = std::thread::spawn(move || stop.output_within(BERTH_TIMEOUT));
    assert!(
        common::wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            inspect(&one, "{{.State.Running}}") == "false"
        }),
        "berth never stopped {one}"
    );
    docker(&["start", &one]);
    let out = stop.join().unwrap().expect("berth stop ends");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("FAILED:")
            && said.contains(&format!("{one}: stopped: {one} is running"))
            && !said.contains(&format!("{two}: stopped: ")),
        "the CLI names the replica that runs, and only it: {said}"
    );
    assert_eq!(inspect(&one, "{{.State.Running}}"), "true");
    assert_eq!(inspect(&two, "{{.State.Running}}"), "false");
    let last = env.audit().pop().expect("the run audited");
    assert_eq!(
        (last.action.as_str(), last.result.as_str()),
        ("stop", "failed")
    );
    assert!(
        last.message.contains(&format!("{one} is running")),
        "{}",
        last.message
    );
}

/// `berth stop` gives a container its own stop timeout, as `docker stop` does, read from the
/// engine: one whose TERM handler needs 11 s to shut down cleanly and that allows itself 14 s
/// exits by itself (0); a fixed 10 s would have killed it (137).
#[test]
fn stop_gives_a_container_its_own_stop_timeout() {
    let scope = Scope::new("grace");
    scope.run(
        "slow",
        &[
            "--stop-timeout",
            "14",
            "--no-healthcheck",
            "--entrypoint",
            "sh",
            "berth-test/web:v1",
            "-c",
            "trap 'sleep 11; exit 0' TERM; while :; do sleep 1; done",
        ],
    );
    let name = scope.name("slow");
    let env = Env::new("");
    let out = env.berth(&["stop", &name, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inspect(&name, "{{.State.Running}}"), "false");
    assert_eq!(
        inspect(&name, "{{.State.ExitCode}}"),
        "0",
        "it shut down by itself within its own timeout, not killed"
    );
}

#[test]
fn service_actions_wait_for_health_and_are_audited() {
    let scope = Scope::new("runbook");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    scope.run_service("web", 2, &["--stop-timeout", "1", "berth-test/web:v1"]);
    let env = Env::new("");
    let out = env.berth(&["restart", "web", "-p", &scope.project(), "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("web-1 healthy") && t.contains("web-2 healthy"),
        "{t}"
    );
    // Each container's own stop timeout (docker run --stop-timeout 1), as docker stop gives it.
    let out = env.berth(&["stop", "web", "-p", &scope.project(), "--dry-run"]);
    let t = text(&out);
    assert!(
        t.contains("SIGKILL after 1 s") && !t.contains("SIGKILL after 10 s"),
        "{t}"
    );
    let out = env.berth(&["stop", "web", "-p", &scope.project(), "--yes", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["result"]["ok"], true);
    assert_eq!(inspect(&name, "{{.State.Running}}"), "false");
    let out = env.berth(&["start", &name, "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    let out = env.berth(&["rm", &scope.name("web-2"), "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!docker_try(&["inspect", &scope.name("web-2")]).0);
    let actions: Vec<String> = env.audit().iter().map(|e| e.action.clone()).collect();
    assert_eq!(actions, vec!["restart", "stop", "start", "rm"]);
    let out = env.berth(&["audit", "--json", "-n", "2"]);
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(lines.lines().count(), 2);
    assert!(
        lines.contains("\"started\"") && lines.contains("\"ok\""),
        "each run opens with a started line and closes with its result: {lines}"
    );
    let out = env.berth(&["audit"]);
    assert!(text(&out).contains("restart"), "{}", text(&out));
    // An unknown name is one clear line.
    let out = env.berth(&["restart", "no-such-thing-anywhere", "--yes"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no container or service named"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_streams_output_and_reports_the_exit_code() {
    let scope = Scope::new("runbook");
    let name = web_service(&scope, "berth-test/web:v1", free_port());
    let engine = local().await;
    let config = berth::config::Config::default();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let req = runbook::MigrateRequest {
        name: name.clone(),
        command: Some("sh -c 'echo migrating; echo done'".into()),
        ..Default::default()
    };
    let plan = runbook::plan_migrate(&engine, &config, &req).await.unwrap();
    let (result, events) = run_plan(plan, engine.clone(), &audit).await;
    assert!(result.ok, "{result:?}");
    let lines: Vec<&str> = events
        .iter()
        .filter_map(|e| {
            if let RunEvent::Output { line, .. } = e {
                Some(line.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(lines, vec!["migrating", "done"]);

    let req = runbook::MigrateRequest {
        name: name.clone(),
        command: Some("sh -c 'echo boom >&2; exit 3'".into()),
        ..Default::default()
    };
    let plan = runbook::plan_migrate(&engine, &config, &req).await.unwrap();
    let (result, events) = run_plan(plan, engine.clone(), &audit).await;
    assert!(!result.ok);
    assert!(result.message.contains("exit code 3"), "{}", result.message);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::Output { line, .. } if line == "boom"))
    );
    assert!(events.iter().any(|e| matches!(e, RunEvent::StepFinished { outcome, .. } if outcome.status == StepStatus::Failed)));

    // One-off: a fresh container from the image with the service's env, removed afterwards.
    let req = runbook::MigrateRequest {
        name: name.clone(),
        command: Some("sh -c 'echo FOO=$FOO'".into()),
        one_off: true,
        ..Default::default()
    };
    let plan = runbook::plan_migrate(&engine, &config, &req).await.unwrap();
    let (result, events) = run_plan(plan, engine.clone(), &audit).await;
    assert!(result.ok, "{result:?} {events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::Output { line, .. } if line == "FOO=bar")),
        "{events:?}"
    );
    let filter = format!("name={}", scope.prefix);
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &filter]).lines().count(),
        1,
        "the one-off container is removed"
    );

    let entries = AuditLog::at(&audit).read_last(10).unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.result != "started")
            .map(|e| e.result.as_str())
            .collect::<Vec<_>>(),
        vec!["ok", "failed", "ok"]
    );

    // Through the binary: the failure is a non-zero exit.
    let env = Env::new("");
    let out = env.berth(&[
        "migrate",
        &name,
        "--command",
        "sh -c 'echo boom >&2; exit 3'",
        "--yes",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("exit code 3"), "{}", text(&out));
    // berth exits with the migration's own code, so scripts can tell a failed migration apart.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(env.audit().len(), 1);
    // --shell runs the script through `sh -c`: a builtin and `&&` work, and the exit code is the
    // script's own.
    let out = env.berth(&[
        "migrate",
        &name,
        "--shell",
        "echo shell-ran && exit 4",
        "--yes",
    ]);
    assert!(text(&out).contains("shell-ran"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
}

/// `/system/df` changed shape in API 1.52; berth reads it raw so both shapes reach the prune plan.
#[tokio::test]
async fn raw_engine_get_reads_system_df_in_the_engines_own_shape() {
    let engine = local().await;
    let df = engine.get_json("/system/df").await.unwrap();
    assert!(
        df.get("Images").is_some() || df.get("ImageUsage").is_some(),
        "unexpected /system/df answer: {df}"
    );
    let missing = engine
        .get_json("/containers/berth-no-such-container/json")
        .await;
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("berth-no-such-container"),
        "a 404 names what is missing"
    );
}

/// A distinct image (its own id) of `repo:tag`, one second newer than the one before it.
fn distinct_image(tags: &mut Tags, repo_tag: &str, n: u32) {
    use std::io::Write;
    std::thread::sleep(Duration::from_millis(1100));
    let mut dockerfile = tempfile::tempfile().unwrap();
    write!(
        dockerfile,
        "FROM berth-test/web:v1\nLABEL berth.test.generation={n}\n"
    )
    .unwrap();
    std::io::Seek::rewind(&mut dockerfile).unwrap();
    let out = common::docker_cmd()
        .args(["build", "-q", "-t", repo_tag, "-"])
        .stdin(dockerfile)
        .output_within(common::DOCKER_TIMEOUT)
        .unwrap();
    assert!(out.status.success(), "docker build: {}", text(&out));
    tags.0.push(repo_tag.to_string());
}

fn image_exists(reference: &str) -> bool {
    docker_try(&["image", "inspect", reference]).0
}

/// Kamal lost rollback images to a prune (kamal #1922): prune keeps the service's current image, its
/// previous one, the newest N older than the current, and what a kept old container uses. An image
/// newer than the current that never ran is not a rollback target: it goes.
#[test]
fn prune_keeps_the_images_rollback_needs() {
    // Declared first so it is dropped last: the containers using the images go before the tags.
    let mut tags = Tags(Vec::new());
    let scope = Scope::new("prune");
    let repo = scope.name("app");
    for n in 1..=5 {
        distinct_image(&mut tags, &format!("{repo}:t{n}"), n);
    }
    // The service runs t4; a rollback left the old container (t1) kept and stopped.
    scope.run_service("app", 1, &[&format!("{repo}:t4")]);
    let kept_old = scope.name("app-1-berth-kept-1");
    docker(&["create", "--name", &kept_old, &format!("{repo}:t1")]);
    let env = Env::new("");

    let dry = env.berth(&["prune", "--dry-run", "--only", &scope.prefix, "--keep", "1"]);
    let t = text(&dry);
    assert!(dry.status.success(), "{t}");
    assert!(t.contains(&format!("{repo}:t2")), "t2 is to go: {t}");
    assert!(t.contains("keep for rollback"), "{t}");
    assert!(
        t.contains(&format!("{repo}:t1 (kept container")),
        "why t1 stays: {t}"
    );
    assert!(
        image_exists(&format!("{repo}:t2")),
        "a dry run removes nothing"
    );

    let out = env.berth(&["prune", "--only", &scope.prefix, "--keep", "1", "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for kept in ["t1", "t3", "t4"] {
        assert!(
            image_exists(&format!("{repo}:{kept}")),
            "{kept} was pruned: {t}"
        );
    }
    for gone in ["t2", "t5"] {
        assert!(
            !image_exists(&format!("{repo}:{gone}")),
            "{gone} should be gone: {t}"
        );
    }
    assert!(
        docker_try(&["inspect", &kept_old]).0,
        "the kept old container stays"
    );
    let actions: Vec<String> = env.audit().iter().map(|e| e.action.clone()).collect();
    assert_eq!(actions, vec!["prune"]);
}

/// No journal, no run on production: berth's data directory cannot hold the run journal (its
/// `runs` is a file here, as a full or read-only disk would refuse it). Production refuses with
/// why, even with --force; elsewhere the CLI refuses without --force and runs with it.
#[test]
fn a_rollback_whose_journal_cannot_be_written_is_refused_on_production() {
    let scope = Scope::new("nojournal");
    let port = free_port();
    let name = web_service(&scope, "berth-test/web:v2", port);
    let env = Env::new(
        "[servers.prod]\ntarget = \"unix:///var/run/docker.sock\"\nenvironment = \"production\"\n[servers.stage]\ntarget = \"unix:///var/run/docker.sock\"\nenvironment = \"staging\"\n",
    );
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::write(env.data().join("runs"), "not a directory").unwrap();
    let id_before = inspect(&name, "{{.Id}}");
    let rollback = |server: &str, extra: &[&str]| {
        let mut args = vec![
            "-s",
            server,
            "rollback",
            &name,
            "--to",
            "berth-test/web:v1",
            "--yes",
            "--confirm",
            &name,
        ];
        args.extend_from_slice(extra);
        env.berth(&args)
    };
    for extra in [&[][..], &["--force"][..]] {
        let out = rollback("prod", extra);
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(
            t.contains("the run journal cannot be written")
                && t.contains("berth runs nothing on production without it"),
            "{t}"
        );
    }
    let out = rollback("stage", &[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("add --force to run without it"), "{t}");
    assert_eq!(
        inspect(&name, "{{.Id}}"),
        id_before,
        "nothing was changed: the same container serves"
    );
    assert_eq!(http_get(port, "/version").as_deref(), Some("v2"));

    let out = rollback("stage", &["--force"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("--force: no run journal"), "{t}");
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"), "{t}");
}
