//! Taking a running container out of its user-defined networks before it is stopped, and giving
//! it the same endpoints back once it has stopped. Docker's embedded DNS names a container (and its
//! service alias, `web`) until the engine releases its network, some hundreds of milliseconds
//! after the process died; a client that looks the service up in that window is handed the dead
//! replica's address. Leaving the networks first takes it out of the answers at once, while the
//! replica beside it already serves.
//!
//! The other way round, a new replica is created without the aliases it will answer to (its own
//! container name still resolves, and it reaches its neighbours by theirs) and is given them by
//! [`publish`] once it is verified healthy: before that, no client is handed its address.

use std::collections::BTreeMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, NetworkConnectRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::InspectContainerOptions;

use super::clone::endpoint_copy;
use super::{Engine, EngineError};

/// The endpoints a container left: put back with [`rejoin`].
pub type LeftNetworks = Vec<(String, EndpointSettings)>;

/// Disconnects `id` from every network with an embedded DNS (user-defined networks: not the
/// default `bridge`, not `host`, `none` or another container's stack), returning what it left.
/// A refusal halfway puts back what was already left and is returned.
pub async fn leave(engine: &Engine, id: &str) -> Result<LeftNetworks, EngineError> {
    let d = &engine.docker;
    let where_ = engine.target.endpoint.to_string();
    let (full_id, nets) = dns_networks(engine, id).await?;
    let Some(nets) = nets else {
        return Ok(vec![]);
    };
    let mut left = Vec::new();
    for (name, ep) in nets {
        let r = d
            .disconnect_network(
                &name,
                NetworkDisconnectRequest {
                    container: full_id.clone(),
                    force: Some(false),
                },
            )
            .await;
        if let Err(e) = r {
            let _ = rejoin(engine, &full_id, left).await;
            return Err(EngineError::Api(format!(
                "disconnect from {name}: {}",
                EngineError::from_bollard(&where_, e)
            )));
        }
        left.push((name, ep));
    }
    Ok(left)
}

/// Connects `id` again to the networks [`leave`] took it out of, with the same aliases, links and
/// addresses (a stopped container keeps them for its next start). Every network is tried; the
/// ones refused are named in the error.
pub async fn rejoin(engine: &Engine, id: &str, left: LeftNetworks) -> Result<(), EngineError> {
    let where_ = engine.target.endpoint.to_string();
    let mut refused = Vec::new();
    for (name, ep) in left {
        let r = engine
            .docker
            .connect_network(
                &name,
                NetworkConnectRequest {
                    container: id.to_string(),
                    endpoint_config: Some(ep),
                },
            )
            .await;
        if let Err(e) = r {
            refused.push(format!("{name}: {}", EngineError::from_bollard(&where_, e)));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Api(format!(
            "could not connect it again to {}",
            refused.join("; ")
        )))
    }
}

/// The aliases a replica answers to, per network with an embedded DNS.
pub type Aliases = BTreeMap<String, Vec<String>>;

/// What a replacement of container `i` must answer to on each of its DNS networks: `i`'s own
/// aliases (the engine's short-id alias left out) and, for a compose service, the service's name,
/// which compose gives every replica on every network: a network where the old replica lost it is
/// not copied into the new one.
pub fn replica_aliases(i: &ContainerInspectResponse, service: Option<&str>) -> Aliases {
    let mode = i
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return Aliases::new();
    }
    let id = i.id.clone().unwrap_or_default();
    i.network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.as_str() != "bridge")
        .map(|(name, e)| {
            let mut aliases = endpoint_copy(e, &id).aliases.unwrap_or_default();
            if let Some(s) = service
                && !aliases.iter().any(|a| a == s)
            {
                aliases.push(s.to_string());
            }
            (name.clone(), aliases)
        })
        .collect()
}

/// Takes every alias out of a create body's endpoints: the container starts reachable by its own
/// name only, and [`publish`] gives it the aliases after its health is verified.
pub fn withhold_aliases(body: &mut ContainerCreateBody) {
    for ep in body
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut())
        .into_iter()
        .flat_map(|eps| eps.values_mut())
    {
        ep.aliases = None;
    }
}

/// Gives running container `id` the `aliases` on each of its networks that lacks one of them. The
/// engine cannot add an alias to a live endpoint, so the container leaves that network and joins
/// it again with them (its address may change; nothing resolved to it before). A refused join
/// puts it back on the network without them and is returned. Returns the networks changed.
pub async fn publish(
    engine: &Engine,
    id: &str,
    aliases: &Aliases,
) -> Result<Vec<String>, EngineError> {
    let d = &engine.docker;
    let where_ = engine.target.endpoint.to_string();
    let (full_id, nets) = dns_networks(engine, id).await?;
    let mut changed = Vec::new();
    for (name, ep) in nets.unwrap_or_default() {
        let Some(want) = aliases.get(&name) else {
            continue;
        };
        let have = ep.aliases.clone().unwrap_or_default();
        if want.iter().all(|a| have.contains(a)) {
            continue;
        }
        let mut all = have;
        all.extend(
            want.iter()
                .filter(|a| !all.contains(a))
                .cloned()
                .collect::<Vec<_>>(),
        );
        d.disconnect_network(
            &name,
            NetworkDisconnectRequest {
                container: full_id.clone(),
                force: Some(false),
            },
        )
        .await
        .map_err(|e| {
            EngineError::Api(format!(
                "disconnect from {name}: {}",
                EngineError::from_bollard(&where_, e)
            ))
        })?;
        let joined = d
            .connect_network(
                &name,
                NetworkConnectRequest {
                    container: full_id.clone(),
                    endpoint_config: Some(EndpointSettings {
                        aliases: Some(all),
                        ..ep.clone()
                    }),
                },
            )
            .await;
        if let Err(e) = joined {
            let _ = d
                .connect_network(
                    &name,
                    NetworkConnectRequest {
                        container: full_id.clone(),
                        endpoint_config: Some(ep),
                    },
                )
                .await;
            return Err(EngineError::Api(format!(
                "connect to {name} with aliases {}: {}",
                want.join(", "),
                EngineError::from_bollard(&where_, e)
            )));
        }
        changed.push(name);
    }
    Ok(changed)
}

/// The container's full id, and the networks with an embedded DNS it is on with the endpoint
/// settings a reconnect takes; `None` when it shares another's network stack or has none (host,
/// none, container:).
async fn dns_networks(
    engine: &Engine,
    id: &str,
) -> Result<(String, Option<LeftNetworks>), EngineError> {
    let where_ = engine.target.endpoint.to_string();
    let i = engine
        .docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| EngineError::from_bollard(&where_, e))?;
    let mode = i
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    let full_id = i.id.clone().unwrap_or_else(|| id.to_string());
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return Ok((full_id, None));
    }
    let mut nets: LeftNetworks = i
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name != "bridge")
        .map(|(name, e)| (name, endpoint_copy(&e, &full_id)))
        .collect();
    nets.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((full_id, Some(nets)))
}

/// A run cut off between [`leave`] and [`rejoin`] (berth killed, the link lost) leaves the old
/// replica on no network; its copy `from` (the new replica, made with the same networks) still
/// knows them. Connects `id` to `from`'s networks when `id` is on none of its own, with the
/// aliases `from` has there and its compose service's name (a copy not yet verified has none);
/// returns the networks it joined (none when nothing was missing).
pub async fn adopt(engine: &Engine, id: &str, from: &str) -> Result<Vec<String>, EngineError> {
    let ((_, Some(own)), (_, Some(mut theirs))) = (
        dns_networks(engine, id).await?,
        dns_networks(engine, from).await?,
    ) else {
        return Ok(vec![]);
    };
    if !own.is_empty() || theirs.is_empty() {
        return Ok(vec![]);
    }
    let service = engine
        .inspect(id)
        .await?
        .and_then(|c| c.service)
        .unwrap_or_default();
    if !service.is_empty() {
        for (_, ep) in &mut theirs {
            let aliases = ep.aliases.get_or_insert_with(Vec::new);
            if !aliases.contains(&service) {
                aliases.push(service.clone());
            }
        }
    }
    let names = theirs.iter().map(|(n, _)| n.clone()).collect();
    rejoin(engine, id, theirs).await?;
    Ok(names)
}
