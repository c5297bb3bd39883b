//! Turns raw counters into rates and keeps a bounded history per container for the charts.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::{Method, Sample, StatsBatch};

/// History kept per container: at least this much time at the chosen interval.
pub const HISTORY_SPAN: Duration = Duration::from_secs(300);
/// Samples closer than this to the one before are dropped: a rate over a few milliseconds (or
/// the 10 ms ticks of /proc/uptime) is noise.
pub const MIN_SPAN: Duration = Duration::from_millis(200);
/// Never fewer points than this (a slow interval still gets a useful chart) nor more than the cap.
const MIN_POINTS: usize = 60;
const MAX_POINTS: usize = 3600;

/// One point of a container's history: what the list and the charts show.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Percent of one core, as `docker stats` shows it (200 = two cores busy).
    pub cpu: Option<f64>,
    pub mem_used: Option<u64>,
    pub mem_limit: Option<u64>,
    /// Bytes per second.
    pub net_rx: Option<f64>,
    pub net_tx: Option<f64>,
    pub blk_read: Option<f64>,
    pub blk_write: Option<f64>,
    pub pids: Option<u64>,
}

impl Point {
    pub fn mem_percent(&self) -> Option<f64> {
        match (self.mem_used, self.mem_limit) {
            (Some(u), Some(l)) if l > 0 => Some(u as f64 * 100.0 / l as f64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Series {
    last: Option<Sample>,
    pub points: VecDeque<Point>,
}

/// Rates and history for every container that has been sampled.
#[derive(Debug, Clone)]
pub struct StatsStore {
    capacity: usize,
    series: BTreeMap<String, Series>,
    /// How the last batch was read, and why when it is the fallback.
    pub method: Option<Method>,
}

/// Points needed to cover [`HISTORY_SPAN`] at `interval`.
pub fn capacity_for(interval: Duration) -> usize {
    let ms = interval.as_millis().max(1);
    let needed = HISTORY_SPAN.as_millis().div_ceil(ms) as usize + 1;
    needed.clamp(MIN_POINTS, MAX_POINTS)
}

impl StatsStore {
    pub fn new(interval: Duration) -> StatsStore {
        StatsStore {
            capacity: capacity_for(interval),
            series: BTreeMap::new(),
            method: None,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A new interval keeps the history; a shorter one makes room for more points.
    pub fn set_interval(&mut self, interval: Duration) {
        self.capacity = capacity_for(interval);
        for s in self.series.values_mut() {
            while s.points.len() > self.capacity {
                s.points.pop_front();
            }
        }
    }

    pub fn ingest(&mut self, batch: &StatsBatch) {
        if self.method.as_ref().map(std::mem::discriminant)
            != Some(std::mem::discriminant(&batch.method))
        {
            // Another source keeps time differently: no rate across the switch.
            for s in self.series.values_mut() {
                s.last = None;
            }
        }
        self.method = Some(batch.method.clone());
        for sample in &batch.samples {
            let series = self.series.entry(sample.id.clone()).or_default();
            if let Some(last) = &series.last
                && sample.at >= last.at
                && sample.at - last.at < MIN_SPAN
            {
                continue;
            }
            let point = rates(series.last.as_ref(), sample);
            series.last = Some(sample.clone());
            if series.points.len() == self.capacity {
                series.points.pop_front();
            }
            series.points.push_back(point);
        }
    }

    pub fn latest(&self, id: &str) -> Option<&Point> {
        self.series.get(id)?.points.back()
    }

    pub fn history(&self, id: &str) -> Option<&VecDeque<Point>> {
        self.series.get(id).map(|s| &s.points)
    }

    /// Forgets containers that no longer exist.
    pub fn retain(&mut self, keep: impl FnMut(&String, &mut Series) -> bool) {
        self.series.retain(keep);
    }

    pub fn remove(&mut self, id: &str) {
        self.series.remove(id);
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.method = None;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.series.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// The point for `cur` given the sample before it. Rates need two samples; a counter that went
/// backwards (the container restarted) gives no rate for that step rather than a nonsense one.
pub fn rates(prev: Option<&Sample>, cur: &Sample) -> Point {
    let elapsed = prev
        .and_then(|p| cur.at.checked_sub(p.at))
        .filter(|d| !d.is_zero());
    let per_second = |a: Option<u64>, b: Option<u64>| -> Option<f64> {
        let secs = elapsed?.as_secs_f64();
        let (a, b) = (a?, b?);
        (b >= a).then(|| (b - a) as f64 / secs)
    };
    let before = |f: fn(&Sample) -> Option<u64>| prev.and_then(f);
    Point {
        cpu: per_second(before(|s| s.cpu_ns), cur.cpu_ns).map(|ns_per_s| ns_per_s / 1e7),
        mem_used: cur.mem_used,
        mem_limit: cur.mem_limit,
        net_rx: per_second(before(|s| s.net_rx), cur.net_rx),
        net_tx: per_second(before(|s| s.net_tx), cur.net_tx),
        blk_read: per_second(before(|s| s.blk_read), cur.blk_read),
        blk_write: per_second(before(|s| s.blk_write), cur.blk_write),
        pids: cur.pids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, cpu_ns: u64, rx: u64) -> Sample {
        Sample {
            id: "a".into(),
            at: Duration::from_millis(at_ms),
            cpu_ns: Some(cpu_ns),
            mem_used: Some(10),
            mem_limit: Some(40),
            net_rx: Some(rx),
            net_tx: Some(0),
            blk_read: None,
            blk_write: None,
            pids: Some(2),
        }
    }

    fn batch(samples: Vec<Sample>) -> StatsBatch {
        StatsBatch {
            method: Method::Cgroup {
                detail: "test".into(),
            },
            samples,
        }
    }

    #[test]
    fn cpu_percent_from_deltas() {
        // Half a core for two seconds: 1e9 ns of CPU over 2 s of wall time.
        let p = rates(
            Some(&sample(1000, 5_000_000_000, 0)),
            &sample(3000, 6_000_000_000, 4096),
        );
        assert!((p.cpu.unwrap() - 50.0).abs() < 1e-9, "{:?}", p.cpu);
        assert_eq!(p.net_rx, Some(2048.0));
        assert_eq!(p.mem_percent(), Some(25.0));
        assert_eq!(p.pids, Some(2));
        assert_eq!(
            rates(None, &sample(1000, 1, 1)).cpu,
            None,
            "one sample: no rate"
        );
    }

    #[test]
    fn counter_reset_gives_no_rate() {
        let p = rates(
            Some(&sample(1000, 9_000_000_000, 5000)),
            &sample(3000, 1_000_000, 10),
        );
        assert_eq!((p.cpu, p.net_rx), (None, None));
        assert_eq!(p.mem_used, Some(10), "gauges still count");
        let same_time = rates(Some(&sample(1000, 1, 1)), &sample(1000, 2, 2));
        assert_eq!(same_time.cpu, None);
    }

    #[test]
    fn history_is_bounded_and_covers_five_minutes() {
        assert!(capacity_for(Duration::from_secs(2)) >= 151);
        assert_eq!(capacity_for(Duration::from_secs(60)), MIN_POINTS);
        assert_eq!(capacity_for(Duration::from_millis(1)), MAX_POINTS);
        let mut store = StatsStore::new(Duration::from_secs(5));
        let cap = store.capacity();
        assert!(cap as u64 * 5 >= 300);
        for i in 0..(cap as u64 * 3) {
            store.ingest(&batch(vec![sample(i * 5000, i * 1000, i)]));
        }
        assert_eq!(store.history("a").unwrap().len(), cap);
        store.set_interval(Duration::from_secs(30));
        assert_eq!(store.history("a").unwrap().len(), store.capacity());
        store.retain(|id, _| id != "a");
        assert!(store.is_empty());
    }

    #[test]
    fn samples_too_close_together_are_dropped() {
        let mut store = StatsStore::new(Duration::from_secs(2));
        store.ingest(&batch(vec![sample(1000, 0, 0)]));
        store.ingest(&batch(vec![sample(1010, 500_000_000, 0)]));
        assert_eq!(store.history("a").unwrap().len(), 1, "10 ms later: dropped");
        store.ingest(&batch(vec![sample(3000, 1_000_000_000, 0)]));
        assert_eq!(
            store.latest("a").unwrap().cpu,
            Some(50.0),
            "the rate spans 2 s"
        );
    }

    #[test]
    fn method_switch_drops_the_baseline() {
        let mut store = StatsStore::new(Duration::from_secs(2));
        store.ingest(&batch(vec![sample(1000, 0, 0)]));
        store.ingest(&StatsBatch {
            method: Method::Api { reason: "x".into() },
            samples: vec![sample(3000, 1_000_000_000, 0)],
        });
        assert_eq!(store.latest("a").unwrap().cpu, None);
    }
}
