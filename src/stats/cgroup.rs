//! Container counters read straight from the kernel: the cgroup files of every wanted container
//! and `/proc/<pid>/net/dev`, gathered as one text dump (one read-only exec over SSH, plain file
//! reads for the local engine) and parsed here. Cgroup v1 and v2, systemd and cgroupfs drivers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::Sample;

/// Where the engine puts its containers' cgroups, from `/info` (`CgroupVersion`, `CgroupDriver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    pub v2: bool,
    pub systemd: bool,
    /// Normally `/sys/fs/cgroup`.
    pub root: String,
}

impl CgroupLayout {
    pub fn new(version: &str, driver: &str) -> CgroupLayout {
        CgroupLayout {
            v2: version.trim() == "2",
            systemd: driver.trim() == "systemd",
            root: "/sys/fs/cgroup".into(),
        }
    }

    /// The container's directory below a controller (v1) or the unified root (v2).
    fn leaf(&self, id: &str) -> String {
        if self.systemd {
            format!("system.slice/docker-{id}.scope")
        } else {
            format!("docker/{id}")
        }
    }

    /// The files to read for one container, in the order the parser expects nothing of.
    pub fn files(&self, id: &str, pid: u32) -> Vec<String> {
        let leaf = self.leaf(id);
        let root = &self.root;
        let mut files: Vec<String> = if self.v2 {
            [
                "cpu.stat",
                "memory.current",
                "memory.max",
                "memory.stat",
                "io.stat",
                "pids.current",
            ]
            .iter()
            .map(|f| format!("{root}/{leaf}/{f}"))
            .collect()
        } else {
            [
                ("cpuacct", "cpuacct.usage"),
                ("memory", "memory.usage_in_bytes"),
                ("memory", "memory.limit_in_bytes"),
                ("memory", "memory.stat"),
                ("blkio", "blkio.throttle.io_service_bytes"),
                ("pids", "pids.current"),
            ]
            .iter()
            .map(|(c, f)| format!("{root}/{c}/{leaf}/{f}"))
            .collect()
        };
        if pid > 0 {
            files.push(format!("/proc/{pid}/net/dev"));
        }
        files
    }

    /// One command printing the dump [`parse_dump`] reads, for all containers at once: a single
    /// `grep` (one process, whatever the number of containers) printing `PATH:LINE` for the lines
    /// that matter; it only reads, and a missing file is skipped.
    pub fn script(&self, targets: &[(String, u32)]) -> String {
        let mut s = format!("grep -HE '{WANTED_LINES}' {UPTIME}");
        for (id, pid) in targets {
            // Ids come from the engine, but they go into a shell: only hex passes.
            if !is_container_id(id) {
                continue;
            }
            for file in self.files(id, *pid) {
                let _ = write!(s, " {file}");
            }
        }
        // `true`, not `exit 0`: the command may run in a shell that is kept for the next one.
        s.push_str(" 2>/dev/null; true");
        s
    }

    /// The same dump as [`CgroupLayout::script`] prints, from the local file system.
    pub fn read_local(&self, targets: &[(String, u32)]) -> String {
        let mut out = String::with_capacity(8192);
        let mut add = |path: &str| {
            if let Ok(text) = std::fs::read_to_string(path) {
                for line in text.lines() {
                    let _ = writeln!(out, "{path}:{line}");
                }
            }
        };
        add(UPTIME);
        for (id, pid) in targets {
            if !is_container_id(id) {
                continue;
            }
            for file in self.files(id, *pid) {
                add(&file);
            }
        }
        out
    }
}

const UPTIME: &str = "/proc/uptime";

/// The lines the parser needs, for `grep -E`: numbers (single-value files, io.stat, blkio, the
/// uptime), `max`, the CPU total, the inactive file cache, and interfaces of /proc/net/dev.
const WANTED_LINES: &str = "^([0-9]|max$|usage_usec |(total_)?inactive_file | *[^ :|]+:)";

fn is_container_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What one dump holds: the server's clock and one sample per readable container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    /// `/proc/uptime`: a monotonic clock for rates that the network round trip does not skew.
    pub uptime: Option<Duration>,
    pub samples: Vec<Sample>,
    /// Containers whose CPU counter could not be read (gone, stopped, or another cgroup layout).
    pub unreadable: Vec<String>,
}

/// Parses the `PATH:LINE` dump of [`CgroupLayout::script`] / [`CgroupLayout::read_local`] for
/// `targets`; a limit at or above `mem_total` (the host's memory) is no limit.
pub fn parse_dump(
    text: &str,
    layout: &CgroupLayout,
    targets: &[(String, u32)],
    mem_total: Option<u64>,
) -> Dump {
    let mut dump = Dump::default();
    // Path → (container, file name); the file's lines gather in `bodies`.
    let mut owner: HashMap<String, (usize, &'static str)> = HashMap::new();
    for (i, (id, pid)) in targets.iter().enumerate() {
        for file in layout.files(id, *pid) {
            let name = FILE_NAMES
                .iter()
                .find(|n| file.ends_with(*n))
                .copied()
                .unwrap_or("");
            owner.insert(file, (i, name));
        }
    }
    let mut bodies: Vec<Vec<(&'static str, String)>> = vec![Vec::new(); targets.len()];
    for line in text.lines() {
        let Some((path, content)) = line.split_once(':') else {
            continue;
        };
        if path == UPTIME {
            dump.uptime = content
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(Duration::from_secs_f64);
            continue;
        }
        let Some((i, name)) = owner.get(path) else {
            continue;
        };
        let files = &mut bodies[*i];
        match files.iter_mut().find(|(n, _)| n == name) {
            Some((_, body)) => {
                body.push_str(content);
                body.push('\n');
            }
            None => files.push((name, format!("{content}\n"))),
        }
    }
    for ((id, _), files) in targets.iter().zip(bodies) {
        if !is_container_id(id) {
            continue;
        }
        match sample_from_files(id, &files, mem_total) {
            Some(s) => dump.samples.push(s),
            None => dump.unreadable.push(id.clone()),
        }
    }
    dump
}

/// The files [`CgroupLayout::files`] names, by how their paths end.
const FILE_NAMES: &[&str] = &[
    "cpu.stat",
    "memory.current",
    "memory.max",
    "memory.stat",
    "io.stat",
    "pids.current",
    "cpuacct.usage",
    "memory.usage_in_bytes",
    "memory.limit_in_bytes",
    "blkio.throttle.io_service_bytes",
    "net/dev",
];

fn sample_from_files(
    id: &str,
    files: &[(&'static str, String)],
    mem_total: Option<u64>,
) -> Option<Sample> {
    let get = |name: &str| {
        files
            .iter()
            .find(|(n, body)| *n == name && !body.trim().is_empty())
            .map(|(_, b)| b.as_str())
    };
    let number = |name: &str| get(name).and_then(|b| b.trim().parse::<u64>().ok());
    let cpu_ns = number("cpuacct.usage")
        .or_else(|| stat_value(get("cpu.stat")?, "usage_usec").map(|us| us.saturating_mul(1000)))?;
    let (mem_used, limit) = if let Some(current) = number("memory.current") {
        let inactive = get("memory.stat")
            .and_then(|s| stat_value(s, "inactive_file"))
            .unwrap_or(0);
        // "max" means no limit: leave it to the host total below.
        (Some(memory_used(current, inactive)), number("memory.max"))
    } else if let Some(usage) = number("memory.usage_in_bytes") {
        let inactive = get("memory.stat")
            .and_then(|s| stat_value(s, "total_inactive_file"))
            .unwrap_or(0);
        (
            Some(memory_used(usage, inactive)),
            number("memory.limit_in_bytes"),
        )
    } else {
        (None, None)
    };
    // No limit ("max" in v2, a huge number in v1) is `None`: MEM% is then "—", not a share of
    // the host's memory that reads as 0%.
    let mem_limit = match (limit, mem_total) {
        (Some(l), Some(total)) if l >= total => None,
        (Some(l), None) if l >= 1 << 62 => None,
        (l, _) => l,
    };
    // A container that has done no IO has an empty io.stat (the dump carries no line of it): that
    // is 0 bytes, as `docker stats` shows, not an unknown.
    let (blk_read, blk_write) = get("io.stat")
        .map(parse_io_stat)
        .or_else(|| get("blkio.throttle.io_service_bytes").map(parse_blkio))
        .unwrap_or((0, 0));
    let (blk_read, blk_write) = (Some(blk_read), Some(blk_write));
    let (net_rx, net_tx) = get("net/dev").and_then(parse_net_dev).unzip();
    Some(Sample {
        id: id.to_string(),
        at: Duration::ZERO,
        cpu_ns: Some(cpu_ns),
        mem_used,
        mem_limit,
        net_rx,
        net_tx,
        blk_read,
        blk_write,
        pids: number("pids.current"),
    })
}

/// Memory in use the way `docker stats` counts it: the page cache that could be dropped at once
/// (inactive file pages) does not count.
pub fn memory_used(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}

/// `key value` lines (cpu.stat, memory.stat).
pub fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=…` per device, summed.
pub fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            read = read.saturating_add(v.parse().unwrap_or(0));
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            write = write.saturating_add(v.parse().unwrap_or(0));
        }
    }
    (read, write)
}

/// v1 `blkio.throttle.io_service_bytes`: `8:0 Read 123` per device and operation, summed.
pub fn parse_blkio(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let v: u64 = f[2].parse().unwrap_or(0);
        match f[1] {
            "Read" => read = read.saturating_add(v),
            "Write" => write = write.saturating_add(v),
            _ => {}
        }
    }
    (read, write)
}

/// `/proc/<pid>/net/dev`: received and sent bytes over every interface but loopback.
pub fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let mut seen = false;
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines() {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        let iface = iface.trim();
        if iface.is_empty() || iface.contains('|') {
            continue;
        }
        let f: Vec<u64> = counters
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() < 9 {
            continue;
        }
        seen = true;
        if iface == "lo" {
            continue;
        }
        rx = rx.saturating_add(f[0]);
        tx = tx.saturating_add(f[8]);
    }
    seen.then_some((rx, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "7a1a8d84988511f8ebe1aac1aaee90ba713958d1a3551fc45c61a9f026d9dbf7";

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn paths_follow_version_and_driver() {
        let v2 = CgroupLayout::new("2", "systemd");
        assert_eq!(
            v2.files(ID, 42)[0],
            format!("/sys/fs/cgroup/system.slice/docker-{ID}.scope/cpu.stat")
        );
        assert_eq!(v2.files(ID, 42).last().unwrap(), "/proc/42/net/dev");
        let v2fs = CgroupLayout::new("2", "cgroupfs");
        assert_eq!(
            v2fs.files(ID, 0)[1],
            format!("/sys/fs/cgroup/docker/{ID}/memory.current")
        );
        assert_eq!(v2fs.files(ID, 0).len(), 6, "no pid: no network file");
        let v1 = CgroupLayout::new("1", "cgroupfs");
        assert_eq!(
            v1.files(ID, 1)[0],
            format!("/sys/fs/cgroup/cpuacct/docker/{ID}/cpuacct.usage")
        );
    }

    #[test]
    fn script_refuses_what_is_not_an_id() {
        let l = CgroupLayout::new("2", "systemd");
        let s = l.script(&[("abc; rm -rf /".into(), 1), (ID.into(), 7)]);
        assert!(!s.contains("rm -rf"));
        assert!(s.starts_with("grep -HE "));
        assert!(s.contains(&format!("docker-{ID}.scope/cpu.stat")));
        assert!(s.contains("/proc/7/net/dev"));
        assert_eq!(
            s.matches("grep").count(),
            1,
            "one process for every container"
        );
    }

    fn v2_targets() -> Vec<(String, u32)> {
        vec![
            ("aaaa".into(), 101),
            ("bbbb".into(), 102),
            ("cccc".into(), 103),
        ]
    }

    const HOST_MEM: Option<u64> = Some(2_000_000 * 1024);

    #[test]
    fn v2_dump() {
        let l = CgroupLayout::new("2", "systemd");
        let d = parse_dump(&fixture("v2.dump"), &l, &v2_targets(), HOST_MEM);
        assert_eq!(d.uptime, Some(Duration::from_millis(12_345_670)));
        assert_eq!(d.unreadable, vec!["bbbb".to_string()]);
        let s = &d.samples[0];
        assert_eq!(s.id, "aaaa");
        assert_eq!(s.cpu_ns, Some(5_000_000 * 1000));
        // memory.current 10 MiB minus inactive_file 2 MiB.
        assert_eq!(s.mem_used, Some(8 * 1024 * 1024));
        assert_eq!(s.mem_limit, Some(64 * 1024 * 1024));
        assert_eq!((s.blk_read, s.blk_write), (Some(3000), Some(700)));
        assert_eq!((s.net_rx, s.net_tx), (Some(1500), Some(900)));
        assert_eq!(s.pids, Some(3));
        // "max": no limit, so no MEM%.
        assert_eq!(d.samples[1].mem_limit, None);
        // Another container's lines do not leak into this one's.
        let other = CgroupLayout::new("2", "cgroupfs");
        let none = parse_dump(&fixture("v2.dump"), &other, &v2_targets(), HOST_MEM);
        assert!(none.samples.is_empty() && none.unreadable.len() == 3);
    }

    #[test]
    fn v1_dump() {
        let l = CgroupLayout::new("1", "cgroupfs");
        let d = parse_dump(
            &fixture("v1.dump"),
            &l,
            &[("dddd".into(), 104)],
            Some(4_000_000 * 1024),
        );
        let s = &d.samples[0];
        assert_eq!(s.cpu_ns, Some(123_456_789));
        // usage 884736 minus total_inactive_file 16384.
        assert_eq!(s.mem_used, Some(884_736 - 16_384));
        // the huge "unlimited" value is no limit.
        assert_eq!(s.mem_limit, None);
        assert_eq!((s.blk_read, s.blk_write), (Some(4096), Some(8192)));
        assert_eq!((s.net_rx, s.net_tx), (Some(200), Some(100)));
        assert_eq!(s.pids, Some(1));
    }

    /// The server filters with a real `grep -E`: what it keeps must parse to the same samples.
    #[test]
    fn the_grep_filter_keeps_what_the_parser_needs() {
        use std::io::Write;
        for (name, layout, targets, mem) in [
            (
                "v2.dump",
                CgroupLayout::new("2", "systemd"),
                v2_targets(),
                HOST_MEM,
            ),
            (
                "v1.dump",
                CgroupLayout::new("1", "cgroupfs"),
                vec![("dddd".to_string(), 104)],
                Some(4_000_000 * 1024),
            ),
        ] {
            let full = fixture(name);
            let mut child = std::process::Command::new("grep")
                .args(["-E", WANTED_LINES])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("grep runs");
            // Numbered so kept lines can be told apart from their twins in other files.
            let contents: String = full
                .lines()
                .map(|l| l.split_once(':').map(|(_, c)| c).unwrap_or(""))
                .map(|c| format!("{c}\n"))
                .collect();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(contents.as_bytes())
                .unwrap();
            let kept = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
            let kept: Vec<&str> = kept.lines().collect();
            let filtered: String = full
                .lines()
                .filter(|l| kept.contains(&l.split_once(':').map(|(_, c)| c).unwrap_or("")))
                .map(|l| format!("{l}\n"))
                .collect();
            assert!(filtered.len() < full.len(), "{name}: something is dropped");
            assert!(!filtered.contains("user_usec"), "{name}");
            assert_eq!(
                parse_dump(&filtered, &layout, &targets, mem),
                parse_dump(&full, &layout, &targets, mem),
                "{name}"
            );
        }
    }

    #[test]
    fn net_dev_skips_loopback_and_headers() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 200 2 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth1: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), Some((201, 102)));
        assert_eq!(parse_net_dev(""), None);
    }
}
