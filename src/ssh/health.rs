//! Host health of a server for the header (load, CPU, memory, disk of `/` and of the Docker root),
//! read with one read-only exec of `/proc/loadavg`, `/proc/meminfo`, `df -P` and the `cpu` lines
//! of `/proc/stat`: nothing to install. The local engine's host is read from the same files.

use super::{SshError, SshSession};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostHealth {
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    pub mem_total: u64,
    pub mem_available: u64,
    /// One per path asked for, in order (a path on the same file system appears again).
    pub disks: Vec<DiskUse>,
    /// CPU time counters since boot: CPU% is the difference between two readings.
    pub cpu: Option<CpuTimes>,
    /// Online CPUs (the `cpuN` lines of /proc/stat).
    pub cpus: u32,
}

impl HostHealth {
    /// Memory in use: all but what is available.
    pub fn mem_used(&self) -> u64 {
        self.mem_total.saturating_sub(self.mem_available)
    }

    /// Memory in use as a percent of the total; none when the total is unknown.
    pub fn mem_percent(&self) -> Option<f64> {
        (self.mem_total > 0).then(|| self.mem_used() as f64 * 100.0 / self.mem_total as f64)
    }
}

/// The summed `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

impl CpuTimes {
    /// Busy percent of all CPUs between an earlier reading and this one.
    pub fn percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        (total > 0).then(|| (busy.min(total)) as f64 * 100.0 / total as f64)
    }
}

/// Parses the `cpu` lines of /proc/stat: the totals and the number of CPUs.
pub fn parse_proc_stat(text: &str) -> (Option<CpuTimes>, u32) {
    let mut times = None;
    let mut cpus = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let v: Vec<u64> = f.map(|x| x.parse().unwrap_or(0)).collect();
                if v.len() >= 4 {
                    // user nice system idle iowait irq softirq steal (guest is inside user).
                    let idle = v[3] + v.get(4).copied().unwrap_or(0);
                    let total: u64 = v.iter().take(8).sum();
                    times = Some(CpuTimes {
                        busy: total.saturating_sub(idle),
                        total,
                    });
                }
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (times, cpus)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUse {
    pub mount: String,
    pub total: u64,
    pub available: u64,
    pub used_percent: u8,
}

const SEP: &str = "--berth--";

/// Reads the server's health; `paths` are the directories whose file systems to report (e.g. `/` and
/// the engine's DockerRootDir from `/info`).
pub async fn read(session: &SshSession, paths: &[&str]) -> Result<HostHealth, SshError> {
    let cmd = command(paths);
    let out = session.exec(&cmd).await?;
    parse_output(&cmd, &String::from_utf8_lossy(&out.stdout)).map_err(SshError::Other)
}

/// [`parse`] of the output of `cmd` (from [`command`]), with the error that names the command.
pub fn parse_output(cmd: &str, text: &str) -> Result<HostHealth, String> {
    parse(text).ok_or_else(|| format!("cannot read host health: unexpected output of `{cmd}`"))
}

/// The read-only command [`read`] runs; [`parse`] reads its output.
pub fn command(paths: &[&str]) -> String {
    let quoted: Vec<String> = paths
        .iter()
        .map(|p| format!("'{}'", p.replace('\'', "'\\''")))
        .collect();
    format!(
        "cat /proc/loadavg; echo {SEP}; cat /proc/meminfo; echo {SEP}; df -P {} 2>/dev/null; echo {SEP}; grep '^cpu' /proc/stat",
        quoted.join(" ")
    )
}

/// Parses the output of the command [`read`] runs.
pub fn parse(text: &str) -> Option<HostHealth> {
    let mut parts = text.split(SEP);
    let (load, mem, df) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    let (cpu, cpus) = parse_proc_stat(parts.next().unwrap_or(""));
    let mut l = load.split_whitespace().map(|v| v.parse::<f64>().ok());
    let load = [l.next()??, l.next()??, l.next()??];
    let kib = |key: &str| -> Option<u64> {
        mem.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    let mem_total = kib("MemTotal")?;
    let mem_available = kib("MemAvailable").or_else(|| kib("MemFree")).unwrap_or(0);
    let disks = df
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let n = f.len();
            if n < 6 {
                return None;
            }
            Some(DiskUse {
                mount: f[n - 1].to_string(),
                total: f[n - 5].parse::<u64>().ok()? * 1024,
                available: f[n - 3].parse::<u64>().ok()? * 1024,
                used_percent: f[n - 2].trim_end_matches('%').parse().ok()?,
            })
        })
        .collect();
    Some(HostHealth {
        load,
        mem_total,
        mem_available,
        disks,
        cpu,
        cpus,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_proc_and_df() {
        let text = "0.52 0.41 0.30 2/345 6789\n--berth--\nMemTotal:       16318000 kB\nMemFree:  100 kB\n\
                    MemAvailable:    8159000 kB\n--berth--\n\
                    Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                    /dev/sda1 10485760 5242880 5242880 50% /\n\
                    /dev/sdb1 2000 1900 100 95% /var/lib/docker\n";
        let h = super::parse(text).unwrap();
        assert_eq!(h.load, [0.52, 0.41, 0.30]);
        assert_eq!(
            (h.mem_total, h.mem_available),
            (16318000 * 1024, 8159000 * 1024)
        );
        assert_eq!(h.disks.len(), 2);
        assert_eq!(h.disks[1].mount, "/var/lib/docker");
        assert_eq!(
            (h.disks[1].available, h.disks[1].used_percent),
            (100 * 1024, 95)
        );
        assert_eq!(super::parse("garbage"), None);
        assert_eq!(h.cpu, None);
    }

    #[test]
    fn cpu_percent_from_proc_stat() {
        let a = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\ncpu1 50 0 50 350 50 0 0 0 0 0\n";
        let b = "cpu  250 0 150 1000 100 0 0 0 0 0\n";
        let (ta, cpus) = super::parse_proc_stat(a);
        assert_eq!(cpus, 2);
        let (tb, _) = super::parse_proc_stat(b);
        // busy +200, total +500.
        assert_eq!(tb.unwrap().percent_since(&ta.unwrap()), Some(40.0));
        assert_eq!(
            ta.unwrap().percent_since(&tb.unwrap()),
            None,
            "counters went back"
        );
        let text = "0.1 0.2 0.3 1/2 3\n--berth--\nMemTotal: 1000 kB\n--berth--\n--berth--\n"
            .to_string()
            + a;
        let h = super::parse(&text).unwrap();
        assert_eq!((h.cpu, h.cpus), (ta, 2));
    }
}
