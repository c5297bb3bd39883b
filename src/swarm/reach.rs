//! Which configured server is a swarm node. The manager's API lists every task, but a task's CPU
//! and memory can only be read on the node that runs it: berth reads them there when the config
//! lists that node as a server, through the same connection it would open for that server.

use std::collections::BTreeMap;

use super::{NodeInfo, Snapshot};
use crate::config::Config;
use crate::target::{Endpoint, parse_address};

/// The configured server that is `node`: one named as the node's hostname, or whose address is
/// the node's hostname or the address the swarm knows it by. A unix socket or docker context
/// server is matched by its name only (its address names no host).
pub fn server_for_node(config: &Config, node: &NodeInfo) -> Option<String> {
    let names_node = |host: &str| {
        let host = host.trim();
        !host.is_empty()
            && (host.eq_ignore_ascii_case(&node.hostname)
                || (!node.address.is_empty() && host == node.address))
    };
    if node.hostname.is_empty() && node.address.is_empty() {
        return None;
    }
    if let Some((name, _)) = config
        .servers
        .iter()
        .find(|(name, _)| !node.hostname.is_empty() && name.eq_ignore_ascii_case(&node.hostname))
    {
        return Some(name.clone());
    }
    config
        .servers
        .iter()
        .find(|(_, server)| match parse_address(&server.target) {
            Ok(Some(Endpoint::Ssh(spec))) => names_node(&spec.host),
            Ok(Some(Endpoint::Tcp(addr))) => {
                names_node(addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h))
            }
            Ok(Some(Endpoint::Unix(_))) | Err(_) => false,
            // A bare word: an ssh alias or a host name.
            Ok(None) => !server.target.starts_with("context:") && names_node(&server.target),
        })
        .map(|(name, _)| name.clone())
}

/// For the running tasks on nodes other than the connected one: the server each node is, and the
/// containers to read there, by server. `current` is the server berth is connected to; it is
/// never asked twice. Tasks on nodes no server matches are left out (they show `— other node`).
pub fn remote_running_containers(
    snapshot: &Snapshot,
    config: &Config,
    current: &str,
) -> BTreeMap<String, Vec<String>> {
    let servers: BTreeMap<&str, String> = snapshot
        .nodes
        .iter()
        .filter(|n| snapshot.local_node.as_deref() != Some(n.id.as_str()))
        .filter_map(|n| Some((n.id.as_str(), server_for_node(config, n)?)))
        .filter(|(_, server)| server != current)
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in snapshot
        .tasks
        .iter()
        .filter(|t| t.is_running() && !snapshot.is_local(t))
    {
        if let (Some(server), Some(id)) = (servers.get(t.node_id.as_str()), &t.container_id) {
            out.entry(server.clone()).or_default().push(id.clone());
        }
    }
    out
}

/// The server a task's node is, when berth reads that node's stats.
pub fn server_of_task<'a>(
    servers: &'a BTreeMap<String, Vec<String>>,
    container_id: &str,
) -> Option<&'a str> {
    servers
        .iter()
        .find(|(_, ids)| ids.iter().any(|id| id == container_id))
        .map(|(server, _)| server.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    fn node(id: &str, hostname: &str, address: &str) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            hostname: hostname.into(),
            role: "worker".into(),
            leader: false,
            availability: "active".into(),
            status: "ready".into(),
            engine_version: "20.10".into(),
            address: address.into(),
            tasks: 1,
            cpus: 1.0,
            memory_bytes: 0,
            version: 1,
        }
    }

    fn config(servers: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (name, target) in servers {
            c.servers.insert(
                name.to_string(),
                ServerConfig {
                    target: target.to_string(),
                    ..Default::default()
                },
            );
        }
        c
    }

    #[test]
    fn a_node_is_the_server_named_as_its_hostname_or_at_its_address() {
        let c = config(&[
            ("vps-2", "unix:///run/worker.sock"),
            ("db", "deploy@db.internal:2222"),
            ("edge", "ssh://root@10.0.0.7"),
            ("cache", "tcp://cache-1:2376"),
            ("alias", "old-box"),
            ("ctx", "context:old-box-2"),
        ]);
        let at = |h: &str, a: &str| server_for_node(&c, &node("n", h, a));
        assert_eq!(at("VPS-2", "10.0.0.2").as_deref(), Some("vps-2"));
        assert_eq!(at("db.internal", "").as_deref(), Some("db"));
        assert_eq!(at("edge-host", "10.0.0.7").as_deref(), Some("edge"));
        assert_eq!(at("cache-1", "").as_deref(), Some("cache"));
        assert_eq!(at("old-box", "").as_deref(), Some("alias"));
        // A context names no host; neither does a unix socket.
        assert_eq!(at("old-box-2", ""), None);
        assert_eq!(at("run", ""), None);
        assert_eq!(at("", ""), None);
        assert_eq!(at("other", "10.0.0.9"), None);
    }

    #[test]
    fn running_tasks_elsewhere_are_read_on_their_nodes_server_and_the_current_one_is_never_asked() {
        use super::super::TaskInfo;
        let task = |id: &str, node: &str, state: &str| TaskInfo {
            id: id.into(),
            service_id: "s".into(),
            service: "web".into(),
            slot: Some(1),
            node_id: node.into(),
            node: node.into(),
            state: state.into(),
            since: None,
            desired_state: "running".into(),
            error: None,
            message: None,
            container_id: Some(format!("c-{id}")),
            image: "web:v1".into(),
            health: None,
            created_at: None,
        };
        let snapshot = Snapshot {
            services: vec![],
            tasks: vec![
                task("1", "m", "running"),
                task("2", "w", "running"),
                task("3", "w", "failed"),
                task("4", "x", "running"),
                task("5", "y", "running"),
            ],
            nodes: vec![
                node("m", "manager", ""),
                node("w", "worker", ""),
                node("x", "unlisted", ""),
                node("y", "self", ""),
            ],
            local_node: Some("m".into()),
        };
        let c = config(&[
            ("worker", "unix:///w.sock"),
            ("manager", "unix:///m.sock"),
            ("self", "unix:///s.sock"),
        ]);
        let wanted = remote_running_containers(&snapshot, &c, "self");
        assert_eq!(
            wanted.into_iter().collect::<Vec<_>>(),
            vec![("worker".to_string(), vec!["c-2".to_string()])]
        );
    }
}
