//! Command-line interface: every TUI action also exists here as a plain command.

use clap::{Args, Parser, Subcommand};

use crate::runbook::ActionKind;

pub mod backup;
pub mod fleet;
pub mod forward;
pub mod group;
pub mod images;
pub mod lock;
pub mod logs;
pub mod man;
pub mod notify;
pub mod out;
pub mod ps;
pub mod runbook;
pub mod stats;
pub mod swarm;
pub mod timeline;

/// A runbook subcommand: `-s GROUP` runs it on each server of the group in turn
/// ([`group::run`]), any other target once ([`runbook::run_request`]).
pub async fn run_runbook(
    ctx: &crate::context::Context,
    cli: runbook::CliRequest,
) -> color_eyre::Result<std::process::ExitCode> {
    if let Some(group) = ctx.global.server.as_deref()
        && let Some(members) = ctx.config.group(group)
    {
        return group::run(ctx, group, members, cli).await;
    }
    runbook::run_request(ctx, cli).await
}

pub use crate::context::GlobalArgs;

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "An operations console for Docker hosts, local or over SSH",
    long_about = "berth shows what runs on a Docker engine (local, or on a server reached over SSH): \
containers grouped by compose project and service, live logs, stats, health and events, \
and runs the on-call runbook (restart, migrate, rollback, prune) with confirmation and an audit log.\n\n\
Run without a command to open the console."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List containers grouped by compose project and service.
    Ps(PsArgs),
    /// Print the logs of a container, a service (all replicas) or a whole project.
    Logs(LogsArgs),
    /// restart, stop, start, kill, rm: one subcommand per `runbook::ActionKind`.
    #[command(flatten)]
    Action(ActionCommand),
    /// Run the service's database migrations inside its container.
    Migrate(MigrateArgs),
    /// Roll a service back to an earlier image, verifying health and restoring on failure.
    Rollback(RollbackArgs),
    /// Deploy another tag of the service's image (pulled first when the server lacks it): new
    /// replicas beside the old ones, verified healthy, then the old ones stopped; restored on failure.
    Deploy(DeployArgs),
    /// Finish or restore a rollback that was cut off (SSH drop, berth killed, engine restart).
    Recover(RecoverArgs),
    /// Remove unused images, containers, networks and build cache, keeping rollback images.
    Prune(PruneArgs),
    /// Show the audit log of mutating actions.
    Audit(AuditArgs),
    /// Dump a service's database (postgres, mysql, mariadb, sqlite or a command) into a file on
    /// the server, with its size, sha256 and image beside it; `--list` shows the kept ones.
    Backup(BackupArgs),
    /// Overwrite a service's database with one of its backups (`berth backup --list` shows their
    /// IDs): the file's sha256 checked first, a safety backup taken, the project's other services
    /// stopped while it runs and started again, verified healthy.
    Restore(RestoreArgs),
    /// What happened, in time order: the engine's events that matter (deaths with their exit code
    /// and last log lines, OOM kills, health changes, restarts, pulls), berth's audit and where
    /// the engine's history ends.
    Timeline(TimelineArgs),
    /// Check every link between this laptop and the Docker engine, with a fix for each failure.
    Doctor,
    /// CPU, memory, network and block IO of running containers (two readings a second apart).
    Stats(StatsArgs),
    /// Disk used by images, containers, volumes and build cache, and what could be reclaimed.
    Df(DfArgs),
    /// Every configured server at once: reachable, engine, containers in trouble, host load,
    /// the last change berth made. Exit code 1 when any is unreachable or unhealthy.
    Fleet(FleetArgs),
    /// Set a swarm service's replicas (`berth scale web=3`), then wait for the tasks to run.
    Scale(ScaleArgs),
    /// Move every task off a swarm node (asks first), then watch them reschedule.
    Drain(NodeArgs),
    /// Let a drained or paused swarm node take tasks again.
    Activate(NodeArgs),
    /// A swarm manager's services by stack: mode, replicas running/desired, image, update status, ports.
    Services(ServicesArgs),
    /// A swarm manager's nodes: role, leader, availability, status, engine version, tasks.
    Nodes(NodesArgs),
    /// Tell the team: `berth notify test` posts a test message to every `[[notify]]` webhook.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Reach a container's port from this machine: listens on 127.0.0.1 and carries each
    /// connection over the server's SSH session to the container (no published port needed).
    /// Read-only; runs until Ctrl-C.
    Forward(ForwardArgs),
    /// The locks runs hold on the server's services: `berth lock status`, `berth lock release`.
    #[command(subcommand)]
    Lock(LockCommand),
    /// Print a shell completion script: `berth completions bash > /etc/bash_completion.d/berth`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `berth man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand, Clone)]
pub enum NotifyCommand {
    /// Post a test message to each webhook; prints ok or why not for each (URLs masked) and
    /// exits non-zero when any failed.
    Test,
}

#[derive(Debug, Subcommand, Clone)]
pub enum LockCommand {
    /// Who holds a lock on which service, for what run, and since when by the server's clock.
    Status(LockStatusArgs),
    /// Free a lock a berth that is gone left behind (asks first; production asks for the
    /// service's name; audited). A rollback that left its journal is ended by `berth recover`.
    Release(LockReleaseArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct LockStatusArgs {
    /// Only this service's lock.
    pub name: Option<String>,
    #[arg(short, long)]
    pub project: Option<String>,
    /// Print JSON lines: one object per lock.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct LockReleaseArgs {
    /// The locked service.
    pub name: String,
    #[arg(short, long)]
    pub project: Option<String>,
    /// Free it even when its run may still go on (taken less than 10 minutes ago) or left a
    /// rollback journal.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script of `shell` for the whole command line, written to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "berth", out);
}

#[derive(Debug, Args, Clone, Default)]
pub struct StatsArgs {
    /// Containers, services or projects to show (default: every running container).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How to read: auto (cgroup files where reachable, else the API), cgroup or api.
    #[arg(long, value_name = "METHOD", value_parser = crate::config::Preference::parse)]
    pub method: Option<crate::config::Preference>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DfArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct FleetArgs {
    /// Print JSON instead of a table: one object per server.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ForwardArgs {
    /// The container (name, or project/service with one running replica).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The container's port (default: its first exposed TCP port).
    #[arg(value_name = "PORT")]
    pub port: Option<u16>,
    /// The local port (default: the container's port number when free, else any free port).
    #[arg(long, value_name = "PORT")]
    pub local: Option<u16>,
    /// The local address to listen on; anything but loopback lets other machines in.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PsArgs {
    /// Only this container, compose service or project; on a swarm manager, a swarm service or
    /// stack lists its tasks.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Include stopped containers (swarm: tasks no longer wanted running).
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ScaleArgs {
    /// The swarm service and its replicas: SERVICE=N.
    #[arg(value_name = "SERVICE=N", value_parser = parse_scale)]
    pub spec: (String, u64),
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct NodeArgs {
    /// The node's hostname or id (`berth nodes` lists them).
    pub node: String,
    #[command(flatten)]
    pub guard: GuardArgs,
}

fn parse_scale(s: &str) -> Result<(String, u64), String> {
    crate::runbook::swarm::parse_scale(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServicesArgs {
    /// Print JSON instead of a table: one object per service.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct NodesArgs {
    /// Print JSON instead of a table: one object per node.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct LogsArgs {
    /// Container, service or compose project name; on a swarm manager also a swarm service or stack.
    pub name: String,
    /// Keep streaming new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines since this time: a duration (15m, 2h) or a timestamp (2026-11-22T03:00).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Lines to show from the end of each container's log: a number or `all` (the default).
    #[arg(long, value_name = "N", value_parser = parse_tail)]
    pub tail: Option<crate::logs::Tail>,
    /// Prefix every line with its timestamp.
    #[arg(short, long)]
    pub timestamps: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GuardArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// On a production server, the service name typed as confirmation (with --yes); for a group
    /// (`-s GROUP`), the group's name.
    #[arg(long, value_name = "SERVICE")]
    pub confirm: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// `berth restart|stop|start|kill|rm NAME`: a subcommand per `ActionKind`, so a new kind is a CLI
/// command without a line here.
#[derive(Debug, Clone)]
pub struct ActionCommand {
    pub kind: ActionKind,
    pub args: ActionArgs,
}

impl clap::FromArgMatches for ActionCommand {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let (name, sub) = matches
            .subcommand()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingSubcommand))?;
        let kind = ActionKind::parse(name).ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidSubcommand,
                format!("'{name}' is not a container action"),
            )
        })?;
        Ok(ActionCommand {
            kind,
            args: ActionArgs::from_arg_matches(sub)?,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = ActionCommand::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for ActionCommand {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        ActionKind::ALL.iter().fold(cmd, |cmd, kind| {
            let sub = clap::Command::new(kind.as_str()).about(kind.about());
            cmd.subcommand(ActionArgs::augment_args(sub))
        })
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        ActionCommand::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        ActionKind::parse(name).is_some()
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct ActionArgs {
    /// Container or service name.
    pub name: String,
    /// Compose project, when the service name is not unique.
    #[arg(short, long)]
    pub project: Option<String>,
    /// Print the plan (each server's, across a group) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct MigrateArgs {
    /// Service or container name.
    pub name: String,
    #[arg(short, long)]
    pub project: Option<String>,
    /// Migration command to run (overrides the preset and the config). It runs without a shell:
    /// split into words as a shell would (quotes kept together) and executed directly, so `&&`,
    /// pipes, `$VAR` and shell builtins such as `exit` or `cd` do not work; use --shell for them.
    #[arg(long, conflicts_with = "preset")]
    pub command: Option<String>,
    /// Run the command through `sh -c` in the container, for `&&`, pipes, variables and builtins:
    /// `--shell 'cd /app && ./migrate up'`.
    #[arg(long, value_name = "SCRIPT", conflicts_with_all = ["command", "preset"])]
    pub shell: Option<String>,
    /// Preset: alembic, django, rails, prisma.
    #[arg(long)]
    pub preset: Option<String>,
    /// Migrate to this named target (to roll a migration back).
    #[arg(long)]
    pub target: Option<String>,
    /// Show migration status instead of migrating.
    #[arg(long)]
    pub status: bool,
    /// Run in a one-off container from the service's image instead of exec.
    #[arg(long)]
    pub one_off: bool,
    /// Print the plan (the migrations pending, the irreversible ones flagged) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Back up the database before migrating (production always does, unless --no-backup).
    #[arg(long, conflicts_with = "no_backup")]
    pub backup: bool,
    /// On production, migrate without the backup first; needs --reason (audited).
    #[arg(long)]
    pub no_backup: bool,
    /// Why the migration runs without a backup, written to the audit.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RollbackArgs {
    /// Service or container name; on a swarm manager also a swarm service (its previous spec,
    /// or --to an image with a rolling update the swarm undoes on failure).
    pub name: String,
    #[arg(short, long)]
    pub project: Option<String>,
    /// Tag of the same repository, or a full image reference or id; a tag only the registry has
    /// is pulled onto the server first. For a swarm stack: a tag, each service to that tag of its
    /// own repository.
    #[arg(long, value_name = "TAG|IMAGE")]
    pub to: Option<String>,
    /// List the images the service could run: on the server and in its registry, newest first.
    #[arg(long, conflicts_with_all = ["to", "dry_run", "remove_old", "retag", "pin"])]
    pub list: bool,
    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the old container after a successful rollback.
    #[arg(long)]
    pub remove_old: bool,
    /// Point the tag the service was started with at the rolled-back image.
    #[arg(long)]
    pub retag: bool,
    /// Rewrite the variable of the project's .env that the service's compose image reads, so a
    /// later `docker compose up -d` keeps this version (the .env is copied to .env.berth-<time> first).
    #[arg(long)]
    pub pin: bool,
    /// Run even when the run journal cannot be written (a read-only or full disk): a run cut off
    /// then cannot be found or recovered. Refused on production whatever this says.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DeployArgs {
    /// Service or container name.
    pub name: String,
    #[arg(short, long)]
    pub project: Option<String>,
    /// Tag of the same repository, or a full image reference.
    #[arg(long, value_name = "TAG|IMAGE", required = true)]
    pub to: Option<String>,
    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the old container after a successful deploy.
    #[arg(long)]
    pub remove_old: bool,
    /// Rewrite the project's .env variable the service's compose image reads (see rollback --pin).
    #[arg(long)]
    pub pin: bool,
    /// Run even when the run journal cannot be written (a read-only or full disk): a run cut off
    /// then cannot be found or recovered. Refused on production whatever this says.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
#[command(group(clap::ArgGroup::new("choice").args(["finish", "restore"])))]
pub struct RecoverArgs {
    /// Service or container name.
    pub name: String,
    #[arg(short, long)]
    pub project: Option<String>,
    /// Verify the new container for a full window, then keep the old one out of compose's sight.
    #[arg(long)]
    pub finish: bool,
    /// Remove the new container and put the old one back under its name, started and verified.
    #[arg(long)]
    pub restore: bool,
    /// Show what berth found and the plan, and stop.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PruneArgs {
    /// Show what would be removed and the space reclaimed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Images to keep per service for rollback, besides the current one.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Also remove unused volumes (asks twice).
    #[arg(long)]
    pub volumes: bool,
    /// Only touch containers, image repositories, networks and volumes whose name starts with PREFIX.
    #[arg(long, value_name = "PREFIX")]
    pub only: Option<String>,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct AuditArgs {
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Number of most recent entries.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args, Clone, Default)]
pub struct BackupArgs {
    /// The database's service or container (with --list: only its backups).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    #[arg(short, long)]
    pub project: Option<String>,
    /// List the backups kept on the server instead of taking one.
    #[arg(long)]
    pub list: bool,
    /// Print JSON: the backup's record, or (with --list) one record a line.
    #[arg(long)]
    pub json: bool,
    /// Also copy the dump here (streamed from the server, its sha256 checked after the copy):
    /// to PATH, or into PATH when it is a directory (default: the current one).
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = ".", conflicts_with = "list")]
    pub download: Option<std::path::PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RestoreArgs {
    /// The database's service or container.
    pub name: String,
    #[arg(short, long)]
    pub project: Option<String>,
    /// The backup to restore: its ID as `berth backup --list` shows it.
    #[arg(long, value_name = "ID")]
    pub from: String,
    /// Overwrite without a backup of the current data first (the audit records it).
    #[arg(long)]
    pub no_safety_backup: bool,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct TimelineArgs {
    /// Only containers, services (PROJECT/SERVICE) or projects with these names (default: all).
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
    /// Only since this time: a duration (30m, 2h) or a timestamp (2026-11-22T03:00); default 24h.
    #[arg(long, value_name = "TIME", default_value = "24h")]
    pub since: String,
    /// Postmortem-ready Markdown: a heading, each entry in UTC and local time.
    #[arg(long, conflicts_with = "json")]
    pub md: bool,
    /// One JSON object per entry, a line each.
    #[arg(long)]
    pub json: bool,
}

fn parse_tail(s: &str) -> Result<crate::logs::Tail, String> {
    s.parse()
}
