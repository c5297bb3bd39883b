//! Copies of a container: the create body that reproduces a container's exact configuration on
//! another image (rollback, migrate's one-off), and the compose labels a copy may or may not carry,
//! so compose never mistakes a kept container for a replica or a copy for the configuration it hashed.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ImageInspect, MountType,
    NetworkConnectRequest, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};

use super::model::{COMPOSE_PREFIX, KEPT_PREFIX, LABEL_KEPT_NAME, LABEL_KEPT_RESTART};
use super::{Engine, EngineError};

/// Labels compose derives from the configuration it created a container with (v1 and v2). A copy
/// running another image must not carry them: compose would call the service up to date while the
/// server runs something else. Without them compose sees the difference and recreates on `up -d`.
pub const COMPOSE_CONFIG_LABELS: [&str; 2] =
    ["com.docker.compose.config-hash", "com.docker.compose.image"];

/// Drops the labels that describe the configuration compose created the original from.
pub fn drop_compose_config_labels(labels: &mut HashMap<String, String>) {
    for l in COMPOSE_CONFIG_LABELS {
        labels.remove(l);
    }
}

/// Moves every compose label under [`KEPT_PREFIX`]: compose filters by project label, so the kept
/// container is no replica in its eyes (`ps` does not list it, `up -d` never adopts it), while berth
/// still reads where it belongs. The original name and restart policy are recorded for the restore.
pub fn hide_from_compose(body: &mut ContainerCreateBody, original_name: &str) {
    let labels = body.labels.get_or_insert_with(HashMap::new);
    let compose: Vec<String> = labels
        .keys()
        .filter(|k| k.starts_with(COMPOSE_PREFIX))
        .cloned()
        .collect();
    for k in compose {
        if let Some(v) = labels.remove(&k) {
            labels.insert(format!("{KEPT_PREFIX}{k}"), v);
        }
    }
    labels.insert(LABEL_KEPT_NAME.into(), original_name.into());
    // A kept container must never come back by itself (engine restart, `always` policy).
    if let Some(h) = body.host_config.as_mut() {
        let policy = h.restart_policy.take().unwrap_or_default();
        if let Ok(json) = serde_json::to_string(&policy) {
            labels.insert(LABEL_KEPT_RESTART.into(), json);
        }
        h.restart_policy = Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        });
    }
}

/// The inverse of [`hide_from_compose`]: compose labels and restart policy back, berth's marks gone.
pub fn give_back_to_compose(body: &mut ContainerCreateBody) {
    let labels = body.labels.get_or_insert_with(HashMap::new);
    let restart = labels.remove(LABEL_KEPT_RESTART);
    let kept: Vec<String> = labels
        .keys()
        .filter(|k| k.starts_with(KEPT_PREFIX))
        .cloned()
        .collect();
    for k in kept {
        let v = labels.remove(&k).unwrap_or_default();
        if let Some(orig) = k.strip_prefix(KEPT_PREFIX)
            && orig.starts_with(COMPOSE_PREFIX)
        {
            labels.insert(orig.to_string(), v);
        }
    }
    if let (Some(h), Some(json)) = (body.host_config.as_mut(), restart)
        && let Ok(p) = serde_json::from_str::<RestartPolicy>(&json)
    {
        h.restart_policy = Some(p);
    }
}

/// Creates a container from `body` under `name` and connects its further networks. A create that
/// fails halfway (a network refused) removes what it made, so nothing half-configured is left.
pub async fn create_copy(
    engine: &Engine,
    name: &str,
    mut body: ContainerCreateBody,
) -> Result<String, EngineError> {
    let d = &engine.docker;
    let where_ = engine.target.endpoint.to_string();
    let extra = take_extra_networks(&mut body);
    let created = d
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|e| EngineError::from_bollard(&where_, e))?;
    for (net, ep) in extra {
        if let Err(e) = d
            .connect_network(
                &net,
                NetworkConnectRequest {
                    container: created.id.clone(),
                    endpoint_config: Some(ep),
                },
            )
            .await
        {
            let _ = d
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await;
            return Err(EngineError::Api(format!(
                "connect {net}: {}",
                EngineError::from_bollard(&where_, e)
            )));
        }
    }
    Ok(created.id)
}

/// A host port pinned by number (or host networking, or a fixed IP) forbids two copies at once.
pub fn has_fixed_port(i: &ContainerInspectResponse) -> bool {
    let Some(h) = i.host_config.as_ref() else {
        return false;
    };
    if h.network_mode.as_deref() == Some("host") {
        return true;
    }
    let pinned = h.port_bindings.as_ref().is_some_and(|m| {
        m.values().flatten().flatten().any(|b| {
            b.host_port
                .as_deref()
                .is_some_and(|p| !p.is_empty() && p != "0")
        })
    });
    let fixed_ip = i
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .is_some_and(|n| {
            n.values().any(|e| {
                e.ipam_config
                    .as_ref()
                    .is_some_and(|c| c.ipv4_address.as_deref().is_some_and(|a| !a.is_empty()))
            })
        });
    pinned || fixed_ip
}

/// The create body for a copy of container `i` running `image`: its Config + HostConfig + network
/// endpoints. Settings the old image supplied (`old_image`) are left out so the new image's apply.
pub fn create_body_from(
    i: &ContainerInspectResponse,
    image: &str,
    old_image: Option<&ImageInspect>,
) -> ContainerCreateBody {
    let c = i.config.clone().unwrap_or_default();
    let ic = old_image.and_then(|o| o.config.clone()).unwrap_or_default();
    let id = i.id.clone().unwrap_or_default();
    let same = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| a.is_some() && a == b;
    let env = c.env.clone().map(|env| {
        let from_image = ic.env.clone().unwrap_or_default();
        env.into_iter()
            .filter(|e| !from_image.contains(e))
            .collect::<Vec<_>>()
    });
    let labels = c.labels.clone().map(|l| {
        let from_image = ic.labels.clone().unwrap_or_default();
        l.into_iter()
            .filter(|(k, v)| from_image.get(k) != Some(v))
            .collect::<HashMap<_, _>>()
    });
    let mut host = i.host_config.clone().unwrap_or_default();
    // Anonymous volumes would be fresh in the new container: mount the old ones by name.
    if let Some(mounts) = &i.mounts {
        let binds = host.binds.clone().unwrap_or_default();
        let mut hm = host.mounts.clone().unwrap_or_default();
        for m in mounts {
            let dest = m.destination.clone().unwrap_or_default();
            let covered = binds
                .iter()
                .any(|b| b.split(':').nth(1) == Some(dest.as_str()))
                || hm
                    .iter()
                    .any(|x| x.target.as_deref() == Some(dest.as_str()));
            if m.typ.as_deref() == Some("volume") && !covered {
                hm.push(bollard::models::Mount {
                    target: Some(dest),
                    source: m.name.clone(),
                    typ: Some(MountType::VOLUME),
                    read_only: m.rw.map(|rw| !rw),
                    ..Default::default()
                });
            }
        }
        if !hm.is_empty() {
            host.mounts = Some(hm);
        }
    }
    let mut endpoints = HashMap::new();
    if let Some(nets) = i
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
    {
        for (name, e) in nets {
            endpoints.insert(name.clone(), endpoint_copy(e, &id));
        }
    }
    ContainerCreateBody {
        // The engine defaults the hostname to the container's short id; a copy must get its own.
        hostname: c.hostname.clone().filter(|h| !id.starts_with(h.as_str())),
        domainname: c.domainname.clone(),
        user: c
            .user
            .clone()
            .filter(|u| ic.user.as_ref() != Some(u) || u.is_empty())
            .filter(|u| !u.is_empty()),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: if same(&c.exposed_ports, &ic.exposed_ports) {
            None
        } else {
            c.exposed_ports.clone()
        },
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env,
        cmd: if same(&c.cmd, &ic.cmd) {
            None
        } else {
            c.cmd.clone()
        },
        healthcheck: if c.healthcheck.is_some() && c.healthcheck == ic.healthcheck {
            None
        } else {
            c.healthcheck.clone()
        },
        args_escaped: c.args_escaped,
        image: Some(image.to_string()),
        volumes: if same(&c.volumes, &ic.volumes) {
            None
        } else {
            c.volumes.clone()
        },
        working_dir: c
            .working_dir
            .clone()
            .filter(|w| ic.working_dir.as_ref() != Some(w) && !w.is_empty()),
        entrypoint: if same(&c.entrypoint, &ic.entrypoint) {
            None
        } else {
            c.entrypoint.clone()
        },
        network_disabled: c.network_disabled,
        on_build: None,
        labels,
        stop_signal: c
            .stop_signal
            .clone()
            .filter(|s| ic.stop_signal.as_ref() != Some(s)),
        stop_timeout: c.stop_timeout,
        shell: if same(&c.shell, &ic.shell) {
            None
        } else {
            c.shell.clone()
        },
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
    }
}

/// Same as [`create_body_from`] without an old image to subtract (the one-off runs the same image).
pub fn create_body(i: &ContainerInspectResponse, image: &str) -> ContainerCreateBody {
    create_body_from(i, image, None)
}

pub(crate) fn endpoint_copy(e: &EndpointSettings, old_id: &str) -> EndpointSettings {
    EndpointSettings {
        ipam_config: e.ipam_config.clone(),
        links: e.links.clone(),
        // The engine adds the container's short id as an alias; the copy gets its own.
        aliases: e.aliases.clone().map(|a| {
            a.into_iter()
                .filter(|x| !old_id.starts_with(x.as_str()))
                .collect()
        }),
        driver_opts: e.driver_opts.clone(),
        ..Default::default()
    }
}

/// Engines before API 1.44 take one network at create: keep the primary, return the rest to connect.
pub fn take_extra_networks(body: &mut ContainerCreateBody) -> Vec<(String, EndpointSettings)> {
    let mode = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    let Some(eps) = body
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut())
    else {
        return Vec::new();
    };
    let primary = if mode.is_empty() || mode == "default" {
        "bridge".to_string()
    } else {
        mode
    };
    let mut extra: Vec<(String, EndpointSettings)> = eps
        .iter()
        .filter(|(k, _)| **k != primary)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    extra.sort_by(|a, b| a.0.cmp(&b.0));
    eps.retain(|k, _| *k == primary);
    extra
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, HostConfig, NetworkSettings, PortBinding};

    fn inspect() -> ContainerInspectResponse {
        let mut ports = HashMap::new();
        ports.insert(
            "8080/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("18080".into()),
            }]),
        );
        let mut nets = HashMap::new();
        nets.insert(
            "shop_default".to_string(),
            EndpointSettings {
                aliases: Some(vec!["web".into(), "0123456789ab".into()]),
                ip_address: Some("172.18.0.5".into()),
                ..Default::default()
            },
        );
        nets.insert(
            "shop_back".to_string(),
            EndpointSettings {
                aliases: Some(vec!["api".into()]),
                ..Default::default()
            },
        );
        ContainerInspectResponse {
            id: Some("0123456789abcdef".into()),
            config: Some(ContainerConfig {
                hostname: Some("0123456789ab".into()),
                env: Some(vec![
                    "PATH=/bin".into(),
                    "APP_VERSION=v2".into(),
                    "DB=postgres://db".into(),
                ]),
                cmd: Some(vec!["httpd".into()]),
                labels: Some(HashMap::from([
                    ("com.docker.compose.service".into(), "web".into()),
                    ("com.docker.compose.config-hash".into(), "abc".into()),
                    ("org.image".into(), "x".into()),
                ])),
                image: Some("shop-web:v2".into()),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(ports),
                network_mode: Some("shop_default".into()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(nets),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn create_body_keeps_configuration_and_drops_image_defaults() {
        let old_image = ImageInspect {
            config: Some(bollard::models::ImageConfig {
                env: Some(vec!["PATH=/bin".into(), "APP_VERSION=v2".into()]),
                cmd: Some(vec!["httpd".into()]),
                labels: Some(HashMap::from([("org.image".into(), "x".into())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut b = create_body_from(&inspect(), "shop-web:v1", Some(&old_image));
        assert_eq!(b.image.as_deref(), Some("shop-web:v1"));
        assert_eq!(b.env, Some(vec!["DB=postgres://db".into()]));
        assert_eq!(b.cmd, None, "the image's own command follows the new image");
        assert_eq!(b.hostname, None);
        let labels = b.labels.clone().unwrap();
        assert_eq!(
            labels.get("com.docker.compose.service").map(String::as_str),
            Some("web")
        );
        assert!(!labels.contains_key("org.image"));
        assert!(b.host_config.as_ref().unwrap().port_bindings.is_some());
        let extra = take_extra_networks(&mut b);
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].0, "shop_back");
        let eps = b.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(eps["shop_default"].aliases, Some(vec!["web".to_string()]));
        assert_eq!(eps["shop_default"].ip_address, None);
        // Without the old image, everything is copied.
        let b = create_body(&inspect(), "x");
        assert_eq!(b.env.unwrap().len(), 3);
        assert!(b.cmd.is_some());
    }

    #[test]
    fn kept_copies_hide_from_compose_and_restore_gives_everything_back() {
        let original = create_body(&inspect(), "shop-web:v2");
        let mut kept = original.clone();
        hide_from_compose(&mut kept, "shop-web-1");
        let labels = kept.labels.clone().unwrap();
        assert!(
            !labels.keys().any(|k| k.starts_with(COMPOSE_PREFIX)),
            "compose filters by its labels: none may remain {labels:?}"
        );
        assert_eq!(
            labels
                .get("berth.kept.com.docker.compose.service")
                .map(String::as_str),
            Some("web")
        );
        assert_eq!(
            labels.get(LABEL_KEPT_NAME).map(String::as_str),
            Some("shop-web-1")
        );
        assert_eq!(
            kept.host_config
                .as_ref()
                .unwrap()
                .restart_policy
                .as_ref()
                .unwrap()
                .name,
            Some(RestartPolicyNameEnum::NO)
        );
        let mut back = kept.clone();
        give_back_to_compose(&mut back);
        assert_eq!(back.labels, original.labels);
        assert_eq!(
            back.host_config.as_ref().unwrap().restart_policy,
            original.host_config.as_ref().unwrap().restart_policy
        );
        let mut l = original.labels.clone().unwrap();
        drop_compose_config_labels(&mut l);
        assert!(!l.contains_key("com.docker.compose.config-hash"));
        assert!(l.contains_key("com.docker.compose.service"));
    }

    #[test]
    fn fixed_ports() {
        assert!(has_fixed_port(&inspect()));
        let mut i = inspect();
        i.host_config.as_mut().unwrap().port_bindings = Some(HashMap::from([(
            "8080/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("".into()),
            }]),
        )]));
        assert!(!has_fixed_port(&i));
    }
}
