//! The fleet in the console, end to end: the real binary in a pty with a config listing four
//! servers (two real sshds in front of the real engine, one whose host key changed, one that never
//! speaks). The fleet opens first, the rows fill in with the bad ones' reasons, Enter opens a
//! server's console, Esc comes back with the fleet kept, and `/` finds a container on every server.

use crate::common;

use std::time::Duration;

use common::pty::Session;
use common::sshd::{ClientHome, Sshd, SshdOptions, pub_key};
use common::{Scope, wait_until};

/// A port that accepts TCP and never says a word, for as long as the test runs.
fn silent_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(16) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(180));
    });
    port
}

/// berth in a pty with `config`, HOME and the data directory in `home`, and no ssh agent.
fn fleet_session(home: &ClientHome, config: &std::path::Path, extra: &[&str]) -> Session {
    let home_dir = home.path().display().to_string();
    let data = home.path().join("data").display().to_string();
    let config_arg = config.display().to_string();
    let mut args = extra.to_vec();
    args.extend(["--config", config_arg.as_str()]);
    // Tall: back from a server's console its containers show under its row, and other
    // containers on a shared engine must not push the next server's row off the screen.
    Session::sized(
        150,
        160,
        &args,
        &[
            ("HOME", &home_dir),
            ("SSH_AUTH_SOCK", ""),
            ("BERTH_DATA_DIR", &data),
        ],
    )
}

/// Waits until the fleet of `servers` is on screen with every row answered.
fn wait_filled(s: &Session, servers: usize) {
    let title = format!("fleet · {servers} servers");
    assert!(
        wait_until(Duration::from_secs(40), Duration::from_millis(100), || {
            let t = s.text();
            t.contains(&title) && !t.contains("waiting for")
        }),
        "{}",
        s.text()
    );
}

fn host(alias: &str, port: u16) -> String {
    format!(
        "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n"
    )
}

/// The fleet's row of `server` (not the group row naming it among others), or "".
fn server_line(s: &Session, server: &str) -> String {
    s.text()
        .lines()
        .find(|l| {
            l.trim_start_matches(['│', ' ', '▶', '>'])
                .starts_with(&format!("{server} "))
        })
        .unwrap_or("")
        .to_string()
}

/// The screen line holding `needle`, or "" when none does.
fn line_with(s: &Session, needle: &str) -> String {
    s.text()
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or("")
        .to_string()
}

#[test]
fn fleet_opens_first_fills_in_opens_a_server_and_finds_a_container() {
    let scope = Scope::new("fleetpty");
    scope.run("web", &["berth-test/web:v1"]);
    let web = scope.name("web");
    let home = ClientHome::new(true);
    let app1 = Sshd::start(SshdOptions::default());
    let app2 = Sshd::start(SshdOptions::default());
    let changed = Sshd::start(SshdOptions::default());
    for sshd in [&app1, &app2, &changed] {
        sshd.authorize(&home.ssh("id_ed25519"));
    }
    home.trust(&app1);
    home.trust(&app2);
    // The known key of `changed` is another one: a reinstalled (or intercepted) host.
    let other = home.keygen("not-the-host-key", "ed25519", "");
    let known = home.ssh("known_hosts");
    let mut text = std::fs::read_to_string(&known).unwrap();
    text.push_str(&format!(
        "[127.0.0.1]:{} {}\n",
        changed.port,
        pub_key(&other)
    ));
    std::fs::write(&known, text).unwrap();
    let silent = silent_port();
    home.write_config(&format!(
        "{}{}{}{}",
        host("app-1", app1.port),
        host("app-2", app2.port),
        host("changed", changed.port),
        host("silent", silent)
    ));
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "[fleet]\nconnect_timeout = \"5s\"\n\
         [servers.app-1]\ntarget = \"app-1\"\n\
         [servers.app-2]\ntarget = \"app-2\"\n\
         [servers.changed]\ntarget = \"changed\"\n\
         [servers.silent]\ntarget = \"silent\"\n",
    )
    .unwrap();

    let mut s = fleet_session(&home, &config, &[]);

    // Several servers and none named: the fleet is the first screen.
    s.expect("fleet · 4 servers", Duration::from_secs(20));
    // Every row fills in; the silent one within the 5 s connect timeout (plus a loaded machine).
    assert!(
        wait_until(Duration::from_secs(40), Duration::from_millis(100), || {
            let t = s.text();
            !t.contains("waiting for") && !t.contains("… connecting")
        }),
        "every row answered:\n{}",
        s.text()
    );
    assert!(
        line_with(&s, "changed").contains("✖ host key changed"),
        "{}",
        s.text()
    );
    assert!(
        line_with(&s, "silent").contains("✖ timeout"),
        "{}",
        s.text()
    );
    let counts = regex::Regex::new(r"\d+/\d+").unwrap();
    for server in ["app-1", "app-2"] {
        let line = line_with(&s, server);
        assert!(line.contains("● ok"), "{server}: {}", s.text());
        assert!(
            counts.is_match(&line),
            "{server} counts its containers: {line}"
        );
    }
    assert!(s.text().contains("✖ 2 unreachable"), "{}", s.text());

    // Trouble first: the two unreachable rows, then app-1 and app-2 (same engine, by name).
    let order: Vec<String> = s
        .text()
        .lines()
        .filter_map(|l| {
            ["changed", "silent", "app-1", "app-2"]
                .into_iter()
                .find(|n| l.trim_start_matches(['│', ' ', '▶', '>']).starts_with(n))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(order.len(), 4, "{order:?}\n{}", s.text());
    assert_eq!(&order[2..], ["app-1", "app-2"], "{}", s.text());

    // Enter on app-1 (the top row, then two down) opens its console over its sshd.
    s.type_keys("g\x1b[B\x1b[B\r");
    assert!(
        s.wait_for(&web, Duration::from_secs(30)),
        "app-1's console lists the container:\n{}",
        s.text()
    );
    s.expect("● live", Duration::from_secs(10));
    assert!(s.text().contains("app-1"), "{}", s.text());
    assert!(!s.text().contains("fleet · 4 servers"), "{}", s.text());

    // Esc comes back to the fleet as it was: the reasons are on screen at once, not re-asked.
    s.type_keys("\x1b");
    s.expect("fleet · 4 servers", Duration::from_secs(10));
    assert!(
        line_with(&s, "changed").contains("✖ host key changed"),
        "{}",
        s.text()
    );
    assert!(line_with(&s, "app-2").contains("● ok"), "{}", s.text());

    // `/` finds the container on both servers (two sshds in front of one engine).
    s.type_keys("/");
    s.expect("find ", Duration::from_secs(5));
    s.type_keys(&format!("{web}\r"));
    s.expect("found on every reachable server", Duration::from_secs(10));
    let found = line_with(&s, &format!("{web} on "));
    assert!(
        found.contains("app-1") && found.contains("app-2"),
        "the container is found on both servers:\n{}",
        s.text()
    );
    assert!(
        s.text().contains("not searched: changed, silent")
            || s.text().contains("not searched: silent, changed"),
        "{}",
        s.text()
    );

    // Esc clears the search and shows the servers again.
    s.type_keys("\x1b");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("found on every reachable server")),
        "{}",
        s.text()
    );
    s.expect("fleet · 4 servers", Duration::from_secs(5));
    s.type_keys("q");
    assert!(
        s.wait_exit(Duration::from_secs(10))
            .is_some_and(|st| st.success()),
        "berth quits cleanly"
    );
    drop(app1);
    drop(app2);
    drop(changed);
    scope.cleanup();
}

/// `berth audit --json`'s finished runs of `action` as (server, result), oldest first.
fn audited(home: &ClientHome, action: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["audit", "--json", "-n", "100"])
        .env("HOME", home.path())
        .env(
            "BERTH_SSH_SYSTEM_CONFIG",
            home.path().join("etc_ssh_config"),
        )
        .env("BERTH_DATA_DIR", home.path().join("data"))
        .env_remove("BERTH_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["action"] == action && e["result"] != "started")
        .map(|e| {
            (
                e["server"].as_str().unwrap_or("").to_string(),
                e["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// R on a group row in the fleet: the palette asks for the service, one plan covers both servers,
/// one confirmation types the group's name (app-2 is production), then the run view follows
/// app-1 and app-2 one at a time to `done`; each server's run is audited on its own.
#[test]
fn a_group_restart_from_the_fleet_runs_one_server_at_a_time() {
    let scope = Scope::new("fleetgrp");
    let web = common::web_service(&scope, "berth-test/web:v1", common::free_port());
    let project = scope.project();
    let home = ClientHome::new(true);
    let app1 = Sshd::start(SshdOptions::default());
    let app2 = Sshd::start(SshdOptions::default());
    for sshd in [&app1, &app2] {
        sshd.authorize(&home.ssh("id_ed25519"));
        home.trust(sshd);
    }
    home.write_config(&format!(
        "{}{}",
        host("app-1", app1.port),
        host("app-2", app2.port)
    ));
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "[runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n\
         [servers.app-1]\ntarget = \"app-1\"\n\
         [servers.app-2]\ntarget = \"app-2\"\nenvironment = \"production\"\n\
         [groups.app]\nservers = [\"app-1\", \"app-2\"]\n",
    )
    .unwrap();
    let started_at = || common::inspect(&web, "{{.State.StartedAt}}");
    let before = started_at();

    let mut s = fleet_session(&home, &config, &[]);
    wait_filled(&s, 2);

    // The top of the list is the group's row; R asks which service.
    s.type_keys("gR");
    s.expect("group-restart app ", Duration::from_secs(5));
    s.type_keys(&format!("{project}/web\r"));
    assert!(
        s.wait_for(
            "On group app: 2 servers, one at a time: app-1 → app-2",
            Duration::from_secs(30)
        ),
        "one plan for the group:\n{}",
        s.text()
    );
    assert!(s.text().contains("[2/2] app-2"), "{}", s.text());
    assert_eq!(started_at(), before, "nothing runs before the confirmation");
    // Production in the group: the group's name is typed.
    s.type_keys("app\r");
    assert!(
        s.wait_for("one at a time · done", Duration::from_secs(90)),
        "the run goes to its end:\n{}",
        s.text()
    );
    let progress = line_with(&s, "✔ app-1");
    assert!(progress.contains("✔ app-2"), "{}", s.text());
    assert!(
        s.text().contains("group app: done on app-1, app-2"),
        "{}",
        s.text()
    );
    assert_ne!(started_at(), before, "the service was restarted");
    assert_eq!(common::inspect(&web, "{{.State.Health.Status}}"), "healthy");
    assert_eq!(
        audited(&home, "restart"),
        [
            ("app-1".to_string(), "ok".to_string()),
            ("app-2".to_string(), "ok".to_string())
        ],
        "audited per server"
    );
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

/// A group restart from the fleet whose second server drops while the first runs: the run view
/// marks app-1 done, app-2 failed and app-3 not started, says so in one line, and back in the
/// fleet app-2 shows unreachable while app-1 and app-3 answer; the service app-1 restarted is
/// healthy and only app-1's run is audited as done, nothing on app-3.
#[test]
fn a_server_that_drops_mid_group_run_is_marked_and_the_fleet_stays_coherent() {
    let scope = Scope::new("fleetdrop");
    let web = common::web_service(&scope, "berth-test/web:v1", common::free_port());
    let project = scope.project();
    let home = ClientHome::new(true);
    let app1 = Sshd::start(SshdOptions::default());
    let mut app2 = Sshd::start(SshdOptions::default());
    let app3 = Sshd::start(SshdOptions::default());
    for sshd in [&app1, &app2, &app3] {
        sshd.authorize(&home.ssh("id_ed25519"));
        home.trust(sshd);
    }
    home.write_config(&format!(
        "{}{}{}",
        host("app-1", app1.port),
        host("app-2", app2.port),
        host("app-3", app3.port)
    ));
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "[fleet]\nconnect_timeout = \"5s\"\n\
         [runbook]\nhealth_retries = 20\nhealth_interval_ms = 500\n\
         [servers.app-1]\ntarget = \"app-1\"\n\
         [servers.app-2]\ntarget = \"app-2\"\n\
         [servers.app-3]\ntarget = \"app-3\"\n\
         [groups.app]\nservers = [\"app-1\", \"app-2\", \"app-3\"]\n",
    )
    .unwrap();

    let mut s = fleet_session(&home, &config, &[]);
    wait_filled(&s, 3);

    s.type_keys("gR");
    s.expect("group-restart app ", Duration::from_secs(5));
    s.type_keys(&format!("{project}/web\r"));
    assert!(
        s.wait_for("app-1 → app-2 → app-3", Duration::from_secs(30)),
        "one plan for the group:\n{}",
        s.text()
    );
    // No production in the group: y runs it. app-2's server goes away while app-1 runs.
    s.type_keys("y");
    assert!(
        s.wait_for("server 1 of 3", Duration::from_secs(20)),
        "the run starts on app-1:\n{}",
        s.text()
    );
    // Only once app-1 has changed something: before that the run is still taking every member's
    // lock, and a server lost then stops it with nothing changed anywhere (a different story).
    assert!(
        s.wait_for("✓ 1. restart", Duration::from_secs(60)),
        "app-1's restart step is done:\n{}",
        s.text()
    );
    app2.stop();
    assert!(
        s.wait_for("stopped · not started: 1", Duration::from_secs(120)),
        "the run stops at app-2:\n{}",
        s.text()
    );
    let marks = line_with(&s, "app-1 →");
    assert!(
        marks.contains("✔ app-1") && marks.contains("✖ app-2") && marks.contains("· app-3"),
        "done, failed, not started: {marks}\n{}",
        s.text()
    );
    // The last word (the footer may cut its end: the marks above say the rest).
    assert!(
        s.text().contains("group app stopped at app-2"),
        "{}",
        s.text()
    );

    // Back in the fleet: app-2 unreachable, the others answering.
    s.type_keys("\x1b");
    s.expect("fleet · 3 servers", Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(40), Duration::from_millis(200), || {
            server_line(&s, "app-2").contains('✖')
        }),
        "app-2 shows unreachable:\n{}",
        s.text()
    );
    for server in ["app-1", "app-3"] {
        assert!(
            server_line(&s, server).contains("● ok"),
            "{server}: {}",
            s.text()
        );
    }
    assert!(
        line_with(&s, "app-1, app-2, app-3").contains("2/3"),
        "the group row counts two of three up:\n{}",
        s.text()
    );
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            common::inspect(&web, "{{.State.Health.Status}}") == "healthy"
        }),
        "the service app-1 restarted is healthy"
    );
    let runs = audited(&home, "restart");
    assert_eq!(
        runs.first(),
        Some(&("app-1".to_string(), "ok".to_string())),
        "{runs:?}"
    );
    assert!(runs.iter().all(|(s, _)| s != "app-3"), "{runs:?}");
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}

/// `berth --read-only` opening on the fleet: a server opened from it is read-only too (its
/// header says so), and a group's run is refused at once, naming why.
#[test]
fn read_only_holds_for_a_server_opened_from_the_fleet() {
    let home = ClientHome::new(true);
    let sshd = Sshd::start(SshdOptions::default());
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    home.write_config(&format!(
        "{}{}",
        host("app-1", sshd.port),
        host("app-2", sshd.port)
    ));
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "[servers.app-1]\ntarget = \"app-1\"\n[servers.app-2]\ntarget = \"app-2\"\n\
         [groups.app]\nservers = [\"app-1\", \"app-2\"]\n",
    )
    .unwrap();
    let mut s = fleet_session(&home, &config, &["--read-only"]);
    wait_filled(&s, 2);
    // The group row first: R is refused at once, naming why.
    s.type_keys("gR");
    s.expect("group app: berth is read-only", Duration::from_secs(5));
    assert!(!s.text().contains("group-restart app "), "no palette asks");
    // Down to app-1, Enter opens its console: read-only as berth is.
    s.type_keys("\x1b[B\r");
    s.expect("● live", Duration::from_secs(30));
    let header = s.text().lines().next().unwrap_or("").to_string();
    assert!(
        header.contains("app-1") && header.contains("read-only"),
        "{}",
        s.text()
    );
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
}
