//! Speed of the SSH transport over loopback, against the local socket. Ignored by `cargo test`: run it
//! with `scripts/bench-ssh.sh`. Prints figures; asserts only that the work was done.

use crate::common;

use std::time::{Duration, Instant};

use berth::engine;
use berth::ssh;
use berth::target::{Endpoint, SshSpec, Target};
use common::Scope;
use common::sshd::{ClientHome, Sshd, SshdOptions};
use futures::StreamExt;

const PINGS: usize = 200;
const LOG_LINES: usize = 400_000;
const CONTAINERS: usize = 6;

fn stats(mut d: Vec<Duration>) -> String {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let mean = d.iter().sum::<Duration>() / d.len() as u32;
    format!(
        "mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        ms(mean),
        ms(d[d.len() / 2]),
        ms(d[d.len() * 95 / 100]),
        ms(d[d.len() - 1])
    )
}

async fn pings(docker: &bollard::Docker) -> Vec<Duration> {
    let mut out = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let t = Instant::now();
        docker.ping().await.expect("ping");
        out.push(t.elapsed());
    }
    out
}

/// Reads the whole log of `id` once; returns bytes and seconds.
async fn read_logs(docker: &bollard::Docker, id: &str) -> (usize, f64) {
    let t = Instant::now();
    let mut logs = docker.logs(
        id,
        Some(bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    let mut bytes = 0;
    while let Some(chunk) = logs.next().await {
        bytes += chunk.expect("log chunk").into_bytes().len();
    }
    (bytes, t.elapsed().as_secs_f64())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run scripts/bench-ssh.sh"]
async fn bench_ssh_transport() {
    // A small server's worth of containers for the connect-to-list figure.
    let fleet = Scope::new("sshbenchc");
    for i in 0..CONTAINERS {
        fleet.run(&format!("c{i}"), &["berth-test/web:v1"]);
    }
    for (label, opts) in [
        ("streamlocal", SshdOptions::default()),
        (
            "dial-stdio",
            SshdOptions {
                stream_local_forwarding: false,
                ..Default::default()
            },
        ),
    ] {
        let sshd = Sshd::start(opts);
        let home = ClientHome::new(true);
        sshd.authorize(&home.ssh("id_ed25519"));
        home.trust(&sshd);
        let spec = SshSpec {
            user: Some("root".into()),
            host: "127.0.0.1".into(),
            port: Some(sshd.port),
            socket: None,
        };
        let target = Target::from_endpoint("bench", Endpoint::Ssh(spec.clone()));

        let t = Instant::now();
        let session = ssh::establish(&spec, &target, &home.options())
            .await
            .expect("establish");
        let ssh_ms = t.elapsed().as_secs_f64() * 1000.0;
        session.probe_docker().await.expect("probe");
        println!(
            "[{label}] ssh handshake + auth: {ssh_ms:.1} ms; + socket probe: {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        let t = Instant::now();
        let session = ssh::connect(&spec, &target, &home.options())
            .await
            .expect("connect");
        let docker = session.docker();
        docker.ping().await.unwrap();
        println!(
            "[{label}] connect to first /_ping answer: {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        let t = Instant::now();
        let eng = engine::connect(&target, &home.options())
            .await
            .expect("engine");
        println!(
            "[{label}] engine::connect (ssh + /version): {:.1} ms ({})",
            t.elapsed().as_secs_f64() * 1000.0,
            eng.transport
        );
        // What the console waits for before the list shows: connect, then every container listed
        // and inspected (the watcher's first snapshot). Five fresh connections, median.
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = Instant::now();
            let eng = engine::connect(&target, &home.options())
                .await
                .expect("engine");
            n = eng.containers().await.expect("list").len();
            times.push(t.elapsed());
        }
        assert!(n >= CONTAINERS, "the bench's containers are listed");
        println!(
            "[{label}] connect to the container list ({n} containers inspected), 5 connects: {}",
            stats(times)
        );
        // What each new exec channel costs on the server before its command runs: the login
        // shell and its startup files (dial-stdio pays it once per connection).
        let mut shells = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let out = session.exec("true").await.expect("exec true");
            assert_eq!(out.exit_code, Some(0), "`true` ran");
            shells.push(t.elapsed());
        }
        println!(
            "[{label}] exec of `true` (the server's login shell), 5 times: {}",
            stats(shells)
        );
        println!(
            "[{label}] /_ping x{PINGS} over ssh: {}",
            stats(pings(&docker).await)
        );
        if let Ok(rtt) = session.ping().await {
            println!(
                "[{label}] ssh keepalive round trip: {:.2} ms",
                rtt.as_secs_f64() * 1000.0
            );
        }
    }

    let local = engine::docker_for(&Endpoint::Unix(berth::target::DEFAULT_SOCKET.into()))
        .unwrap()
        .0;
    println!(
        "[local] /_ping x{PINGS} over the unix socket: {}",
        stats(pings(&local).await)
    );

    // One log stream: a container that wrote LOG_LINES lines, read whole, locally and through ssh.
    let scope = Scope::new("sshbench");
    let cmd = format!(
        "yes 'seq=0 level=INFO msg=a line of about eighty characters for the throughput test' | head -n {LOG_LINES}"
    );
    let id = scope.run("logs", &["berth-test/web:v1", "sh", "-c", &cmd]);
    common::wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        common::docker(&["inspect", "-f", "{{.State.Running}}", &id]) == "false"
    });
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    let spec = SshSpec {
        user: Some("root".into()),
        host: "127.0.0.1".into(),
        port: Some(sshd.port),
        socket: None,
    };
    let session = ssh::connect(
        &spec,
        &Target::from_endpoint("b", Endpoint::Ssh(spec.clone())),
        &home.options(),
    )
    .await
    .unwrap();
    let remote = session.docker();
    // Alternate, best of three each: the first read also warms the engine's page cache.
    let (mut best_local, mut best_ssh) = (f64::MAX, f64::MAX);
    let mut size = 0;
    for _ in 0..3 {
        let (bytes, secs) = read_logs(&local, &id).await;
        best_local = best_local.min(secs);
        let (b2, secs2) = read_logs(&remote, &id).await;
        best_ssh = best_ssh.min(secs2);
        assert!(bytes > LOG_LINES * 50);
        assert_eq!(b2, bytes, "the same log through the tunnel");
        size = bytes;
    }
    let mib = size as f64 / 1048576.0;
    println!(
        "[local] log stream: {mib:.1} MiB in {best_local:.2} s = {:.1} MiB/s",
        mib / best_local
    );
    println!(
        "[ssh streamlocal] log stream: {mib:.1} MiB in {best_ssh:.2} s = {:.1} MiB/s",
        mib / best_ssh
    );
}
