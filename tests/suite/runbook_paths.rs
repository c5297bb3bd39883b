//! The rollback paths a fixed-port fixture never takes, through the real `berth` binary against the
//! real engine: start-first (new beside old, then the switch) and its restore, several replicas
//! with one failing health, `--retag`, `--remove-old`, and every piece of configuration a
//! recreated container must keep.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    BERTH_TIMEOUT, OutputWithin, Scope, docker, docker_try, image_id, inspect, wait_until,
};
use serde_json::Value;

/// Small health settings: the web fixtures check every second.
const FAST: &str = "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n";

/// A config, data dir and HOME of this test's own.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), FAST).unwrap();
        Env { dir }
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// `berth ARGS…` with stdin not a terminal; bounded in time.
    fn berth(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        common::isolate(&mut c, &self.dir.path().join("home"))
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(args)
            .env("BERTH_DATA_DIR", self.data())
            .output_within(BERTH_TIMEOUT)
            .expect("berth finishes")
    }
    /// The audit log's (action, result) pairs, oldest first.
    fn audit(&self) -> Vec<(String, String, Value)> {
        std::fs::read_to_string(self.data().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("audit line is JSON");
                (
                    v["action"].as_str().unwrap_or_default().to_string(),
                    v["result"].as_str().unwrap_or_default().to_string(),
                    v,
                )
            })
            // Each run opens with a `started` line; these tests read the closing ones.
            .filter(|(_, r, _)| r != "started")
            .collect()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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
            let _ = docker_try(&["rmi", "--no-prune", t]);
        }
    }
}

fn wait_healthy(name: &str) {
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            docker_try(&["inspect", "-f", "{{.State.Health.Status}}", name])
                .1
                .trim()
                == "healthy"
        }),
        "{name} did not become healthy"
    );
}

/// What the web fixture in container `name` says it is, asked from inside (no host port needed).
fn version_inside(name: &str) -> String {
    docker(&[
        "exec",
        name,
        "wget",
        "-q",
        "-O",
        "-",
        "http://127.0.0.1:8080/version",
    ])
}

/// Names of all containers (running or not) of this test.
fn names(scope: &Scope) -> Vec<String> {
    let filter = format!("name={}", scope.prefix);
    let mut v: Vec<String> = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// A service without a fixed host port is rolled back start-first: the new container starts beside
/// the old one, which keeps serving until the switch. When the new one fails, the old one was never
/// stopped at all.
#[test]
fn start_first_rollback_and_its_restore() {
    let scope = Scope::new("rbfirst");
    scope.run_service(
        "web",
        1,
        &[
            "--stop-timeout",
            "1",
            "-p",
            "127.0.0.1::8080",
            "-e",
            "FOO=bar",
            "berth-test/web:v2",
        ],
    );
    let name = scope.name("web-1");
    wait_healthy(&name);
    let old_id = inspect(&name, "{{.Id}}");
    let old_started = inspect(&name, "{{.State.StartedAt}}");
    let project = scope.project();
    let env = Env::new();

    let dry = env.berth(&[
        "rollback",
        "web",
        "-p",
        &project,
        "--to",
        "berth-test/web:v1",
        "--dry-run",
    ]);
    let t = text(&dry);
    assert!(dry.status.success(), "{t}");
    assert!(
        t.contains("beside the running") && !t.contains("fixed host port"),
        "an ephemeral port plans start-first:\n{t}"
    );

    // A failing image: the new container never turns healthy; the old one kept running throughout.
    let out = env.berth(&[
        "rollback",
        "web",
        "-p",
        &project,
        "--to",
        "berth-test/web:bad",
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed rollback exits 1:\n{t}"
    );
    assert!(t.contains("restored"), "{t}");
    assert_eq!(inspect(&name, "{{.Id}}"), old_id, "{t}");
    assert_eq!(
        inspect(&name, "{{.State.StartedAt}}"),
        old_started,
        "start-first never stops the old container when the new one fails:\n{t}"
    );
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(version_inside(&name), "v2");
    assert_eq!(
        names(&scope),
        vec![name.clone()],
        "the failed new container is removed:\n{t}"
    );

    // A good image: the switch happens, the old one is kept stopped as a -berth-kept- copy that
    // compose does not see (the original is replaced by the copy).
    let out = env.berth(&[
        "rollback",
        "web",
        "-p",
        &project,
        "--to",
        "berth-test/web:v1",
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert_ne!(inspect(&name, "{{.Id}}"), old_id, "{t}");
    assert_eq!(inspect(&name, "{{.Config.Image}}"), "berth-test/web:v1");
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(version_inside(&name), "v1");
    assert_eq!(
        inspect(&name, "{{index .Config.Labels \"berth.rollback.from\"}}"),
        old_id
    );
    assert!(
        !docker_try(&["inspect", &old_id]).0,
        "replaced by its kept copy"
    );
    let kept_filter = format!("name={name}-berth-kept-");
    let kept = docker(&["ps", "-aq", "--filter", &kept_filter]);
    assert_eq!(kept.lines().count(), 1, "one kept copy: {kept}");
    assert_eq!(inspect(&kept, "{{.State.Running}}"), "false");
    assert_eq!(names(&scope).len(), 2, "{:?}", names(&scope));
    let audit: Vec<(String, String)> = env.audit().into_iter().map(|(a, r, _)| (a, r)).collect();
    assert_eq!(
        audit,
        vec![
            ("rollback".to_string(), "failed".to_string()),
            ("rollback".to_string(), "ok".to_string())
        ]
    );
}

/// Two replicas; the second's own health check only passes on v2. Rolling back to v1 succeeds for
/// the first and fails for the second: both must end on v2 again, as the original containers,
/// healthy, with nothing berth made left behind, and the exit code must say it failed.
#[test]
fn multi_replica_rollback_with_one_replica_failing_restores_all() {
    let scope = Scope::new("rbmulti");
    scope.run_service("web", 1, &["--stop-timeout", "1", "berth-test/web:v2"]);
    scope.run_service(
        "web",
        2,
        &[
            "--stop-timeout",
            "1",
            "--health-cmd",
            "wget -q -O - http://127.0.0.1:8080/version | grep -q v2",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "berth-test/web:v2",
        ],
    );
    let (n1, n2) = (scope.name("web-1"), scope.name("web-2"));
    wait_healthy(&n1);
    wait_healthy(&n2);
    let (id1, id2) = (inspect(&n1, "{{.Id}}"), inspect(&n2, "{{.Id}}"));
    let env = Env::new();
    let out = env.berth(&[
        "rollback",
        "web",
        "-p",
        &scope.project(),
        "--to",
        "berth-test/web:v1",
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("restored"), "{t}");
    for (name, id) in [(&n1, &id1), (&n2, &id2)] {
        assert_eq!(
            &inspect(name, "{{.Id}}"),
            id,
            "{name} is the original:\n{t}"
        );
        assert_eq!(inspect(name, "{{.State.Running}}"), "true", "{t}");
        wait_healthy(name);
        assert_eq!(version_inside(name), "v2", "{name}:\n{t}");
    }
    assert_eq!(
        names(&scope),
        vec![n1.clone(), n2.clone()],
        "no new or kept container is left:\n{t}"
    );
    let audit = env.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].0.as_str(), audit[0].1.as_str()),
        ("rollback", "failed")
    );
}

/// `--retag` points the service's tag at the image rolled back to (so `docker compose up -d` does
/// not roll forward) and keeps the displaced image under a `berth-before-rollback-` tag;
/// `--remove-old` leaves no kept container behind.
#[test]
fn retag_and_remove_old() {
    let mut tags = Tags(Vec::new());
    let scope = Scope::new("rbretag");
    let repo = scope.name("app");
    let (prod, v1) = (format!("{repo}:prod"), format!("{repo}:v1"));
    tags.tag("berth-test/web:v2", &prod);
    tags.tag("berth-test/web:v1", &v1);
    let (v1_id, v2_id) = (image_id("berth-test/web:v1"), image_id("berth-test/web:v2"));
    scope.run_service("web", 1, &["--stop-timeout", "1", &prod]);
    let name = scope.name("web-1");
    wait_healthy(&name);
    let old_id = inspect(&name, "{{.Id}}");
    let env = Env::new();
    let out = env.berth(&[
        "rollback",
        &name,
        "--to",
        &v1,
        "--retag",
        "--remove-old",
        "--yes",
    ]);
    // Whatever happened, the tags this test caused are removed with it.
    let kept_tags: Vec<String> = docker(&["images", &repo, "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .map(str::to_string)
        .collect();
    for t in &kept_tags {
        if !tags.0.contains(t) {
            tags.0.push(t.clone());
        }
    }
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert_eq!(version_inside(&name), "v1");
    assert_eq!(
        image_id(&prod),
        v1_id,
        "{prod} now names the image rolled back to:\n{t}"
    );
    let before: Vec<&String> = kept_tags
        .iter()
        .filter(|t| t.starts_with(&format!("{repo}:berth-before-rollback-")))
        .collect();
    assert_eq!(before.len(), 1, "{kept_tags:?}");
    assert_eq!(
        image_id(before[0]),
        v2_id,
        "the displaced image keeps a name"
    );
    assert!(
        !docker_try(&["inspect", &old_id]).0,
        "--remove-old removed the old container:\n{t}"
    );
    assert_eq!(names(&scope), vec![name.clone()]);
    let audit = env.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].1, "ok");
    assert_eq!(audit[0].2["parameters"]["retag"], true, "{:?}", audit[0].2);
    assert_eq!(audit[0].2["parameters"]["remove_old"], true);
}

/// What the service's alias `web` answers on `net` (`/version`), asked from a throwaway container
/// until it answers `want`, up to 5 times a second apart: under load the engine's DNS has been seen
/// not to answer for the alias right after a run (2 runs in 7); an alias that never comes back
/// still fails.
fn alias_answers(net: &str, want: &str) -> (bool, String) {
    let ask = || {
        docker_try(&[
            "run",
            "--rm",
            "--network",
            net,
            "--entrypoint",
            "wget",
            "berth-test/web:v1",
            "-q",
            "-O",
            "-",
            "http://web:8080/version",
        ])
    };
    let mut answered = ask();
    for _ in 0..4 {
        if answered.0 && answered.1.trim() == want {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        answered = ask();
    }
    answered
}

/// A named volume made for one test; removed after the containers that use it (declare it first).
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker_try(&["volume", "rm", &self.0]);
    }
}

fn inspect_json(name: &str) -> Value {
    let v: Value = serde_json::from_str(&docker(&["inspect", name])).expect("inspect JSON");
    v[0].clone()
}

/// Every setting a rollback must carry over, read from `docker inspect` before and after.
#[test]
fn rollback_keeps_the_whole_configuration() {
    let volume = Volume(format!("berth-t-rbconf-{}-data", std::process::id()));
    let scope = Scope::new("rbconf");
    let net_a = scope.name("net-a");
    let net_b = scope.name("net-b");
    docker(&["network", "create", &net_a]);
    docker(&["network", "create", &net_b]);
    docker(&["volume", "create", &volume.0]);
    let bind = tempfile::tempdir().unwrap();
    std::fs::write(bind.path().join("hello"), "hi").unwrap();
    let bind_spec = format!("{}:/srv:ro", bind.path().display());
    let vol_spec = format!("{}:/data", volume.0);
    scope.run_service(
        "web",
        1,
        &[
            "--stop-timeout",
            "1",
            "-p",
            "127.0.0.1::8080",
            "-v",
            &vol_spec,
            "-v",
            &bind_spec,
            "-v",
            "/anon",
            "--network",
            &net_a,
            "--network-alias",
            "api-alias",
            "--health-cmd",
            "wget -q -O /dev/null http://127.0.0.1:8080/version",
            "--health-interval",
            "1s",
            "--health-retries",
            "3",
            "--entrypoint",
            "/bin/httpd",
            "--user",
            "65534:65534",
            "--workdir",
            "/www",
            "--label",
            "team=payments",
            "-e",
            "FOO=bar",
            "-e",
            "DB_PASSWORD=hunter2",
            "--restart",
            "on-failure:3",
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "100",
            "berth-test/web:v2",
            "-f",
            "-p",
            "8080",
            "-h",
            "/www",
        ],
    );
    let name = scope.name("web-1");
    docker(&[
        "network",
        "connect",
        "--alias",
        "second-alias",
        &net_b,
        &name,
    ]);
    wait_healthy(&name);
    // The anonymous volume's content must survive too: it is the old container's volume.
    docker(&[
        "exec",
        "-u",
        "0",
        &name,
        "sh",
        "-c",
        "echo kept > /anon/marker",
    ]);
    let before = inspect_json(&name);
    let env = Env::new();
    let out = env.berth(&["rollback", &name, "--to", "berth-test/web:v1", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let after = inspect_json(&name);
    assert_ne!(before["Id"], after["Id"], "a new container:\n{t}");
    assert_eq!(after["Config"]["Image"], "berth-test/web:v1");

    for path in [
        "/Config/Cmd",
        "/Config/Entrypoint",
        "/Config/User",
        "/Config/WorkingDir",
        "/Config/Healthcheck",
        "/Config/Labels/team",
        "/Config/Labels/com.docker.compose.project",
        "/Config/Labels/com.docker.compose.service",
        "/Config/Labels/com.docker.compose.container-number",
        "/HostConfig/Binds",
        "/HostConfig/RestartPolicy",
        "/HostConfig/PortBindings",
        "/HostConfig/Memory",
        "/HostConfig/NanoCpus",
        "/HostConfig/PidsLimit",
    ] {
        assert_eq!(
            before.pointer(path),
            after.pointer(path),
            "{path} changed in the rollback:\n{t}"
        );
        assert!(before.pointer(path).is_some(), "{path} is not in inspect");
    }
    // Env: the container's own entries stay; the image's own (APP_VERSION) follow the new image.
    let env_of = |v: &Value| -> Vec<String> {
        v["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect()
    };
    let env_after = env_of(&after);
    for e in ["FOO=bar", "DB_PASSWORD=hunter2", "APP_VERSION=v1"] {
        assert!(env_after.contains(&e.to_string()), "{e}: {env_after:?}");
    }
    assert!(!env_after.contains(&"APP_VERSION=v2".to_string()));
    // Mounts: the same named volume, bind and anonymous volume, at the same places, same modes.
    let mounts = |v: &Value| -> Vec<(String, String, String, bool)> {
        let mut m: Vec<_> = v["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Destination"].as_str().unwrap_or_default().to_string(),
                    m["Type"].as_str().unwrap_or_default().to_string(),
                    m["Name"]
                        .as_str()
                        .or(m["Source"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    m["RW"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        m.sort();
        m
    };
    assert_eq!(mounts(&before), mounts(&after), "{t}");
    assert_eq!(mounts(&after).len(), 3);
    assert_eq!(
        docker(&["exec", &name, "cat", "/anon/marker", "/srv/hello"]),
        "kept\nhi"
    );
    // Networks, each with its alias.
    for (net, alias) in [(&net_a, "api-alias"), (&net_b, "second-alias")] {
        let aliases = &after["NetworkSettings"]["Networks"][net.as_str()]["Aliases"];
        assert!(
            aliases
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == alias)),
            "{net} with alias {alias}: {aliases}\n{t}"
        );
    }
    let nets = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["NetworkSettings"]["Networks"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        n.sort();
        n
    };
    assert_eq!(nets(&before), nets(&after));
    assert_eq!(after["State"]["Health"]["Status"], "healthy");
    assert_eq!(version_inside(&name), "v1");
}

/// The scope's `web-1` on v2, healthy, on a network of its own under the alias `web`, stopped
/// within `stop_timeout` seconds. Returns (the network, the replica's name).
fn web_v2_on_own_network(scope: &Scope, stop_timeout: &str) -> (String, String) {
    let net = scope.name("net");
    docker(&["network", "create", &net]);
    scope.run_service(
        "web",
        1,
        &[
            "--stop-timeout",
            stop_timeout,
            "--network",
            &net,
            "--network-alias",
            "web",
            "berth-test/web:v2",
        ],
    );
    let name = scope.name("web-1");
    wait_healthy(&name);
    (net, name)
}

/// Docker's DNS names a stopped replica until the engine releases its network, a few hundred ms
/// after the process died; a client looking the service up then is handed a dead address. The
/// switch takes the old replica out of its networks first, stops it, then connects it back
/// (stopped), so its kept copy has the same networks and aliases for a later rollback.
#[test]
fn the_old_replica_leaves_the_dns_before_it_stops_and_keeps_its_networks() {
    let scope = Scope::new("rbdns");
    let (net, name) = web_v2_on_own_network(&scope, "1");
    let old_id = inspect(&name, "{{.Id}}");
    let project = scope.project();
    let env = Env::new();
    let t0 = chrono::Utc::now().timestamp() - 1;
    let out = env.berth(&[
        "rollback",
        "web",
        "-p",
        &project,
        "--to",
        "berth-test/web:v1",
        "--yes",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(&format!("left {net}")), "{t}");
    let t1 = chrono::Utc::now().timestamp() + 1;
    // The engine's own record of what happened to the old container, in order.
    let events = docker(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--format",
        "{{.TimeNano}} {{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"container\"}}",
    ]);
    let at = |kind: &str, action: &str| -> Option<u128> {
        events
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let about_old =
                    f.get(3) == Some(&old_id.as_str()) || f.get(4) == Some(&old_id.as_str());
                (f.len() >= 4 && f[1] == kind && f[2] == action && about_old)
                    .then(|| f[0].parse().ok())
                    .flatten()
            })
            .min()
    };
    let left = at("network", "disconnect").unwrap_or_else(|| panic!("no disconnect:\n{events}"));
    let died = at("container", "die").unwrap_or_else(|| panic!("no die:\n{events}"));
    assert!(
        left < died,
        "the old replica left the network after it died:\n{events}"
    );
    // The kept copy has the network and the service's alias back.
    let kept_filter = format!("name={name}-berth-kept-");
    let kept = docker(&["ps", "-aq", "--filter", &kept_filter]);
    assert_eq!(kept.lines().count(), 1, "one kept copy: {kept}");
    let nets = docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &kept]);
    let nets: Value = serde_json::from_str(&nets).unwrap();
    assert!(
        nets[&net]["Aliases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "web")),
        "{nets}"
    );
    // The new replica serves under the alias on that network.
    let (ok, answer) = alias_answers(&net, "v1");
    assert!(
        ok && answer.trim() == "v1",
        "{answer}\nthe new replica's networks: {}\n{t}",
        docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &name])
    );
}

/// Killed between leaving the networks and rejoining them (during the old replica's stop), a
/// deploy leaves the old replica on no network; the recovery gives it back its copy's networks and
/// aliases before it removes the copy, so the restored replica answers under the service's name.
#[test]
fn a_run_cut_off_while_the_old_replica_is_off_its_networks_is_restored_onto_them() {
    let scope = Scope::new("rbcut");
    let (net, name) = web_v2_on_own_network(&scope, "2");
    let old_id = inspect(&name, "{{.Id}}");
    let project = scope.project();
    let env = Env::new();
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    common::isolate(&mut c, &env.dir.path().join("home"))
        .arg("--config")
        .arg(env.dir.path().join("config.toml"))
        .args(common::rollback_web_to_v1(&project))
        .env("BERTH_DATA_DIR", env.data())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let since = chrono::Utc::now().timestamp().to_string();
    let mut child = c.spawn().unwrap();
    // httpd as PID 1 ignores SIGTERM: the stop takes its 2 s timeout, the window to cut in. The
    // cut waits for the stop to reach the engine (its SIGTERM is the container's `kill` event) as
    // well as for the replica to be off its networks: cut before the stop was sent, the replica
    // would be left running, which is another case (and on a crowded machine that gap is wide).
    let stop_reached_the_engine = || {
        let now = chrono::Utc::now();
        let until = format!("{}.{:09}", now.timestamp(), now.timestamp_subsec_nanos());
        !docker(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            &format!("container={old_id}"),
            "--filter",
            "event=kill",
            "--format",
            "{{.Action}}",
        ])
        .trim()
        .is_empty()
    };
    let off = wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
        inspect(&old_id, "{{len .NetworkSettings.Networks}}") == "0" && stop_reached_the_engine()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        off,
        "the old replica never left its network while being stopped"
    );
    // What the cut left: the old one on no network, its copy beside it.
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || inspect(&old_id, "{{.State.Running}}") == "false"
    ));
    assert_eq!(inspect(&old_id, "{{len .NetworkSettings.Networks}}"), "0");

    let out = env.berth(&["recover", "web", "-p", &project, "--restore", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(&format!("connected it back to {net}")), "{t}");
    assert_eq!(inspect(&name, "{{.Id}}"), old_id, "{t}");
    wait_healthy(&name);
    let nets = docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &name]);
    let nets: Value = serde_json::from_str(&nets).unwrap();
    assert!(
        nets[&net]["Aliases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "web")),
        "{nets}"
    );
    let (ok, answer) = alias_answers(&net, "v2");
    assert!(ok && answer.trim() == "v2", "{answer}");
    assert_eq!(names(&scope), vec![name.clone()], "{t}");
}
