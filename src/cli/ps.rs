//! `berth ps`: the console's list as plain text or JSON, for scripts.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use super::PsArgs;
use crate::context::Context;
use crate::engine::model::{Container, Health, State};
use crate::format::{health_text, printable, truncate, uptime};
use crate::grouping::{SortKey, grouped};

#[derive(Serialize)]
struct PsEntry<'a> {
    project: Option<&'a str>,
    service: Option<&'a str>,
    name: &'a str,
    id: &'a str,
    image: &'a str,
    state: State,
    /// The health now: `none` for a stopped container, whatever its last probe said.
    health: Health,
    status: String,
    restarts: i64,
    ports: Vec<String>,
    /// The version Kamal deployed (Kamal containers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    /// The Kamal destination it was deployed to (`staging`); null for the default destination
    /// (Kamal containers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Option<&'a str>>,
    /// An old container berth kept after a rollback (not a replica; compose does not see it).
    kept: bool,
    /// The image its compose files declare for its service (they are read on the server); null
    /// when unknown: not compose, built from a Dockerfile, or the files unreadable.
    declared_image: Option<&'a str>,
}

pub async fn run(ctx: &Context, args: &PsArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    let engine = ctx.connect(&target).await?;
    let mut containers = engine.containers().await?;
    if let Some(name) = &args.name {
        let all: Vec<&Container> = containers.iter().collect();
        match crate::logs::containers_named_all(&all, name) {
            Ok(chosen) => {
                let ids: std::collections::HashSet<&str> =
                    chosen.iter().map(|c| c.id.as_str()).collect();
                containers = containers
                    .iter()
                    .filter(|c| ids.contains(c.id.as_str()))
                    .cloned()
                    .collect();
            }
            // Not a container here: a swarm service or stack, when this is a manager.
            Err(not_found) => {
                return swarm_tasks(ctx, &target, &engine, &containers, name, args, not_found)
                    .await;
            }
        }
    }
    // Only the JSON carries the declared image: reading the project files costs an exec each.
    let mut declared = BTreeMap::new();
    if args.json
        && let Some(files) = crate::remote::SshFiles::for_engine(&engine)
    {
        let views = crate::compose::load_all(files.as_ref(), &containers).await;
        for c in &containers {
            if let Some(image) = crate::compose::declared_image(c, &views) {
                declared.insert(c.id.clone(), image);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let text = render(&containers, &declared, args, chrono::Utc::now());
    // Each field is cleaned as it is laid out; the whole is checked once more at the boundary.
    let text = if args.json {
        text
    } else {
        crate::logs::sanitize::plain_lines(&text)
    };
    // A closed pipe (`berth ps | head`) is not an error worth a message.
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth ps NAME` for a swarm service or stack: its tasks.
async fn swarm_tasks(
    ctx: &Context,
    target: &crate::target::Target,
    engine: &crate::engine::Engine,
    containers: &[Container],
    name: &str,
    args: &PsArgs,
    not_found: String,
) -> color_eyre::Result<ExitCode> {
    if !crate::swarm::detect(engine).await?.is_manager() {
        return Err(color_eyre::eyre::eyre!(not_found));
    }
    let mut snapshot = crate::swarm::snapshot(engine).await?;
    crate::swarm::add_local_health(&mut snapshot, containers);
    super::swarm::add_node_health(ctx, &target.name, &mut snapshot).await;
    let Some(named) = snapshot.find(name) else {
        return Err(color_eyre::eyre::eyre!(
            "no container, service or stack named '{}'; list services with `berth services`",
            printable(name)
        ));
    };
    let text =
        super::swarm::render_tasks(&snapshot, &named, args.json, args.all, chrono::Utc::now());
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `declared`: container id → the image its compose files declare.
pub fn render(
    containers: &[Container],
    declared: &BTreeMap<String, String>,
    args: &PsArgs,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let shown = containers.iter().filter(|c| args.all || c.state.is_up());
    let groups = grouped(shown, SortKey::Name, now);
    if args.json {
        let entries: Vec<PsEntry> = groups
            .iter()
            .flat_map(|(_, members)| members.iter())
            .map(|c| PsEntry {
                project: c.project.as_deref(),
                service: c.service.as_deref(),
                name: &c.name,
                id: &c.id,
                image: &c.image,
                state: c.state,
                health: c.current_health(),
                status: uptime(c, now),
                restarts: c.restart_count,
                ports: c.ports.iter().map(|p| p.short()).collect(),
                version: c.kamal_version(),
                destination: c.is_kamal().then(|| c.kamal_destination()),
                kept: c.is_kept(),
                declared_image: declared.get(&c.id).map(String::as_str),
            })
            .collect();
        let json = serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n";
        return crate::logs::sanitize::json_safe(&json);
    }
    let mut s = String::new();
    if groups.is_empty() {
        s.push_str(if args.all {
            "no containers\n"
        } else {
            "no running containers (--all shows stopped ones)\n"
        });
        return s;
    }
    // Each column as wide as its widest value: a name keeps its marker (`· kept`,
    // `· rollback journal`) and a health its `was`, never running into the next column.
    let width = |f: &dyn Fn(&Container) -> String, title: &str| {
        groups
            .iter()
            .flat_map(|(_, members)| members.iter())
            .map(|c| f(c).width())
            .chain([title.width()])
            .max()
            .unwrap_or(0)
    };
    let name_of = |c: &Container| printable(&c.list_name());
    let image_of = |c: &Container| truncate(&printable(&c.image), 40);
    let (wn, wh, ws, wi) = (
        width(&name_of, "NAME") + 2,
        width(&|c: &Container| health_text(c), "HEALTH"),
        width(&|c: &Container| uptime(c, now), "STATUS"),
        width(&image_of, "IMAGE"),
    );
    let wn = wn.max(
        groups
            .iter()
            .map(|(g, _)| printable(g).width())
            .max()
            .unwrap_or(0),
    );
    let pad =
        |text: &str, w: usize| format!("{text}{}", " ".repeat(w.saturating_sub(text.width())));
    s.push_str(&format!(
        "{} {:<10} {} {} {:>3}  {} {}\n",
        pad("NAME", wn),
        "STATE",
        pad("HEALTH", wh),
        pad("STATUS", ws),
        "RST",
        pad("IMAGE", wi),
        "PORTS"
    ));
    for (group, members) in groups {
        s.push_str(&format!("{}\n", printable(&group)));
        for c in members {
            let line = format!(
                "{} {:<10} {} {} {:>3}  {} {}",
                pad(&format!("  {}", name_of(c)), wn),
                c.state.as_str(),
                pad(&health_text(c), wh),
                pad(&uptime(c, now), ws),
                c.restart_count,
                pad(&image_of(c), wi),
                c.ports
                    .iter()
                    .map(|p| p.short())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            s.push_str(line.trim_end());
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::LABEL_RUN_JOURNAL;
    use crate::fixtures;

    /// `ps --all` names a run journal as one, whole, and a stopped container's last probe never
    /// runs into the status beside it.
    #[test]
    fn ps_all_labels_the_run_journal_and_keeps_columns_apart() {
        let mut list = fixtures::shop();
        let mut journal = fixtures::container("berth-run-20261124024800-4f2a9c");
        journal.state = State::Created;
        journal.labels.insert(LABEL_RUN_JOURNAL.into(), "{}".into());
        list.push(journal);
        for c in list.iter_mut().filter(|c| c.name == "reporting") {
            c.health = Health::Unhealthy;
            c.has_healthcheck = true;
            c.exit_code = Some(137);
        }
        let args = PsArgs {
            name: None,
            json: false,
            all: true,
        };
        let text = render(&list, &BTreeMap::new(), &args, fixtures::now());
        assert!(
            text.contains("berth-run-20261124024800-4f2a9c · rollback journal"),
            "{text}"
        );
        let row = text
            .lines()
            .find(|l| l.contains("was unhealthy"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains("was unhealthy "), "{row}");
        let header = text.lines().next().unwrap_or_default();
        // The status starts in its own column, after the health's.
        let status_at = header.find("STATUS").unwrap_or(0);
        let health_end = row.find("was unhealthy").unwrap_or(0) + "was unhealthy".len();
        assert!(health_end < status_at, "{header}\n{row}");
    }
}
