//! Benchmarks against OpenSSH in the same run: `berth -s HOST ps` over streamlocal and over
//! dial-stdio next to `ssh HOST docker ps` (median of 5), and `berth forward` throughput next to
//! `ssh -L` on the same file. Run: `scripts/bench-ssh.sh [--release]`.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Scope;
use common::sshd::{ClientHome, Sshd, SshdOptions};

const RUNS: usize = 5;
const FILE_MIB: usize = 256;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn ssh_args(home: &ClientHome) -> Vec<String> {
    [
        "-F".to_string(),
        home.ssh("config").display().to_string(),
        "-i".into(),
        home.ssh("id_ed25519").display().to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", home.ssh("known_hosts").display()),
        "-o".into(),
        "BatchMode=yes".into(),
    ]
    .into()
}

fn berth(home: &ClientHome) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    common::isolate(&mut c, home.path());
    c
}

/// Reads all of `GET /f` from a loopback port; MB/s.
fn download(port: u16) -> f64 {
    let t = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(s, "GET /f HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0usize;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("read: {e}"),
        }
    }
    assert!(n >= FILE_MIB << 20, "the whole file came: {n} bytes");
    (n as f64 / 1e6) / t.elapsed().as_secs_f64()
}

#[test]
#[ignore = "benchmark"]
fn bench_ps_and_forward_next_to_openssh() {
    let scope = Scope::new("psbench");
    for i in 0..10 {
        scope.run(&format!("c{i}"), &["berth-test/web:v1"]);
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
        home.write_box_config(&sshd, "");
        let (mut b, mut s) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let t = Instant::now();
            let out = berth(&home).args(["-s", "box", "ps"]).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            b.push(t.elapsed());
            let t = Instant::now();
            let out = Command::new("ssh")
                .args(ssh_args(&home))
                .args(["box", "docker", "ps"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            s.push(t.elapsed());
        }
        let (bm, sm) = (median(b), median(s));
        println!(
            "[{label}] berth -s box ps: {bm:.0} ms; ssh box docker ps: {sm:.0} ms (median of {RUNS}); ratio {:.2}",
            bm / sm
        );
    }

    // Forward throughput: one file served by busybox httpd in a container with no published port.
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    home.write_box_config(&sshd, "");
    let cmd = format!(
        "dd if=/dev/zero of=/tmp/f bs=1048576 count={FILE_MIB} 2>/dev/null && touch /tmp/ready && exec busybox httpd -f -p 9000 -h /tmp"
    );
    scope.run("files", &["berth-test/web:v1", "sh", "-c", &cmd]);
    let name = scope.name("files");
    let ip = common::docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &name]);
    assert!(
        common::wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            common::docker_try(&["exec", &name, "test", "-f", "/tmp/ready"]).0
        }),
        "the file server is ready"
    );

    let berth_port = common::free_port();
    let mut fwd = berth(&home)
        .args([
            "-s",
            "box",
            "forward",
            &name,
            "9000",
            "--local",
            &berth_port.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(fwd.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("Forwarding"), "berth forward: {line}");
    let ssh_port = common::free_port();
    let mut tunnel = Command::new("ssh")
        .args(ssh_args(&home))
        .args([
            "-N",
            "-L",
            &format!("127.0.0.1:{ssh_port}:{ip}:9000"),
            "box",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        std::net::TcpStream::connect(("127.0.0.1", ssh_port)).is_ok()
    });
    let (mut via_berth, mut via_ssh) = (0f64, 0f64);
    for _ in 0..3 {
        via_berth = via_berth.max(download(berth_port));
        via_ssh = via_ssh.max(download(ssh_port));
    }
    println!(
        "[forward] {FILE_MIB} MiB over loopback sshd, best of 3: berth forward {via_berth:.0} MB/s; ssh -L {via_ssh:.0} MB/s"
    );
    let _ = fwd.kill();
    let _ = fwd.wait();
    let _ = tunnel.kill();
    let _ = tunnel.wait();
}
