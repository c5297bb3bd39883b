//! Where the tasks of a drained node can go: nodes that are active and ready, whose role,
//! hostname, id, platform and labels meet the service's placement constraints, that are below the
//! service's max replicas per node and have the CPU and memory its tasks reserve left. Read from
//! the engine's own JSON of services and nodes, so a drain plan counts what the scheduler counts.

use std::collections::BTreeMap;

use serde_json::Value;

/// A node as the placement reads it.
#[derive(Debug, Clone)]
pub(crate) struct NodeFit {
    pub id: String,
    pub hostname: String,
    open: bool,
    facts: BTreeMap<String, String>,
    cpu_free: i64,
    memory_free: i64,
    per_service: BTreeMap<String, u64>,
}

/// What a service asks of the node a task runs on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Needs {
    pub constraints: Vec<String>,
    pub max_per_node: u64,
    pub cpu: i64,
    pub memory: i64,
}

impl Needs {
    /// From the engine's JSON of a service (`GET /services`).
    pub fn of(service: &Value) -> Needs {
        let tt = service.pointer("/Spec/TaskTemplate");
        let get = |p: &str| tt.and_then(|t| t.pointer(p));
        Needs {
            constraints: get("/Placement/Constraints")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            max_per_node: get("/Placement/MaxReplicas")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            cpu: get("/Resources/Reservations/NanoCPUs")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            memory: get("/Resources/Reservations/MemoryBytes")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        }
    }
}

impl NodeFit {
    /// From the engine's JSON of a node (`GET /nodes`); `open`: active and ready.
    pub fn of(node: &Value) -> NodeFit {
        let s = |p: &str| {
            node.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut facts = BTreeMap::new();
        facts.insert("node.id".into(), s("/ID"));
        facts.insert("node.hostname".into(), s("/Description/Hostname"));
        facts.insert("node.role".into(), s("/Spec/Role"));
        facts.insert("node.platform.os".into(), s("/Description/Platform/OS"));
        facts.insert(
            "node.platform.arch".into(),
            s("/Description/Platform/Architecture"),
        );
        for (prefix, path) in [
            ("node.labels.", "/Spec/Labels"),
            ("engine.labels.", "/Description/Engine/Labels"),
        ] {
            if let Some(labels) = node.pointer(path).and_then(Value::as_object) {
                for (k, v) in labels {
                    facts.insert(
                        format!("{prefix}{k}"),
                        v.as_str().unwrap_or_default().to_string(),
                    );
                }
            }
        }
        let availability = s("/Spec/Availability");
        NodeFit {
            id: s("/ID"),
            hostname: s("/Description/Hostname"),
            open: (availability.is_empty() || availability == "active")
                && s("/Status/State") == "ready",
            facts,
            cpu_free: node
                .pointer("/Description/Resources/NanoCPUs")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            memory_free: node
                .pointer("/Description/Resources/MemoryBytes")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            per_service: BTreeMap::new(),
        }
    }

    /// A task of `service` that already runs here takes its reservation and a replica slot.
    pub fn holds(&mut self, service: &str, needs: &Needs) {
        self.cpu_free -= needs.cpu;
        self.memory_free -= needs.memory;
        *self.per_service.entry(service.to_string()).or_default() += 1;
    }

    /// Whether `needs` keeps this node; `Err` says which rule does not.
    fn fits(&self, service: &str, needs: &Needs) -> Result<(), Refusal> {
        if !self.open {
            return Err(Refusal::NotOpen);
        }
        if let Some(c) = needs.constraints.iter().find(|c| !self.meets(c)) {
            return Err(Refusal::Constraint(c.clone()));
        }
        if needs.max_per_node > 0
            && self.per_service.get(service).copied().unwrap_or(0) >= needs.max_per_node
        {
            return Err(Refusal::MaxPerNode(needs.max_per_node));
        }
        if needs.cpu > self.cpu_free || needs.memory > self.memory_free {
            return Err(Refusal::Resources);
        }
        Ok(())
    }

    /// `key==value` / `key!=value`, as swarm compares them (case-insensitively); a key this
    /// node does not have is an empty value.
    fn meets(&self, constraint: &str) -> bool {
        let (key, want, equal) = match constraint.split_once("!=") {
            Some((k, v)) => (k, v, false),
            None => match constraint.split_once("==") {
                Some((k, v)) => (k, v, true),
                None => return false,
            },
        };
        let have = self.facts.get(key.trim()).map(String::as_str).unwrap_or("");
        have.eq_ignore_ascii_case(want.trim()) == equal
    }
}

/// Why a node cannot take a task, the most telling first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    NotOpen,
    Constraint(String),
    MaxPerNode(u64),
    Resources,
}

/// Where one task goes: the node that takes it, or why none can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    Node(String),
    Nowhere(String),
}

/// Places a task of `service` on the first node (fewest tasks of the service first, as the
/// scheduler spreads) that fits, taking its room; or says why none can take it.
pub(crate) fn place(nodes: &mut [NodeFit], service: &str, needs: &Needs) -> Destination {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&i| nodes[i].per_service.get(service).copied().unwrap_or(0));
    let mut best: Option<Refusal> = None;
    for i in order {
        match nodes[i].fits(service, needs) {
            Ok(()) => {
                nodes[i].holds(service, needs);
                return Destination::Node(nodes[i].hostname.clone());
            }
            Err(r) => {
                // The refusal that came furthest through the rules explains the most.
                if best.as_ref().is_none_or(|b| r > *b) {
                    best = Some(r);
                }
            }
        }
    }
    Destination::Nowhere(match best {
        None | Some(Refusal::NotOpen) => "no other node is active and ready".into(),
        Some(Refusal::Constraint(c)) => format!("no active node meets its constraint {c}"),
        Some(Refusal::MaxPerNode(n)) => {
            format!("every active node that may run it already has {n} (its max replicas per node)")
        }
        Some(Refusal::Resources) => {
            "no active node has the CPU and memory its task reserves left".into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(id: &str, role: &str, availability: &str, cpus: i64, labels: Value) -> NodeFit {
        NodeFit::of(&json!({
            "ID": id,
            "Spec": {"Role": role, "Availability": availability, "Labels": labels},
            "Description": {"Hostname": format!("h-{id}"), "Platform": {"OS": "linux", "Architecture": "x86_64"},
                "Resources": {"NanoCPUs": cpus, "MemoryBytes": 1_000_000_000i64}},
            "Status": {"State": "ready"}
        }))
    }

    #[test]
    fn constraints_roles_drained_nodes_and_reservations_decide_where_a_task_goes() {
        let mut nodes = vec![
            node(
                "w1",
                "worker",
                "active",
                2_000_000_000,
                json!({"disk": "ssd"}),
            ),
            node("w2", "worker", "drain", 2_000_000_000, json!({})),
        ];
        let free = Needs::default();
        assert_eq!(
            place(&mut nodes, "s", &free),
            Destination::Node("h-w1".into())
        );
        let manager_only = Needs {
            constraints: vec!["node.role == manager".into()],
            ..Needs::default()
        };
        match place(&mut nodes, "s", &manager_only) {
            Destination::Nowhere(why) => assert!(why.contains("node.role == manager"), "{why}"),
            d => panic!("{d:?}"),
        }
        let ssd = Needs {
            constraints: vec!["node.labels.disk==SSD".into(), "node.role!=manager".into()],
            ..Needs::default()
        };
        assert_eq!(
            place(&mut nodes, "s", &ssd),
            Destination::Node("h-w1".into())
        );
        // One core and a half reserved: the first fits, the second finds no room left.
        let big = Needs {
            cpu: 1_500_000_000,
            ..Needs::default()
        };
        assert_eq!(
            place(&mut nodes, "b", &big),
            Destination::Node("h-w1".into())
        );
        match place(&mut nodes, "b", &big) {
            Destination::Nowhere(why) => assert!(why.contains("CPU and memory"), "{why}"),
            d => panic!("{d:?}"),
        }
        let one_each = Needs {
            max_per_node: 1,
            ..Needs::default()
        };
        assert_eq!(
            place(&mut nodes, "m", &one_each),
            Destination::Node("h-w1".into())
        );
        match place(&mut nodes, "m", &one_each) {
            Destination::Nowhere(why) => assert!(why.contains("max replicas"), "{why}"),
            d => panic!("{d:?}"),
        }
        match place(&mut [], "s", &free) {
            Destination::Nowhere(why) => assert_eq!(why, "no other node is active and ready"),
            d => panic!("{d:?}"),
        }
    }
}
