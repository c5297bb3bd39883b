//! A service's spec as the engine's own JSON: berth edits the one field a plan names and writes
//! the rest back as the engine wrote it, so fields berth's types do not model (or a newer engine
//! added) are neither dropped nor defaulted; and what an edit changes, in words for the plan.

use serde_json::{Map, Value, json};

use super::{SwarmAction, UpdatePolicy};

/// The spec after `action` (and, for an update berth makes, the update config fields of `policy`
/// that differ from the service's): every other field exactly as in `spec`.
pub(crate) fn edit(
    spec: &Value,
    action: &SwarmAction,
    image: Option<&str>,
    policy: Option<&UpdatePolicy>,
) -> Result<Value, String> {
    let mut out = spec.clone();
    let root = out
        .as_object_mut()
        .ok_or("the engine's service spec is not a JSON object")?;
    match action {
        SwarmAction::Scale(n) => {
            let replicated = root
                .get_mut("Mode")
                .and_then(|m| m.get_mut("Replicated"))
                .and_then(Value::as_object_mut)
                .ok_or("the service is not replicated: only a replicated service has replicas")?;
            replicated.insert("Replicas".into(), json!(n));
        }
        SwarmAction::Restart => {
            let tt = object_at(root, "TaskTemplate");
            let n = tt.get("ForceUpdate").and_then(Value::as_u64).unwrap_or(0);
            tt.insert("ForceUpdate".into(), json!(n + 1));
        }
        SwarmAction::Image(to) => {
            let cs = object_at(object_at(root, "TaskTemplate"), "ContainerSpec");
            cs.insert("Image".into(), json!(image.unwrap_or(to)));
        }
        // The swarm's rollback takes the spec as it is and puts its previous one back.
        SwarmAction::Rollback => {}
        SwarmAction::Drain | SwarmAction::Activate => {
            return Err("a node's availability is not a service spec".into());
        }
    }
    if let Some(policy) = policy {
        let uc = object_at(root, "UpdateConfig");
        for (k, v) in policy.fields() {
            if !same(uc.get(k), Some(&v)) {
                uc.insert(k.into(), v);
            }
        }
    }
    Ok(out)
}

/// The object under `key`, made when absent (or not an object).
fn object_at<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = m.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("made an object above")
}

impl UpdatePolicy {
    /// The `UpdateConfig` fields berth sets, as the engine writes them.
    pub(crate) fn fields(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("Parallelism", json!(self.parallelism)),
            ("Delay", json!(0)),
            ("FailureAction", json!(self.failure_action)),
            ("Monitor", json!(self.monitor_secs * 1_000_000_000)),
            ("MaxFailureRatio", json!(0)),
            ("Order", json!(self.order)),
        ]
    }
}

/// One field that differs between two specs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    /// Dotted path of the engine's field names: `Mode.Replicated.Replicas`.
    pub path: String,
    pub before: Value,
    pub after: Value,
}

/// Every field that differs between `before` and `after`. A field the engine leaves out is the
/// same as its zero value (the engine omits empty fields when it writes a spec).
pub(crate) fn differences(before: &Value, after: &Value) -> Vec<Change> {
    let mut paths = Vec::new();
    diff_into(
        &mut Vec::new(),
        &normalized(before).unwrap_or(Value::Null),
        &normalized(after).unwrap_or(Value::Null),
        &mut paths,
    );
    // Shown as the engine wrote them (`0`, not the absence it compares equal to).
    let raw = |v: &Value, path: &[String]| {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    paths
        .into_iter()
        .map(|p| Change {
            before: raw(before, &p),
            after: raw(after, &p),
            path: p.join("."),
        })
        .collect()
}

fn diff_into(path: &mut Vec<String>, a: &Value, b: &Value, out: &mut Vec<Vec<String>>) {
    // An object that appears or goes is told field by field (`Labels.team (none) → ops`).
    let empty = Value::Object(Map::new());
    let (a, b) = match (a, b) {
        (Value::Null, Value::Object(_)) => (&empty, b),
        (Value::Object(_), Value::Null) => (a, &empty),
        _ => (a, b),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                path.push(k.clone());
                diff_into(
                    path,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
                path.pop();
            }
        }
        _ if a == b => {}
        _ => out.push(path.clone()),
    }
}

/// The value with empty fields left out (`None` when it is empty itself) and whole floats
/// written as integers, so the engine's `0` and a written `0.0` compare equal.
fn normalized(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f == 0.0 {
                None
            } else if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 {
                Some(json!(f as i64))
            } else {
                Some(v.clone())
            }
        }
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .map(|x| normalized(x).unwrap_or(Value::Null))
                .collect(),
        )),
        Value::Object(m) => {
            let kept: Map<String, Value> = m
                .iter()
                .filter_map(|(k, x)| normalized(x).map(|x| (k.clone(), x)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        _ => Some(v.clone()),
    }
}

fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    normalized(a.unwrap_or(&Value::Null)) == normalized(b.unwrap_or(&Value::Null))
}

/// `spec unchanged except replicas 2 → 3, image a → b`; `spec unchanged` when nothing differs.
pub(crate) fn describe(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "spec unchanged".into();
    }
    let parts: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "{} {} → {}",
                field_name(&c.path),
                shown(&c.before),
                shown(&c.after)
            )
        })
        .collect();
    format!("spec unchanged except {}", parts.join(", "))
}

fn field_name(path: &str) -> String {
    match path {
        "Mode.Replicated.Replicas" => "replicas".into(),
        "TaskTemplate.ContainerSpec.Image" => "image".into(),
        "TaskTemplate.ForceUpdate" => "force-update counter".into(),
        p => match p.strip_prefix("UpdateConfig.") {
            Some(f) => format!("update config {}", f.to_lowercase()),
            None => p.to_string(),
        },
    }
}

fn shown(v: &Value) -> String {
    let text = match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::format::printable(&text).chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec as Engine 20.10 writes it, with a field no engine berth knows has
    /// (`TaskTemplate.ContainerSpec.FutureThing`) and one bollard's types lack.
    fn spec() -> Value {
        serde_json::from_str(
            r#"{"Name":"web","Labels":{"team":"a"},
                "TaskTemplate":{"ContainerSpec":{"Image":"web:v1@sha256:abc","Healthcheck":{"Test":["CMD","/web","-check"],"Interval":1000000000},
                  "FutureThing":{"Knob":[1,2,3],"Ratio":0.25},"Isolation":"default"},
                  "Resources":{"Limits":{"MemoryBytes":67108864}},"Placement":{"Constraints":["node.role==manager"]},"ForceUpdate":0,"Runtime":"container"},
                "Mode":{"Replicated":{"Replicas":2}},
                "UpdateConfig":{"Parallelism":2,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"},
                "EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"}]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_scale_changes_the_replicas_and_keeps_every_other_field_as_the_engine_wrote_it() {
        let before = spec();
        let after = edit(&before, &SwarmAction::Scale(3), None, None).unwrap();
        let mut expected = before.clone();
        expected["Mode"]["Replicated"]["Replicas"] = json!(3);
        assert_eq!(
            after, expected,
            "only the replicas differ, unknown fields kept"
        );
        assert_eq!(
            after["TaskTemplate"]["ContainerSpec"]["FutureThing"],
            json!({"Knob":[1,2,3],"Ratio":0.25})
        );
        let changes = differences(&before, &after);
        assert_eq!(describe(&changes), "spec unchanged except replicas 2 → 3");
        // The bytes the engine gets back carry the unknown field unchanged.
        let written = serde_json::to_string(&after).unwrap();
        assert!(
            written.contains(r#""FutureThing":{"Knob":[1,2,3],"Ratio":0.25}"#),
            "{written}"
        );
    }

    #[test]
    fn an_image_update_names_the_image_and_the_update_config_fields_it_sets() {
        let before = spec();
        let policy = UpdatePolicy {
            parallelism: 1,
            order: "start-first",
            monitor_secs: 5,
            failure_action: "rollback",
        };
        let after = edit(
            &before,
            &SwarmAction::Image("v2".into()),
            Some("web:v2"),
            Some(&policy),
        )
        .unwrap();
        let changes = differences(&before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "TaskTemplate.ContainerSpec.Image",
                "UpdateConfig.FailureAction",
                "UpdateConfig.Order",
                "UpdateConfig.Parallelism"
            ]
        );
        assert_eq!(
            describe(&changes),
            "spec unchanged except image web:v1@sha256:abc → web:v2, update config failureaction pause → rollback, update config order stop-first → start-first, update config parallelism 2 → 1"
        );
        // Zero fields the engine omits are not written as changes (Delay 0, MaxFailureRatio 0).
        assert!(after["UpdateConfig"].get("Delay").is_none());
    }

    #[test]
    fn a_restart_bumps_the_force_update_counter_only() {
        let before = spec();
        let after = edit(&before, &SwarmAction::Restart, None, None).unwrap();
        assert_eq!(
            describe(&differences(&before, &after)),
            "spec unchanged except force-update counter 0 → 1"
        );
    }

    #[test]
    fn a_global_service_cannot_be_scaled_and_omitted_zero_fields_are_no_difference() {
        let global = json!({"Mode":{"Global":{}}});
        let e = edit(&global, &SwarmAction::Scale(2), None, None).unwrap_err();
        assert!(e.contains("not replicated"), "{e}");
        let a = json!({"UpdateConfig":{"Delay":0,"MaxFailureRatio":0.0,"Order":"stop-first"}});
        let b = json!({"UpdateConfig":{"Order":"stop-first"},"Labels":{}});
        assert!(differences(&a, &b).is_empty());
        assert_eq!(differences(&a, &json!({})).len(), 1);
        let labelled = json!({"Labels":{"team":"ops"}});
        assert_eq!(
            describe(&differences(&b, &labelled)),
            "spec unchanged except Labels.team (none) → ops, update config order stop-first → (none)"
        );
    }
}
