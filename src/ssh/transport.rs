//! The bollard custom transport: each HTTP connection is one SSH channel, either
//! `direct-streamlocal@openssh.com` to the remote socket or an exec of `docker system dial-stdio`.
//!
//! A dial-stdio connection costs a docker CLI start on the server (a few hundred ms) before its
//! first answer; HTTP/1.1 cannot multiplex, so the console's first requests (version, list,
//! events) would each pay it in turn. So in dial-stdio mode the probe's own connection is kept
//! alive for the first requests, a few channels are started ahead ([`WarmPool`]) once it has
//! answered, and a request takes a started channel instead of waiting for one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::{Duration, Instant};

use bollard::{BollardRequest, Docker};
use http::header::HOST;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use russh::ChannelOpenFailure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Inner, Mode, SshError, SshStream};

const OPEN_ATTEMPTS: u32 = 5;
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests wait this long for an answer (streams are not cut: this covers the headers only).
const REQUEST_TIMEOUT_SECS: u64 = 120;
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Idle dial-stdio connections each keep a docker CLI running on the server (and count against
/// sshd's MaxSessions, 10 by default): keep few.
const POOL_MAX_IDLE: usize = 4;
const DIAL_STDIO: &str = "docker system dial-stdio";
/// dial-stdio channels kept started ahead of need: the console's first burst (version, list,
/// events, stats) then finds its docker CLIs already running.
const WARM_TARGET: usize = 3;
/// A started channel unused this long is closed (its docker CLI exits) rather than handed out.
const WARM_MAX_AGE: Duration = Duration::from_secs(30);

/// dial-stdio channels opened ahead of need, each tied to the SSH link it was opened on.
#[derive(Default)]
pub(super) struct WarmPool {
    ready: StdMutex<Vec<Warm>>,
    /// Opens in flight, so a burst of requests does not start more than the target.
    opening: AtomicUsize,
}

struct Warm {
    stream: SshStream,
    link: Weak<super::ClientHandle>,
    born: Instant,
}

impl WarmPool {
    /// A started channel that is still usable: its link is the live one, it is young, and the
    /// server has not closed it (a closed one reads end-of-file at once).
    fn take(&self) -> Option<SshStream> {
        loop {
            let mut w = self.ready.lock().ok()?.pop()?;
            let link_up = w.link.upgrade().is_some_and(|h| !h.is_closed());
            if !link_up || w.born.elapsed() > WARM_MAX_AGE {
                continue;
            }
            let mut probe = [0u8; 1];
            // Pending: open and silent, as an idle dial-stdio is. Anything else: closed or odd.
            if futures::FutureExt::now_or_never(w.stream.read(&mut probe)).is_none() {
                return Some(w.stream);
            }
        }
    }

    fn put(&self, stream: SshStream, link: Weak<super::ClientHandle>) {
        if let Ok(mut r) = self.ready.lock() {
            r.push(Warm {
                stream,
                link,
                born: Instant::now(),
            });
        }
    }

    fn len(&self) -> usize {
        self.ready.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// Starts dial-stdio channels in the background until [`WARM_TARGET`] are ready or opening.
fn refill(inner: &Arc<Inner>) {
    if inner.mode() != Mode::DialStdio {
        return;
    }
    let pool = &inner.warm;
    loop {
        let opening = pool.opening.load(Ordering::Relaxed);
        if pool.len() + opening >= WARM_TARGET {
            return;
        }
        if pool
            .opening
            .compare_exchange(opening, opening + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        let weak = Arc::downgrade(inner);
        tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            if let Ok((stream, link)) = inner.open_stream_on_link().await {
                inner.warm.put(stream, link);
            }
            inner.warm.opening.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

pub(super) fn docker(inner: Arc<Inner>) -> Result<Docker, SshError> {
    // A pool of HTTP connections, each its own channel: a request reuses an idle one instead of
    // paying a channel open (and, for dial-stdio, a docker CLI start on the server) every time.
    let client: Client<SshConnector, BodyType> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .build(SshConnector(inner));
    let client = Arc::new(client);
    let transport = move |req: BollardRequest| {
        let client = client.clone();
        async move { client.request(with_host(req)).await.map_err(legacy_error) }
    };
    Docker::connect_with_custom_transport(
        transport,
        Some("http://docker"),
        REQUEST_TIMEOUT_SECS,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| SshError::Other(format!("cannot set up the Docker client: {e}")))
}

type BodyType = <BollardRequest as BodyOf>::Body;

trait BodyOf {
    type Body;
}

impl<B> BodyOf for http::Request<B> {
    type Body = B;
}

/// The legacy client's error hides the cause (our SshError) in its source chain; keep it readable.
fn legacy_error(e: hyper_util::client::legacy::Error) -> bollard::errors::Error {
    let mut text = e.to_string();
    let mut cur = std::error::Error::source(&e);
    while let Some(c) = cur {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cur = c.source();
    }
    bollard::errors::Error::IOError {
        err: std::io::Error::new(std::io::ErrorKind::ConnectionAborted, text),
    }
}

/// Opens a channel per HTTP connection.
#[derive(Clone)]
struct SshConnector(Arc<Inner>);

impl tower_service::Service<http::Uri> for SshConnector {
    type Response = TokioIo<ChannelIo>;
    type Error = SshError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, SshError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), SshError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let stream = match inner.warm.take() {
                Some(s) => s,
                None => inner.open_stream().await?,
            };
            refill(&inner);
            Ok(TokioIo::new(ChannelIo(stream)))
        })
    }
}

/// An SSH channel as a hyper connection.
struct ChannelIo(SshStream);

impl Connection for ChannelIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl tokio::io::AsyncRead for ChannelIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ChannelIo {
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

/// The engine (Go's HTTP server) wants a Host header on HTTP/1.1; the pool keys on the URI's authority.
fn with_host(req: BollardRequest) -> BollardRequest {
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .insert(HOST, http::HeaderValue::from_static("docker"));
    BollardRequest::from_parts(parts, body)
}

impl Inner {
    /// A fresh stream to the engine, retried briefly (sshd refuses an open at once when the socket's
    /// backlog is full) and switching to dial-stdio when streamlocal forwarding is forbidden.
    pub(super) async fn open_stream(&self) -> Result<SshStream, SshError> {
        Ok(self.open_stream_on_link().await?.0)
    }

    /// [`Inner::open_stream`], with the link the channel lives on (a warm channel is worth
    /// nothing once its link is replaced).
    async fn open_stream_on_link(
        &self,
    ) -> Result<(SshStream, Weak<super::ClientHandle>), SshError> {
        let _permit = self
            .opens
            .acquire()
            .await
            .map_err(|_| SshError::Other("session closed".into()))?;
        let mut last = None;
        for attempt in 0..OPEN_ATTEMPTS {
            let h = self.handle().await?;
            let mode = self.mode();
            let opened = match mode {
                Mode::Streamlocal => h.channel_open_direct_streamlocal(self.socket.clone()).await,
                Mode::DialStdio => open_dial_stdio(&h).await,
            };
            match opened {
                Ok(ch) => {
                    if mode == Mode::Streamlocal {
                        self.streamlocal_worked.store(true, Ordering::Relaxed);
                    }
                    return Ok((ch.into_stream(), Arc::downgrade(&h)));
                }
                Err(russh::Error::ChannelOpenFailure(
                    ChannelOpenFailure::AdministrativelyProhibited
                    | ChannelOpenFailure::UnknownChannelType
                    | ChannelOpenFailure::Other { .. },
                )) if mode == Mode::Streamlocal
                    && !self.streamlocal_worked.load(Ordering::Relaxed) =>
                {
                    // `AllowStreamLocalForwarding no`, Tailscale SSH, servers without the extension:
                    // do what the docker CLI does.
                    self.set_mode(Mode::DialStdio);
                    continue;
                }
                Err(russh::Error::ChannelOpenFailure(ChannelOpenFailure::ConnectFailed)) => {
                    let worked = self.streamlocal_worked.load(Ordering::Relaxed);
                    // Once streamlocal has worked, "connect failed" is most likely a full backlog:
                    // retry, and only ask the server why when retries run out.
                    if worked && attempt + 1 < OPEN_ATTEMPTS {
                        last = None;
                    } else if mode == Mode::Streamlocal && !worked {
                        // OpenSSH answers "connect failed" both for a missing or forbidden socket and
                        // when AllowStreamLocalForwarding is no. Asking which costs a login shell on
                        // the server, and so does starting dial-stdio: start both at once, so a server
                        // that forbids forwarding pays one shell start before its first answer, not two.
                        let ((verdict, err), dial) =
                            tokio::join!(self.diagnose_socket(), open_dial_stdio(&h));
                        match verdict.as_str() {
                            "missing" | "denied" => return Err(err),
                            "ok" => {
                                self.set_mode(Mode::DialStdio);
                                match dial {
                                    Ok(ch) => return Ok((ch.into_stream(), Arc::downgrade(&h))),
                                    Err(_) => continue,
                                }
                            }
                            _ => last = Some(err),
                        }
                    } else {
                        let (verdict, err) = self.diagnose_socket().await;
                        match verdict.as_str() {
                            "missing" | "denied" => return Err(err),
                            _ => last = Some(err),
                        }
                    }
                }
                Err(e) => {
                    last = Some(SshError::Channel {
                        host: self.host(),
                        reason: super::open_reason(&e),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(last.unwrap_or_else(|| SshError::Other("cannot open an ssh channel".into())))
    }

    /// Why the server could not connect to the socket: absent, or not permitted for this user.
    async fn diagnose_socket(&self) -> (String, SshError) {
        let s = shell_quote(&self.socket);
        let cmd = format!(
            "if [ ! -e {s} ]; then echo missing; elif [ ! -r {s} ] || [ ! -w {s} ]; then echo denied; else echo ok; fi"
        );
        let verdict = self
            .exec(&cmd, None)
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let err = self.socket_error(&verdict, "the server could not connect to the socket");
        (verdict, err)
    }

    pub(super) fn socket_error(&self, verdict: &str, fallback: &str) -> SshError {
        match verdict {
            "missing" => SshError::SocketMissing {
                host: self.host(),
                socket: self.socket.clone(),
            },
            "denied" => SshError::SocketDenied {
                host: self.host(),
                socket: self.socket.clone(),
                user: self.resolved.user.clone(),
            },
            _ => SshError::Docker {
                host: self.host(),
                reason: fallback.to_string(),
            },
        }
    }
}

/// An exec of `docker system dial-stdio`: the docker CLI on the server relays the channel to its engine.
async fn open_dial_stdio(
    h: &super::ClientHandle,
) -> Result<russh::Channel<russh::client::Msg>, russh::Error> {
    let ch = h.channel_open_session().await?;
    ch.exec(false, DIAL_STDIO).await?;
    Ok(ch)
}

/// Checks at connect time that the engine answers `/_ping`, so a missing socket or docker CLI shows
/// as one clear error instead of a failing first request.
pub(super) async fn probe(inner: &Arc<Inner>) -> Result<(), SshError> {
    let (mut stream, link) = tokio::time::timeout(PROBE_TIMEOUT, inner.open_stream_on_link())
        .await
        .map_err(|_| SshError::Timeout {
            what: format!("opening a channel to the Docker socket on {}", inner.host()),
            secs: PROBE_TIMEOUT.as_secs(),
        })??;
    let exchange = async {
        stream
            .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
            .await?;
        stream.flush().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        // Headers, then the body ("OK") by its length, so the connection can serve the next request.
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let whole = content_length(&buf[..end]).map(|body| end + 4 + body);
                match whole {
                    Some(whole) if buf.len() >= whole => {
                        return Ok::<_, std::io::Error>((buf, whole));
                    }
                    // No length: the status line is all the probe needs; the stream is not reused.
                    None => return Ok((buf, usize::MAX)),
                    Some(_) => {}
                }
            }
            if buf.len() >= 16 * 1024 {
                return Ok((buf, usize::MAX));
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok((buf, usize::MAX));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let answer = tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| SshError::EngineSilent {
            host: inner.host(),
            via: match inner.mode() {
                Mode::Streamlocal => format!("the socket {}", inner.socket),
                Mode::DialStdio => "`docker system dial-stdio`".into(),
            },
            secs: PROBE_TIMEOUT.as_secs(),
        })?
        .map_err(|e| SshError::Docker {
            host: inner.host(),
            reason: e.to_string(),
        })?;
    let (answer, used) = answer;
    if answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200") {
        // A whole answer and nothing more on a dial-stdio channel: the first request reuses it
        // instead of starting another docker CLI. (Streamlocal channels are cheap to open.)
        if used == answer.len() && inner.mode() == Mode::DialStdio {
            inner.warm.put(stream, link);
        }
        // dial-stdio: start the channels later requests (the events stream, stats) will want
        // only now. Started beside the probe, their login shells and docker CLIs competed with its
        // own and delayed the first answer; the first listing goes over the probe's connection.
        refill(inner);
        return Ok(());
    }
    // Nothing came back: in dial-stdio mode the docker CLI failed; find out why.
    let s = shell_quote(&inner.socket);
    let cmd = format!(
        "if ! command -v docker >/dev/null 2>&1; then echo nodocker; elif [ ! -e {s} ]; then echo missing; \
         elif [ ! -r {s} ] || [ ! -w {s} ]; then echo denied; else echo other; fi"
    );
    let verdict = inner
        .exec(&cmd, None)
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let first = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("no answer")
        .to_string();
    Err(match verdict.as_deref() {
        Ok("nodocker") => SshError::Docker {
            host: inner.host(),
            reason: "the server forbids socket forwarding (AllowStreamLocalForwarding no) and has no docker CLI \
                     for `docker system dial-stdio`: allow forwarding in sshd_config or install the docker CLI"
                .into(),
        },
        Ok(v) => inner.socket_error(v, &format!("/_ping answered: {first}")),
        Err(_) => inner.socket_error("", &format!("/_ping answered: {first}")),
    })
}

/// The Content-Length of an HTTP head, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
