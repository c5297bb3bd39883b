//! The bollard custom transport: each HTTP connection is one SSH channel, either
//! `direct-streamlocal@openssh.com` to the remote socket or an exec of `docker system dial-stdio`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
        Box::pin(async move { Ok(TokioIo::new(ChannelIo(inner.open_stream().await?))) })
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
                Mode::DialStdio => match h.channel_open_session().await {
                    Ok(ch) => ch.exec(false, DIAL_STDIO).await.map(|_| ch),
                    Err(e) => Err(e),
                },
            };
            match opened {
                Ok(ch) => {
                    if mode == Mode::Streamlocal {
                        self.streamlocal_worked.store(true, Ordering::Relaxed);
                    }
                    return Ok(ch.into_stream());
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
                    } else {
                        let (verdict, err) = self.diagnose_socket().await;
                        match verdict.as_str() {
                            "missing" | "denied" => return Err(err),
                            // OpenSSH answers "connect failed" also when AllowStreamLocalForwarding is
                            // no: a usable socket on a session where streamlocal never worked means that.
                            "ok" if mode == Mode::Streamlocal && !worked => {
                                self.set_mode(Mode::DialStdio);
                                continue;
                            }
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

/// Checks at connect time that the engine answers `/_ping`, so a missing socket or docker CLI shows
/// as one clear error instead of a failing first request.
pub(super) async fn probe(inner: &Inner) -> Result<(), SshError> {
    let mut stream = tokio::time::timeout(PROBE_TIMEOUT, inner.open_stream())
        .await
        .map_err(|_| SshError::Timeout {
            what: format!("opening a channel to the Docker socket on {}", inner.host()),
            secs: PROBE_TIMEOUT.as_secs(),
        })??;
    let exchange = async {
        stream
            .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            .await?;
        stream.flush().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        // The status line is all we need; the body is "OK".
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let answer = tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .map_err(|_| SshError::Timeout {
            what: format!("the Docker engine on {}", inner.host()),
            secs: PROBE_TIMEOUT.as_secs(),
        })?
        .map_err(|e| SshError::Docker {
            host: inner.host(),
            reason: e.to_string(),
        })?;
    if answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200") {
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

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
