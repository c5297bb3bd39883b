//! The lines a log view keeps: a ring bounded in lines and in bytes, with a filter that keeps an index of the
//! matching lines up to date as lines arrive and leave, and regex search over what is shown.
//! Lines are addressed by a sequence number that never changes, so a paused view stays put while
//! the ring turns.

use std::collections::VecDeque;

use regex::{Regex, RegexBuilder};

use super::line::LogLine;

/// A compiled line pattern: used for the filter and for search.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub regex: Regex,
    pub text: String,
    pub case_insensitive: bool,
}

impl Pattern {
    /// A regex; a pattern that does not compile is a one-line error.
    pub fn new(text: &str, case_insensitive: bool) -> Result<Pattern, String> {
        let regex = RegexBuilder::new(text)
            .case_insensitive(case_insensitive)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| {
                format!(
                    "bad regex '{text}': {}",
                    e.to_string().lines().last().unwrap_or("invalid").trim()
                )
            })?;
        Ok(Pattern {
            regex,
            text: text.to_string(),
            case_insensitive,
        })
    }

    pub fn is_match(&self, line: &LogLine) -> bool {
        self.regex.is_match(&line.text)
    }
}

/// Shows only lines that match (or, inverted, that do not).
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub pattern: Pattern,
    pub invert: bool,
}

impl LineFilter {
    pub fn keeps(&self, line: &LogLine) -> bool {
        self.pattern.is_match(line) != self.invert
    }
}

/// `[logs] max_bytes` when the config says nothing: what a view may hold in line memory.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

/// What a line costs in memory: its record, its text and its styles (allocator overhead aside).
pub fn line_cost(line: &LogLine) -> usize {
    std::mem::size_of::<LogLine>()
        + line.text.len()
        + line
            .spans
            .as_ref()
            .map_or(0, |s| std::mem::size_of_val::<[super::sanitize::Span]>(s))
}

#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    capacity: usize,
    /// Bound on the summed [`line_cost`] of the retained lines.
    max_bytes: usize,
    /// Summed [`line_cost`] of the retained lines.
    bytes: usize,
    /// Sequence number of `lines[0]`.
    first_seq: u64,
    filter: Option<LineFilter>,
    /// Sequence numbers of the lines the filter keeps, oldest first.
    kept: VecDeque<u64>,
    /// The bound that last pushed a line out, to say why lines are missing.
    dropped_by: Option<Cap>,
}

/// Which bound of a [`LogBuffer`] dropped its oldest lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// `[logs] max_lines`.
    Lines(usize),
    /// `[logs] max_bytes`.
    Bytes(usize),
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cap::Lines(n) => write!(f, "max_lines {n}"),
            Cap::Bytes(n) if n % (1024 * 1024) == 0 => {
                write!(f, "max_bytes {} MiB", n / (1024 * 1024))
            }
            Cap::Bytes(n) => write!(f, "max_bytes {n}"),
        }
    }
}

impl LogBuffer {
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer::with_limits(capacity, DEFAULT_MAX_BYTES)
    }

    /// A ring that keeps at most `capacity` lines and `max_bytes` of them, whichever comes first
    /// (the newest line is always kept).
    pub fn with_limits(capacity: usize, max_bytes: usize) -> LogBuffer {
        let capacity = capacity.max(1);
        LogBuffer {
            lines: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
            max_bytes: max_bytes.max(1),
            bytes: 0,
            first_seq: 0,
            filter: None,
            kept: VecDeque::new(),
            dropped_by: None,
        }
    }

    /// The oldest lines pushed out to keep within the bounds, and the bound that did it last.
    pub fn dropped(&self) -> Option<(u64, Cap)> {
        self.dropped_by.map(|cap| (self.first_seq, cap))
    }

    /// Lines retained (filter or not).
    pub fn retained(&self) -> usize {
        self.lines.len()
    }

    /// The sequence number the next line will get: lines ever pushed.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.lines.len() as u64
    }

    /// Memory the retained lines take (see [`line_cost`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, line: LogLine) {
        let cost = line_cost(&line);
        while !self.lines.is_empty()
            && (self.lines.len() >= self.capacity || self.bytes + cost > self.max_bytes)
        {
            self.dropped_by = Some(if self.lines.len() >= self.capacity {
                Cap::Lines(self.capacity)
            } else {
                Cap::Bytes(self.max_bytes)
            });
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= line_cost(&old);
            }
            if self.kept.front() == Some(&self.first_seq) {
                self.kept.pop_front();
            }
            self.first_seq += 1;
        }
        self.bytes += cost;
        let seq = self.next_seq();
        if let Some(f) = &self.filter
            && f.keeps(&line)
        {
            self.kept.push_back(seq);
        }
        self.lines.push_back(line);
    }

    pub fn extend(&mut self, lines: impl IntoIterator<Item = LogLine>) {
        for l in lines {
            self.push(l);
        }
    }

    pub fn filter(&self) -> Option<&LineFilter> {
        self.filter.as_ref()
    }

    /// Sets or clears the filter; the index is rebuilt once over the retained lines.
    pub fn set_filter(&mut self, filter: Option<LineFilter>) {
        self.kept.clear();
        if let Some(f) = &filter {
            for (i, l) in self.lines.iter().enumerate() {
                if f.keeps(l) {
                    self.kept.push_back(self.first_seq + i as u64);
                }
            }
        }
        self.filter = filter;
    }

    /// Lines shown: all retained lines, or those the filter keeps.
    pub fn len(&self) -> usize {
        if self.filter.is_some() {
            self.kept.len()
        } else {
            self.lines.len()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sequence number of the shown line at `index`.
    pub fn seq_at(&self, index: usize) -> Option<u64> {
        if self.filter.is_some() {
            self.kept.get(index).copied()
        } else {
            (index < self.lines.len()).then(|| self.first_seq + index as u64)
        }
    }

    /// The shown line at `index`.
    pub fn get(&self, index: usize) -> Option<&LogLine> {
        self.by_seq(self.seq_at(index)?)
    }

    pub fn by_seq(&self, seq: u64) -> Option<&LogLine> {
        self.lines.get(seq.checked_sub(self.first_seq)? as usize)
    }

    /// Index among the shown lines of the first shown line at or after `seq`.
    pub fn index_of(&self, seq: u64) -> usize {
        if self.filter.is_some() {
            self.kept.partition_point(|&s| s < seq)
        } else {
            seq.saturating_sub(self.first_seq)
                .min(self.lines.len() as u64) as usize
        }
    }

    /// Shown lines from `start`, for drawing: touches only what is asked for.
    pub fn shown(&self, start: usize) -> impl Iterator<Item = (u64, &LogLine)> + '_ {
        (start..self.len()).filter_map(move |i| {
            let seq = self.seq_at(i)?;
            Some((seq, self.by_seq(seq)?))
        })
    }

    /// Shown index of the next line matching `pattern`, searching from `from` (exclusive) forwards
    /// or backwards, wrapping around.
    pub fn find(&self, pattern: &Pattern, from: usize, forward: bool) -> Option<usize> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let from = from.min(n - 1);
        for k in 1..=n {
            let i = if forward {
                (from + k) % n
            } else {
                (from + n - k % n) % n
            };
            if self.get(i).is_some_and(|l| pattern.is_match(l)) {
                return Some(i);
            }
        }
        None
    }

    /// How many shown lines match: one full pass.
    pub fn count_matches(&self, pattern: &Pattern) -> usize {
        self.shown(0).filter(|(_, l)| pattern.is_match(l)).count()
    }

    /// Retained lines in order, ignoring the filter (for saving the buffer).
    pub fn all(&self) -> impl Iterator<Item = &LogLine> + '_ {
        self.lines.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::line::StreamKind;

    fn line(n: usize) -> LogLine {
        LogLine::new(
            n as i64,
            0,
            StreamKind::Stdout,
            format!(
                "seq={n} {}",
                if n.is_multiple_of(10) { "ERROR" } else { "ok" }
            )
            .as_bytes(),
            0,
        )
    }

    /// What a bound dropped is counted and named, by the bound that did it.
    #[test]
    fn dropped_lines_are_counted_with_their_bound() {
        let mut b = LogBuffer::new(100);
        b.extend((0..100).map(line));
        assert_eq!(b.dropped(), None, "nothing dropped yet");
        b.extend((100..250).map(line));
        assert_eq!(b.dropped(), Some((150, Cap::Lines(100))));
        let cost = line_cost(&line(1));
        let mut b = LogBuffer::with_limits(1000, cost * 10);
        b.extend((0..25).map(line));
        let (n, cap) = b.dropped().unwrap();
        assert_eq!(n as usize + b.retained(), 25);
        assert_eq!(cap, Cap::Bytes(cost * 10));
        assert_eq!(Cap::Bytes(64 * 1024 * 1024).to_string(), "max_bytes 64 MiB");
    }

    #[test]
    fn ring_is_bounded_and_sequence_numbers_hold() {
        let mut b = LogBuffer::new(100);
        b.extend((0..250).map(line));
        assert_eq!(b.len(), 100);
        assert_eq!(b.next_seq(), 250);
        assert_eq!(&*b.get(0).unwrap().text, "seq=150 ERROR");
        assert_eq!(b.by_seq(149), None);
        assert_eq!(&*b.by_seq(249).unwrap().text, "seq=249 ok");
        assert_eq!(
            b.index_of(10),
            0,
            "an evicted anchor lands on the oldest line"
        );
    }

    #[test]
    fn ring_is_bounded_by_bytes_too() {
        let big = |n: usize| {
            LogLine::new(
                n as i64,
                0,
                StreamKind::Stdout,
                format!("{n:08} {}", "x".repeat(8000)).as_bytes(),
                0,
            )
        };
        let cost = line_cost(&big(0));
        let mut b = LogBuffer::with_limits(100_000, cost * 10 + cost / 2);
        b.extend((0..1000).map(big));
        assert_eq!(b.len(), 10, "the byte bound comes first");
        assert!(b.bytes() <= cost * 10 + cost / 2);
        assert!(b.get(9).unwrap().text.starts_with("00000999"));
        assert_eq!(b.next_seq(), 1000);
        // A line bigger than the whole bound is still kept, alone.
        let mut tiny = LogBuffer::with_limits(100, 10);
        tiny.extend((0..3).map(big));
        assert_eq!(tiny.len(), 1);
        // The line bound still holds for small lines.
        let mut lines = LogBuffer::with_limits(5, 1 << 20);
        lines.extend((0..50).map(line));
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn filter_index_follows_pushes_and_evictions() {
        let mut b = LogBuffer::new(50);
        b.extend((0..40).map(line));
        let p = Pattern::new("error", true).unwrap();
        b.set_filter(Some(LineFilter {
            pattern: p.clone(),
            invert: false,
        }));
        assert_eq!(b.len(), 4);
        b.extend((40..100).map(line));
        // Retained: 50..100 → errors at 50,60,70,80,90.
        assert_eq!(b.len(), 5);
        assert_eq!(&*b.get(0).unwrap().text, "seq=50 ERROR");
        b.set_filter(Some(LineFilter {
            pattern: p,
            invert: true,
        }));
        assert_eq!(b.len(), 45);
        b.set_filter(None);
        assert_eq!(b.len(), 50);
        assert!(
            Pattern::new("(", false)
                .unwrap_err()
                .starts_with("bad regex '(':")
        );
    }

    #[test]
    fn find_wraps_both_ways() {
        let mut b = LogBuffer::new(100);
        b.extend((0..30).map(line));
        let p = Pattern::new("ERROR", false).unwrap();
        assert_eq!(b.find(&p, 0, true), Some(10));
        assert_eq!(b.find(&p, 10, true), Some(20));
        assert_eq!(b.find(&p, 20, true), Some(0));
        assert_eq!(b.find(&p, 10, false), Some(0));
        assert_eq!(b.find(&p, 0, false), Some(20));
        assert_eq!(b.count_matches(&p), 3);
        assert_eq!(b.find(&Pattern::new("nope", false).unwrap(), 0, true), None);
    }
}
