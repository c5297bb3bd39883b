//! Engine log frames to lines: lines split over frames joined, long ones capped, and what a
//! resumed stream replays dropped (no gap, no duplicate).

use bollard::container::LogOutput;

use super::line::{LogLine, StreamKind, split_timestamp};
use super::sanitize::MAX_LINE_BYTES;

/// Remembers where a container's log is, to resume it without gap or duplicate. Kept per stream:
/// the engine copies stdout and stderr separately, so a stderr line can reach the log (and us)
/// before a stdout line stamped a moment earlier. Within one stream timestamps only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    streams: [StreamResume; 2],
}

impl Resume {
    /// Whether a line of this stream with this timestamp is new; records it when it is.
    pub fn accept(&mut self, kind: StreamKind, ts: i64) -> bool {
        self.streams[kind.index()].accept(ts)
    }

    /// Called before a re-open: the replay starts at or before the last timestamps.
    pub fn reopen(&mut self) {
        for s in &mut self.streams {
            s.reopen();
        }
    }

    /// Whole seconds to ask the engine for (its `since` has second precision in API 1.41 queries
    /// as bollard sends them): the older stream's last line, so neither misses a line; the replay
    /// is dropped by [`Resume::accept`].
    pub fn since_secs(&self) -> Option<i64> {
        self.streams
            .iter()
            .filter_map(|s| s.last_ts)
            .min()
            .map(|t| t.div_euclid(1_000_000_000))
    }

    /// The newest timestamp seen on either stream.
    pub fn last_ts(&self) -> Option<i64> {
        self.streams.iter().filter_map(|s| s.last_ts).max()
    }
}

/// One stream's resume point: the last timestamp delivered and how many lines carried exactly it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct StreamResume {
    last_ts: Option<i64>,
    at_last: usize,
    /// Lines at `last_ts` still to be skipped in a replay after a re-open.
    skip: usize,
}

impl StreamResume {
    /// Whether a line with this timestamp is new; records it when it is.
    pub fn accept(&mut self, ts: i64) -> bool {
        match self.last_ts {
            Some(last) if ts < last => false,
            Some(last) if ts == last => {
                if self.skip > 0 {
                    self.skip -= 1;
                    false
                } else {
                    self.at_last += 1;
                    true
                }
            }
            _ => {
                self.last_ts = Some(ts);
                self.at_last = 1;
                self.skip = 0;
                true
            }
        }
    }

    fn reopen(&mut self) {
        self.skip = self.at_last;
    }
}

/// A line whose frames have not all arrived (the engine splits lines over 16 KiB).
struct Partial {
    ts: i64,
    bytes: Vec<u8>,
    cut: usize,
}

/// Turns engine frames into lines, dropping what a resume already delivered.
pub struct FrameParser {
    source: u16,
    partial: [Option<Partial>; 2],
    pub resume: Resume,
}

impl FrameParser {
    pub fn new(source: u16) -> FrameParser {
        FrameParser {
            source,
            partial: [None, None],
            resume: Resume::default(),
        }
    }

    /// A stream broke: a half line is dropped (the replay sends it whole) and the replay's lines
    /// up to the last delivered one are skipped.
    pub fn reopen(&mut self) {
        self.partial = [None, None];
        self.resume.reopen();
    }

    pub fn frame(&mut self, kind: StreamKind, frame: &[u8], out: &mut Vec<LogLine>) {
        let slot = kind.index();
        let (ts, rest) = split_timestamp(frame);
        let ts = ts.or(self.resume.last_ts()).unwrap_or(0);
        let (body, complete) = match rest.strip_suffix(b"\n") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        if let Some(p) = &mut self.partial[slot] {
            let room = MAX_LINE_BYTES.saturating_sub(p.bytes.len());
            let take = room.min(body.len());
            p.bytes.extend_from_slice(&body[..take]);
            p.cut += body.len() - take;
            if complete && let Some(p) = self.partial[slot].take() {
                // The line counts as written when it is complete: that keeps the resume's
                // timestamps increasing when stdout lines come in between.
                self.emit(ts.max(p.ts), kind, &p.bytes, p.cut, out);
            }
            return;
        }
        if complete {
            self.emit(ts, kind, body, 0, out);
        } else {
            let take = body.len().min(MAX_LINE_BYTES);
            self.partial[slot] = Some(Partial {
                ts,
                bytes: body[..take].to_vec(),
                cut: body.len() - take,
            });
        }
    }

    fn emit(&mut self, ts: i64, kind: StreamKind, body: &[u8], cut: usize, out: &mut Vec<LogLine>) {
        if self.resume.accept(kind, ts) {
            out.push(LogLine::new(ts, self.source, kind, body, cut));
        }
    }

    /// At the end of a finished (not followed) stream, a last line without newline still counts.
    pub fn finish(&mut self, out: &mut Vec<LogLine>) {
        for kind in StreamKind::ALL {
            if let Some(p) = self.partial[kind.index()].take() {
                self.emit(p.ts, kind, &p.bytes, p.cut, out);
            }
        }
    }
}

pub(super) fn frame_of(out: &LogOutput) -> (StreamKind, &[u8]) {
    match out {
        LogOutput::StdErr { message } => (StreamKind::Stderr, message),
        LogOutput::StdOut { message }
        | LogOutput::Console { message }
        | LogOutput::StdIn { message } => (StreamKind::Stdout, message),
    }
}
