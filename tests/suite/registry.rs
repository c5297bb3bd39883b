//! Rollback with a real registry: Debian's `docker-registry` with htpasswd basic auth, images
//! pushed to it and removed locally; `rollback --list` shows the registry's tags beside the
//! server's images, `--to TAG` pulls what the server lacks (progress on stderr) and rolls back.
//! Bad input changes nothing and says why in one line: a wrong password, an unknown tag, a
//! registry that is down, a server answering HTML.

use crate::common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::registry::{PASSWORD, Registry};
use common::{
    BERTH_TIMEOUT, OutputWithin, Scope, docker, docker_try, free_port, http_get, inspect, text,
    wait_until,
};

const FAST: &str = "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), FAST).unwrap();
        Env { dir }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn berth(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        common::isolate(&mut c, &self.home())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(args)
            .env("BERTH_DATA_DIR", self.data())
            .output_within(BERTH_TIMEOUT)
            .unwrap()
    }
}

/// The `--list` row of `image`.
fn row<'a>(list: &'a str, image: &str) -> &'a str {
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(image))
        .unwrap_or_else(|| panic!("no row for {image} in:\n{list}"))
}

/// A web service (compose labels, fixed host port) started from `image`, healthy.
fn web_from(scope: &Scope, service: &str, image: &str, port: u16) -> String {
    let publish = format!("127.0.0.1:{port}:8080");
    scope.run_service(service, 1, &["--stop-timeout", "1", "-p", &publish, image]);
    let name = scope.name(&format!("{service}-1"));
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            inspect(&name, "{{.State.Health.Status}}") == "healthy"
        }),
        "{name} did not become healthy"
    );
    name
}

/// v1 and v2 of the scope's `web` pushed to the registry, v1 pulled (so the server records the
/// registry's digest) and run as `replicas` healthy compose replicas without a fixed port; v2 is
/// only in the registry. Returns (v1, v2, the replicas' names).
fn web_on_v1_with_v2_in(
    scope: &Scope,
    reg: &mut Registry,
    replicas: u32,
) -> (String, String, Vec<String>) {
    let repo = format!("{}/web", scope.project());
    let v1 = reg.push_unique("berth-test/web:v1", &repo, "v1", &scope.name("v1"));
    let v2 = reg.push_unique("berth-test/web:v2", &repo, "v2", &scope.name("v2"));
    reg.pull(&v1);
    let names: Vec<String> = (1..=replicas)
        .map(|n| {
            scope.run_service("web", n, &["--stop-timeout", "1", &v1]);
            scope.name(&format!("web-{n}"))
        })
        .collect();
    for name in &names {
        assert!(wait_until(
            Duration::from_secs(20),
            Duration::from_millis(200),
            || inspect(name, "{{.State.Health.Status}}") == "healthy"
        ));
    }
    (v1, v2, names)
}

#[test]
fn registry_tags_are_listed_and_a_missing_tag_is_pulled_then_rolled_back_to() {
    let scope = Scope::new("registry");
    let mut reg = Registry::start(true);
    let repo = format!("{}/web", scope.project());
    let v1 = reg.push_unique("berth-test/web:v1", &repo, "v1", &scope.name("v1"));
    let v2 = reg.push_unique("berth-test/web:v2", &repo, "v2", &scope.name("v2"));
    let v3 = reg.push_unique("berth-test/web:v1", &repo, "v3", &scope.name("v3"));
    // The server has v2 only (pulled, so it records the registry's digest).
    reg.pull(&v2);
    let port = free_port();
    let name = web_from(&scope, "web", &v2, port);
    let old_id = inspect(&name, "{{.Id}}");
    let project = scope.project();

    // Logged in as docker login leaves it (base64 `auth` in ~/.docker/config.json).
    let env = Env::new();
    reg.login_file(&env.home(), PASSWORD);
    let out = env.berth(&["rollback", "web", "-p", &project, "--list"]);
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        row(&list, &v2).contains("on server · in registry"),
        "{list}"
    );
    assert!(row(&list, &v2).contains("current"), "{list}");
    for v in [&v1, &v3] {
        assert!(row(&list, v).contains("in registry"), "{list}");
        assert!(!row(&list, v).contains("on server"), "{list}");
        assert!(row(&list, v).contains("sha256:"), "{list}");
    }
    // Newest first: v3 was pushed last.
    let order: Vec<usize> = [&v3, &v2, &v1]
        .iter()
        .map(|v| list.find(row(&list, v)).unwrap())
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "{list}");
    assert!(!list.contains("note:"), "{list}");

    // A tag the registry does not have: refused at planning, nothing changed.
    let out = env.berth(&["rollback", "web", "-p", &project, "--to", "v9", "--yes"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(&format!("{}:v9 is not in registry {}", repo, reg.host()))
            || t.contains("MANIFEST_UNKNOWN"),
        "{t}"
    );
    assert_eq!(t.trim().lines().count(), 1, "one line: {t}");
    assert_eq!(inspect(&name, "{{.Id}}"), old_id);

    // The wrong password: the list still shows the server's images, with the reason; a rollback
    // to a registry tag is refused before anything changes.
    let wrong = Env::new();
    reg.login_file(&wrong.home(), "not-the-password");
    let out = wrong.berth(&["rollback", "web", "-p", &project, "--list"]);
    let list = text(&out);
    assert!(out.status.success(), "{list}");
    assert!(row(&list, &v2).contains("current"), "{list}");
    assert!(
        list.contains("note: registry") && list.contains("refused the credentials"),
        "{list}"
    );
    let out = wrong.berth(&["rollback", "web", "-p", &project, "--to", "v1", "--yes"]);
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("refused the credentials"),
        "{t}"
    );
    assert!(!t.contains("not-the-password"), "{t}");
    assert_eq!(inspect(&name, "{{.Id}}"), old_id);

    // The rollback to v1: pulled (v1 is nowhere on the server), verified, serving v1.
    assert!(
        !docker_try(&["image", "inspect", &v1]).0,
        "v1 must not be local"
    );
    let out = env.berth(&["rollback", "web", "-p", &project, "--to", "v1", "--yes"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("pull {v1}")), "{stdout}");
    assert!(
        stdout.contains("logged in with the docker config on"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("pulled {v1}")), "{stdout}");
    assert!(
        stderr.contains("pull: [") && stderr.contains("layers"),
        "{stderr}"
    );
    assert_eq!(inspect(&name, "{{.Config.Image}}"), v1);
    assert_eq!(http_get(port, "/version").as_deref(), Some("v1"));
    let audit = std::fs::read_to_string(env.data().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"pull\"") && audit.contains(&v1), "{audit}");
    for secret in [PASSWORD, "ZGVwbG95"] {
        assert!(!audit.contains(secret), "the login leaked into the audit");
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

/// A loopback server that answers every request with an HTML page, until dropped.
struct HtmlServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HtmlServer {
    fn start() -> HtmlServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        let body = "<!DOCTYPE html><html><body>Welcome to our portal</body></html>";
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HtmlServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HtmlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Tags a fixture image as if it came from `host`, so the service's repository lives there.
fn tagged(host: &str, repo: &str, tags: &mut Vec<String>) -> String {
    let reference = format!("{host}/{repo}:v2");
    docker(&["tag", "berth-test/web:v2", &reference]);
    tags.push(reference.clone());
    reference
}

fn rm_tags(tags: &[String]) {
    for t in tags {
        let _ = docker_try(&["rmi", t]);
    }
}

#[test]
fn a_registry_that_is_down_or_answers_html_changes_nothing_and_says_why() {
    let scope = Scope::new("registry-bad");
    let project = scope.project();
    let mut tags = Vec::new();
    let down = format!("127.0.0.1:{}", free_port());
    let html = HtmlServer::start();
    let html_host = format!("127.0.0.1:{}", html.port);
    let down_image = tagged(&down, &format!("{project}/web"), &mut tags);
    let html_image = tagged(&html_host, &format!("{project}/api"), &mut tags);
    let web = web_from(&scope, "web", &down_image, free_port());
    let api = web_from(&scope, "api", &html_image, free_port());
    let env = Env::new();
    let cases: [(&str, &str, &str); 2] = [
        ("web", &web, "is unreachable"),
        ("api", &api, "answered with an HTML page"),
    ];
    for (service, name, why) in cases {
        let old_id = inspect(name, "{{.Id}}");
        let out = env.berth(&["rollback", service, "-p", &project, "--list"]);
        let list = text(&out);
        assert!(out.status.success(), "{list}");
        assert!(list.contains("current"), "{list}");
        let note = list
            .lines()
            .find(|l| l.starts_with("note: "))
            .unwrap_or_else(|| panic!("a note: {list}"));
        assert!(note.contains(why), "{note}");
        let out = env.berth(&["rollback", service, "-p", &project, "--to", "v1", "--yes"]);
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(t.contains("cannot be pulled") && t.contains(why), "{t}");
        assert_eq!(t.trim().lines().count(), 1, "one line: {t}");
        assert_eq!(inspect(name, "{{.Id}}"), old_id, "nothing changed");
        assert_eq!(inspect(name, "{{.State.Status}}"), "running");
    }
    scope.cleanup();
    rm_tags(&tags);
    drop(html);
}

#[test]
fn deploy_pulls_the_new_tag_and_replaces_two_replicas_beside_the_old_ones() {
    let scope = Scope::new("registry-deploy");
    let mut reg = Registry::start(true);
    // Two replicas without a fixed host port (behind a proxy, in a real deployment).
    let (v1, v2, names) = web_on_v1_with_v2_in(&scope, &mut reg, 2);
    let project = scope.project();
    let env = Env::new();
    reg.login_file(&env.home(), PASSWORD);
    // Without --to there is nothing to deploy: clap says so before anything connects.
    let out = env.berth(&["deploy", "web", "-p", &project, "--yes"]);
    assert!(
        !out.status.success() && text(&out).contains("--to"),
        "{}",
        text(&out)
    );
    let out = env.berth(&["deploy", "web", "-p", &project, "--to", "v2", "--yes"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!("Plan: deploy {project}/web: {v1} → {v2}")),
        "{t}"
    );
    assert!(t.contains(&format!("pulled {v2}")), "{t}");
    assert!(
        t.contains("30 tries"),
        "a deploy waits up to 30 tries by default: {t}"
    );
    // Each new replica started beside its old one and was healthy before the old one stopped.
    assert!(t.contains("beside the running"), "{t}");
    assert!(t.contains("OK: deployed 2 container(s)"), "{t}");
    for name in &names {
        assert_eq!(inspect(name, "{{.Config.Image}}"), v2);
        assert_eq!(inspect(name, "{{.State.Health.Status}}"), "healthy");
    }
    let audit = std::fs::read_to_string(env.data().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"deploy\""), "{audit}");
    assert!(!audit.contains(PASSWORD));
}

#[test]
fn the_console_deploys_a_registry_tag_picked_with_v_on_production() {
    use common::pty::Session;
    let scope = Scope::new("registry-console");
    let mut reg = Registry::start(true);
    let (v1, v2, names) = web_on_v1_with_v2_in(&scope, &mut reg, 1);
    let name = names[0].clone();
    assert!(
        !docker_try(&["image", "inspect", &v2]).0,
        "v2 must not be local"
    );
    let env = Env::new();
    reg.login_file(&env.home(), PASSWORD);
    let config = env.dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "{FAST}[servers.p]\ntarget = \"unix:///var/run/docker.sock\"\nenvironment = \"production\"\n"
        ),
    )
    .unwrap();
    let (config, home, data) = (
        config.display().to_string(),
        env.home().display().to_string(),
        env.data().display().to_string(),
    );
    let mut s = Session::start(
        &["--config", &config, "-s", "p"],
        &[("HOME", home.as_str()), ("BERTH_DATA_DIR", data.as_str())],
    );
    // A compose service shows under its project; the filter keeps it alone, j selects its replica.
    s.expect("web-1", Duration::from_secs(20));
    s.type_keys(&format!("/{name}\r"));
    assert!(s.wait_for("filter “", Duration::from_secs(5)));
    s.type_keys("jV");
    s.expect("Deploy web to", Duration::from_secs(30));
    // The registry's v2, newer than the running v1, is where the picker starts.
    let picker = s.text();
    let v2_row = picker
        .lines()
        .find(|l| l.contains(&v2))
        .unwrap_or_else(|| panic!("v2 listed:\n{picker}"));
    assert!(
        v2_row.contains("in registry") && v2_row.contains("newer"),
        "{picker}"
    );
    assert!(
        picker
            .lines()
            .any(|l| l.contains(&v1) && l.contains("running")),
        "{picker}"
    );
    s.type_keys("\r");
    s.expect("press Enter to go ahead", Duration::from_secs(30));
    let plan = s.text();
    assert!(
        plan.contains(&format!("deploy {}/web: ", scope.project())),
        "{plan}"
    );
    assert!(
        plan.contains("1. pull ") && plan.contains(":v2 ("),
        "{plan}"
    );
    // Production: the service's name typed out runs it (`y` would be a letter of the name).
    let typed = plan
        .split("Type ")
        .nth(1)
        .and_then(|t| t.split(" and press Enter").next())
        .unwrap_or_else(|| panic!("the name to type:\n{plan}"))
        .to_string();
    s.type_keys(&format!("{typed}\r"));
    s.expect("deployed 1 container(s)", Duration::from_secs(120));
    assert!(s.text().contains("1 │ pull: ["), "{}", s.text());
    assert_eq!(inspect(&name, "{{.Config.Image}}"), v2);
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");
    s.type_keys("q");
    assert!(
        s.wait_exit(Duration::from_secs(15))
            .is_some_and(|st| st.success())
    );
    let audit = std::fs::read_to_string(env.data().join("audit.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["action"], "deploy", "{audit}");
    assert_eq!(last["result"], "ok", "{audit}");
    assert_eq!(last["environment"], "production", "{audit}");
    assert!(!audit.contains(PASSWORD));
    scope.cleanup();
}

#[test]
fn without_any_docker_login_the_cli_asks_on_the_tty_and_never_shows_the_password() {
    use common::pty::Session;
    let scope = Scope::new("registry-prompt");
    let mut reg = Registry::start(true);
    let (_v1, v2, names) = web_on_v1_with_v2_in(&scope, &mut reg, 1);
    let name = names[0].clone();
    let old_id = inspect(&name, "{{.Id}}");
    let project = scope.project();
    // No docker config anywhere: neither the server's (this engine's host) nor this machine's.
    let env = Env::new();
    let (config, data, home) = (
        env.dir.path().join("config.toml").display().to_string(),
        env.data().display().to_string(),
        env.home().display().to_string(),
    );
    let deploy = [
        "--config", &config, "deploy", "web", "-p", &project, "--to", "v2", "--yes",
    ];

    // Without a tty: one line naming the fix, nothing changed.
    let out = env.berth(&deploy[2..]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(&format!("docker login {}", reg.host())) && t.contains("needs a login"),
        "{t}"
    );
    assert_eq!(t.trim().lines().count(), 1, "one line: {t}");
    assert_eq!(inspect(&name, "{{.Id}}"), old_id);

    // On a tty, the wrong password: asked, refused in one clear line, nothing changed.
    let envs = [("BERTH_DATA_DIR", data.as_str()), ("HOME", home.as_str())];
    let prompt = format!("username for {}:", reg.host());
    let mut s = Session::start(&deploy, &envs);
    s.expect(&prompt, Duration::from_secs(60));
    s.type_keys(&format!("{}\r", common::registry::USER));
    assert!(
        s.wait_for(
            &format!("password for {}@{}:", common::registry::USER, reg.host()),
            Duration::from_secs(10)
        ),
        "{}",
        s.text()
    );
    s.type_keys("wrong-pw-typed\r");
    let status = s.wait_exit(Duration::from_secs(60));
    assert!(status.is_some_and(|st| !st.success()), "{}", s.text());
    let screen = s.text();
    assert!(
        screen.contains("refused the username and password typed")
            && screen.contains("nothing was changed"),
        "{screen}"
    );
    let raw = s.raw_after_exit();
    assert!(
        !raw.contains("wrong-pw-typed"),
        "the password was echoed: {raw}"
    );
    assert_eq!(inspect(&name, "{{.Id}}"), old_id, "nothing changed");
    drop(s);

    // The right one: the tag is pulled with it and deployed; it is in no output and no file.
    let mut s = Session::start(&deploy, &envs);
    s.expect(&prompt, Duration::from_secs(60));
    s.type_keys(&format!("{}\r", common::registry::USER));
    assert!(s.wait_for("password for ", Duration::from_secs(10)));
    s.type_keys(&format!("{PASSWORD}\r"));
    let status = s.wait_exit(Duration::from_secs(150));
    let raw = s.raw_after_exit();
    assert!(status.is_some_and(|st| st.success()), "{}", s.text());
    assert!(raw.contains("typed at the prompt"), "{raw}");
    assert!(!raw.contains(PASSWORD), "the password was shown");
    assert_eq!(inspect(&name, "{{.Config.Image}}"), v2);
    let audit = std::fs::read_to_string(env.data().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"deploy\""), "{audit}");
    assert!(!audit.contains(PASSWORD), "the password reached the audit");
    assert!(
        !env.home().join(".docker").exists(),
        "nothing was written as a docker config"
    );
}

#[test]
fn the_console_asks_for_the_login_in_a_popup_once_and_deploys_with_it() {
    use common::pty::Session;
    let scope = Scope::new("registry-popup");
    let mut reg = Registry::start(true);
    let (_v1, v2, names) = web_on_v1_with_v2_in(&scope, &mut reg, 1);
    let name = names[0].clone();
    // No docker config anywhere: the registry's 401 opens the popup.
    let env = Env::new();
    std::fs::create_dir_all(env.home()).unwrap();
    let (config, home, data) = (
        env.dir.path().join("config.toml").display().to_string(),
        env.home().display().to_string(),
        env.data().display().to_string(),
    );
    let mut s = Session::start(
        &["--config", &config],
        &[("HOME", home.as_str()), ("BERTH_DATA_DIR", data.as_str())],
    );
    s.expect("web-1", Duration::from_secs(20));
    s.type_keys(&format!("/{name}\r"));
    assert!(s.wait_for("filter “", Duration::from_secs(5)));
    s.type_keys("jV");
    s.expect("Registry login", Duration::from_secs(30));
    assert!(s.text().contains(&reg.host()), "{}", s.text());
    s.type_keys(&format!("{}\r", common::registry::USER));
    s.expect("Password for deploy", Duration::from_secs(5));
    s.type_keys(&format!("{PASSWORD}\r"));
    // The registry's tags are listed with it; the plan's pull uses it without asking again.
    s.expect("Deploy web to", Duration::from_secs(30));
    assert!(
        s.text()
            .lines()
            .any(|l| l.contains(&v2) && l.contains("in registry")),
        "{}",
        s.text()
    );
    s.type_keys("\r");
    s.expect("y / Enter go ahead", Duration::from_secs(30));
    assert!(!s.text().contains("Registry login"), "asked twice");
    assert!(
        s.text()
            .contains("logged in with the username and password typed"),
        "{}",
        s.text()
    );
    s.type_keys("y");
    s.expect("deployed 1 container(s)", Duration::from_secs(120));
    assert_eq!(inspect(&name, "{{.Config.Image}}"), v2);
    s.type_keys("q");
    assert!(
        s.wait_exit(Duration::from_secs(15))
            .is_some_and(|st| st.success())
    );
    let raw = s.raw_after_exit();
    assert!(!raw.contains(PASSWORD), "the password reached the screen");
    let audit = std::fs::read_to_string(env.data().join("audit.jsonl")).unwrap();
    assert!(!audit.contains(PASSWORD), "the password reached the audit");
    assert!(!env.home().join(".docker").exists(), "nothing was saved");
}
