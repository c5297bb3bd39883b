//! The runbook on a swarm: scale, restart (a forced rolling update), the swarm's own rollback to the
//! previous spec, an update to a chosen image with an update config berth states in the plan, and
//! draining or activating a node. Each is one spec change through the manager, then a bounded wait
//! that watches the tasks converge: every task wanted running is running (swarm holds a task in
//! `starting` until its health check passes) and the update status is final.
//!
//! `plan.rs` reads the manager and writes the plan; `execute.rs` makes the change and watches it
//! converge.

use std::time::Duration;

use serde::Serialize;

use super::RunbookError;
use crate::swarm::ServiceInfo;

mod execute;
mod placement;
mod plan;
pub(crate) mod spec;

pub(crate) use execute::{run, run_stack};
pub use plan::{image_for, plan_swarm};
/// What to do on a swarm service or node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwarmAction {
    /// Set a replicated service's replicas.
    Scale(u64),
    /// Replace every task (force update), one at a time.
    Restart,
    /// The swarm's own rollback to the service's previous spec.
    Rollback,
    /// Update the service to this image: a tag of its repository or a full reference.
    Image(String),
    /// Move every task off a node.
    Drain,
    /// Let a node take tasks again.
    Activate,
}

impl SwarmAction {
    pub fn name(&self) -> &'static str {
        match self {
            SwarmAction::Scale(_) => "scale",
            SwarmAction::Restart => "restart",
            SwarmAction::Rollback | SwarmAction::Image(_) => "rollback",
            SwarmAction::Drain => "drain",
            SwarmAction::Activate => "activate",
        }
    }

    fn on_node(&self) -> bool {
        matches!(self, SwarmAction::Drain | SwarmAction::Activate)
    }
}

/// A change on a swarm service (by name, id or `stack/service`) or node (hostname or id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmRequest {
    pub action: SwarmAction,
    pub name: String,
}

impl SwarmRequest {
    pub fn label(&self) -> String {
        match &self.action {
            SwarmAction::Scale(n) => format!("scale {}={n}", self.name),
            SwarmAction::Image(i) => format!("rollback {} to {i}", self.name),
            a => format!("{} {}", a.name(), self.name),
        }
    }
}

/// `web=3` → (`web`, 3).
pub fn parse_scale(spec: &str) -> Result<(String, u64), RunbookError> {
    let bad = || {
        RunbookError::Invalid(format!(
            "'{spec}' is not SERVICE=REPLICAS: write e.g. `berth scale web=3`"
        ))
    };
    let (name, n) = spec.split_once('=').ok_or_else(bad)?;
    if let Ok(negative) = n.trim().parse::<i64>()
        && negative < 0
    {
        return Err(RunbookError::Invalid(format!(
            "'{spec}': replicas cannot be negative ({negative}); write SERVICE=REPLICAS with 0 or more, e.g. `berth scale {}=3`",
            name.trim()
        )));
    }
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if name.trim().is_empty() {
        return Err(bad());
    }
    if n > 1000 {
        return Err(RunbookError::Invalid(format!(
            "{n} replicas is more than berth scales to (1000); use docker service scale if you mean it"
        )));
    }
    Ok((name.trim().to_string(), n))
}

/// The update config berth sets for an update it makes: one task at a time, the new one started
/// before the old stops where no host-mode port forbids two at once, watched for a window, and
/// rolled back by the swarm when a task fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdatePolicy {
    pub parallelism: i64,
    pub order: &'static str,
    pub monitor_secs: u64,
    pub failure_action: &'static str,
}

impl UpdatePolicy {
    pub const MONITOR: Duration = Duration::from_secs(5);

    pub fn for_service(s: &ServiceInfo) -> UpdatePolicy {
        UpdatePolicy {
            parallelism: 1,
            order: if s.fixed_host_port() {
                "stop-first"
            } else {
                "start-first"
            },
            monitor_secs: Self::MONITOR.as_secs(),
            failure_action: "rollback",
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "parallelism {}, order {}, monitor {} s, failure action {}",
            self.parallelism, self.order, self.monitor_secs, self.failure_action
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SwarmPlan {
    action: SwarmAction,
    /// Service or node id.
    id: String,
    name: String,
    /// The image an update goes to (full reference), for the check after.
    image: Option<String>,
    policy: Option<UpdatePolicy>,
    /// Tasks on a node being drained: `(label, service id, slot)`.
    moving: Vec<(String, String, Option<i64>)>,
    wait: Duration,
    /// Index of this plan's first step in the run (not 0 inside a stack's run).
    step: usize,
}

/// Restart or rollback of every service of a stack: the services' own plans, run one after
/// another, each converged before the next; the first failure stops the run.
#[derive(Debug, Clone)]
pub(crate) struct StackPlan {
    pub stack: String,
    pub members: Vec<super::Plan>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::Mode;

    #[test]
    fn scale_specs_parse_or_say_how() {
        assert_eq!(parse_scale("web=3").unwrap(), ("web".into(), 3));
        assert_eq!(
            parse_scale(" shop_web = 0").unwrap(),
            ("shop_web".into(), 0)
        );
        for bad in ["web", "web=", "=3", "web=-1", "web=x"] {
            let e = parse_scale(bad).unwrap_err().to_string();
            assert!(e.contains("SERVICE=REPLICAS"), "{bad}: {e}");
        }
        assert!(
            parse_scale("web=5000")
                .unwrap_err()
                .to_string()
                .contains("1000")
        );
    }

    #[test]
    fn a_tag_names_the_same_repository() {
        assert_eq!(image_for("berth-test/web:v2", "v1"), "berth-test/web:v1");
        assert_eq!(
            image_for("localhost:5000/web:v2", "v1"),
            "localhost:5000/web:v1"
        );
        assert_eq!(image_for("web", "v1"), "web:v1");
        assert_eq!(image_for("web:v2", "other/img:3"), "other/img:3");
    }

    #[test]
    fn update_policy_starts_first_unless_a_host_port_is_published() {
        let mut s = ServiceInfo {
            id: "x".into(),
            name: "web".into(),
            stack: None,
            mode: Mode::Replicated,
            running: 1,
            desired: 1,
            image: "web:v1".into(),
            update_state: None,
            update_message: None,
            ports: vec![],
            has_healthcheck: true,
            version: 1,
            updated_at: None,
        };
        let p = UpdatePolicy::for_service(&s);
        assert_eq!(
            p.describe(),
            "parallelism 1, order start-first, monitor 5 s, failure action rollback"
        );
        s.ports.push(crate::swarm::Port {
            published: Some(8080),
            target: 80,
            protocol: "tcp".into(),
            mode: "host".into(),
        });
        assert_eq!(UpdatePolicy::for_service(&s).order, "stop-first");
        let fields = UpdatePolicy::for_service(&s).fields();
        assert!(fields.contains(&("Monitor", serde_json::json!(5_000_000_000u64))));
        assert!(fields.contains(&("FailureAction", serde_json::json!("rollback"))));
    }
}
