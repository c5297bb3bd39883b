//! Finding a container, service, project or image on every server at once: each match is one row
//! per compose service / Kamal role (or container), with where its replicas run and their state.

use crate::engine::model::{Container, Health, State};

use super::ServerRow;

/// One replica of a match: where it runs and how it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub server: String,
    pub name: String,
    pub state: State,
    pub health: Health,
}

/// A service (compose `project/service`, Kamal `app/role`) or a lone container, across servers.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub key: String,
    pub replicas: Vec<Replica>,
}

impl Found {
    /// The servers it runs on, in the order they were searched, each once.
    pub fn servers(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.replicas {
            if !out.contains(&r.server.as_str()) {
                out.push(&r.server);
            }
        }
        out
    }

    /// `3/4 healthy` when the replicas have a health check, else `2/2 running`.
    pub fn state_summary(&self) -> String {
        let total = self.replicas.len();
        if self.replicas.iter().any(|r| r.health != Health::None) {
            let healthy = self
                .replicas
                .iter()
                .filter(|r| r.health == Health::Healthy)
                .count();
            format!("{healthy}/{total} healthy")
        } else {
            let running = self
                .replicas
                .iter()
                .filter(|r| r.state == State::Running)
                .count();
            format!("{running}/{total} running")
        }
    }

    /// `shop/web on app-1, app-2 · 3/4 healthy`.
    pub fn line(&self) -> String {
        format!(
            "{} on {} · {}",
            self.key,
            self.servers().join(", "),
            self.state_summary()
        )
    }

    /// Trouble first: fewer healthy or running replicas than there are.
    fn is_degraded(&self) -> bool {
        self.replicas.iter().any(|r| {
            r.state != State::Running || matches!(r.health, Health::Unhealthy | Health::Starting)
        })
    }
}

fn key_of(c: &Container) -> String {
    match (&c.project, &c.service) {
        (Some(p), Some(s)) => format!("{p}/{s}"),
        _ => c.name.clone(),
    }
}

/// Every service or container on a reachable server whose container name, service, project or
/// image contains `query` (any case); degraded ones first, then by name.
pub fn find(rows: &[ServerRow], query: &str) -> Vec<Found> {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return vec![];
    }
    let hit = |c: &Container| {
        [
            Some(c.name.as_str()),
            c.service.as_deref(),
            c.project.as_deref(),
            Some(c.image.as_str()),
        ]
        .into_iter()
        .flatten()
        .any(|field| field.to_lowercase().contains(&q))
    };
    let mut found: Vec<Found> = Vec::new();
    for row in rows.iter().filter(|r| r.reachable == Some(true)) {
        for c in row.listing.iter().filter(|c| !c.is_kept() && hit(c)) {
            let key = key_of(c);
            let replica = Replica {
                server: row.server.clone(),
                name: c.display_name(),
                state: c.state,
                health: c.current_health(),
            };
            match found.iter_mut().find(|f| f.key == key) {
                Some(f) => f.replicas.push(replica),
                None => found.push(Found {
                    key,
                    replicas: vec![replica],
                }),
            }
        }
    }
    for f in &mut found {
        f.replicas
            .sort_by(|a, b| (&a.server, &a.name).cmp(&(&b.server, &b.name)));
    }
    found.sort_by(|a, b| (!a.is_degraded(), &a.key).cmp(&(!b.is_degraded(), &b.key)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn server(name: &str, containers: Vec<Container>) -> ServerRow {
        ServerRow {
            server: name.into(),
            reachable: Some(true),
            listing: std::sync::Arc::new(containers),
            ..Default::default()
        }
    }

    fn web(name: &str, health: Health) -> Container {
        let mut c = fixtures::container(name);
        c.project = Some("shop".into());
        c.service = Some("web".into());
        c.image = "registry.example.com/shop-web:1.4".into();
        c.state = State::Running;
        c.health = health;
        c
    }

    #[test]
    fn a_service_on_several_servers_is_one_row() {
        let rows = vec![
            server(
                "app-1",
                vec![
                    web("shop-web-1", Health::Healthy),
                    web("shop-web-2", Health::Healthy),
                ],
            ),
            server(
                "app-2",
                vec![
                    web("shop-web-1", Health::Healthy),
                    web("shop-web-2", Health::Unhealthy),
                ],
            ),
            ServerRow {
                reachable: Some(false),
                ..server("down", vec![web("shop-web-1", Health::Healthy)])
            },
        ];
        let found = find(&rows, "WEB");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line(), "shop/web on app-1, app-2 · 3/4 healthy");
        assert_eq!(found[0].replicas.len(), 4);
        // The image and the project find it too; nothing else does.
        assert_eq!(find(&rows, "shop-web:1.4").len(), 1);
        assert_eq!(find(&rows, "shop").len(), 1);
        assert!(find(&rows, "postgres").is_empty());
        assert!(find(&rows, "  ").is_empty());
    }
}
