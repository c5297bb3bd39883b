//! Port forwards: a local listener whose every connection reaches a container's port over the
//! server's existing SSH session (a direct-tcpip channel to the container's address on its network,
//! or to the published port when that address cannot be reached). Read-only: nothing changes on the
//! server. The session reconnects by itself, so a forward outlives a dropped link. No terminal here.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::ssh::SshSession;

/// Connections one forward carries at once (each holds a channel of the SSH session).
const MAX_CONNECTIONS: usize = 64;

/// Where a forward's connections go: addresses tried in order, the first that answers wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub container: String,
    pub port: u16,
    /// `(host, port, what)`: e.g. `("172.18.0.4", 8080, "network app_default")`.
    pub addresses: Vec<(String, u16, String)>,
}

/// What happened to one forwarded connection that could not be carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFailed {
    pub peer: SocketAddr,
    pub reason: String,
}

/// How connections leave this machine: over the SSH session, or straight (a local engine).
#[derive(Clone)]
pub enum Dialer {
    Ssh(Arc<SshSession>),
    Direct,
}

/// News of a forward the console runs, for its screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardEvent {
    /// Listening on `local`; connections go to `via` first (`172.18.0.4:8080 (network app_default)`).
    Listening { local: SocketAddr, via: String },
    /// It could not start (no route, the local port taken, no way to dial): it is not running.
    Failed(String),
    /// One connection could not be carried; the forward stays up.
    Connection(ConnectionFailed),
}

impl Dialer {
    /// How `engine`'s forwards dial: over its SSH session, or straight for a local engine; a TCP
    /// engine has neither.
    pub fn for_engine(engine: &Engine) -> Result<Dialer, String> {
        match (&engine.ssh, &engine.target.endpoint) {
            (Some(s), _) => Ok(Dialer::Ssh(s.clone())),
            (None, crate::target::Endpoint::Unix(_)) => Ok(Dialer::Direct),
            (None, _) => Err(
                "forward needs the server over ssh (or a local engine): connect with -s ssh://… or an ~/.ssh/config alias"
                    .into(),
            ),
        }
    }
}

/// The route to the container `id` (shown as `name`), read from its inspect.
pub async fn route_to(
    engine: &Engine,
    id: &str,
    name: &str,
    port: Option<u16>,
) -> Result<Route, String> {
    let json = engine
        .get_json(&format!("/containers/{id}/json"))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    if json["State"]["Running"].as_bool() != Some(true) {
        return Err(format!("{name} is not running: start it first"));
    }
    route_of(name, &json, port)
}

/// Works out where `name`'s `port` (its first exposed TCP port when `None`) is reached.
pub async fn route(engine: &Engine, name: &str, port: Option<u16>) -> Result<Route, String> {
    let containers = engine.containers().await.map_err(|e| e.to_string())?;
    let running: Vec<&crate::engine::model::Container> =
        containers.iter().filter(|c| c.state.is_up()).collect();
    let found = crate::logs::containers_named(&running, name)
        .map_err(|e| format!("no running container matches {name}: {e}"))?;
    let c = match found.as_slice() {
        [one] => *one,
        [] => return Err(format!("no running container matches {name}")),
        many => {
            return Err(format!(
                "{name} matches {} running containers ({}): name one",
                many.len(),
                many.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    route_to(engine, &c.id, &c.name, port).await
}

/// The route from a container's inspect JSON (pure: the tests feed it).
pub fn route_of(
    container: &str,
    json: &serde_json::Value,
    port: Option<u16>,
) -> Result<Route, String> {
    let tcp_ports = |v: &serde_json::Value| -> Vec<u16> {
        let mut p: Vec<u16> = v
            .as_object()
            .map(|o| {
                o.keys()
                    .filter_map(|k| k.strip_suffix("/tcp")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        p.sort_unstable();
        p
    };
    let published = &json["NetworkSettings"]["Ports"];
    let port = match port {
        Some(p) => p,
        None => tcp_ports(&json["Config"]["ExposedPorts"])
            .into_iter()
            .chain(tcp_ports(published))
            .next()
            .ok_or_else(|| {
                format!(
                    "{container} exposes no TCP port: name one (berth forward {container} PORT)"
                )
            })?,
    };
    let mut addresses = Vec::new();
    let mode = json["HostConfig"]["NetworkMode"].as_str().unwrap_or("");
    if mode == "host" {
        addresses.push(("127.0.0.1".into(), port, "the host's network".into()));
    }
    if let Some(nets) = json["NetworkSettings"]["Networks"].as_object() {
        for (net, v) in nets {
            if let Some(ip) = v["IPAddress"].as_str().filter(|ip| !ip.is_empty()) {
                addresses.push((ip.to_string(), port, format!("network {net}")));
            }
        }
    }
    if let Some(bindings) = published[format!("{port}/tcp")].as_array() {
        for b in bindings {
            let Some(hp) = b["HostPort"].as_str().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let ip = match b["HostIp"].as_str().unwrap_or("") {
                "" | "0.0.0.0" => "127.0.0.1".to_string(),
                "::" => "::1".to_string(),
                other => other.to_string(),
            };
            if !addresses.iter().any(|(h, p, _)| *h == ip && *p == hp) {
                addresses.push((ip, hp, "its published port".into()));
            }
        }
    }
    if addresses.is_empty() {
        return Err(format!(
            "{container} has no address on a network and no published port {port}: nothing to forward to"
        ));
    }
    Ok(Route {
        container: container.to_string(),
        port,
        addresses,
    })
}

/// A running forward: listening until cancelled (or dropped with its token).
pub struct Forward {
    pub local: SocketAddr,
    pub route: Route,
    pub stop: CancellationToken,
}

impl Forward {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.local.ip() {
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", self.local.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}", self.local.port()),
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Listens on `bind:local` (`local` `None`: the container's port number when free, else any free
/// port) and carries each connection along `route`; a connection that cannot be carried is
/// reported on `failures` and closed, and the forward stays up.
pub async fn start(
    dialer: Dialer,
    route: Route,
    bind: IpAddr,
    local: Option<u16>,
    failures: mpsc::Sender<ConnectionFailed>,
) -> Result<Forward, String> {
    let listener = match local {
        Some(p) => TcpListener::bind((bind, p)).await.map_err(|e| {
            format!(
                "cannot listen on {}: {e}: pick another local port",
                SocketAddr::new(bind, p)
            )
        })?,
        None => match TcpListener::bind((bind, route.port)).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind((bind, 0))
                .await
                .map_err(|e| format!("cannot listen on {bind}: {e}"))?,
        },
    };
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let route_arc = Arc::new(route.clone());
    // The address that answered last is tried first next time.
    let preferred = Arc::new(AtomicUsize::new(0));
    let token = stop.clone();
    // At most this many connections are carried at once (each holds an SSH channel); the next
    // waits in the listen backlog until one ends.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let accepted = tokio::select! {
                _ = token.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((socket, peer)) = accepted else {
                // Out of descriptors and the like: a pause, not a busy loop.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let (dialer, route, preferred, failures, token) = (
                dialer.clone(),
                route_arc.clone(),
                preferred.clone(),
                failures.clone(),
                token.clone(),
            );
            tokio::spawn(async move {
                let _slot = slot;
                tokio::select! {
                    _ = token.cancelled() => {}
                    r = carry(socket, &dialer, &route, &preferred) => {
                        if let Err(reason) = r {
                            let _ = failures.try_send(ConnectionFailed { peer, reason });
                        }
                    }
                }
            });
        }
    });
    Ok(Forward { local, route, stop })
}

async fn carry(
    mut socket: TcpStream,
    dialer: &Dialer,
    route: &Route,
    preferred: &AtomicUsize,
) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    let n = route.addresses.len();
    let first = preferred.load(Ordering::Relaxed) % n;
    let mut errors = Vec::new();
    for i in (0..n).map(|k| (first + k) % n) {
        let (host, port, what) = &route.addresses[i];
        let opened: Result<(), String> = match dialer {
            Dialer::Ssh(s) => match s.direct_tcpip(host, *port).await {
                Ok(mut ch) => {
                    preferred.store(i, Ordering::Relaxed);
                    let _ = tokio::io::copy_bidirectional(&mut socket, &mut ch).await;
                    return Ok(());
                }
                Err(e) => Err(e.to_string()),
            },
            Dialer::Direct => match TcpStream::connect((host.as_str(), *port)).await {
                Ok(mut up) => {
                    preferred.store(i, Ordering::Relaxed);
                    let _ = tokio::io::copy_bidirectional(&mut socket, &mut up).await;
                    return Ok(());
                }
                Err(e) => Err(e.to_string()),
            },
        };
        if let Err(e) = opened {
            errors.push(format!("{host}:{port} ({what}): {e}"));
        }
    }
    Err(format!(
        "{}:{} could not be reached: {}",
        route.container,
        route.port,
        errors.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_prefers_the_network_address_then_the_published_port() {
        let json = serde_json::json!({
            "Config": {"ExposedPorts": {"8080/tcp": {}, "53/udp": {}}},
            "HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {
                "Networks": {"app_default": {"IPAddress": "172.18.0.4"}},
                "Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}]}
            }
        });
        let r = route_of("web", &json, None).unwrap();
        assert_eq!(r.port, 8080);
        assert_eq!(
            r.addresses,
            vec![
                ("172.18.0.4".into(), 8080, "network app_default".into()),
                ("127.0.0.1".into(), 18080, "its published port".into()),
            ]
        );
        let none = serde_json::json!({"Config": {}, "NetworkSettings": {}});
        assert!(
            route_of("x", &none, None)
                .unwrap_err()
                .contains("exposes no TCP port")
        );
    }
}
