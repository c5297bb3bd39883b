//! Stats, host numbers and disk usage against the real engine, locally and through a real sshd.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin};

use std::sync::Arc;
use std::time::Duration;

use berth::config::Preference;
use berth::engine::{self, Engine};
use berth::stats::{self, Collector, Method, StatsStore};
use berth::target::Target;
use common::Scope;
use common::sshd::{ClientHome, Sshd, SshdOptions};

/// A busy loop held to one CPU: berth must read about 100 % (not 50 % on a 2-core box, which a
/// division by the core count gives, nor 200 %). Its cgroup weighs 8 times the default, so on a
/// machine crowded by the other tests it still gets most of its core and the reading says much.
const BUSY: &[&str] = &[
    "--cpus",
    "1",
    "--cpu-shares",
    "8192",
    "--memory",
    "64m",
    "berth-test/logger",
    "sh",
    "-c",
    "while :; do :; done",
];
const IDLE: &[&str] = &["--memory", "64m", "berth-test/logger", "sleep", "600"];
const MIB64: u64 = 64 * 1024 * 1024;

async fn local() -> Engine {
    engine::connect(&Target::local(), &Default::default())
        .await
        .expect("the local engine answers")
}

/// The kernel's count of CPU time (user + system) for a container's main process: the truth
/// berth's CPU% is checked against. The pid is resolved once, up front, so a reading is one read
/// of /proc.
struct KernelClock {
    pid: String,
}

/// One reading of a [`KernelClock`]: the ticks counted so far, and when.
#[derive(Clone, Copy)]
struct Reading {
    ticks: u64,
    at: std::time::Instant,
}

impl KernelClock {
    fn of(id: &str) -> KernelClock {
        KernelClock {
            pid: common::inspect(id, "{{.State.Pid}}"),
        }
    }

    fn read(&self) -> Reading {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).expect("/proc/PID/stat");
        // Fields after the command name (which may hold spaces): utime is field 14, stime 15.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Reading {
            ticks: f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap(),
            at: std::time::Instant::now(),
        }
    }
}

impl Reading {
    /// Percent of one core used from this reading to `later`.
    fn percent_to(self, later: Reading) -> f64 {
        percent((later.ticks - self.ticks) as f64, later.at - self.at)
    }
}

/// `ticks` of CPU time over `span`, in percent of one core.
fn percent(ticks: f64, span: Duration) -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let hz = (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64;
    ticks * 100.0 / hz / span.as_secs_f64()
}

/// What the kernel counted for the busy loop around berth's two readings. berth read its counter
/// and its clock somewhere inside each pair of kernel readings, so the rate it computes lies
/// between the least the loop can have used between the pairs over the longest span they allow
/// and the most it can have used over the shortest. The bounds hold whatever else runs on the
/// machine: a crowded loop gets less, and both berth and the bounds say so.
struct Bracket {
    lo: f64,
    hi: f64,
    /// The loop's rate over the whole window, for the message and the "it ran at all" check.
    truth: f64,
}

impl Bracket {
    /// berth's first reading fell inside `first` (a kernel reading before it, one after), its
    /// second inside `second`, at least `gap` apart.
    fn bounds(first: (Reading, Reading), second: (Reading, Reading), gap: Duration) -> (f64, f64) {
        // /proc counts whole ticks: each end of a difference may be off by one.
        let slack = 2.0;
        let least = (second.0.ticks as f64 - first.1.ticks as f64 - slack).max(0.0);
        let most = second.1.ticks as f64 - first.0.ticks as f64 + slack;
        let longest = second.1.at - first.0.at;
        let shortest = second.0.at.saturating_duration_since(first.1.at).max(gap);
        (percent(least, longest), percent(most, shortest))
    }

    /// Around two readings of berth's each read between its own pair of kernel readings.
    fn around(first: (Reading, Reading), second: (Reading, Reading)) -> Bracket {
        let (lo, hi) = Bracket::bounds(first, second, Duration::ZERO);
        Bracket {
            lo,
            hi,
            truth: first.0.percent_to(second.1),
        }
    }
}

/// The kernel's count for a container's main process read every few milliseconds on a thread of
/// its own, for a reading taken where the test cannot see inside it (a whole `berth stats` run).
struct KernelSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Reading>>,
}

impl KernelSampler {
    fn start(id: &str) -> KernelSampler {
        let clock = KernelClock::of(id);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut readings = vec![clock.read()];
            // Bounded: a berth run is bounded by BERTH_TIMEOUT; 60 s of readings at most.
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) && readings.len() < 12_000 {
                std::thread::sleep(Duration::from_millis(5));
                readings.push(clock.read());
            }
            readings.push(clock.read());
            readings
        });
        KernelSampler { stop, thread }
    }

    /// The bounds on any rate computed from two readings at least `gap` apart, taken somewhere
    /// between the sampler's start and now: the widest of [`Bracket::bounds`] over every pair of
    /// sampled intervals the first and the second reading may fall in.
    fn bracket(self, gap: Duration) -> Bracket {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let r = self.thread.join().expect("the sampler thread");
        let (mut lo, mut hi) = (f64::MAX, 0.0f64);
        for i in 0..r.len() - 1 {
            for j in i..r.len() - 1 {
                if r[j + 1].at - r[i].at < gap {
                    continue;
                }
                let (l, h) = Bracket::bounds((r[i], r[i + 1]), (r[j], r[j + 1]), gap);
                lo = lo.min(l);
                hi = hi.max(h);
            }
        }
        Bracket {
            lo,
            hi,
            truth: r[0].percent_to(r[r.len() - 1]),
        }
    }
}

/// Two readings a second or more apart, turned into rates, and what the kernel counted for `busy`
/// around them.
async fn two_readings(
    collector: &mut Collector,
    ids: &[String],
    busy: &str,
) -> (StatsStore, Bracket) {
    let mut store = StatsStore::new(Duration::from_secs(1));
    let clock = KernelClock::of(busy);
    let before = clock.read();
    store.ingest(&collector.sample(ids).await);
    let first = (before, clock.read());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = clock.read();
    store.ingest(&collector.sample(ids).await);
    let second = (before, clock.read());
    (store, Bracket::around(first, second))
}

/// The busy loop (`--cpus 1`) reads what the kernel counted for it over the same window: about
/// 100 % on a machine with a core to spare, less when other work crowds the cores. Never the
/// half (or less) a division by the core count gives, nor 200 %.
fn check_busy_cpu(cpu: f64, kernel: &Bracket) {
    assert!(
        kernel.truth > 5.0,
        "the busy loop hardly ran ({:.1} %): the check says nothing",
        kernel.truth
    );
    assert!(
        (kernel.lo..=kernel.hi).contains(&cpu) && cpu <= 120.0,
        "busy loop with --cpus 1: berth read {cpu:.1} %; around its readings the kernel counted \
         {:.1}–{:.1} % of a core ({:.1} % over the whole window)",
        kernel.lo,
        kernel.hi,
        kernel.truth
    );
}

fn check_busy_and_idle(store: &StatsStore, busy: &str, idle: &str, net: bool, kernel: &Bracket) {
    let b = store.latest(busy).expect("the busy container was read");
    let i = store.latest(idle).expect("the idle container was read");
    let (bc, ic) = (b.cpu.expect("busy cpu%"), i.cpu.expect("idle cpu%"));
    check_busy_cpu(bc, kernel);
    assert!(ic < 10.0, "sleep uses next to nothing: {ic}");
    for p in [b, i] {
        let used = p.mem_used.expect("memory read");
        assert!(used > 0 && used <= MIB64, "{p:?}");
        assert_eq!(p.mem_limit, Some(MIB64), "{p:?}");
        assert!(p.pids.unwrap_or(0) >= 1, "{p:?}");
        if net {
            assert!(p.net_rx.is_some() && p.net_tx.is_some(), "{p:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cgroup_and_api_agree_on_busy_and_idle() {
    let scope = Scope::new("stats");
    let busy = scope.run("busy", BUSY);
    let idle = scope.run("idle", IDLE);
    let ids = vec![busy.clone(), idle.clone()];
    let eng = local().await;

    let mut cg = Collector::new(&eng, None, Preference::Auto).await;
    assert!(
        matches!(cg.method(), Method::Cgroup { detail } if detail.contains("/sys/fs/cgroup")),
        "{:?}",
        cg.method()
    );
    let (store, kernel) = two_readings(&mut cg, &ids, &busy).await;
    assert!(matches!(store.method, Some(Method::Cgroup { .. })));
    check_busy_and_idle(&store, &busy, &idle, true, &kernel);

    // Each method is held to the kernel's count around its own readings. The two are not
    // compared with each other: they read different seconds of a loop whose share of the cores
    // follows the machine's load (15 % in one and 55 % in the next, on a crowded run).
    let mut api = Collector::new(&eng, None, Preference::Api).await;
    assert!(matches!(api.method(), Method::Api { .. }));
    let (store, kernel) = two_readings(&mut api, &ids, &busy).await;
    check_busy_and_idle(&store, &busy, &idle, true, &kernel);

    // A stopped container is left out, not an error.
    common::docker(&["stop", "-t", "0", &idle]);
    let batch = cg.sample(&ids).await;
    assert!(batch.samples.iter().all(|s| s.id != idle), "{batch:?}");
    assert!(batch.samples.iter().any(|s| s.id == busy));
    scope.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_collector_reads_what_is_wanted_at_the_interval() {
    let scope = Scope::new("stats");
    let busy = scope.run("busy", BUSY);
    let eng = local().await;
    let collector = Collector::new(&eng, None, Preference::Auto).await;
    let (wanted_tx, wanted) = tokio::sync::watch::channel(Vec::<String>::new());
    let (_interval_tx, interval) = tokio::sync::watch::channel(Duration::from_millis(500));
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(stats::run(collector, wanted, interval, tx, cancel.clone()));

    // Nothing wanted: nothing read.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err()
    );
    let clock = KernelClock::of(&busy);
    let start = clock.read();
    wanted_tx.send(vec![busy.clone()]).unwrap();
    let mut store = StatsStore::new(Duration::from_millis(500));
    for _ in 0..3 {
        let batch = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a batch within 20 s")
            .expect("the collector runs");
        store.ingest(&batch);
    }
    // One 500 ms reading against a longer kernel window on a crowded machine is only a sanity
    // check; the exact comparison is in cgroup_and_api_agree_on_busy_and_idle and cli_stats_and_df.
    let truth = start.percent_to(clock.read());
    let cpu = store.latest(&busy).and_then(|p| p.cpu).unwrap_or(0.0);
    assert!(
        cpu > 0.3 * truth && cpu <= 120.0,
        "busy loop read {cpu:.1} %, the kernel counted {truth:.1} %"
    );
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the collector stops when cancelled")
        .unwrap();
    scope.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_usage_and_host_of_the_local_engine() {
    let scope = Scope::new("stats");
    scope.run("idle", IDLE);
    let eng = local().await;
    let df = stats::df::disk_usage(&eng).await.expect("system df");
    assert!(df.images.total >= 4, "the fixture images: {df:?}");
    assert!(df.images.size > 0 && df.images.reclaimable <= df.images.size);
    assert!(
        df.containers.total >= 1 && df.containers.active >= 1,
        "{df:?}"
    );

    let paths = stats::host::disk_paths(&eng).await;
    let (h, source) = stats::host::read(&eng, None, &paths).await.expect("host");
    assert_eq!(source, "local /proc");
    assert!(
        h.cpu.is_some() && h.mem_total > 0 && !h.disks.is_empty(),
        "{h:?}"
    );
    scope.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_exec_through_the_real_sshd() {
    // VERBOSE logs every session sshd starts: the kept shell must be the only one.
    let sshd = Sshd::start(SshdOptions {
        log_level: "VERBOSE",
        ..Default::default()
    });
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    let t = home.box_target(&sshd, "");
    let eng = engine::connect(&t, &home.options())
        .await
        .expect("connects over ssh");
    let session = eng.ssh.clone().expect("an ssh engine has a session");

    let scope = Scope::new("stats");
    let busy = scope.run("busy", BUSY);
    let idle = scope.run("idle", IDLE);
    let ids = vec![busy.clone(), idle.clone()];
    let remote: Arc<dyn stats::RemoteExec> = Arc::new(berth::remote::SshShell::new(session));
    let mut collector = Collector::new(&eng, Some(remote.clone()), Preference::Auto).await;
    assert!(
        matches!(collector.method(), Method::Cgroup { detail } if detail.contains("kept ssh shell")),
        "{:?}",
        collector.method()
    );
    let (store, kernel) = two_readings(&mut collector, &ids, &busy).await;
    assert!(matches!(store.method, Some(Method::Cgroup { .. })));
    check_busy_and_idle(&store, &busy, &idle, true, &kernel);

    let paths = stats::host::disk_paths(&eng).await;
    let (h, source) = stats::host::read(&eng, Some(remote.as_ref()), &paths)
        .await
        .expect("host over ssh");
    assert_eq!(source, "ssh exec");
    assert!(h.cpu.is_some() && h.cpus >= 1, "{h:?}");
    let df = stats::df::disk_usage(&eng)
        .await
        .expect("system df over ssh");
    assert!(df.containers.active >= 2, "{df:?}");
    let log = sshd.log();
    assert_eq!(
        log.matches("Starting session: command").count(),
        1,
        "one kept shell for the stats and the host:\n{log}"
    );
    scope.cleanup();
}

#[test]
fn cli_stats_and_df() {
    let scope = Scope::new("stats");
    let busy = scope.run("busy", BUSY);
    let berth = |args: &[&str]| {
        let out = common::berth()
            .args(args)
            .output_within(BERTH_TIMEOUT)
            .expect("berth runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for method in ["cgroup", "api"] {
        let sampler = KernelSampler::start(&busy);
        let (ok, out, err) = berth(&["stats", "--json", "--method", method, &scope.name("busy")]);
        // `berth stats` reads twice, a second apart (its GAP), somewhere inside its run.
        let kernel = sampler.bracket(Duration::from_secs(1));
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let c = &v["containers"][0];
        assert_eq!(c["id"], busy.as_str(), "{out}");
        check_busy_cpu(c["cpu_percent"].as_f64().unwrap_or(0.0), &kernel);
        assert_eq!(c["mem_limit"], MIB64, "{out}");
        let expect = if method == "api" {
            "engine API"
        } else {
            "cgroup"
        };
        assert!(v["method"].as_str().unwrap_or("").contains(expect), "{out}");
    }
    let (ok, out, _) = berth(&["stats", &scope.name("busy")]);
    assert!(
        ok && out.starts_with("NAME") && out.contains("64.0M"),
        "{out}"
    );
    let (ok, _, err) = berth(&["stats", "no-such-container-anywhere"]);
    assert!(!ok && err.lines().count() == 1, "{err}");
    assert!(err.contains("no running container matches"), "{err}");
    let (ok, out, err) = berth(&["df", "--json"]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(rows[0]["kind"], "Images");
    assert!(rows[1]["active"].as_u64().unwrap_or(0) >= 1, "{out}");
    scope.cleanup();
}
