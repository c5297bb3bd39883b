//! Console figures (not a test: nothing here asserts on time). Run with `scripts/bench-console.sh`.
//!
//! - launch → first frame listing 30 containers (median of 5 launches)
//! - event → screen: `docker start` returns → the container shows as running (median of 5)
//! - idle CPU and peak RSS of berth over 30 s with 33 containers, and what dockerd+containerd
//!   used meanwhile; the same for oxker (`-d 2000`, berth's default 2 s stats interval) when
//!   `OXKER` names its binary.

use std::io::Read;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

const PREFIX: &str = "berth-bench-c-";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Tui {
    screen: Arc<Mutex<vt100::Parser>>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

impl Tui {
    fn start(program: &str, args: &[&str]) -> Tui {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 60,
                cols: 200,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(60, 200, 0)));
        let s = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                s.lock().unwrap().process(&buf[..n]);
            }
        });
        Tui {
            screen,
            child,
            _master: pair.master,
        }
    }
    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }
    fn wait(&self, within: Duration, f: impl Fn(&str) -> bool) -> Option<Instant> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if f(&self.text()) {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }
    fn pid(&self) -> u32 {
        self.child.process_id().unwrap_or(0)
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime+stime in ticks of a process and all its threads.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let after = &stat[stat.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pids_of(names: &[&str]) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if names.iter().any(|n| comm.trim() == *n) {
            out.push(pid);
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// CPU % of one core used by `pid` and by the daemons over `secs`, and peak RSS of `pid`.
fn idle_cost(pid: u32, secs: u64) -> (f64, f64, u64) {
    let daemons = pids_of(&[
        "dockerd",
        "containerd",
        "containerd-shim",
        "containerd-shim-runc-v2",
    ]);
    let d0: u64 = daemons.iter().map(|p| cpu_ticks(*p)).sum();
    let p0 = cpu_ticks(pid);
    let mut peak = 0;
    for _ in 0..secs * 10 {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(rss_kib(pid));
    }
    let tck = clk_tck();
    let p = (cpu_ticks(pid) - p0) as f64 / tck / secs as f64 * 100.0;
    let d = (daemons.iter().map(|p| cpu_ticks(*p)).sum::<u64>() - d0) as f64 / tck / secs as f64
        * 100.0;
    (p, d, peak)
}

fn cleanup() {
    let ids = docker(&["ps", "-aq", "--filter", &format!("name={PREFIX}")]);
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.split_whitespace());
        docker(&args);
    }
}

fn main() {
    // `cargo bench` passes --bench; any filter argument is ignored.
    let berth = env!("CARGO_BIN_EXE_berth");
    let secs: u64 = std::env::var("BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    cleanup();
    for i in 0..30 {
        let name = format!("{PREFIX}{i:02}");
        let svc = format!("svc{}", i % 6);
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "com.docker.compose.project=bench",
            "--label",
            &format!("com.docker.compose.service={svc}"),
            "--label",
            &format!("com.docker.compose.container-number={}", i / 6 + 1),
            "-e",
            "LOG_INTERVAL=5",
            "berth-test/logger",
        ]);
    }
    let mut launches = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let tui = Tui::start(berth, &[]);
        let seen = tui.wait(Duration::from_secs(30), |s| s.matches("svc").count() >= 30);
        match seen {
            Some(t) => launches.push((t - t0).as_secs_f64() * 1000.0),
            None => eprintln!("launch: list never complete:\n{}", tui.text()),
        }
    }
    println!(
        "launch → first frame with 30 containers: median {:.0} ms (runs: {:?})",
        median(launches.clone()),
        launches.iter().map(|v| v.round()).collect::<Vec<_>>()
    );

    let tui = Tui::start(berth, &[]);
    tui.wait(Duration::from_secs(30), |s| s.matches("svc").count() >= 30);
    let mut from_start_return = Vec::new();
    let mut from_start_call = Vec::new();
    for i in 0..5 {
        let name = format!("{PREFIX}event-{i}");
        docker(&[
            "create",
            "--name",
            &name,
            "-e",
            "LOG_INTERVAL=5",
            "berth-test/logger",
        ]);
        let t0 = Instant::now();
        docker(&["start", &name]);
        let t1 = Instant::now();
        let needle = name.clone();
        if let Some(t) = tui.wait(Duration::from_secs(10), |s| {
            s.lines()
                .any(|l| l.contains(&needle) && l.contains("running"))
        }) {
            from_start_return.push((t.saturating_duration_since(t1)).as_secs_f64() * 1000.0);
            from_start_call.push((t - t0).as_secs_f64() * 1000.0);
        }
    }
    println!(
        "event → screen: median {:.0} ms after `docker start` returned, {:.0} ms after it was called (runs: {:?})",
        median(from_start_return.clone()),
        median(from_start_call),
        from_start_return
            .iter()
            .map(|v| v.round())
            .collect::<Vec<_>>()
    );
    // 30 + 5 event containers: stop 2 so 33 run.
    docker(&[
        "rm",
        "-f",
        &format!("{PREFIX}event-3"),
        &format!("{PREFIX}event-4"),
    ]);
    std::thread::sleep(Duration::from_secs(2));
    let (cpu, daemon, rss) = idle_cost(tui.pid(), secs);
    println!(
        "berth idle over {secs} s with 33 containers: {cpu:.2}% of a core, peak RSS {:.1} MB; dockerd+containerd meanwhile {daemon:.2}%",
        rss as f64 / 1024.0
    );
    drop(tui);
    std::thread::sleep(Duration::from_secs(2));
    let (_, baseline, _) = idle_cost(std::process::id(), secs.min(10));
    println!("dockerd+containerd with nothing watching: {baseline:.2}% of a core");
    if let Ok(oxker) = std::env::var("OXKER") {
        // Like for like: oxker polls every `-d` ms (default 1000); berth reads stats every 2 s.
        let tui = Tui::start(&oxker, &["-d", "2000"]);
        std::thread::sleep(Duration::from_secs(3));
        let (cpu, daemon, rss) = idle_cost(tui.pid(), secs);
        println!(
            "oxker -d 2000 idle over {secs} s with 33 containers: {cpu:.2}% of a core, peak RSS {:.1} MB; dockerd+containerd meanwhile {daemon:.2}%",
            rss as f64 / 1024.0
        );
    } else {
        println!(
            "oxker: set OXKER=/path/to/oxker to compare (scripts/bench-stats.sh --install-oxker builds one)"
        );
    }
    cleanup();
}
