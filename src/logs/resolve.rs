//! Which containers a log view shows and how each line is labelled: compose replicas are
//! `service-N` as `docker compose logs` writes them, other containers their name.

use std::collections::HashSet;

use crate::engine::kamal;
use crate::engine::model::Container;

/// One container whose log is streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub id: String,
    pub name: String,
    /// The label in front of each line when several sources are merged.
    pub prefix: String,
}

/// Sources for the containers, labelled like compose: `web-1` when every container is a compose
/// replica of one project, `project/web-1` across projects, the container name otherwise.
pub fn sources_for(containers: &[&Container]) -> Vec<LogSource> {
    let projects: HashSet<Option<&str>> = containers.iter().map(|c| c.project.as_deref()).collect();
    let mut out: Vec<LogSource> = containers
        .iter()
        .map(|c| {
            let prefix = match (&c.project, &c.service) {
                (Some(p), Some(s)) => {
                    let replica = match c.number {
                        Some(n) => format!("{s}-{n}"),
                        // Kamal's releases and destinations read apart: `web-staging-9b8e4d2`.
                        None if c.is_kamal() => c.list_name(),
                        None => s.clone(),
                    };
                    if projects.len() > 1 {
                        format!("{p}/{replica}")
                    } else {
                        replica
                    }
                }
                _ => c.display_name(),
            };
            LogSource {
                id: c.id.clone(),
                name: c.display_name(),
                prefix,
            }
        })
        .collect();
    out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    out
}

/// The container a name means: its name (a leading `/` allowed), else an id prefix of 4 or more.
pub fn container_named<'a>(containers: &[&'a Container], name: &str) -> Option<&'a Container> {
    let name = name.trim().trim_start_matches('/');
    if let Some(c) = containers.iter().find(|c| c.name == name) {
        return Some(*c);
    }
    if name.len() >= 4 {
        return containers.iter().find(|c| c.id.starts_with(name)).copied();
    }
    None
}

/// The containers a name means: a container (name or id prefix of 4+), a `project/service`, a
/// service, or a project — in that order, like `:logs NAME`. A Kamal role or app means its current
/// release (`engine::kamal`); `NAME@DESTINATION` one Kamal destination.
pub fn containers_named<'a>(
    containers: &[&'a Container],
    name: &str,
) -> Result<Vec<&'a Container>, String> {
    named(containers, name, true)
}

/// [`containers_named`] with every Kamal release, for a listing (`berth ps NAME`).
pub fn containers_named_all<'a>(
    containers: &[&'a Container],
    name: &str,
) -> Result<Vec<&'a Container>, String> {
    named(containers, name, false)
}

fn named<'a>(
    containers: &[&'a Container],
    name: &str,
    current_only: bool,
) -> Result<Vec<&'a Container>, String> {
    let name = name.trim().trim_start_matches('/');
    if name.is_empty() {
        return Err("no name given: a container, service or project".into());
    }
    if let Some(c) = container_named(containers, name) {
        return Ok(vec![c]);
    }
    let (base, destination) = kamal::split_destination(name);
    let current = |found: Vec<&'a Container>| -> Vec<&'a Container> {
        if !current_only {
            return found;
        }
        let ids = kamal::current_ids(found.iter().copied());
        found
            .into_iter()
            .filter(|c| !c.is_kamal() || ids.contains(&c.id.as_str()))
            .collect()
    };
    let (proj, svc) = match base.split_once('/') {
        Some((p, s)) => (Some(p), s),
        None => (None, base),
    };
    let by_service: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| {
            c.service.as_deref() == Some(svc) && (proj.is_none() || c.project.as_deref() == proj)
        })
        .filter(|c| kamal::in_destination(c, destination))
        .collect();
    let by_service = current(by_service);
    if !by_service.is_empty() {
        let mut projects: Vec<&str> = by_service
            .iter()
            .filter_map(|c| c.project.as_deref())
            .collect();
        projects.sort();
        projects.dedup();
        if projects.len() > 1 {
            return Err(format!(
                "service '{name}' is in several projects ({}); use PROJECT/{name}",
                projects.join(", ")
            ));
        }
        return Ok(by_service);
    }
    // A Kamal container by the name the list shows: `web-staging-9b8e4d2`, `shop/web-9b8e4d2`.
    let listed: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| {
            c.is_kamal() && c.list_name() == svc && (proj.is_none() || c.project.as_deref() == proj)
        })
        .collect();
    if let [one] = listed.as_slice() {
        return Ok(vec![*one]);
    }
    // The replica names the list shows: `api-2`, `shop/api-2`.
    if let Some((base, number)) = svc.rsplit_once('-')
        && let Ok(number) = number.parse::<u32>()
    {
        let replicas: Vec<&Container> = containers
            .iter()
            .copied()
            .filter(|c| {
                c.service.as_deref() == Some(base)
                    && c.number == Some(number)
                    && (proj.is_none() || c.project.as_deref() == proj)
            })
            .collect();
        match replicas.as_slice() {
            [one] => return Ok(vec![*one]),
            [] => {}
            many => {
                let mut projects: Vec<&str> =
                    many.iter().filter_map(|c| c.project.as_deref()).collect();
                projects.sort();
                projects.dedup();
                return Err(format!(
                    "replica '{name}' is in several projects ({}); use PROJECT/{name}",
                    projects.join(", ")
                ));
            }
        }
    }
    let by_project: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| c.project.as_deref() == Some(base))
        .filter(|c| kamal::in_destination(c, destination))
        .collect();
    let by_project = current(by_project);
    if !by_project.is_empty() {
        return Ok(by_project);
    }
    Err(format!("no container, service or project named '{name}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn compose_prefixes() {
        let owned = fixtures::shop();
        let shop: Vec<&Container> = owned.iter().collect();
        let web = containers_named(&shop, "web").unwrap();
        let s = sources_for(&web);
        assert_eq!(
            s.iter().map(|s| s.prefix.as_str()).collect::<Vec<_>>(),
            vec!["web-1", "web-2"]
        );
        let all = containers_named(&shop, "shop").unwrap();
        assert_eq!(all.len(), 5);
        let one = containers_named(&shop, "reporting").unwrap();
        assert_eq!(sources_for(&one)[0].prefix, "reporting");
        // The replica name the list shows.
        for name in ["web-2", "shop/web-2"] {
            let two = containers_named(&shop, name).unwrap();
            assert_eq!(two.len(), 1, "{name}");
            assert_eq!(two[0].number, Some(2), "{name}");
            assert_eq!(two[0].service.as_deref(), Some("web"), "{name}");
        }
        assert!(containers_named(&shop, "web-9").is_err());
        assert!(
            containers_named(&shop, "nothing")
                .unwrap_err()
                .contains("no container, service or project named 'nothing'")
        );
    }
}
