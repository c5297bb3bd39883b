//! Log streaming: resume without replay, frames to lines, long lines capped, sources merged in time order, a lagging source bounded.

use super::*;
use crate::logs::frames::Resume;
use crate::logs::line::StreamKind;
use crate::logs::sanitize::MAX_LINE_BYTES;

fn ts(s: &str) -> i64 {
    super::super::line::parse_ts(s.as_bytes()).unwrap()
}

#[test]
fn resume_drops_the_replay_exactly() {
    use StreamKind::{Stderr as E, Stdout as O};
    let mut r = Resume::default();
    let a = ts("2026-11-22T03:00:00.000000001Z");
    let b = ts("2026-11-22T03:00:00.000000002Z");
    let c = ts("2026-11-22T03:00:01.000000000Z");
    assert!(r.accept(O, a));
    assert!(r.accept(O, b));
    assert!(r.accept(O, b), "two lines may share a timestamp");
    r.reopen();
    assert_eq!(r.since_secs(), Some(a / 1_000_000_000));
    // The replay from the whole second: a, b, b again, then one new b and c.
    assert!(!r.accept(O, a));
    assert!(!r.accept(O, b));
    assert!(!r.accept(O, b));
    assert!(r.accept(O, b), "a third line at the same time is new");
    assert!(r.accept(O, c));
    assert!(!r.accept(O, b), "older than the last: replayed");
    assert!(r.accept(E, a), "stderr has its own resume point");
}

#[test]
fn stderr_ahead_of_stdout_loses_nothing() {
    use StreamKind::{Stderr as E, Stdout as O};
    // The engine's stderr copier wrote its line before the stdout one stamped earlier.
    let mut r = Resume::default();
    assert!(r.accept(O, 10));
    assert!(r.accept(E, 30));
    assert!(
        r.accept(O, 20),
        "an earlier stdout line after a later stderr one is new"
    );
    r.reopen();
    assert_eq!(r.since_secs(), Some(0));
    // Replay: everything again, plus what came during the outage.
    for (k, t, new) in [
        (O, 10, false),
        (O, 20, false),
        (E, 30, false),
        (O, 25, true),
        (E, 35, true),
    ] {
        assert_eq!(r.accept(k, t), new, "{k:?} {t}");
    }
}

#[test]
fn frames_become_lines_and_long_lines_are_joined() {
    let mut p = FrameParser::new(3);
    let mut out = Vec::new();
    p.frame(
        StreamKind::Stdout,
        b"2026-11-22T03:00:00.000000001Z hello\n",
        &mut out,
    );
    p.frame(
        StreamKind::Stderr,
        b"2026-11-22T03:00:00.000000002Z part one ",
        &mut out,
    );
    p.frame(
        StreamKind::Stdout,
        b"2026-11-22T03:00:00.000000003Z between\n",
        &mut out,
    );
    p.frame(
        StreamKind::Stderr,
        b"2026-11-22T03:00:00.000000004Z part two\n",
        &mut out,
    );
    let texts: Vec<&str> = out.iter().map(|l| &*l.text).collect();
    assert_eq!(texts, vec!["hello", "between", "part one part two"]);
    assert_eq!(out[2].stream, StreamKind::Stderr);
    assert_eq!(out[2].ts, ts("2026-11-22T03:00:00.000000004Z"));
    assert_eq!(out[0].source, 3);
}

#[test]
fn a_huge_line_is_capped_while_it_arrives() {
    let mut p = FrameParser::new(0);
    let mut out = Vec::new();
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..64 {
        let mut f = b"2026-11-22T03:00:00.000000001Z ".to_vec();
        f.extend_from_slice(&chunk);
        p.frame(StreamKind::Stdout, &f, &mut out);
    }
    p.frame(
        StreamKind::Stdout,
        b"2026-11-22T03:00:00.000000001Z \n",
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert!(out[0].text.len() < MAX_LINE_BYTES + 64);
    assert!(
        out[0]
            .text
            .ends_with(&format!("({} bytes cut)", (1 << 20) - MAX_LINE_BYTES))
    );
}

fn line(source: u16, t: i64) -> LogLine {
    LogLine::new(
        t,
        source,
        StreamKind::Stdout,
        format!("{source}@{t}").as_bytes(),
        0,
    )
}

#[test]
fn merger_orders_by_timestamp_within_the_window() {
    const S: i64 = 1_000_000_000;
    let ts = |m: &mut Merger, at: Instant| -> Vec<i64> {
        m.flush(at, false).iter().map(|l| l.ts / S).collect()
    };
    let w = Duration::from_millis(100);
    let mut m = Merger::new(2, Some(w));
    let t0 = Instant::now();
    m.add(0, vec![line(0, 10 * S), line(0, 30 * S)], t0);
    // Source 1 has sent nothing yet: nothing can go out before the window.
    assert!(m.flush(t0, false).is_empty());
    m.add(1, vec![line(1, 20 * S)], t0 + Duration::from_millis(10));
    // Watermark is 20 s (source 1's newest): 10 goes; 20 waits out the skew; 30 waits.
    assert_eq!(ts(&mut m, t0 + Duration::from_millis(10)), vec![10]);
    // Source 1 goes quiet: the rest goes after the window, in order.
    assert!(m.flush(t0 + Duration::from_millis(50), false).is_empty());
    assert_eq!(ts(&mut m, t0 + Duration::from_millis(120)), vec![20, 30]);
    // A finished source does not hold the watermark back.
    m.add(0, vec![line(0, 40 * S)], t0);
    m.done[1] = true;
    assert!(m.flush(t0, false).is_empty());
    m.add(0, vec![line(0, 41 * S)], t0);
    assert_eq!(ts(&mut m, t0), vec![40]);
    assert_eq!(m.flush(t0, true).len(), 1, "the end flushes everything");
}

#[test]
fn a_line_late_within_its_container_is_still_merged_in_order() {
    let mut m = Merger::new(2, None);
    let t0 = Instant::now();
    // Source 0's stderr line at 1.030 s came before its stdout line at 1.020 s.
    m.add(0, vec![line(0, 1_000_000_000), line(0, 1_030_000_000)], t0);
    m.add(1, vec![line(1, 1_100_000_000)], t0);
    assert!(m.flush(t0, false).is_empty(), "too close to the watermark");
    m.add(0, vec![line(0, 1_020_000_000), line(0, 1_200_000_000)], t0);
    let out: Vec<i64> = m.flush(t0, false).iter().map(|l| l.ts).collect();
    assert_eq!(out, vec![1_000_000_000, 1_020_000_000, 1_030_000_000]);
    let rest: Vec<i64> = m.flush(t0, true).iter().map(|l| l.ts).collect();
    assert_eq!(rest, vec![1_100_000_000, 1_200_000_000]);
}

#[test]
fn a_lagging_source_cannot_pile_up_lines() {
    let mut m = Merger::with_cap(2, None, 4, usize::MAX);
    let t0 = Instant::now();
    // Source 1 sent nothing: the watermark holds everything, up to the cap.
    m.add(0, (1..=6).rev().map(|t| line(0, t)).collect(), t0);
    let out: Vec<i64> = m.flush(t0, false).iter().map(|l| l.ts).collect();
    assert_eq!(out, vec![1, 2], "the oldest go out, in order");
    let rest: Vec<i64> = m.flush(t0, true).iter().map(|l| l.ts).collect();
    assert_eq!(rest, vec![3, 4, 5, 6]);
}

#[test]
fn long_lines_of_a_lagging_source_are_bounded_by_bytes() {
    let mut m = Merger::new(2, None);
    let t0 = Instant::now();
    // 64 KiB lines: far below the line cap, the byte cap is what holds.
    let big = |t: i64| LogLine::new(t, 0, StreamKind::Stdout, &vec![b'x'; MAX_LINE_BYTES], 0);
    let n = (crate::logs::merge::MAX_PENDING_BYTES / MAX_LINE_BYTES) as i64 * 2;
    let mut out = 0;
    for t in 1..=n {
        m.add(0, vec![big(t)], t0);
        out += m.flush(t0, false).len();
        assert!(
            m.pending_bytes() <= crate::logs::merge::MAX_PENDING_BYTES,
            "at line {t}"
        );
    }
    assert!(out >= n as usize / 2, "the oldest went out: {out} of {n}");
}

#[test]
fn batches_are_bounded_by_bytes() {
    let big = LogLine::new(1, 0, StreamKind::Stdout, &vec![b'x'; MAX_LINE_BYTES], 0);
    let lines: Vec<LogLine> = (0..40).map(|_| big.clone()).collect();
    let parts = by_bytes(lines);
    assert_eq!(
        parts.iter().map(Vec::len).sum::<usize>(),
        40,
        "no line lost"
    );
    for p in &parts {
        let bytes: usize = p.iter().map(LogLine::footprint).sum();
        assert!(p.len() == 1 || bytes <= BATCH_BYTES, "{bytes}");
    }
    assert_eq!(by_bytes(vec![line(0, 1), line(0, 2)]).len(), 1);
}

#[test]
fn tail_parses() {
    assert_eq!("all".parse::<Tail>(), Ok(Tail::All));
    assert_eq!("20".parse::<Tail>(), Ok(Tail::Lines(20)));
    assert!("x".parse::<Tail>().unwrap_err().starts_with("bad tail"));
    let r = Retry::default();
    assert_eq!(r.delay(1), Duration::from_millis(200));
    assert_eq!(r.delay(30), r.max);
}
