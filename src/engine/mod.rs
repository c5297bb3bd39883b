//! The Docker engine, over bollard: connecting to a target, listing and watching containers.
//! Nothing here knows about the terminal; the TUI and the CLI call the same functions.

pub mod clone;
pub mod kamal;
pub mod model;
pub mod networks;
pub mod watch;

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use futures::StreamExt;

use crate::target::{Endpoint, Target};
use model::Container;

/// Oldest engine API berth speaks: Docker Engine 20.10 (Debian's).
pub const MIN_API: (u32, u32) = (1, 41);
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// A connected engine and how it is reached.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    pub target: Target,
    /// How requests travel, for the header: "unix socket", "tcp", "ssh streamlocal", …
    pub transport: String,
    pub version: EngineVersion,
    /// The SSH session for SSH targets: link status (latency, reconnects), exec, direct-tcpip.
    pub ssh: Option<std::sync::Arc<crate::ssh::SshSession>>,
    /// Who is asked for a registry login no docker config has (`None`: nobody, as in batch mode).
    pub prompter: Option<std::sync::Arc<dyn crate::ssh::Prompter>>,
    /// Registry logins typed at that prompt and accepted by the registry, while connected.
    pub typed_logins: TypedLogins,
}

/// Registry logins typed at a prompt, by registry: in memory only, never written anywhere, so the
/// picker's listing and the plan's pull ask once per connection. Dropped with the engine.
#[derive(Clone, Default)]
pub struct TypedLogins(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (String, crate::ssh::Secret)>>,
    >,
);

impl TypedLogins {
    /// The username and password typed for `registry`, if any.
    pub fn get(&self, registry: &str) -> Option<(String, crate::ssh::Secret)> {
        self.0.lock().ok()?.get(registry).cloned()
    }

    pub fn remember(&self, registry: &str, username: String, password: crate::ssh::Secret) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(registry.to_string(), (username, password));
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineVersion {
    pub engine: String,
    pub api: String,
    pub os: String,
    pub arch: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {0}: {1}{hint}", hint = unreachable_hint(.0))]
    Unreachable(String, String),
    #[error(
        "permission denied on {0}: your user is not in the `docker` group. Fix: `sudo usermod -aG docker $USER`, then log in again"
    )]
    PermissionDenied(String),
    #[error(
        "the engine at {0} speaks API {1}, older than the {2}.{3} berth needs (Docker Engine 20.10 or newer)"
    )]
    ApiTooOld(String, String, u32, u32),
    #[error("{0}")]
    Ssh(String),
    #[error("docker engine error: {0}")]
    Api(String),
}

impl EngineError {
    /// Turns a bollard error into one that says what to do.
    pub fn from_bollard(where_: &str, e: bollard::errors::Error) -> EngineError {
        let text = e.to_string();
        let chain = error_chain(&e);
        if chain.contains("Permission denied") || chain.contains("permission denied") {
            EngineError::PermissionDenied(where_.to_string())
        } else if chain.contains("No such file")
            || chain.contains("Connection refused")
            || chain.contains("connection refused")
            || chain.contains("SocketNotFound")
            || matches!(e, bollard::errors::Error::SocketNotFoundError(_))
            || chain.contains("timed out")
            || chain.contains("Timeout")
        {
            EngineError::Unreachable(where_.to_string(), first_line(&text))
        } else {
            EngineError::Api(first_line(&text))
        }
    }
}

/// What to try when an engine does not answer. Over SSH the link's own error already says what
/// to fix (sshd, the port, the key), and dockerd is on a server this machine cannot see.
fn unreachable_hint(where_: &str) -> &'static str {
    if where_.starts_with("ssh://") {
        ""
    } else {
        ". Is dockerd running? (start it with `sudo systemctl start docker`)"
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = format!("{e:?} {e}");
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Connects to a local or TCP engine and checks its API version. SSH targets go through
/// [`crate::ssh`], which hands back a `Docker` on its own transport.
pub fn docker_for(endpoint: &Endpoint) -> Result<(Docker, String), EngineError> {
    match endpoint {
        Endpoint::Unix(path) => {
            let p = path.display().to_string();
            let d =
                Docker::connect_with_unix(&p, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                    .map_err(|e| EngineError::from_bollard(&p, e))?;
            Ok((d, "unix socket".into()))
        }
        Endpoint::Tcp(addr) => {
            let d = Docker::connect_with_http(
                &format!("tcp://{addr}"),
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            )
            .map_err(|e| EngineError::from_bollard(addr, e))?;
            Ok((d, "tcp".into()))
        }
        Endpoint::Ssh(_) => Err(EngineError::Ssh(
            "ssh targets connect through the ssh module".into(),
        )),
    }
}

/// Asks the engine for its version and refuses engines older than [`MIN_API`].
pub async fn check_version(docker: &Docker, where_: &str) -> Result<EngineVersion, EngineError> {
    let v = tokio::time::timeout(Duration::from_secs(15), docker.version())
        .await
        .map_err(|_| EngineError::Unreachable(where_.into(), "no answer within 15 s".into()))?
        .map_err(|e| EngineError::from_bollard(where_, e))?;
    let api = v.api_version.clone().unwrap_or_default();
    let (maj, min) = parse_api(&api);
    if (maj, min) < MIN_API {
        return Err(EngineError::ApiTooOld(
            where_.into(),
            api,
            MIN_API.0,
            MIN_API.1,
        ));
    }
    Ok(EngineVersion {
        engine: v.version.unwrap_or_default(),
        api,
        os: v.os.unwrap_or_default(),
        arch: v.arch.unwrap_or_default(),
    })
}

pub fn parse_api(api: &str) -> (u32, u32) {
    let mut parts = api.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Inspects of a first listing over dial-stdio that go one at a time (see `containers`).
const DIAL_STDIO_SERIAL_INSPECTS: usize = 12;

/// Connects to the target's engine (local, TCP, or SSH).
pub async fn connect(
    target: &Target,
    ssh_options: &crate::ssh::SshOptions,
) -> Result<Engine, EngineError> {
    let mut ssh = None;
    let (docker, transport) = match &target.endpoint {
        Endpoint::Ssh(spec) => {
            let session = crate::ssh::connect(spec, target, ssh_options)
                .await
                .map_err(|e| EngineError::Ssh(e.to_string()))?;
            let transport = session.transport_name().to_string();
            let docker = session.docker();
            ssh = Some(std::sync::Arc::new(session));
            (docker, transport)
        }
        other => docker_for(other)?,
    };
    let version = check_version(&docker, &target.endpoint.to_string()).await?;
    Ok(Engine {
        docker,
        target: target.clone(),
        transport,
        version,
        ssh,
        prompter: ssh_options.prompter(),
        typed_logins: TypedLogins::default(),
    })
}

impl Engine {
    fn where_(&self) -> String {
        self.target.endpoint.to_string()
    }

    /// Every container (running or not), fully inspected. Inspects run a few at a time.
    pub async fn containers(&self) -> Result<Vec<Container>, EngineError> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(|e| EngineError::from_bollard(&self.where_(), e))?;
        let mut ids: Vec<String> = list.into_iter().filter_map(|c| c.id).collect();
        // Over dial-stdio every new connection is a login shell and a docker CLI started on the
        // server, and a channel the transport started ahead answers only once both have: 150-600 ms
        // on a busy 2-core box, each start slowing the others. So the first inspects go one after
        // another over the connection that just listed (about a millisecond each on a near
        // server), and the rest fan out only over connections that answer already: the one that
        // listed and those started ahead that are ready now, never onto new ones. Measured with 23
        // containers on a loaded 2-core box: 4 at a time opened 5 new dial-stdio connections and
        // took 1.5-1.8 s after the list; on the ready ones, 25-60 ms.
        let dial_stdio = self
            .ssh
            .as_ref()
            .filter(|_| self.transport == "ssh dial-stdio");
        let serial = match dial_stdio {
            Some(_) => DIAL_STDIO_SERIAL_INSPECTS.min(ids.len()),
            None => 0,
        };
        let rest = ids.split_off(serial);
        let mut inspected: Vec<Option<Container>> = Vec::with_capacity(ids.len() + rest.len());
        for id in &ids {
            inspected.push(self.inspect(id).await.ok().flatten());
        }
        // Counted now: channels started ahead may have become ready during the serial inspects.
        let parallel = dial_stdio.map_or(8, |ssh| 1 + ssh.dial_stdio_ready());
        inspected.extend(
            futures::stream::iter(rest)
                .map(|id| async move { self.inspect(&id).await.ok().flatten() })
                .buffer_unordered(parallel)
                .collect::<Vec<_>>()
                .await,
        );
        let mut out: Vec<Container> = inspected.into_iter().flatten().collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// GETs an engine path and returns its JSON as the engine wrote it. For answers whose shape
    /// changed across API versions (`/system/df` above all: bollard 0.21 models only the 1.52 form,
    /// so Engine 20.10's `Images`/`BuildCache` arrays would deserialize to nothing), and for specs
    /// berth edits in one field and writes back whole (fields bollard's types lack are kept).
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, EngineError> {
        self.raw_json(http::Method::GET, path, None).await
    }

    /// POSTs `body` (JSON) to an engine path and returns the engine's JSON answer (`{}` when it
    /// sent none): a spec read with [`Engine::get_json`] goes back as the engine wrote it.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, EngineError> {
        self.raw_json(http::Method::POST, path, Some(body)).await
    }

    /// bollard has no public raw request, so this borrows a body-streaming call (container export)
    /// and points its request at `path` (method and body too) with a request modifier: the bytes
    /// still travel through the engine's own transport (socket, TCP or the SSH channel), and an
    /// error status comes back as bollard's error with the engine's message.
    async fn raw_json(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, EngineError> {
        let path_and_query: http::uri::PathAndQuery = path
            .parse()
            .map_err(|e| EngineError::Api(format!("bad engine path {path}: {e}")))?;
        let body = match body {
            Some(b) => Some(bytes::Bytes::from(serde_json::to_vec(b).map_err(|e| {
                EngineError::Api(format!("{path}: the body is not JSON: {e}"))
            })?)),
            None => None,
        };
        let docker = self.docker.clone().with_request_modifier(move |mut req| {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(path_and_query.clone());
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
            *req.method_mut() = method.clone();
            if let Some(b) = &body {
                *req.body_mut() = bollard::body_full(b.clone());
            }
            req
        });
        let mut answer = Vec::new();
        let mut stream = docker.export_container("berth-raw-request");
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| EngineError::from_bollard(&self.where_(), e))?;
            answer.extend_from_slice(&chunk);
        }
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::json!({}));
        }
        serde_json::from_slice(&answer)
            .map_err(|e| EngineError::Api(format!("{path}: the engine's answer is not JSON: {e}")))
    }

    /// One container; `Ok(None)` when it no longer exists.
    pub async fn inspect(&self, id: &str) -> Result<Option<Container>, EngineError> {
        match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(i) => Ok(Some(Container::from_inspect(&i))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(EngineError::from_bollard(&self.where_(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_versions_compare() {
        assert!(super::parse_api("1.41") >= super::MIN_API);
        assert!(super::parse_api("1.40") < super::MIN_API);
        assert!(super::parse_api("1.52") > super::MIN_API);
    }

    #[test]
    fn an_unreachable_engine_over_ssh_is_not_sent_to_its_dockerd() {
        use super::EngineError::Unreachable;
        let local = Unreachable("unix:///var/run/docker.sock".into(), "refused".into());
        assert!(
            local
                .to_string()
                .ends_with("Is dockerd running? (start it with `sudo systemctl start docker`)")
        );
        let remote = Unreachable(
            "ssh://two".into(),
            "cannot connect to 127.0.0.1:22: connection refused; is sshd running there?".into(),
        );
        assert_eq!(
            remote.to_string(),
            "cannot reach the Docker engine at ssh://two: cannot connect to 127.0.0.1:22: \
             connection refused; is sshd running there?"
        );
    }
}
