//! Taking a running container out of its user-defined networks before it is stopped, and giving
//! it the same endpoints back once it has stopped. Docker's embedded DNS names a container (and its
//! service alias, `web`) until the engine releases its network, some hundreds of milliseconds
//! after the process died; a client that looks the service up in that window is handed the dead
//! replica's address. Leaving the networks first takes it out of the answers at once, while the
//! replica beside it already serves.

use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
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
/// replica on no network; its copy `from` (the new replica, made with the same networks and
/// aliases) still knows them. Connects `id` to `from`'s networks when `id` is on none of its own;
/// returns the networks it joined (none when nothing was missing).
pub async fn adopt(engine: &Engine, id: &str, from: &str) -> Result<Vec<String>, EngineError> {
    let ((_, Some(own)), (_, Some(theirs))) = (
        dns_networks(engine, id).await?,
        dns_networks(engine, from).await?,
    ) else {
        return Ok(vec![]);
    };
    if !own.is_empty() || theirs.is_empty() {
        return Ok(vec![]);
    }
    let names = theirs.iter().map(|(n, _)| n.clone()).collect();
    rejoin(engine, id, theirs).await?;
    Ok(names)
}
