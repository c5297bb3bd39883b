//! Merges the lines of several containers in timestamp order through a short reorder window,
//! holding back at most [`MAX_PENDING`] lines and [`MAX_PENDING_BYTES`] bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::line::LogLine;

/// How far a container's own lines may arrive out of timestamp order: its stdout and stderr are
/// copied to the log separately, so a line can come a moment after a later-stamped one of the other
/// stream. Lines this close to the watermark wait for the next batch.
const SKEW_NANOS: i64 = 50_000_000;

/// Most lines the merger holds back. Without follow a lagging source holds the watermark while the
/// others are read eagerly; past this the oldest lines go out anyway, in timestamp order.
pub const MAX_PENDING: usize = 65_536;
/// Most bytes the merger holds back (lines are up to 64 KiB each: the line count alone would
/// allow 4 GiB).
pub const MAX_PENDING_BYTES: usize = 16 << 20;

/// A held-back line, ordered by timestamp and then by arrival (a source's own order is kept).
struct Pending {
    ts: i64,
    seq: u64,
    line: LogLine,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(other.ts, other.seq))
    }
}

/// Puts lines of several sources in timestamp order. A line goes out once every live source has
/// sent something at least as new (the watermark), or once it has waited the window: a quiet
/// container does not hold the others back for longer than that.
pub struct Merger {
    /// Min-heap on (timestamp, arrival): a flush costs only what it hands out.
    pending: BinaryHeap<Reverse<Pending>>,
    /// Per batch added: when it came and its newest timestamp, while some of it is pending.
    batches: VecDeque<(Instant, i64)>,
    seq: u64,
    cap: usize,
    /// The pending lines' bytes, and the most it may reach.
    bytes: usize,
    cap_bytes: usize,
    last_ts: Vec<Option<i64>>,
    pub done: Vec<bool>,
    window: Option<Duration>,
}

impl Merger {
    pub fn new(sources: usize, window: Option<Duration>) -> Merger {
        Merger::with_cap(sources, window, MAX_PENDING, MAX_PENDING_BYTES)
    }

    /// A merger that holds back at most `cap` lines and `cap_bytes` bytes.
    pub fn with_cap(
        sources: usize,
        window: Option<Duration>,
        cap: usize,
        cap_bytes: usize,
    ) -> Merger {
        Merger {
            pending: BinaryHeap::new(),
            batches: VecDeque::new(),
            seq: 0,
            cap: cap.max(1),
            bytes: 0,
            cap_bytes,
            last_ts: vec![None; sources],
            done: vec![false; sources],
            window,
        }
    }

    /// The bytes held back now.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn add(&mut self, source: u16, lines: Vec<LogLine>, now: Instant) {
        if let (Some(last), Some(slot)) = (lines.last(), self.last_ts.get_mut(source as usize)) {
            *slot = Some(last.ts);
        }
        let Some(newest) = lines.iter().map(|l| l.ts).max() else {
            return;
        };
        self.batches.push_back((now, newest));
        for line in lines {
            self.seq += 1;
            self.bytes += line.footprint();
            self.pending.push(Reverse(Pending {
                ts: line.ts,
                seq: self.seq,
                line,
            }));
        }
    }

    /// Lines ready to go, in timestamp order (stable: a source's own order is kept). Past either
    /// cap the oldest lines go out too.
    pub fn flush(&mut self, now: Instant, all: bool) -> Vec<LogLine> {
        if self.pending.is_empty() {
            self.batches.clear();
            return Vec::new();
        }
        let limit = if all {
            i64::MAX
        } else {
            let watermark = self
                .last_ts
                .iter()
                .zip(&self.done)
                .filter(|(_, done)| !**done)
                .map(|(ts, _)| ts.unwrap_or(i64::MIN))
                .min()
                .unwrap_or(i64::MAX);
            let waited = self.window.and_then(|w| {
                self.batches
                    .iter()
                    .filter(|(at, _)| now.saturating_duration_since(*at) >= w)
                    .map(|(_, ts)| *ts)
                    .max()
            });
            watermark
                .saturating_sub(SKEW_NANOS)
                .max(waited.unwrap_or(i64::MIN))
        };
        let mut out = Vec::new();
        while let Some(Reverse(top)) = self.pending.peek() {
            if top.ts > limit && self.pending.len() <= self.cap && self.bytes <= self.cap_bytes {
                break;
            }
            let Some(Reverse(p)) = self.pending.pop() else {
                break;
            };
            self.bytes -= p.line.footprint();
            out.push(p.line);
        }
        // A batch whose newest line went out is all out.
        match self.pending.peek() {
            None => self.batches.clear(),
            Some(Reverse(top)) => {
                let first = top.ts;
                self.batches.retain(|(_, ts)| *ts >= first);
            }
        }
        out
    }
}
