//! What the fleet costs, measured on the real binary in a pty over one real sshd on loopback in
//! front of the real engine (every server an ssh alias of it). Ignored by `cargo test`: run it
//! with `scripts/bench-fleet.sh`. Prints figures; asserts only that each screen was reached.
//! `FLEET_CONNECT_TIMEOUT` sets `[fleet] connect_timeout` (default 10s).
//!
//! - `console_first_full_fleet`: from start to the first fleet screen with every row filled (no
//!   server waiting, none unreachable), for 10 and 50 servers (`FLEET_SIZES`), median of 3.
//! - `watching_ten_servers`: berth's CPU and RSS watching 10 servers in the fleet view, and 10
//!   separate berth consoles (`-s sNNN`), measured over the same 60 s (`FLEET_WATCH_SECS`) so the
//!   engine's activity from anything else on the box weighs on both alike; each side through its
//!   own sshd, whose sessions' CPU is counted, and dockerd's CPU over the window.

use crate::common;

use std::time::{Duration, Instant};

use common::pty::Session;
use common::sshd::{ClientHome, Sshd, SshdOptions};
use common::wait_until;

/// One sshd, a client home trusting it, and a config of `n` servers `s001…` aliased to it.
struct Bench {
    sshd: Sshd,
    home: ClientHome,
}

impl Bench {
    fn new() -> Bench {
        let sshd = Sshd::start(SshdOptions::default());
        let home = ClientHome::new(true);
        sshd.authorize(&home.ssh("id_ed25519"));
        home.trust(&sshd);
        Bench { sshd, home }
    }

    fn servers(&self, n: usize) -> String {
        let mut ssh = String::new();
        let timeout = std::env::var("FLEET_CONNECT_TIMEOUT").unwrap_or_else(|_| "10s".into());
        let mut config = format!("[fleet]\nconnect_timeout = \"{timeout}\"\n");
        for i in 1..=n {
            ssh.push_str(&format!(
                "Host s{i:03}\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n",
                self.sshd.port
            ));
            config.push_str(&format!("[servers.s{i:03}]\ntarget = \"s{i:03}\"\n"));
        }
        self.home.write_config(&ssh);
        let path = self.home.path().join(format!("config-{n}.toml"));
        std::fs::write(&path, config).unwrap();
        path.display().to_string()
    }

    fn console(&self, args: &[&str]) -> Session {
        let home = self.home.path().display().to_string();
        let data = self.home.path().join("data").display().to_string();
        Session::start(
            args,
            &[
                ("HOME", &home),
                ("SSH_AUTH_SOCK", ""),
                ("BERTH_DATA_DIR", &data),
            ],
        )
    }
}

/// The fleet screen with every one of `n` rows filled, none unreachable.
fn fleet_filled(s: &Session, n: usize) -> bool {
    let t = s.text();
    t.contains(&format!("fleet · {n} servers"))
        && !t.contains("waiting for")
        && !t.contains("… connecting")
        && !t.contains("unreachable")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
#[ignore]
fn console_first_full_fleet() {
    let bench = Bench::new();
    let sizes = std::env::var("FLEET_SIZES").unwrap_or_else(|_| "10 50".into());
    for n in sizes
        .split_whitespace()
        .filter_map(|n| n.parse::<usize>().ok())
    {
        let config = bench.servers(n);
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let mut s = bench.console(&["--config", &config]);
            assert!(
                wait_until(Duration::from_secs(120), Duration::from_millis(10), || {
                    fleet_filled(&s, n)
                }),
                "{n} servers never all filled:\n{}",
                s.text()
            );
            times.push(started.elapsed().as_secs_f64());
            s.type_keys("q");
            s.wait_exit(Duration::from_secs(10));
        }
        let list: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!(
            "console, fleet of {n} servers: all rows filled in {:.2}s (median of 3: {})",
            median(times.clone()),
            list.join(" ")
        );
    }
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
fn cpu_secs(pid: u32, tick: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / tick
}

/// VmRSS of a process in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Every process under `root` (not itself), by walking /proc's parent ids.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

fn pids_named(name: &str) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-x", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// CPU used over the same `secs` by each group of processes, as % of a core, and their RSS
/// summed at the end in MB.
fn measure(groups: &[&[u32]], secs: u64, tick: f64) -> Vec<(f64, f64)> {
    let sum = |pids: &[u32]| pids.iter().map(|p| cpu_secs(*p, tick)).sum::<f64>();
    let before: Vec<f64> = groups.iter().map(|g| sum(g)).collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = t.elapsed().as_secs_f64();
    groups
        .iter()
        .zip(before)
        .map(|(g, b)| {
            let cpu = (sum(g) - b) / wall * 100.0;
            let rss = g.iter().map(|p| rss_mb(*p)).sum();
            (cpu, rss)
        })
        .collect()
}

fn clock_tick() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

fn sshd_listener(bench: &Bench) -> u32 {
    let pid = std::fs::read_to_string(bench.sshd.dir.path().join("sshd.pid")).unwrap_or_default();
    pid.trim().parse().expect("sshd's pid file")
}

#[test]
#[ignore]
fn watching_ten_servers() {
    let secs: u64 = std::env::var("FLEET_WATCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let tick = clock_tick();
    // Two sshds, so each side's sessions are counted apart; both watch the one engine over the
    // same window, so engine activity from anything else on the box weighs on both alike.
    let fleet_side = Bench::new();
    let consoles_side = Bench::new();
    let config = fleet_side.servers(10);
    consoles_side.servers(10);

    let mut fleet = fleet_side.console(&["--config", &config]);
    let empty = consoles_side.home.path().join("config-empty.toml");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.display().to_string();
    let mut consoles: Vec<Session> = (1..=10)
        .map(|i| consoles_side.console(&["--config", &empty, "-s", &format!("s{i:03}")]))
        .collect();
    assert!(
        wait_until(Duration::from_secs(60), Duration::from_millis(50), || {
            fleet_filled(&fleet, 10)
        }),
        "{}",
        fleet.text()
    );
    for s in &consoles {
        assert!(
            s.wait_for("● live", Duration::from_secs(60)),
            "{}",
            s.text()
        );
    }
    let fleet_pid = [fleet.pid().expect("berth's pid")];
    let console_pids: Vec<u32> = consoles.iter().filter_map(Session::pid).collect();
    assert_eq!(console_pids.len(), 10);
    let fleet_sshd = descendants(sshd_listener(&fleet_side));
    let consoles_sshd = descendants(sshd_listener(&consoles_side));
    let dockerd = pids_named("dockerd");
    let groups: [&[u32]; 5] = [
        &fleet_pid,
        &console_pids,
        &fleet_sshd,
        &consoles_sshd,
        &dockerd,
    ];
    let rounds: usize = std::env::var("FLEET_WATCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut all = Vec::new();
    for round in 1..=rounds.max(1) {
        let m = measure(&groups, secs, tick);
        println!(
            "over the same {secs}s (round {round}): fleet view watching 10 servers: berth {:.2}% of a core, {:.1} MB RSS, its sshd sessions {:.2}%; 10 separate consoles (-s sNNN): berth {:.2}% of a core, {:.1} MB RSS summed, their sshd sessions {:.2}%; dockerd (shared, all of it) {:.2}%",
            m[0].0, m[0].1, m[2].0, m[1].0, m[1].1, m[3].0, m[4].0
        );
        all.push(m);
    }
    let med = |i: usize, rss: bool| {
        median(
            all.iter()
                .map(|m| if rss { m[i].1 } else { m[i].0 })
                .collect(),
        )
    };
    println!(
        "over the same {secs}s (median of {}): fleet view watching 10 servers: berth {:.2}% of a core, {:.1} MB RSS, its sshd sessions {:.2}%; 10 separate consoles: berth {:.2}% of a core, {:.1} MB RSS summed, their sshd sessions {:.2}%; dockerd {:.2}%",
        all.len(),
        med(0, false),
        med(0, true),
        med(2, false),
        med(1, false),
        med(1, true),
        med(3, false),
        med(4, false)
    );
    assert!(fleet_filled(&fleet, 10), "{}", fleet.text());
    fleet.type_keys("q");
    for s in &mut consoles {
        s.type_keys("q");
    }
    fleet.wait_exit(Duration::from_secs(10));
    for s in &mut consoles {
        s.wait_exit(Duration::from_secs(10));
    }
}
