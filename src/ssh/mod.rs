//! SSH: a russh session to a server, and the Docker API carried over it (streamlocal channels to the
//! remote socket, or `docker system dial-stdio` when the server refuses unix-socket forwarding).
//!
//! One session per server, kept alive and re-established in the background; the bollard `Docker`
//! handed out keeps working across reconnects (a request made while the link is down waits for it).

mod auth;
// The one ssh_config reader lives outside `ssh` so target resolution can list hosts with it.
pub use crate::ssh_config as config;
pub mod health;
pub mod known_hosts;
pub mod prompt;
mod transport;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use russh::client::{self, Handle};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use tokio::sync::{Mutex, Semaphore, watch};

use crate::target::{SshSpec, Target};
pub use known_hosts::HostKeyStatus;
pub use prompt::{
    ChannelPrompter, HostKeyDecision, PendingPrompt, PromptAnswer, PromptRequest, Prompter, Secret,
    TtyPrompter,
};

/// A byte stream over an SSH channel (streamlocal, dial-stdio or direct-tcpip).
pub type SshStream = russh::ChannelStream<russh::client::Msg>;

const DEFAULT_ALIVE_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a request waits for a lost link to come back before it fails.
const RECONNECT_WINDOW: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// sshd refuses channel opens at once when the remote socket's backlog is full: open a few at a time.
const MAX_CONCURRENT_OPENS: usize = 8;
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
const EXEC_MAX_OUTPUT: usize = 16 << 20;

/// How the SSH layer finds its files and may interact with the user.
#[derive(Clone, Default)]
pub struct SshOptions {
    /// Never prompt (CLI without a tty): fail with the fingerprint / key path in the message.
    pub batch: bool,
    /// Who answers passphrase, password and unknown-host questions; `None` means the tty (unless batch).
    pub prompter: Option<Arc<dyn Prompter>>,
    /// Home directory for `~` in the ssh config and the default key/known_hosts files; `None`: the real one.
    pub home: Option<PathBuf>,
    /// The ssh config file; `None`: `<home>/.ssh/config`.
    pub ssh_config: Option<PathBuf>,
    /// The agent socket; `None`: `IdentityAgent` from the ssh config, else `SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Use no agent at all (tests, or a user who wants only key files).
    pub no_agent: bool,
}

impl std::fmt::Debug for SshOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshOptions")
            .field("batch", &self.batch)
            .field("prompter", &self.prompter.as_ref().map(|_| "…"))
            .field("home", &self.home)
            .field("ssh_config", &self.ssh_config)
            .field("agent_socket", &self.agent_socket)
            .field("no_agent", &self.no_agent)
            .finish()
    }
}

impl SshOptions {
    pub fn home_dir(&self) -> PathBuf {
        self.home
            .clone()
            .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    pub fn ssh_config_path(&self) -> PathBuf {
        self.ssh_config
            .clone()
            .unwrap_or_else(|| self.home_dir().join(".ssh").join("config"))
    }

    fn prompter(&self) -> Option<Arc<dyn Prompter>> {
        if self.batch {
            return None;
        }
        Some(
            self.prompter
                .clone()
                .unwrap_or_else(|| Arc::new(TtyPrompter)),
        )
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error(
        "cannot resolve host '{host}' ({reason}): check the name, or give it a HostName in ~/.ssh/config"
    )]
    Resolve { host: String, reason: String },
    #[error(
        "cannot connect to {addr}: {reason}; is sshd running there and is the port right (Port in ~/.ssh/config, or host:port)?"
    )]
    Connect { addr: String, reason: String },
    #[error("{what} timed out after {secs} s: the server or the network does not answer")]
    Timeout { what: String, secs: u64 },
    #[error("ssh handshake with {addr} failed: {reason}")]
    Handshake { addr: String, reason: String },
    #[error(
        "REMOTE HOST IDENTIFICATION HAS CHANGED for {host}: the server now offers {key_type} key {fingerprint}; \
         offending key in {file}:{line}. Someone may be intercepting the connection. If the server was really \
         reinstalled, remove that line (`ssh-keygen -R {}`) and connect again",
        known_hosts::shell_word(host)
    )]
    HostKeyChanged {
        host: String,
        key_type: String,
        fingerprint: String,
        file: String,
        line: usize,
    },
    #[error(
        "host key {fingerprint} of {host} is marked @revoked in {file}:{line}: refusing to connect"
    )]
    HostKeyRevoked {
        host: String,
        fingerprint: String,
        file: String,
        line: usize,
    },
    #[error(
        "host key of {host} is not known ({key_type} {fingerprint}) and {why}; check the fingerprint with the \
         server's admin, then add it with `{login}` once or `ssh-keyscan` into ~/.ssh/known_hosts"
    )]
    HostKeyUnknown {
        host: String,
        /// The ssh command that connects to the same place, to paste (`ssh -p 2222 root@10.0.0.5`).
        login: String,
        key_type: String,
        fingerprint: String,
        why: String,
    },
    #[error(
        "permission denied for {user}@{host} (tried: {tried}): check the user name (User in ~/.ssh/config) and \
         that your key is in the server's ~/.ssh/authorized_keys"
    )]
    Auth {
        user: String,
        host: String,
        tried: String,
    },
    #[error(
        "wrong passphrase for key {key} (3 attempts): try again, or load it with `ssh-add {key}`"
    )]
    WrongPassphrase { key: String },
    #[error(
        "no Docker socket at {socket} on {host}: is Docker installed and running there (`systemctl status docker`)? \
         For rootless Docker set the socket path, e.g. ssh://user@host/run/user/1000/docker.sock"
    )]
    SocketMissing { host: String, socket: String },
    #[error(
        "permission denied on {socket} on {host}: add the user to the docker group on the server \
         (`sudo usermod -aG docker {user}`), then reconnect"
    )]
    SocketDenied {
        host: String,
        socket: String,
        user: String,
    },
    #[error("cannot reach the Docker engine on {host} over ssh: {reason}")]
    Docker { host: String, reason: String },
    #[error("ssh channel to {host} failed: {reason}")]
    Channel { host: String, reason: String },
    #[error("bad ProxyJump '{0}': use [user@]host[:port][,…]")]
    BadJump(String),
    #[error("{0}")]
    Other(String),
}

impl SshError {
    /// Errors that another attempt will not fix (or must not silently get past).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SshError::HostKeyChanged { .. }
                | SshError::HostKeyRevoked { .. }
                | SshError::HostKeyUnknown { .. }
                | SshError::Auth { .. }
                | SshError::WrongPassphrase { .. }
                | SshError::BadJump(_)
        )
    }
}

/// The state of the link to the server, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    Connecting,
    Connected {
        rtt: Duration,
    },
    Reconnecting {
        attempt: u32,
        last_error: String,
    },
    /// Given up: the host key changed, authentication fails, … Only a new `connect` helps.
    Failed {
        error: String,
    },
}

/// What `exec` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the server sent no exit status (killed by a signal).
    pub exit_code: Option<u32>,
}

/// StrictHostKeyChecking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strict {
    /// Refuse unknown keys.
    Yes,
    /// Ask (the default).
    Ask,
    /// Save unknown keys without asking (`accept-new`, and `no` for unknown keys).
    AcceptNew,
}

/// One host with the ssh config applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub alias: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    pub proxy_jump: Vec<SshSpec>,
    pub known_hosts: Vec<PathBuf>,
    pub strict: Strict,
    pub alive_interval: Duration,
    pub alive_count_max: u32,
    pub connect_timeout: Duration,
    pub agent: Option<PathBuf>,
    /// Save new host keys with hashed names (`HashKnownHosts yes`).
    pub hash_known_hosts: bool,
}

/// Applies the ssh config to `spec`: what [`connect`] will dial. Values given in `spec` win.
pub fn resolve(spec: &SshSpec, options: &SshOptions) -> Result<Resolved, SshError> {
    let home = options.home_dir();
    let c = config::for_host(&options.ssh_config_path(), &spec.host, &home);
    let host = c
        .host_name
        .as_deref()
        .map(|h| h.replace("%h", &spec.host))
        .unwrap_or_else(|| spec.host.clone());
    let port = spec.port.or(c.port).unwrap_or(22);
    let user = spec
        .user
        .clone()
        .or(c.user.clone())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "root".into());
    let expand = |p: &str| config::expand_tokens(p, &home, &host, &user, port, &spec.host);
    let identity_files = c.identity_files.iter().map(|p| expand(p)).collect();
    let known_hosts = c
        .user_known_hosts_files
        .clone()
        .unwrap_or_else(|| vec!["~/.ssh/known_hosts".into(), "~/.ssh/known_hosts2".into()])
        .iter()
        .filter(|p| !p.eq_ignore_ascii_case("none"))
        .map(|p| expand(p))
        .collect();
    let strict = match c.strict_host_key_checking.as_deref() {
        Some("yes") | Some("true") => Strict::Yes,
        Some("accept-new") | Some("no") | Some("off") | Some("false") => Strict::AcceptNew,
        _ => Strict::Ask,
    };
    let proxy_jump = match c.proxy_jump.as_deref() {
        None | Some("none") => vec![],
        Some(j) => parse_jumps(j)?,
    };
    let agent = if options.no_agent {
        None
    } else if let Some(a) = &options.agent_socket {
        Some(a.clone())
    } else {
        match c.identity_agent.as_deref() {
            Some("none") => None,
            Some(a) if a != "SSH_AUTH_SOCK" => Some(expand(a)),
            _ => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        }
    };
    Ok(Resolved {
        alias: spec.host.clone(),
        host,
        port,
        user,
        identity_files,
        identities_only: c.identities_only.unwrap_or(false),
        proxy_jump,
        known_hosts,
        strict,
        alive_interval: c
            .server_alive_interval
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_ALIVE_INTERVAL),
        alive_count_max: c.server_alive_count_max.unwrap_or(3).max(1),
        connect_timeout: c
            .connect_timeout
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        agent,
        hash_known_hosts: c.hash_known_hosts.unwrap_or(false),
    })
}

fn parse_jumps(text: &str) -> Result<Vec<SshSpec>, SshError> {
    text.split(',')
        .map(|hop| {
            let hop = hop.trim();
            let addr = if hop.starts_with("ssh://") {
                hop.to_string()
            } else {
                format!("ssh://{hop}")
            };
            match crate::target::parse_address(&addr) {
                Ok(Some(crate::target::Endpoint::Ssh(s))) => Ok(s),
                _ => Err(SshError::BadJump(text.to_string())),
            }
        })
        .collect()
}

/// Marks the time spent waiting on the user, which no network timeout should count.
struct Asking {
    inner: Arc<dyn Prompter>,
    count: Arc<AtomicUsize>,
}

impl Prompter for Asking {
    fn ask(&self, request: PromptRequest) -> futures::future::BoxFuture<'static, PromptAnswer> {
        let count = self.count.clone();
        count.fetch_add(1, Ordering::SeqCst);
        let fut = self.inner.ask(request);
        Box::pin(async move {
            let answer = fut.await;
            count.fetch_sub(1, Ordering::SeqCst);
            answer
        })
    }
}

/// Awaits `fut`, failing after `limit` of network time; time the user spends answering a prompt
/// does not count.
async fn within<F: std::future::Future>(
    limit: Duration,
    asking: &AtomicUsize,
    fut: F,
) -> Option<F::Output> {
    tokio::pin!(fut);
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(250);
    loop {
        match tokio::time::timeout(step, &mut fut).await {
            Ok(v) => return Some(v),
            Err(_) if asking.load(Ordering::SeqCst) > 0 => {}
            Err(_) => {
                waited += step;
                if waited >= limit {
                    return None;
                }
            }
        }
    }
}

type Trusted = Arc<StdMutex<Vec<(String, u16, PublicKey)>>>;

/// The russh handler: verifies the host key against known_hosts and asks about unknown ones.
struct Client {
    host: String,
    port: u16,
    /// For the `ssh …` command an unknown-host error suggests.
    user: String,
    known_hosts: Vec<PathBuf>,
    strict: Strict,
    hash_known_hosts: bool,
    prompter: Option<Arc<dyn Prompter>>,
    /// Keys accepted this session (host, port, key); they hold across reconnects.
    trusted: Trusted,
    verdict: Arc<StdMutex<Option<Result<String, SshError>>>>,
}

impl Client {
    async fn judge(&self, key: &PublicKey) -> Result<String, SshError> {
        let fingerprint = known_hosts::fingerprint(key);
        let key_type = known_hosts::key_type(key);
        let name = known_hosts::lookup_name(&self.host, self.port);
        match known_hosts::check(&self.known_hosts, &self.host, self.port, key) {
            HostKeyStatus::Known { file, line } => Ok(format!("known ({}:{line})", file.display())),
            HostKeyStatus::Changed { file, line } => Err(SshError::HostKeyChanged {
                host: name,
                key_type,
                fingerprint,
                file: file.display().to_string(),
                line,
            }),
            HostKeyStatus::Revoked { file, line } => Err(SshError::HostKeyRevoked {
                host: name,
                fingerprint,
                file: file.display().to_string(),
                line,
            }),
            HostKeyStatus::Unknown => {
                let earlier: Vec<PublicKey> = self
                    .trusted
                    .lock()
                    .map(|t| {
                        t.iter()
                            .filter(|(h, p, _)| *h == self.host && *p == self.port)
                            .map(|(_, _, k)| k.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                if earlier.iter().any(|k| k.key_data() == key.key_data()) {
                    return Ok("accepted for this session".into());
                }
                // Accepted once, then a different key on reconnect: as loud as a known_hosts mismatch.
                if earlier.iter().any(|k| k.algorithm() == key.algorithm()) {
                    return Err(SshError::HostKeyChanged {
                        host: name,
                        key_type,
                        fingerprint,
                        file: "(the key you accepted earlier in this session)".into(),
                        line: 0,
                    });
                }
                let unknown = |why: &str| SshError::HostKeyUnknown {
                    host: name.clone(),
                    login: known_hosts::login_command(&self.user, &self.host, self.port),
                    key_type: key_type.clone(),
                    fingerprint: fingerprint.clone(),
                    why: why.into(),
                };
                let decision = match (self.strict, &self.prompter) {
                    (Strict::Yes, _) => return Err(unknown("StrictHostKeyChecking is yes")),
                    (Strict::AcceptNew, _) => HostKeyDecision::AcceptAndSave,
                    (Strict::Ask, None) => return Err(unknown("berth cannot ask (no terminal)")),
                    (Strict::Ask, Some(p)) => {
                        let req = PromptRequest::UnknownHost {
                            host: self.host.clone(),
                            port: self.port,
                            key_type: key_type.clone(),
                            fingerprint: fingerprint.clone(),
                        };
                        match p.ask(req).await {
                            PromptAnswer::HostKey(d) => d,
                            _ => HostKeyDecision::Refuse,
                        }
                    }
                };
                match decision {
                    HostKeyDecision::Refuse => Err(unknown("you refused it")),
                    HostKeyDecision::AcceptOnce => {
                        if let Ok(mut t) = self.trusted.lock() {
                            t.push((self.host.clone(), self.port, key.clone()));
                        }
                        Ok("accepted for this session".into())
                    }
                    HostKeyDecision::AcceptAndSave => {
                        let file = self
                            .known_hosts
                            .first()
                            .cloned()
                            .ok_or_else(|| unknown("no known_hosts file"))?;
                        known_hosts::append(
                            &file,
                            &self.host,
                            self.port,
                            key,
                            self.hash_known_hosts,
                        )
                        .map_err(|e| {
                            SshError::Other(format!(
                                "cannot save the host key to {}: {e}",
                                file.display()
                            ))
                        })?;
                        if let Ok(mut t) = self.trusted.lock() {
                            t.push((self.host.clone(), self.port, key.clone()));
                        }
                        Ok(format!("new, saved to {}", file.display()))
                    }
                }
            }
        }
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            // Host certificates are not verified: refuse rather than trust blindly.
            *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Err(SshError::Other(format!(
                    "{} offers a host certificate; berth only checks plain host keys",
                    self.host
                ))));
            return Ok(false);
        };
        let v = self.judge(key).await;
        let ok = v.is_ok();
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        Ok(ok)
    }
}

type ClientHandle = Handle<Client>;

struct Link {
    handle: Arc<ClientHandle>,
    /// Jump-host sessions the main one tunnels through; dropping them would cut the link.
    _jumps: Vec<ClientHandle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Streamlocal = 0,
    DialStdio = 1,
}

struct Inner {
    resolved: Resolved,
    jumps: Vec<Resolved>,
    socket: String,
    options: SshOptions,
    allow_password: bool,
    link: Mutex<Option<Link>>,
    status: watch::Sender<LinkStatus>,
    mode: AtomicU8,
    /// A streamlocal channel opened once: later "connect failed" answers are transient, not a refusal.
    streamlocal_worked: AtomicBool,
    trusted: Trusted,
    /// What the last successful authentication used; tried first on reconnect, so nobody is asked twice.
    auth_memory: auth::Memory,
    info: StdMutex<ConnInfo>,
    fatal: StdMutex<Option<SshError>>,
    opens: Semaphore,
    asking: Arc<AtomicUsize>,
    /// dial-stdio channels started ahead of need (see the transport).
    warm: transport::WarmPool,
}

#[derive(Debug, Clone, Default)]
struct ConnInfo {
    auth_method: String,
    host_key: String,
}

/// A connected server. Cheap to keep; the link is watched and re-established in the background while
/// this (or a `Docker` from [`SshSession::docker`]) lives.
pub struct SshSession {
    inner: Arc<Inner>,
    docker: Docker,
}

impl SshSession {
    /// A Docker client whose every HTTP connection is a channel of this session.
    pub fn docker(&self) -> Docker {
        self.docker.clone()
    }

    /// "ssh streamlocal" or "ssh dial-stdio".
    pub fn transport_name(&self) -> &str {
        match self.inner.mode() {
            Mode::Streamlocal => "ssh streamlocal",
            Mode::DialStdio => "ssh dial-stdio",
        }
    }

    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.inner.status.subscribe()
    }

    /// The host, port and user actually dialled (ssh config applied).
    pub fn resolved(&self) -> &Resolved {
        &self.inner.resolved
    }

    /// e.g. "publickey (agent: me@laptop)" or "publickey (/home/me/.ssh/id_ed25519)".
    pub fn auth_method(&self) -> String {
        self.inner
            .info
            .lock()
            .map(|i| i.auth_method.clone())
            .unwrap_or_default()
    }

    /// e.g. "known (/home/me/.ssh/known_hosts:3)".
    pub fn host_key_status(&self) -> String {
        self.inner
            .info
            .lock()
            .map(|i| i.host_key.clone())
            .unwrap_or_default()
    }

    /// Runs a (read-only) command on the server and collects its output, at most 16 MiB of each stream.
    pub async fn exec(&self, cmd: &str) -> Result<ExecOutput, SshError> {
        self.inner.exec(cmd, None).await
    }

    /// Like [`SshSession::exec`], feeding `stdin` to the command (then end of file): e.g. appending
    /// audit lines to a file on the server without quoting them into the command line.
    pub async fn exec_with_input(&self, cmd: &str, stdin: &[u8]) -> Result<ExecOutput, SshError> {
        self.inner.exec(cmd, Some(stdin)).await
    }

    /// A long-lived command whose stdin and stdout are one stream (its stderr is dropped): e.g. a
    /// shell that runs a read-only command every interval, without a new session — and a new
    /// login shell with its startup files — each time.
    pub async fn exec_stream(&self, cmd: &str) -> Result<SshStream, SshError> {
        let h = self.inner.handle().await?;
        let chan_err = |e: russh::Error| SshError::Channel {
            host: self.inner.host(),
            reason: open_reason(&e),
        };
        let ch = h.channel_open_session().await.map_err(chan_err)?;
        ch.exec(true, cmd).await.map_err(chan_err)?;
        Ok(ch.into_stream())
    }

    /// A TCP connection from the server to `host:port` (e.g. a health URL on the server's loopback).
    pub async fn direct_tcpip(&self, host: &str, port: u16) -> Result<SshStream, SshError> {
        let h = self.inner.handle().await?;
        let limit = self.inner.resolved.connect_timeout;
        let ch = tokio::time::timeout(
            limit,
            h.channel_open_direct_tcpip(host, port as u32, "127.0.0.1", 0),
        )
        .await
        .map_err(|_| SshError::Timeout {
            what: format!("opening a tunnel to {host}:{port}"),
            secs: limit.as_secs(),
        })?
        .map_err(|e| SshError::Channel {
            host: self.inner.resolved.alias.clone(),
            reason: open_reason(&e),
        })?;
        Ok(ch.into_stream())
    }

    /// Checks that the engine answers `/_ping` through the tunnel, choosing streamlocal or dial-stdio;
    /// a missing socket or one the user may not open comes back as a clear error.
    pub async fn probe_docker(&self) -> Result<(), SshError> {
        transport::probe(&self.inner).await
    }

    /// Measures one round trip now (an SSH keepalive and its answer).
    pub async fn ping(&self) -> Result<Duration, SshError> {
        self.inner.ping().await
    }
}

fn open_reason(e: &russh::Error) -> String {
    match e {
        russh::Error::ChannelOpenFailure(f) => format!("the server refused the channel ({f:?})"),
        other => other.to_string(),
    }
}

/// Connects to the server of `spec` (ssh config applied), authenticates, and checks that the Docker
/// socket answers. Errors say what to do; nothing here waits longer than the connect timeout per step.
pub async fn connect(
    spec: &SshSpec,
    target: &Target,
    options: &SshOptions,
) -> Result<SshSession, SshError> {
    let session = establish(spec, target, options).await?;
    session.probe_docker().await?;
    Ok(session)
}

/// Like [`connect`] without checking the Docker socket: the SSH part alone (for `berth doctor`,
/// which reports each step). Call [`SshSession::probe_docker`] before using [`SshSession::docker`].
pub async fn establish(
    spec: &SshSpec,
    target: &Target,
    options: &SshOptions,
) -> Result<SshSession, SshError> {
    let resolved = resolve(spec, options)?;
    let mut jumps = Vec::new();
    for hop in &resolved.proxy_jump {
        let mut r = resolve(hop, options)?;
        r.proxy_jump.clear();
        jumps.push(r);
    }
    let (status, _) = watch::channel(LinkStatus::Connecting);
    let inner = Arc::new(Inner {
        resolved,
        jumps,
        socket: spec.socket_path().to_string(),
        options: options.clone(),
        allow_password: target.allow_password,
        link: Mutex::new(None),
        status,
        mode: AtomicU8::new(Mode::Streamlocal as u8),
        streamlocal_worked: AtomicBool::new(false),
        trusted: Arc::new(StdMutex::new(Vec::new())),
        auth_memory: auth::Memory::default(),
        info: StdMutex::new(ConnInfo::default()),
        fatal: StdMutex::new(None),
        opens: Semaphore::new(MAX_CONCURRENT_OPENS),
        asking: Arc::new(AtomicUsize::new(0)),
        warm: transport::WarmPool::default(),
    });
    let link = inner.dial().await?;
    *inner.link.lock().await = Some(link);
    let rtt = inner.ping().await.unwrap_or_default();
    inner.status.send_replace(LinkStatus::Connected { rtt });
    let docker = transport::docker(inner.clone())?;
    tokio::spawn(supervise(Arc::downgrade(&inner)));
    Ok(SshSession { inner, docker })
}

impl Inner {
    fn mode(&self) -> Mode {
        if self.mode.load(Ordering::Relaxed) == Mode::DialStdio as u8 {
            Mode::DialStdio
        } else {
            Mode::Streamlocal
        }
    }

    fn set_mode(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::Relaxed);
    }

    fn host(&self) -> String {
        self.resolved.alias.clone()
    }

    fn prompter(&self) -> Option<Arc<dyn Prompter>> {
        let inner = self.options.prompter()?;
        Some(Arc::new(Asking {
            inner,
            count: self.asking.clone(),
        }))
    }

    /// A live session handle, reconnecting (with backoff, for up to [`RECONNECT_WINDOW`]) if needed.
    async fn handle(&self) -> Result<Arc<ClientHandle>, SshError> {
        let mut guard = self.link.lock().await;
        if let Some(l) = guard.as_ref()
            && !l.handle.is_closed()
        {
            return Ok(l.handle.clone());
        }
        *guard = None;
        if let Some(e) = self.fatal.lock().ok().and_then(|f| f.clone()) {
            return Err(e);
        }
        let start = Instant::now();
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0;
        let mut last_error = String::from("the connection was lost");
        loop {
            attempt += 1;
            self.status.send_replace(LinkStatus::Reconnecting {
                attempt,
                last_error: last_error.clone(),
            });
            match self.dial().await {
                Ok(link) => {
                    let h = link.handle.clone();
                    *guard = Some(link);
                    let rtt = ping_handle(&h, self.resolved.connect_timeout)
                        .await
                        .unwrap_or_default();
                    self.status.send_replace(LinkStatus::Connected { rtt });
                    return Ok(h);
                }
                Err(e) if e.is_fatal() => {
                    if let Ok(mut f) = self.fatal.lock() {
                        *f = Some(e.clone());
                    }
                    self.status.send_replace(LinkStatus::Failed {
                        error: e.to_string(),
                    });
                    return Err(e);
                }
                Err(e) => {
                    last_error = e.to_string();
                    self.status.send_replace(LinkStatus::Reconnecting {
                        attempt,
                        last_error: last_error.clone(),
                    });
                    if start.elapsed() + backoff > RECONNECT_WINDOW {
                        return Err(e);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Marks the current link dead (a keepalive went unanswered) so the next use reconnects.
    async fn drop_link(&self, why: &str) {
        let dead = self.link.lock().await.take();
        self.status.send_replace(LinkStatus::Reconnecting {
            attempt: 0,
            last_error: why.to_string(),
        });
        if let Some(l) = dead {
            // The peer is silent: say goodbye without waiting on it. Dropping the handle ends the
            // session task, which closes every channel, so open streams fail now, not at TCP timeout.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    l.handle.disconnect(
                        russh::Disconnect::ByApplication,
                        "keepalive timeout",
                        "en",
                    ),
                )
                .await;
            });
        }
    }

    async fn ping(&self) -> Result<Duration, SshError> {
        let h = self.handle().await?;
        ping_handle(&h, self.resolved.connect_timeout).await
    }

    /// Dials the server (through its jump hosts), verifies its key and authenticates.
    async fn dial(&self) -> Result<Link, SshError> {
        let mut jumps: Vec<ClientHandle> = Vec::new();
        for hop in &self.jumps {
            let h = match jumps.last() {
                None => self.dial_one(hop, None).await?,
                Some(prev) => self.dial_one(hop, Some(prev)).await?,
            };
            jumps.push(h);
        }
        let handle = self.dial_one(&self.resolved, jumps.last()).await?;
        Ok(Link {
            handle: Arc::new(handle),
            _jumps: jumps,
        })
    }

    async fn dial_one(
        &self,
        r: &Resolved,
        via: Option<&ClientHandle>,
    ) -> Result<ClientHandle, SshError> {
        let addr = format!("{}:{}", r.host, r.port);
        let secs = r.connect_timeout.as_secs().max(1);
        let timeout = |what: &str| SshError::Timeout {
            what: format!("{what} {addr}"),
            secs,
        };
        let verdict = Arc::new(StdMutex::new(None));
        let handler = Client {
            host: r.host.clone(),
            port: r.port,
            user: r.user.clone(),
            known_hosts: r.known_hosts.clone(),
            strict: r.strict,
            hash_known_hosts: r.hash_known_hosts,
            prompter: self.prompter(),
            trusted: self.trusted.clone(),
            verdict: verdict.clone(),
        };
        let config = Arc::new(client_config(r));
        let result = match via {
            Some(jump) => {
                let ch = tokio::time::timeout(
                    r.connect_timeout,
                    jump.channel_open_direct_tcpip(r.host.clone(), r.port as u32, "127.0.0.1", 0),
                )
                .await
                .map_err(|_| timeout("opening a tunnel to"))?
                .map_err(|e| SshError::Connect {
                    addr: addr.clone(),
                    reason: format!("the jump host could not reach it ({})", open_reason(&e)),
                })?;
                within(
                    r.connect_timeout,
                    &self.asking,
                    client::connect_stream(config, ch.into_stream(), handler),
                )
                .await
                .ok_or_else(|| timeout("ssh handshake with"))?
            }
            None => {
                let stream = QuickAck(tcp_connect(r).await?);
                within(
                    r.connect_timeout,
                    &self.asking,
                    client::connect_stream(config, stream, handler),
                )
                .await
                .ok_or_else(|| timeout("ssh handshake with"))?
            }
        };
        let verdict = verdict.lock().ok().and_then(|mut v| v.take());
        let mut handle = match (result, verdict) {
            (Ok(h), Some(Ok(status))) => {
                if r == &self.resolved
                    && let Ok(mut i) = self.info.lock()
                {
                    i.host_key = status;
                }
                h
            }
            (_, Some(Err(e))) => return Err(e),
            (Ok(_), None) => {
                return Err(SshError::Handshake {
                    addr,
                    reason: "no host key checked".into(),
                });
            }
            (Err(e), _) => {
                return Err(SshError::Handshake {
                    addr,
                    reason: e.to_string(),
                });
            }
        };
        let home = self.options.home_dir();
        let auth = auth::authenticate(
            &mut handle,
            r,
            &home,
            self.prompter(),
            self.allow_password,
            &self.auth_memory,
        );
        let method = within(r.connect_timeout, &self.asking, auth)
            .await
            .ok_or_else(|| timeout("ssh authentication with"))??;
        if r == &self.resolved
            && let Ok(mut i) = self.info.lock()
        {
            i.auth_method = method;
        }
        Ok(handle)
    }

    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, SshError> {
        let h = self.handle().await?;
        let chan_err = |e: russh::Error| SshError::Channel {
            host: self.host(),
            reason: open_reason(&e),
        };
        let mut ch = h.channel_open_session().await.map_err(chan_err)?;
        ch.exec(true, cmd).await.map_err(chan_err)?;
        if let Some(input) = stdin {
            ch.data(input).await.map_err(chan_err)?;
        }
        // Commands that read stdin must see its end, or they wait forever.
        ch.eof().await.map_err(chan_err)?;
        let mut out = ExecOutput::default();
        let collect = async {
            while let Some(msg) = ch.wait().await {
                match msg {
                    russh::ChannelMsg::Data { data } if out.stdout.len() < EXEC_MAX_OUTPUT => {
                        out.stdout.extend_from_slice(&data)
                    }
                    russh::ChannelMsg::ExtendedData { data, ext: 1 }
                        if out.stderr.len() < EXEC_MAX_OUTPUT =>
                    {
                        out.stderr.extend_from_slice(&data)
                    }
                    russh::ChannelMsg::ExitStatus { exit_status } => {
                        out.exit_code = Some(exit_status)
                    }
                    russh::ChannelMsg::Close => break,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(EXEC_TIMEOUT, collect)
            .await
            .map_err(|_| SshError::Timeout {
                what: format!("`{cmd}` on {}", self.host()),
                secs: EXEC_TIMEOUT.as_secs(),
            })?;
        Ok(out)
    }
}

async fn ping_handle(h: &ClientHandle, limit: Duration) -> Result<Duration, SshError> {
    let start = Instant::now();
    match tokio::time::timeout(limit, h.send_ping()).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(SshError::Other(format!("keepalive failed: {e}"))),
        Err(_) => Err(SshError::Timeout {
            what: "keepalive".into(),
            secs: limit.as_secs(),
        }),
    }
}

fn client_config(r: &Resolved) -> client::Config {
    let mut c = client::Config {
        // Our own supervisor sends keepalives and measures them; russh's timer would race it.
        keepalive_interval: None,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    };
    // Ask first for a host key type we already know for this host, as OpenSSH does, so a server
    // with several keys is not reported as unknown.
    let known = known_hosts::known_algorithms(&r.known_hosts, &r.host, r.port);
    if !known.is_empty() {
        let mut keys: Vec<russh::keys::Algorithm> = known.clone();
        for k in c.preferred.key.iter() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        c.preferred.key = keys.into();
    }
    c
}

/// sshd sets TCP_NODELAY only for interactive (pty) sessions, so its small packets wait for our
/// ACK (Nagle), and Linux delays that ACK up to 40 ms: the first answer on a fresh channel took
/// ~40 ms. Asking for an immediate ACK after each read removes the stall; the flag does not stick.
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) {
            #[cfg(target_os = "linux")]
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
        r
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn tcp_connect(r: &Resolved) -> Result<tokio::net::TcpStream, SshError> {
    let secs = r.connect_timeout.as_secs().max(1);
    let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(
        r.connect_timeout,
        tokio::net::lookup_host((r.host.as_str(), r.port)),
    )
    .await
    .map_err(|_| SshError::Timeout {
        what: format!("resolving {}", r.host),
        secs,
    })?
    .map_err(|e| SshError::Resolve {
        host: r.host.clone(),
        reason: e.to_string(),
    })?
    .collect();
    let mut last = String::from("no address");
    for a in &addrs {
        match tokio::time::timeout(r.connect_timeout, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = e.to_string().to_lowercase(),
            Err(_) => last = format!("no answer within {secs} s"),
        }
    }
    Err(SshError::Connect {
        addr: format!("{}:{}", r.host, r.port),
        reason: last,
    })
}

/// Keepalives and reconnects for as long as the session lives.
async fn supervise(weak: std::sync::Weak<Inner>) {
    let mut last_ping = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
            return;
        }
        let current = inner
            .link
            .try_lock()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.handle.clone()));
        match current {
            Some(h) if !h.is_closed() => {
                if last_ping.elapsed() >= inner.resolved.alive_interval {
                    last_ping = Instant::now();
                    let limit = inner.resolved.alive_interval * inner.resolved.alive_count_max;
                    match ping_handle(&h, limit.min(Duration::from_secs(60))).await {
                        Ok(rtt) => {
                            inner.status.send_replace(LinkStatus::Connected { rtt });
                        }
                        Err(e) => inner.drop_link(&e.to_string()).await,
                    }
                }
            }
            // Being re-established by a request right now.
            None if inner.link.try_lock().is_err() => {}
            _ => {
                // Lost: reconnect now rather than on the next request, so the header shows it.
                let _ = inner.handle().await;
                last_ping = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(home: &std::path::Path) -> SshOptions {
        SshOptions {
            batch: true,
            home: Some(home.to_path_buf()),
            no_agent: true,
            ..Default::default()
        }
    }

    #[test]
    fn resolve_applies_the_ssh_config() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(
            home.join(".ssh/config"),
            "Host prod\n  HostName %h.example.com\n  User deploy\n  Port 2200\n  IdentityFile ~/.ssh/%r_%h\n  \
             IdentitiesOnly yes\n  ProxyJump ops@bastion:2222,jump2\n  UserKnownHostsFile ~/.ssh/kh_a /etc/kh_b\n  \
             StrictHostKeyChecking accept-new\n  ServerAliveInterval 5\n  IdentityAgent none\n\
             Host *\n  User fallback\n  ConnectTimeout 3\n",
        )
        .unwrap();
        let spec = SshSpec {
            user: None,
            host: "prod".into(),
            port: None,
            socket: None,
        };
        let r = resolve(
            &spec,
            &SshOptions {
                no_agent: false,
                ..opts(home)
            },
        )
        .unwrap();
        assert_eq!(
            (r.host.as_str(), r.user.as_str(), r.port),
            ("prod.example.com", "deploy", 2200)
        );
        assert_eq!(
            r.identity_files,
            vec![home.join(".ssh/deploy_prod.example.com")]
        );
        assert!(r.identities_only);
        assert_eq!(r.proxy_jump.len(), 2);
        assert_eq!(
            (
                r.proxy_jump[0].user.as_deref(),
                r.proxy_jump[0].host.as_str(),
                r.proxy_jump[0].port
            ),
            (Some("ops"), "bastion", Some(2222))
        );
        assert_eq!(
            r.known_hosts,
            vec![home.join(".ssh/kh_a"), PathBuf::from("/etc/kh_b")]
        );
        assert_eq!(r.strict, Strict::AcceptNew);
        assert_eq!(r.alive_interval, Duration::from_secs(5));
        assert_eq!(r.connect_timeout, Duration::from_secs(3));
        assert_eq!(r.agent, None, "IdentityAgent none");

        // What the user typed wins over the config.
        let spec = SshSpec {
            user: Some("me".into()),
            host: "prod".into(),
            port: Some(22),
            socket: None,
        };
        let r = resolve(&spec, &opts(home)).unwrap();
        assert_eq!((r.user.as_str(), r.port), ("me", 22));

        let spec = SshSpec {
            user: None,
            host: "10.1.2.3".into(),
            port: None,
            socket: None,
        };
        let r = resolve(&spec, &opts(home)).unwrap();
        assert_eq!(
            (r.host.as_str(), r.user.as_str(), r.port, r.strict),
            ("10.1.2.3", "fallback", 22, Strict::Ask)
        );
        assert_eq!(
            r.known_hosts,
            vec![
                home.join(".ssh/known_hosts"),
                home.join(".ssh/known_hosts2")
            ]
        );
    }

    #[test]
    fn errors_are_one_line_with_a_fix() {
        let e = SshError::SocketDenied {
            host: "prod".into(),
            socket: "/var/run/docker.sock".into(),
            user: "deploy".into(),
        };
        assert!(e.to_string().contains("add the user to the docker group"));
        assert!(e.to_string().contains("usermod -aG docker deploy"));
        for e in [
            e,
            SshError::HostKeyChanged {
                host: "h".into(),
                key_type: "ssh-ed25519".into(),
                fingerprint: "SHA256:x".into(),
                file: "/k".into(),
                line: 3,
            },
            SshError::BadJump("x".into()),
        ] {
            assert!(!e.to_string().contains('\n'));
        }
        assert!(parse_jumps("a,,b").is_err());
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
