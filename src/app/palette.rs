//! The command palette: Tab completion from the command table, then parsing a command line into
//! a command and its argument. Every palette command runs through `App::run_command`.

use crossterm::event::{KeyCode, KeyEvent};

use super::*;
use crate::commands::{self, Arg, Source};

#[derive(Debug, Clone)]
pub struct Palette {
    pub input: Input,
    /// Completions for what is typed, best first.
    pub candidates: Vec<String>,
    pub chosen: usize,
}

impl App {
    pub(super) fn open_palette(&mut self, prefill: &str) {
        let mut input = new_input();
        input.insert_str(prefill);
        self.overlay = Overlay::Palette(Palette {
            input,
            candidates: vec![],
            chosen: 0,
        });
        self.complete_palette();
    }

    /// Completions for the palette's text: command names, then arguments (containers, services,
    /// projects, servers, themes).
    pub fn palette_candidates(&self, text: &str) -> Vec<String> {
        let (cmd, arg) = match text.split_once(' ') {
            Some((c, a)) => (c, Some(a.trim_start())),
            None => (text, None),
        };
        let Some(arg) = arg else {
            return commands::palette_words()
                .into_iter()
                .filter(|w| w.starts_with(cmd))
                .collect();
        };
        let source = Intent::from_palette(cmd)
            .and_then(|i| i.palette())
            .and_then(|p| p.arg.source());
        let mut pool: Vec<String> = match source {
            Some(Source::Names | Source::Containers) => {
                let mut names: Vec<String> =
                    self.containers.values().map(|c| c.name.clone()).collect();
                if source == Some(Source::Names) {
                    for c in self.containers.values() {
                        if let (Some(p), Some(s)) = (&c.project, &c.service) {
                            names.push(format!("{p}/{s}"));
                            names.push(s.clone());
                            names.push(p.clone());
                        }
                    }
                }
                names
            }
            Some(Source::Servers) => self.servers.iter().map(|e| e.name.clone()).collect(),
            Some(Source::GroupServices) => self.group_services(),
            Some(Source::Themes) => Theme::names().into_iter().map(str::to_string).collect(),
            Some(Source::SortKeys) => vec!["name".into(), "state".into(), "uptime".into()],
            Some(Source::Since) => ["5m", "15m", "1h", "6h", "1d", "all"]
                .map(String::from)
                .to_vec(),
            Some(Source::Intervals) => stats::INTERVALS.iter().map(|s| s.to_string()).collect(),
            Some(Source::Text) | None => vec![],
        };
        pool.sort();
        pool.dedup();
        let lower = arg.to_lowercase();
        let mut out: Vec<String> = pool
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&lower))
            .cloned()
            .collect();
        out.extend(
            pool.iter()
                .filter(|n| {
                    !n.to_lowercase().starts_with(&lower) && n.to_lowercase().contains(&lower)
                })
                .cloned(),
        );
        out.into_iter().map(|a| format!("{cmd} {a}")).collect()
    }

    pub(super) fn complete_palette(&mut self) {
        let Overlay::Palette(p) = &self.overlay else {
            return;
        };
        let text = p.input.lines().join("");
        let candidates = self.palette_candidates(&text);
        if let Overlay::Palette(p) = &mut self.overlay {
            p.candidates = candidates;
            p.chosen = 0;
        }
    }

    pub(super) fn on_palette_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Palette(p) = &mut self.overlay else {
            return vec![];
        };
        match key.code {
            KeyCode::Esc => self.overlay = Overlay::None,
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Down | KeyCode::Up => {
                if p.candidates.is_empty() {
                    return vec![];
                }
                let n = p.candidates.len();
                let typed = p.input.lines().join("");
                // First Tab completes to the chosen candidate; later ones cycle.
                if key.code == KeyCode::Tab && typed != p.candidates[p.chosen] {
                    let pick = p.candidates[p.chosen].clone();
                    p.input = new_input();
                    p.input.insert_str(&pick);
                    // `:lo` → `:logs `: the argument's completions come next.
                    if pick.ends_with(' ') {
                        self.complete_palette();
                    }
                    return vec![];
                }
                p.chosen = match key.code {
                    KeyCode::BackTab | KeyCode::Up => (p.chosen + n - 1) % n,
                    _ => (p.chosen + 1) % n,
                };
                if matches!(key.code, KeyCode::Tab | KeyCode::BackTab) {
                    let pick = p.candidates[p.chosen].clone();
                    p.input = new_input();
                    p.input.insert_str(&pick);
                }
            }
            KeyCode::Enter => {
                let typed = p.input.lines().join("");
                let text = if typed.trim().is_empty() {
                    p.candidates.get(p.chosen).cloned().unwrap_or_default()
                } else {
                    typed
                };
                self.overlay = Overlay::None;
                return self.run_palette(text.trim());
            }
            _ => {
                if is_ctrl_c(&key) {
                    self.should_quit = true;
                    return vec![];
                }
                p.input.input(key);
                self.complete_palette();
            }
        }
        vec![]
    }

    /// Runs a palette command line such as `logs web` or `theme light`.
    pub fn run_palette(&mut self, line: &str) -> Vec<Command> {
        let (word, arg) = match line.split_once(' ') {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        if word.is_empty() {
            return vec![];
        }
        let Some(intent) = Intent::from_palette(word) else {
            let words: Vec<String> = commands::palette_words()
                .into_iter()
                .map(|w| w.trim_end().to_string())
                .collect();
            self.notify(
                Level::Error,
                format!("unknown command ':{word}'; commands: {}", words.join(", ")),
            );
            return vec![];
        };
        let form = intent.palette().copied();
        match (form.map(|f| f.arg), arg) {
            (Some(Arg::Required(_)), "") => {
                if let Some(f) = form {
                    self.notify(Level::Warn, f.usage_error());
                }
                vec![]
            }
            (Some(Arg::None) | Some(Arg::Optional(_)), "") => match intent {
                // The palette's bare forms that differ from their key.
                Intent::Events => {
                    self.view = View::Events;
                    vec![]
                }
                Intent::Host => self.open_host_view(),
                Intent::Stats => self.on_stats_intent(Intent::Stats).unwrap_or_default(),
                Intent::ServerPicker => self.open_picker(),
                Intent::Quit => {
                    self.should_quit = true;
                    vec![]
                }
                Intent::Filter | Intent::Interval => self.run_command(intent, Some("")),
                _ => self.run_command(intent, None),
            },
            _ => self.run_command(intent, Some(arg)),
        }
    }

    /// A command with its palette argument (possibly empty for an optional one).
    pub(super) fn on_palette_command(&mut self, intent: Intent, arg: &str) -> Vec<Command> {
        // A container action (restart, stop, …): its kind is named like the command.
        if let Some(kind) = action_kind(intent) {
            let (name, project) = split_service(arg);
            return self.request_runbook(Request::Action {
                kind,
                name,
                project,
            });
        }
        if matches!(
            intent,
            Intent::Scale
                | Intent::SwarmRestart
                | Intent::SwarmRollback
                | Intent::Drain
                | Intent::Activate
        ) {
            return self.on_swarm_palette(intent, arg);
        }
        match intent {
            // A file is read off the loop; a built-in theme needs no IO.
            Intent::Theme if Theme::is_file(arg) => return vec![Command::LoadTheme(arg.into())],
            Intent::Theme => match Theme::load(arg) {
                Ok(t) => {
                    self.theme = t;
                    self.notify(Level::Info, format!("theme {arg}"));
                }
                Err(e) => self.notify(Level::Error, e.to_string()),
            },
            Intent::Sort => match SortKey::parse(arg) {
                Some(k) => {
                    self.list.sort = k;
                    self.rebuild_rows();
                }
                None => self.notify(Level::Warn, "usage: :sort name|state|uptime"),
            },
            Intent::Filter | Intent::LogFilter if self.view == View::Logs => {
                let page = self.log_page();
                self.log_filter(arg, page);
            }
            Intent::LogFilter => {
                self.notify(Level::Warn, "open a log view first (L on a container)")
            }
            Intent::LogSince => return self.log_since(arg),
            Intent::Filter => match Filter::parse(arg) {
                Ok(f) => {
                    self.list.filter = f;
                    self.rebuild_rows();
                }
                Err(e) => self.notify(Level::Error, e),
            },
            Intent::ServerPicker => return self.switch_server(arg),
            Intent::Inspect => match self.find_container(arg) {
                Some(id) => {
                    self.select_container(&id);
                    self.list.details_open = true;
                    self.list.focus = Focus::Details;
                    self.list.details_scroll = 0;
                }
                None => self.notify(Level::Error, format!("no container named '{arg}'")),
            },
            Intent::Logs => return self.logs_by_name(arg),
            Intent::Forward => return self.forward_by_name(arg),
            Intent::Migrate | Intent::MigrateStatus => {
                let mut words = arg.split_whitespace();
                let (name, project) = split_service(words.next().unwrap_or_default());
                let target = words.next().map(str::to_string);
                let status = intent == Intent::MigrateStatus;
                return self.request_runbook(Request::Migrate(MigrateRequest {
                    name,
                    project,
                    target,
                    status,
                    ..Default::default()
                }));
            }
            Intent::Backup => {
                let (name, project) = split_service(arg.trim());
                return self.request_runbook(Request::Backup(BackupRequest { name, project }));
            }
            Intent::Rollback | Intent::Deploy => {
                let forward = intent == Intent::Deploy;
                let mut words = arg.split_whitespace();
                let (name, project) = split_service(words.next().unwrap_or_default());
                return match words.next() {
                    Some(to) => self.request_runbook(Request::Rollback(RollbackRequest {
                        name,
                        project,
                        to: Some(to.to_string()),
                        forward,
                        ..Default::default()
                    })),
                    None => self.pick_image(name, project, forward),
                };
            }
            Intent::Interval => return self.set_stats_interval(arg),
            Intent::Timeline => {
                return self.open_timeline(arg.split_whitespace().map(str::to_string).collect());
            }
            Intent::FleetFind => return self.fleet_find(arg),
            Intent::GroupRestart | Intent::GroupRollback => return self.group_palette(intent, arg),
            // Commands without an argument ignore one.
            other => return self.on_intent(other),
        }
        vec![]
    }
}
