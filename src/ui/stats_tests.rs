//! Snapshots of the stats columns, the stats pane and the host view, fed through `update` with
//! fixed readings so the whole path from a batch to the screen is covered.

use std::time::Duration;

use super::tests::{press, render, shop};
use crate::action::{Action, EngineEvent};
use crate::app::App;
use crate::ssh::health::{CpuTimes, DiskUse, HostHealth};
use crate::stats::df::{DiskUsage, UsageRow};
use crate::stats::host::HostReport;
use crate::stats::{Method, Sample, StatsBatch};

const MIB: u64 = 1024 * 1024;

/// `n` readings two seconds apart for every running container: a busy one, a wave, a quiet one.
fn feed_stats(app: &mut App, n: u64) {
    let session = app.session;
    let running: Vec<String> = app
        .containers
        .values()
        .filter(|c| c.state.is_up())
        .map(|c| c.id.clone())
        .collect();
    let mut cpu = vec![0u64; running.len()];
    let mut net = vec![0u64; running.len()];
    let mut io = vec![0u64; running.len()];
    for step in 0..n {
        let samples = running
            .iter()
            .enumerate()
            .map(|(k, id)| {
                // CPU per step, in ms over 2 s: container 0 steady ~60 %, the others a wave.
                let busy_ms = match k {
                    0 => 1200,
                    _ => (((step as f64 / 4.0 + k as f64).sin() + 1.0) * 200.0 * k as f64) as u64,
                };
                cpu[k] += busy_ms * 1_000_000;
                net[k] += (step % 7 + 1) * 3000 * (k as u64 + 1);
                io[k] += if step % 5 == 0 { 64 * 1024 } else { 0 };
                Sample {
                    id: id.clone(),
                    at: Duration::from_secs(1000 + step * 2),
                    cpu_ns: Some(cpu[k]),
                    mem_used: Some((40 + 10 * k as u64 + step % 9) * MIB),
                    mem_limit: Some(if k == 0 { 64 * MIB } else { 2048 * MIB }),
                    net_rx: Some(net[k]),
                    net_tx: Some(net[k] / 3),
                    blk_read: Some(io[k]),
                    blk_write: Some(io[k] * 2),
                    pids: Some(k as u64 + 1),
                }
            })
            .collect();
        app.update(Action::Engine {
            session,
            event: EngineEvent::Stats(StatsBatch {
                method: Method::Cgroup {
                    detail: "cgroup v2 (systemd), read from /sys/fs/cgroup".into(),
                },
                samples,
            }),
        });
    }
}

pub(super) fn feed_host(app: &mut App) {
    let session = app.session;
    for (i, cpu) in [12.0, 30.0, 55.0, 41.0, 23.0, 18.0].into_iter().enumerate() {
        app.update(Action::Engine {
            session,
            event: EngineEvent::Host(Ok(HostReport {
                health: HostHealth {
                    load: [0.52, 0.41, 0.30],
                    mem_total: 8 * 1024 * MIB,
                    mem_available: (5 * 1024 - i as u64 * 100) * MIB,
                    disks: vec![
                        DiskUse {
                            mount: "/".into(),
                            total: 50 * 1024 * MIB,
                            available: 20 * 1024 * MIB,
                            used_percent: 60,
                        },
                        DiskUse {
                            mount: "/var/lib/docker".into(),
                            total: 100 * 1024 * MIB,
                            available: 7 * 1024 * MIB,
                            used_percent: 93,
                        },
                    ],
                    cpu: Some(CpuTimes::default()),
                    cpus: 4,
                },
                cpu_percent: Some(cpu),
                source: "ssh exec".into(),
            })),
        });
    }
}

fn disk_usage() -> DiskUsage {
    DiskUsage {
        images: UsageRow {
            total: 12,
            active: 5,
            size: 3 * 1024 * MIB,
            reclaimable: 1200 * MIB,
        },
        containers: UsageRow {
            total: 7,
            active: 4,
            size: 35 * MIB,
            reclaimable: 2 * MIB,
        },
        volumes: UsageRow {
            total: 3,
            active: 2,
            size: 900 * MIB,
            reclaimable: 0,
        },
        build_cache: UsageRow::default(),
        volume_sizes: Default::default(),
    }
}

#[test]
fn list_with_stats() {
    let mut app = shop(200, 16);
    feed_stats(&mut app, 3);
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("60.0%"), "the busy container's CPU:\n{text}");
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn stats_pane_with_charts() {
    let mut app = shop(160, 34);
    feed_stats(&mut app, 160);
    // db-1, the first running container, is selected.
    press(&mut app, "c");
    assert!(app.areas().stats.is_some());
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn stats_pane_narrow_and_waiting() {
    let mut app = shop(100, 30);
    press(&mut app, "c");
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("reading…"), "{text}");
    assert!(text.contains("waiting for the first reading"), "{text}");
    feed_stats(&mut app, 30);
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn host_view() {
    let mut app = shop(120, 26);
    feed_stats(&mut app, 2);
    feed_host(&mut app);
    press(&mut app, "H");
    assert_eq!(app.view, crate::app::View::Host);
    let loading = format!("{}", render(&app).backend());
    assert!(loading.contains("asking the engine…"), "{loading}");
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::DiskUsage(Ok(disk_usage())),
    });
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn host_view_errors_are_one_line() {
    let mut app = shop(100, 20);
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Host(Err("the engine's host is out of reach over tcp".into())),
    });
    press(&mut app, "H");
    app.update(Action::Engine {
        session,
        event: EngineEvent::DiskUsage(Err("/system/df: HTTP/1.1 500 boom".into())),
    });
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("out of reach over tcp"), "{text}");
    assert!(text.contains("/system/df: HTTP/1.1 500 boom"), "{text}");
}

#[test]
fn header_shows_the_host_summary() {
    let mut app = shop(160, 12);
    feed_host(&mut app);
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("host cpu 18% · mem 44% · disk 93%"), "{text}");
}

/// While the link is lost the stats pane and the host view say their numbers are old.
#[test]
fn stats_pane_and_host_view_say_stale() {
    let mut app = shop(160, 34);
    feed_stats(&mut app, 4);
    feed_host(&mut app);
    press(&mut app, "c");
    let fresh = format!("{}", render(&app).backend());
    assert!(!fresh.contains("◌ stale"), "{fresh}");
    let session = app.session;
    app.update(Action::Engine {
        session,
        event: EngineEvent::Link(crate::ssh::LinkStatus::Unanswered {
            silent: Duration::from_secs(3),
        }),
    });
    let text = format!("{}", render(&app).backend());
    assert!(text.contains("◌ stale · last readings"), "{text}");
    press(&mut app, "H");
    let text = format!("{}", render(&app).backend());
    assert!(
        text.contains("host ◌ stale · last readings"),
        "the host view says so too: {text}"
    );
}
