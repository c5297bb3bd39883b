//! A real OpenSSH server for tests: Debian's sshd on a free 127.0.0.1 port with throwaway host keys,
//! and a throwaway client HOME (`.ssh/config`, `known_hosts`, keys). Killed on drop; can be stopped
//! and started again on the same port.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

pub struct SshdOptions {
    pub stream_local_forwarding: bool,
    /// sshd LogLevel; DEBUG1 logs each forwarded channel (used to prove a ProxyJump went through).
    pub log_level: &'static str,
    /// More sshd_config lines.
    pub extra_config: &'static str,
    /// Password authentication on (for the local accounts scripts/ensure-deps.sh creates).
    pub password_auth: bool,
    /// Keyboard-interactive through PAM instead of the password method (what many servers offer).
    pub keyboard_interactive: bool,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            stream_local_forwarding: true,
            log_level: "ERROR",
            extra_config: "",
            password_auth: false,
            keyboard_interactive: false,
        }
    }
}

pub struct Sshd {
    pub port: u16,
    pub dir: TempDir,
    child: Option<Child>,
}

fn keygen(path: &Path, kind: &str, passphrase: &str, comment: &str) {
    let _ = std::fs::remove_file(path);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", comment, "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// `type base64` of a `.pub` file.
pub fn pub_key(path: &Path) -> String {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    let text = std::fs::read_to_string(PathBuf::from(p)).expect("public key file");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Sshd {
    pub fn start(options: SshdOptions) -> Sshd {
        std::fs::create_dir_all("/run/sshd").expect("privilege separation dir /run/sshd");
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host_ed25519"), "ed25519", "", "host");
        std::fs::write(dir.path().join("authorized_keys"), "").unwrap();
        let mut s = Sshd {
            port: 0,
            dir,
            child: None,
        };
        // Another test may take the same free port between our probe and sshd's bind: try a few.
        for _ in 0..5 {
            s.port = super::free_port();
            s.write_config(&options);
            if s.run() {
                return s;
            }
            s.stop();
        }
        panic!("sshd did not come up: {}", s.log());
    }

    fn write_config(&self, options: &SshdOptions) {
        let d = self.dir.path().display();
        let config = format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM {}\nPermitRootLogin yes\n\
             PasswordAuthentication {}\nKbdInteractiveAuthentication {}\nAllowTcpForwarding yes\n\
             AllowStreamLocalForwarding {}\nMaxStartups 100\nMaxSessions 50\nLogLevel {}\n{}",
            self.port,
            if options.keyboard_interactive {
                "yes"
            } else {
                "no"
            },
            if options.password_auth { "yes" } else { "no" },
            if options.keyboard_interactive {
                "yes"
            } else {
                "no"
            },
            if options.stream_local_forwarding {
                "yes"
            } else {
                "no"
            },
            options.log_level,
            options.extra_config
        );
        std::fs::write(self.dir.path().join("sshd_config"), config).unwrap();
    }

    pub fn host_key_path(&self) -> PathBuf {
        self.dir.path().join("host_ed25519")
    }

    /// The line a client's known_hosts needs for this server.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "[127.0.0.1]:{} {}\n",
            self.port,
            pub_key(&self.host_key_path())
        )
    }

    /// Lets the holder of this key (its `.pub` next to it) log in as root.
    pub fn authorize(&self, key: &Path) {
        let line = format!("{}\n", pub_key(key));
        let path = self.dir.path().join("authorized_keys");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&line);
        std::fs::write(path, text).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Starts sshd; true once it answers with an SSH banner and is still the one running.
    fn run(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts (install openssh-server)");
        self.child = Some(child);
        let port = self.port;
        let up = super::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            use std::io::Read;
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf).is_ok() && &buf[..4] == b"SSH-"
        });
        let alive = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        up && alive
    }

    /// Kills sshd and every session it forked.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Connection children call setsid(): find them by parent id, not by process group.
            // Every sshd of the tree: the monitor sshd forks per connection, and the session
            // sshd under it, which holds the TCP connection, outlives a killed monitor. Only
            // sshd processes: a SIGKILL in the user's shell startup (pyenv's rehash holds a lock
            // file) could leave the next logins waiting on it; the shells end with their session.
            // The listener is stopped first: it then forks no new session while its children
            // are found and killed (a client reconnecting at once got a session forked after the
            // list was read, which outlived the stop). Connections still in its backlog close
            // with its socket.
            let _ = Command::new("kill")
                .args(["-STOP", &c.id().to_string()])
                .status();
            for pid in sshd_descendants(c.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How many connections sshd is serving (its forked children).
    pub fn sessions(&self) -> usize {
        let Some(c) = &self.child else { return 0 };
        let out = Command::new("pgrep")
            .args(["-P", &c.id().to_string()])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0)
    }

    /// A new host key (takes effect on the next start): the server "was reinstalled", or an impostor.
    pub fn new_host_key(&self) {
        keygen(&self.host_key_path(), "ed25519", "", "host");
    }

    /// Freezes (SIGSTOP) every open session, leaving the listener up: a link that goes silent without
    /// a reset, as after a laptop sleep or a Wi-Fi change. `stop`/drop kill them.
    pub fn freeze_sessions(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("pkill")
                .args(["-STOP", "-P", &c.id().to_string()])
                .status();
        }
    }

    /// Freezes (SIGSTOP) sshd whole, its listener and every session: the server unreachable as
    /// behind a cut network (connections are neither answered nor refused) until [`Sshd::thaw_all`].
    pub fn freeze_all(&self) {
        self.signal_all("-STOP");
    }

    /// Lets a frozen sshd go on: the connections queued meanwhile are served.
    pub fn thaw_all(&self) {
        self.signal_all("-CONT");
    }

    fn signal_all(&self, signal: &str) {
        if let Some(c) = &self.child {
            for pid in std::iter::once(c.id()).chain(sshd_descendants(c.id())) {
                let _ = Command::new("kill")
                    .args([signal, &pid.to_string()])
                    .status();
            }
        }
    }

    /// The processes under this sshd (in its sessions, at any depth) whose command line contains
    /// `pattern`, each counted once: a match forked by a match (a subshell of the login shell's
    /// startup files, say) is not listed apart from it.
    pub fn processes(&self, pattern: &str) -> Vec<u32> {
        let all = self.matching(pattern);
        all.iter()
            .filter(|(_, ppid)| !all.iter().any(|m| m.0 == *ppid))
            .map(|m| m.0)
            .collect()
    }

    /// Every (pid, ppid) under this sshd whose command line contains `pattern`.
    fn matching(&self, pattern: &str) -> Vec<(u32, u32)> {
        let Some(c) = &self.child else {
            return Vec::new();
        };
        let out = Command::new("ps")
            .args(["-e", "-o", "pid=,ppid=,args="])
            .output()
            .expect("ps runs");
        let rows: Vec<(u32, u32, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let pid = f.next()?.parse().ok()?;
                let ppid = f.next()?.parse().ok()?;
                Some((pid, ppid, f.collect::<Vec<_>>().join(" ")))
            })
            .collect();
        let mut under = vec![c.id()];
        // Breadth-first down the tree; a tree is at most as deep as the process count.
        let mut i = 0;
        while i < under.len() {
            let parent = under[i];
            under.extend(rows.iter().filter(|r| r.1 == parent).map(|r| r.0));
            i += 1;
        }
        rows.iter()
            .filter(|r| under[1..].contains(&r.0) && r.2.contains(pattern))
            .map(|r| (r.0, r.1))
            .collect()
    }

    /// SIGKILLs the processes under this sshd whose command line contains `pattern` (the
    /// subshells they forked too); how many [`Sshd::processes`] counted.
    pub fn kill_processes(&self, pattern: &str) -> usize {
        let counted = self.processes(pattern).len();
        for (pid, _) in self.matching(pattern) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        counted
    }

    /// Starts it again on the same port with the same keys.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.run(),
            "sshd did not come back on port {}: {}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An sshd with default options and a client HOME whose `id_ed25519` it accepts and whose
/// `known_hosts` trusts it: where most SSH tests start.
pub fn trusted_pair() -> (Sshd, ClientHome) {
    trusted_pair_with(SshdOptions::default())
}

/// [`trusted_pair`] with an sshd started with `options`.
pub fn trusted_pair_with(options: SshdOptions) -> (Sshd, ClientHome) {
    let sshd = Sshd::start(options);
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    (sshd, home)
}

/// A client HOME with `.ssh/` holding a key, `known_hosts` and `config`.
pub struct ClientHome {
    pub dir: TempDir,
}

impl ClientHome {
    /// An empty `.ssh/`, with an unencrypted `id_ed25519` when `with_key`.
    pub fn new(with_key: bool) -> ClientHome {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".ssh")).unwrap();
        let h = ClientHome { dir };
        if with_key {
            h.keygen("id_ed25519", "ed25519", "");
        }
        h
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ssh(&self, name: &str) -> PathBuf {
        self.dir.path().join(".ssh").join(name)
    }

    /// Makes a key pair `~/.ssh/NAME`, returning the private key's path.
    pub fn keygen(&self, name: &str, kind: &str, passphrase: &str) -> PathBuf {
        let p = self.ssh(name);
        keygen(&p, kind, passphrase, "berth-test");
        p
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.ssh("config"), text).unwrap();
    }

    pub fn trust(&self, sshd: &Sshd) {
        let path = self.ssh("known_hosts");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&sshd.known_hosts_line());
        std::fs::write(path, text).unwrap();
    }

    /// `SshOptions` rooted in this home, with no agent and no prompts.
    pub fn options(&self) -> berth::ssh::SshOptions {
        berth::ssh::SshOptions {
            batch: true,
            home: Some(self.path().to_path_buf()),
            ssh_config: Some(self.ssh("config")),
            // The machine's /etc/ssh/ssh_config is not the test's: none unless a test writes one.
            system_config: Some(self.path().join("etc_ssh_config")),
            no_agent: true,
            ..Default::default()
        }
    }
}

/// A throwaway `ssh-agent` listening on a socket in a temp dir; killed on drop.
pub struct Agent {
    pub dir: TempDir,
    pub socket: PathBuf,
    pid: u32,
}

impl Agent {
    pub fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let out = Command::new("ssh-agent")
            .arg("-a")
            .arg(&socket)
            .arg("-s")
            .output()
            .expect("ssh-agent runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let pid = text
            .split("SSH_AGENT_PID=")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("ssh-agent printed no pid: {text}"));
        Agent { dir, socket, pid }
    }

    pub fn add(&self, key: &Path) {
        let st = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ssh-add {}", key.display());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

impl ClientHome {
    /// Writes `Host box` for `sshd`: root, this home's `id_ed25519`, plus `extra` lines.
    pub fn write_box_config(&self, sshd: &Sshd, extra: &str) {
        self.write_config(&format!(
            "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n{extra}",
            sshd.port
        ));
    }

    /// [`ClientHome::write_box_config`], and the alias resolved the way berth does.
    pub fn box_target(&self, sshd: &Sshd, extra: &str) -> berth::target::Target {
        self.write_box_config(sshd, extra);
        let env = berth::target::Environment {
            docker_host: None,
            docker_context: None,
            docker_config_dir: None,
            ssh_config: Some(self.ssh("config")),
        };
        berth::target::resolve_named("box", &berth::config::Config::default(), &env)
            .expect("the alias resolves")
    }
}

/// The sshd processes under `root` (its connections' monitors and their session processes),
/// children first found, at most 256.
fn sshd_descendants(root: u32) -> Vec<u32> {
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    let is_sshd = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim_end().starts_with("sshd"))
    };
    let mut found = Vec::new();
    let mut queue = children(root);
    while let Some(pid) = queue.pop() {
        if found.len() >= 256 {
            break;
        }
        if is_sshd(pid) {
            found.push(pid);
            queue.extend(children(pid));
        }
    }
    found
}

/// What berth reads of this machine for a test: only `home`'s ssh config, no engine variables.
pub fn env_for(home: &ClientHome) -> berth::target::Environment {
    berth::target::Environment {
        docker_host: None,
        docker_context: None,
        docker_config_dir: None,
        ssh_config: Some(home.ssh("config")),
    }
}

/// `host` as the user would name it (`-s host`): user and port from the ssh config.
pub fn spec(host: &str) -> berth::target::SshSpec {
    berth::target::SshSpec {
        user: None,
        host: host.into(),
        port: None,
        socket: None,
    }
}

/// The berth binary with `home` as HOME (its ssh config and keys, no agent) and `dir` holding its
/// `config.toml` and data dir (`dir/data`); stdin not a terminal; not started.
pub fn berth_over(home: &ClientHome, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    c.arg("--config")
        .arg(dir.join("config.toml"))
        .args(args)
        .env("HOME", home.path())
        .env(
            "BERTH_SSH_SYSTEM_CONFIG",
            home.path().join("etc_ssh_config"),
        )
        .env("SSH_AUTH_SOCK", "")
        .env("BERTH_DATA_DIR", dir.join("data"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null());
    c
}
