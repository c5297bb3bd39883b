//! The command table: every user-facing command declared once — its `[keys]` name, where it
//! applies, its help line, default keys, palette form (names, argument, completion source), whether
//! it changes the server, and the CLI subcommand that does the same. Key dispatch, palette parsing
//! and Tab completion, the `?` help, footer hints, the read-only refusal and the CLI mapping all
//! read this table, so a command cannot exist in one of them and be missing from another.

use serde::Serialize;

/// Where a binding applies. `Global` bindings work in every view unless the view binds the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    Global,
    List,
    Details,
    Panel,
    Logs,
    Fleet,
    /// The swarm's services and nodes views.
    Swarm,
}

impl Scope {
    /// Where a key is looked up, nearest first: the details pane sits on the list.
    pub fn chain(self) -> &'static [Scope] {
        match self {
            Scope::Global => &[Scope::Global],
            Scope::List => &[Scope::List, Scope::Global],
            Scope::Details => &[Scope::Details, Scope::List, Scope::Global],
            Scope::Panel => &[Scope::Panel, Scope::Global],
            Scope::Logs => &[Scope::Logs, Scope::Global],
            Scope::Fleet => &[Scope::Fleet, Scope::Global],
            Scope::Swarm => &[Scope::Swarm, Scope::Global],
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::List => "Container list",
            Scope::Details => "Details pane",
            Scope::Panel => "Events, run and audit views",
            Scope::Logs => "Logs",
            Scope::Fleet => "Fleet",
            Scope::Swarm => "Swarm services and nodes",
        }
    }
}

/// Where the palette finds completions for a command's argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Container names, `project/service`, services and projects.
    Names,
    /// Container names only.
    Containers,
    /// Configured servers, ssh config hosts, docker contexts.
    Servers,
    /// `[groups.NAME]`, then `GROUP project/service` for the services the fleet last saw on a
    /// group's servers.
    GroupServices,
    Themes,
    SortKeys,
    /// Log start times (`15m`, `1h`, `all`).
    Since,
    Intervals,
    /// Free text: nothing to complete.
    Text,
}

/// A palette command's argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    None,
    /// Without it the command does what its key does.
    Optional(Source),
    /// Without it the palette says how to use the command.
    Required(Source),
}

impl Arg {
    pub fn source(self) -> Option<Source> {
        match self {
            Arg::None => None,
            Arg::Optional(s) | Arg::Required(s) => Some(s),
        }
    }
}

/// How a command is typed in the palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaletteForm {
    /// Names offered by completion, the first one is the command's palette name.
    pub names: &'static [&'static str],
    /// Names accepted but not offered (`q` for `quit`).
    pub aliases: &'static [&'static str],
    /// The argument as help shows it (`NAME`, `REGEX`), empty for none.
    pub usage: &'static str,
    pub arg: Arg,
    /// The palette's help line, after the usage.
    pub help: &'static str,
}

impl PaletteForm {
    pub fn name(&self) -> &'static str {
        self.names[0]
    }

    /// `logs NAME — a container, service or project`.
    pub fn help_line(&self) -> String {
        let names = self.names.join(", :");
        match self.usage {
            "" => format!("{names} — {}", self.help),
            usage => format!("{names} {usage} — {}", self.help),
        }
    }

    /// The one-line error for a missing argument.
    pub fn usage_error(&self) -> String {
        format!("usage: :{} {} — {}", self.name(), self.usage, self.help)
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The `[keys]` config name.
    pub name: &'static str,
    pub scope: Scope,
    /// The key help line.
    pub help: &'static str,
    pub keys: &'static [&'static str],
    pub palette: Option<PaletteForm>,
    /// Changes something on the server: refused on a read-only server, asks first.
    pub mutating: bool,
    /// The `berth` subcommand that does the same from a shell.
    pub cli: Option<&'static str>,
}

/// A command bound to keys.
const fn key(
    name: &'static str,
    scope: Scope,
    help: &'static str,
    keys: &'static [&'static str],
) -> Spec {
    Spec {
        name,
        scope,
        help,
        keys,
        palette: None,
        mutating: false,
        cli: None,
    }
}

/// A command without a default key: typed in the palette (a key can still be bound in `[keys]`).
const fn typed(name: &'static str, scope: Scope, help: &'static str) -> Spec {
    key(name, scope, help, &[])
}

impl Spec {
    const fn palette(
        self,
        names: &'static [&'static str],
        usage: &'static str,
        arg: Arg,
        help: &'static str,
    ) -> Spec {
        Spec {
            palette: Some(PaletteForm {
                names,
                aliases: &[],
                usage,
                arg,
                help,
            }),
            ..self
        }
    }

    const fn aliases(self, aliases: &'static [&'static str]) -> Spec {
        match self.palette {
            Some(p) => Spec {
                palette: Some(PaletteForm { aliases, ..p }),
                ..self
            },
            None => self,
        }
    }

    const fn mutating(self) -> Spec {
        Spec {
            mutating: true,
            ..self
        }
    }

    const fn cli(self, name: &'static str) -> Spec {
        Spec {
            cli: Some(name),
            ..self
        }
    }
}

macro_rules! commands {
    ($( $variant:ident => $spec:expr ;)*) => {
        /// A user-facing command. Keys, the palette and the CLI all name these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum Intent { $($variant),* }

        impl Intent {
            pub const ALL: &'static [Intent] = &[$(Intent::$variant),*];

            /// The command's row in the table.
            pub fn spec(self) -> &'static Spec {
                match self { $(Intent::$variant => { const S: Spec = $spec; &S }),* }
            }
        }
    };
}

use Arg::{Optional, Required};
use Scope::{Details, Fleet, Global, List, Logs, Swarm};
use Source::*;

/// A name or a service: the argument of the runbook commands.
const SERVICE: &str = "a container, or a service: PROJECT/SERVICE";

commands! {
    Quit => key("quit", Global, "quit berth", &["q", "ctrl-c"])
        .palette(&["quit"], "", Arg::None, "leave berth (also :q)").aliases(&["q", "q!"]);
    Help => key("help", Global, "show this help", &["?"])
        .palette(&["help"], "", Arg::None, "list the keys and commands");
    Palette => key("palette", Global, "command palette (:logs, :server, :theme …)", &[":"]);
    Back => key("back", Global, "go back / close", &["esc"]);
    Up => key("up", Global, "move up", &["up", "k"]);
    Down => key("down", Global, "move down", &["down", "j"]);
    PageUp => key("page-up", Global, "page up", &["pageup", "ctrl-b"]);
    PageDown => key("page-down", Global, "page down", &["pagedown", "ctrl-f"]);
    Top => key("top", Global, "go to top", &["home", "g"]);
    Bottom => key("bottom", Global, "go to bottom", &["end", "G"]);
    ServerPicker => key("servers", Global, "pick a server", &["S"])
        .palette(&["server"], "NAME", Optional(Servers), "switch server (no name: picker)");
    Refresh => key("refresh", Global, "resync with the engine now", &["ctrl-r"]);
    Events => key("events", Global, "engine events (Esc returns)", &["E"])
        .palette(&["events"], "", Arg::None, "the engine's container events, newest first");
    Host => key("host", Global, "host CPU, memory, disks, system df (Esc returns)", &["H"])
        .palette(&["host", "df"], "", Arg::None, "host CPU, memory, disks and docker system df")
        .cli("df");
    Theme => typed("theme", Global, "switch the theme")
        .palette(&["theme"], "NAME", Required(Themes), "dark, light, high-contrast or a .toml file");
    Interval => typed("interval", Global, "how often stats are read")
        .palette(&["interval"], "5s", Optional(Intervals), "how often stats are read (500ms … 5m)");
    Filter => key("filter", List, "filter (text; ~regex)", &["/"])
        .palette(&["filter"], "TEXT", Optional(Text), "filter the list (~regex); in logs: only matching lines");
    ToggleAll => key("toggle-all", List, "show / hide stopped containers", &["a"])
        .palette(&["all"], "", Arg::None, "show / hide stopped containers");
    Sort => key("sort", List, "sort by name → state → uptime", &["s"])
        .palette(&["sort"], "name|state|uptime", Required(SortKeys), "sort the list");
    Collapse => key("collapse", List, "collapse / expand the project", &["space", "left", "h"]);
    Details => key("details", List, "open details pane", &["enter", "right", "l", "d"]);
    Inspect => typed("inspect", List, "select a container and open its details")
        .palette(&["inspect"], "NAME", Required(Containers), "select a container and open its details");
    Stats => key("stats", List, "stats pane with charts for the selection", &["c"])
        .palette(&["stats"], "", Arg::None, "show / hide the stats pane of the selection")
        .cli("stats");
    Logs => key("logs", List, "logs of the container", &["L"])
        .palette(&["logs"], "NAME", Required(Names), "a container, service or project")
        .cli("logs");
    ServiceLogs => key("service-logs", List, "logs of the whole service / project", &["ctrl-l"])
        .cli("logs");
    Shell => key("shell", List, "shell in the container (bash, else sh)", &["e"]);
    Forward => key("forward", List, "forward a port of the container to this machine (127.0.0.1; asks which when it has several)", &["f"])
        .palette(&["forward"], "NAME [PORT [LOCAL]]", Required(Containers), "a container's port on 127.0.0.1 (LOCAL: that local port)")
        .cli("forward");
    ForwardsList => key("forwards", List, "the port forwards: d stops the selected one", &["T"])
        .palette(&["forwards"], "", Arg::None, "the port forwards of this console (d stops one)");
    Restart => key("restart", List, "restart, then wait for health (asks first)", &["R"])
        .palette(&["restart"], "NAME", Required(Names), SERVICE).mutating().cli("restart");
    Start => key("start", List, "start, then wait for health (asks first)", &["U"])
        .palette(&["start"], "NAME", Required(Names), SERVICE).mutating().cli("start");
    Stop => key("stop", List, "stop (asks first)", &["O"])
        .palette(&["stop"], "NAME", Required(Names), SERVICE).mutating().cli("stop");
    Kill => key("kill", List, "kill (asks first)", &["K"])
        .palette(&["kill"], "NAME", Required(Names), SERVICE).mutating().cli("kill");
    Remove => key("remove", List, "remove the container (asks first)", &["D"])
        .palette(&["rm"], "NAME", Required(Names), SERVICE).mutating().cli("rm");
    Migrate => key("migrate", List, "run the service's migrations in it (asks first)", &["M"])
        .palette(&["migrate"], "NAME [TARGET]", Required(Names), SERVICE).mutating().cli("migrate");
    MigrateStatus => typed("migrate-status", List, "which migrations ran (changes nothing)")
        .palette(&["migrate-status"], "NAME", Required(Names), "which migrations ran (changes nothing)")
        .cli("migrate");
    Backup => key("backup", List, "back up the service's database into a file on the server (asks first)", &["b"])
        .palette(&["backup"], "NAME", Required(Names), "dump a service's database into a file on the server (asks first)")
        .mutating().cli("backup");
    Rollback => key("rollback", List, "roll the service back: pick the image (previous one preselected), then confirm", &["B"])
        .palette(&["rollback"], "NAME [IMAGE]", Required(Names), "no image: pick one (asks first)")
        .mutating().cli("rollback");
    Deploy => key("deploy", List, "deploy a tag of the service: pick it, then confirm", &["V"])
        .palette(&["deploy"], "NAME [TAG]", Required(Names), "no tag: pick one from the registry and the server (asks first)")
        .mutating().cli("deploy");
    Prune => key("prune", List, "prune unused images etc., keeping rollback images (asks first)", &["P"])
        .palette(&["prune"], "", Arg::None, "prune unused images etc., keeping rollback images (asks first)")
        .mutating().cli("prune");
    Audit => key("audit", Global, "audit log of every change (Esc returns)", &["A"])
        .palette(&["audit"], "", Arg::None, "the audit log of every change")
        .cli("audit");
    Timeline => key("timeline", Global, "timeline: what happened when (Esc returns)", &["I"])
        .palette(&["timeline"], "[NAME…]", Optional(Names), "what happened in the last 24h, in time order (names: only these)")
        .cli("timeline");
    NotifyTest => typed("notify-test", Global, "post a test message to every [[notify]] webhook")
        .palette(&["notify-test"], "", Arg::None, "post a test message to every [[notify]] webhook")
        .cli("notify");
    RunView => key("run-view", Global, "the last runbook run", &["W"]);
    FleetView => key("fleet", Global, "the fleet: every configured server at once (Esc returns)", &["F"])
        .palette(&["fleet"], "", Arg::None, "every configured server at once, trouble first")
        .cli("fleet");
    SwarmView => key("swarm", Global, "swarm stacks, services and tasks (Esc returns)", &["Z"])
        .palette(&["swarm"], "", Arg::None, "a swarm manager's stacks, services and tasks")
        .cli("services");
    NodesView => key("nodes", Global, "swarm nodes (Esc returns)", &["N"])
        .palette(&["nodes"], "", Arg::None, "a swarm manager's nodes")
        .cli("nodes");
    Scale => key("scale", Swarm, "scale the selected service (asks the replicas, then confirms)", &["+"])
        .palette(&["scale"], "SERVICE=N", Required(Text), "set a swarm service's replicas (asks first)")
        .mutating().cli("scale");
    SwarmRestart => key("swarm-restart", Swarm, "restart the selected service: a rolling forced update (asks first)", &["R"])
        .palette(&["service-restart"], "SERVICE", Required(Text), "replace every task of a swarm service (asks first)")
        .mutating().cli("restart");
    SwarmRollback => key("swarm-rollback", Swarm, "roll the selected service back to its previous spec (asks first)", &["B"])
        .palette(&["service-rollback"], "SERVICE [TAG]", Required(Text), "the swarm's rollback, or an update to TAG (asks first)")
        .mutating().cli("rollback");
    SwarmLogs => key("swarm-logs", Swarm, "logs of the selected service's tasks, or of every service of a stack, merged by time (Esc returns)", &["L"])
        .cli("logs");
    Drain => key("drain", Swarm, "drain the selected node: its tasks move (nodes view; asks first)", &["D"])
        .palette(&["drain"], "NODE", Required(Text), "move every task off a swarm node (asks first)")
        .mutating().cli("drain");
    Activate => key("activate", Swarm, "activate the selected node (nodes view; asks first)", &["U"])
        .palette(&["activate"], "NODE", Required(Text), "let a drained or paused swarm node take tasks again (asks first)")
        .mutating().cli("activate");
    FleetOpen => key("fleet-open", Fleet, "open the server's console (Esc comes back)", &["enter", "right", "l"]);
    FleetFind => key("fleet-find", Fleet, "find a container, service, project or image on every server", &["/"])
        .palette(&["find"], "TEXT", Required(Text), "the fleet: where a container, service, project or image runs, on every server");
    GroupRestart => key("group-restart", Fleet, "restart a service on every server of the selected group, or where the found service runs, one server at a time (asks first)", &["R"])
        .palette(&["group-restart"], "GROUP SERVICE", Required(GroupServices), "restart a service on a group's servers, one at a time (asks first)")
        .mutating().cli("restart");
    GroupRollback => key("group-rollback", Fleet, "roll a service back on every server of the selected group, or where the found service runs, one server at a time (asks first)", &["B"])
        .palette(&["group-rollback"], "GROUP SERVICE [IMAGE]", Required(GroupServices), "roll a service back on a group's servers, one at a time (asks first)")
        .mutating().cli("rollback");
    Reveal => key("reveal", List, "reveal / mask secret values of the selected container", &["x"]);
    CloseDetails => key("close-details", Details, "close details", &["left", "h", "d"]);
    LogFollow => key("log-follow", Logs, "follow new lines / pause (End or G also follows)", &["f"]);
    LogWrap => key("log-wrap", Logs, "wrap long lines on / off", &["w"]);
    LogLeft => key("log-left", Logs, "scroll left (wrap off)", &["left", "h"]);
    LogRight => key("log-right", Logs, "scroll right (wrap off)", &["right", "l"]);
    LogTimestamps => key("log-timestamps", Logs, "timestamps on / off", &["t"]);
    LogUtc => key("log-utc", Logs, "timestamps in UTC / local time", &["T"]);
    LogSearch => key("log-search", Logs, "search (regex), highlighted", &["/"]);
    LogNext => key("log-next", Logs, "next match", &["n"]);
    LogPrev => key("log-prev", Logs, "previous match", &["N"]);
    LogFilter => key("log-filter", Logs, "only matching lines (regex; !regex: the others)", &["F", "|"])
        .palette(&["grep"], "REGEX", Required(Text), "logs: only matching lines (!REGEX: the others)");
    LogInvert => key("log-invert", Logs, "invert the filter", &["v"]);
    LogCase => key("log-case", Logs, "ignore case in search and filter on / off", &["i"]);
    LogSave => key("log-save", Logs, "save the buffer to a file", &["s"]);
    LogSaveAll => typed("log-save-all", Logs, "write every line of the view's range to a file, past the view's caps")
        .palette(&["save-all"], "", Arg::None, "logs: every line of the view's range to a file, none dropped");
    LogCopy => key("log-copy", Logs, "copy the selected line (OSC 52)", &["y"]);
    LogSince => typed("log-since", Logs, "logs from a time on")
        .palette(&["since"], "TIME", Required(Since), "logs from 15m, 2h, 2026-11-22T03:00 (all: tail)");
}

impl Intent {
    /// The `[keys]` config name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
    pub fn scope(self) -> Scope {
        self.spec().scope
    }
    pub fn help(self) -> &'static str {
        self.spec().help
    }
    pub fn default_keys(self) -> &'static [&'static str] {
        self.spec().keys
    }
    pub fn palette(self) -> Option<&'static PaletteForm> {
        self.spec().palette.as_ref()
    }
    pub fn mutating(self) -> bool {
        self.spec().mutating
    }
    /// Off on a read-only server: every change, and the shell, which can change anything in the
    /// container without a runbook step (it has no CLI form, so it is not in the mutating rows).
    pub fn refused_when_read_only(self) -> bool {
        self.mutating() || self == Intent::Shell
    }
    pub fn from_name(name: &str) -> Option<Intent> {
        Intent::ALL.iter().copied().find(|i| i.name() == name)
    }

    /// The command a palette word names (`logs`, `rm`, `q`).
    pub fn from_palette(word: &str) -> Option<Intent> {
        Intent::ALL.iter().copied().find(|i| {
            i.palette()
                .is_some_and(|p| p.names.contains(&word) || p.aliases.contains(&word))
        })
    }

    /// Every command the palette knows, in table order.
    pub fn palette_commands() -> impl Iterator<Item = (Intent, &'static PaletteForm)> {
        Intent::ALL
            .iter()
            .filter_map(|&i| i.palette().map(|p| (i, p)))
    }
}

/// Names offered when completing the first word, in table order; a command that takes an
/// argument completes with the space after it.
pub fn palette_words() -> Vec<String> {
    Intent::palette_commands()
        .flat_map(|(_, p)| {
            p.names.iter().map(move |n| match p.arg {
                Arg::None => n.to_string(),
                _ => format!("{n} "),
            })
        })
        .collect()
}

/// The palette help of a completion candidate (`logs ` or `logs web`): its command's line.
pub fn palette_help(candidate: &str) -> Option<String> {
    let word = candidate.split_whitespace().next()?;
    Intent::from_palette(word).and_then(|i| i.palette().map(PaletteForm::help_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut keys: Vec<&str> = Intent::ALL.iter().map(|i| i.name()).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "two commands share a [keys] name");
        let mut words: Vec<&str> = Intent::palette_commands()
            .flat_map(|(_, p)| p.names.iter().chain(p.aliases).copied())
            .collect();
        words.sort();
        let n = words.len();
        words.dedup();
        assert_eq!(words.len(), n, "two commands share a palette name");
    }

    #[test]
    fn every_command_is_reachable_and_documented() {
        for &i in Intent::ALL {
            let spec = i.spec();
            assert!(
                !spec.keys.is_empty() || spec.palette.is_some(),
                "{}: neither a key nor a palette name",
                spec.name
            );
            assert!(!spec.help.is_empty(), "{}: no help line", spec.name);
            if let Some(p) = &spec.palette {
                assert!(!p.help.is_empty(), "{}: no palette help", spec.name);
                assert_eq!(
                    p.usage.is_empty(),
                    p.arg == Arg::None,
                    "{}: usage text and argument disagree",
                    spec.name
                );
            }
            if spec.mutating {
                assert!(
                    spec.cli.is_some(),
                    "{}: changes the server but has no CLI",
                    spec.name
                );
                assert!(
                    spec.palette.is_some(),
                    "{}: mutating but not in the palette",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn completion_words_carry_the_space_of_an_argument() {
        let words = palette_words();
        assert!(words.contains(&"logs ".to_string()));
        assert!(words.contains(&"quit".to_string()));
        assert!(
            !words.iter().any(|w| w.trim() == "q"),
            "aliases are not offered"
        );
        assert_eq!(Intent::from_palette("rm"), Some(Intent::Remove));
        assert_eq!(Intent::from_palette("q!"), Some(Intent::Quit));
        assert_eq!(Intent::from_palette("df"), Some(Intent::Host));
        assert!(
            palette_help("logs web")
                .unwrap()
                .starts_with("logs NAME — ")
        );
    }
}
