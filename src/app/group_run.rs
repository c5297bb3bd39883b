//! A runbook action across a group from the fleet view: R / B on a group row (the service asked in
//! the palette) or on a service the search found on several servers plan the same run as
//! `berth -s GROUP restart|rollback SERVICE` (`fleet::group`): one plan, one confirmation (the
//! group's name typed on production), then one server at a time in the run view, which shows
//! where the run is; the first failure stops it.

use std::sync::Arc;

use super::{App, Command, View};
use crate::action::{Level, SharedGroupPlan};
use crate::fleet::group::Outcome;
use crate::format::printable;
use crate::keymap::Intent;
use crate::runbook::{ActionKind, Confirmation, Plan, Request, RollbackRequest};

/// A run across a group as the run view shows it: which server runs now, how it ended.
#[derive(Debug, Clone)]
pub struct GroupRun {
    pub group: String,
    /// In the order they run.
    pub servers: Vec<String>,
    pub plans: Vec<Arc<Plan>>,
    /// The server running now (or the last that ran).
    pub current: usize,
    pub outcome: Option<Outcome>,
}

impl GroupRun {
    pub fn finished(&self) -> bool {
        self.outcome.is_some()
    }
}

/// The request a group key or command makes: restart, or rollback (to `image`, else the image
/// the service ran before, as `berth -s GROUP rollback SERVICE` picks it on each server).
fn group_request(intent: Intent, service: &str, image: Option<&str>) -> Request {
    let (name, project) = super::split_service(service);
    match intent {
        Intent::GroupRollback => Request::Rollback(RollbackRequest {
            name,
            project,
            to: image.map(str::to_string),
            ..Default::default()
        }),
        _ => Request::Action {
            kind: ActionKind::Restart,
            name,
            project,
        },
    }
}

impl App {
    /// R / B in the fleet view: on a group row the palette asks which service; on a service the
    /// search found, the group holding all its servers runs it.
    pub(super) fn group_key(&mut self, intent: Intent) -> Vec<Command> {
        let word = if intent == Intent::GroupRollback {
            "group-rollback"
        } else {
            "group-restart"
        };
        if self.run_in_progress() {
            return self.refuse_while_running();
        }
        if self.fleet.query.is_some() {
            let Some(f) = self.fleet_found().get(self.fleet.found).cloned() else {
                self.notify(Level::Warn, "nothing found to act on");
                return vec![];
            };
            let servers = f.servers();
            let groups = self.config.group_list();
            // The smallest group that holds every server the service runs on.
            let holding = groups
                .iter()
                .filter(|(_, members)| servers.iter().all(|s| members.iter().any(|m| m == s)))
                .min_by_key(|(_, members)| members.len());
            let Some((group, members)) = holding else {
                self.notify(
                    Level::Warn,
                    format!(
                        "{} runs on {}, which no [groups.NAME] holds together: add one to act on them at once",
                        printable(&f.key),
                        servers.join(", ")
                    ),
                );
                return vec![];
            };
            let request = group_request(intent, &f.key, None);
            return self.request_group(group.clone(), members.clone(), request);
        }
        match self.fleet.group {
            Some(i) => match self.config.group_list().get(i) {
                Some((group, members)) => {
                    // Refused before the palette asks for a service it could not run.
                    if self.refuse_read_only_group(group, members) {
                        return vec![];
                    }
                    self.open_palette(&format!("{word} {group} "))
                }
                None => self.fleet.group = None,
            },
            None => self.notify(
                Level::Info,
                "R / B act across a group: select a group row (Up from the first server) or find the service with /",
            ),
        }
        vec![]
    }

    /// The palette's completions for a group command: each group, and `GROUP project/service`
    /// for every compose service (or Kamal role) the fleet's last listings show on its servers.
    pub(super) fn group_services(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (group, members) in self.config.group_list() {
            for row in self
                .fleet
                .rows
                .iter()
                .filter(|r| members.contains(&r.server))
            {
                for c in row.listing.iter() {
                    if let (Some(p), Some(s)) = (&c.project, &c.service) {
                        out.push(format!("{group} {p}/{s}"));
                    }
                }
            }
            out.push(group);
        }
        out
    }

    /// `:group-restart GROUP SERVICE`, `:group-rollback GROUP SERVICE [IMAGE]`.
    pub(super) fn group_palette(&mut self, intent: Intent, arg: &str) -> Vec<Command> {
        let word = intent.palette().map_or("group-restart", |p| p.name());
        let mut words = arg.split_whitespace();
        let (group, service) = (words.next(), words.next());
        let groups = self.config.group_list();
        let Some((group, members)) = group.and_then(|g| groups.iter().find(|(n, _)| n == g)) else {
            let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
            let known = if names.is_empty() {
                "none is configured: add [groups.NAME] servers = [...]".to_string()
            } else {
                format!("groups: {}", names.join(", "))
            };
            self.notify(
                Level::Error,
                format!("unknown group '{}'; {known}", group.unwrap_or_default()),
            );
            return vec![];
        };
        let Some(service) = service else {
            self.notify(
                Level::Warn,
                format!("name the service: :{word} {group} SERVICE"),
            );
            return vec![];
        };
        let request = group_request(intent, service, words.next());
        self.request_group(group.clone(), members.clone(), request)
    }

    fn request_group(
        &mut self,
        group: String,
        members: Vec<String>,
        request: Request,
    ) -> Vec<Command> {
        if self.run_in_progress() {
            return self.refuse_while_running();
        }
        if request.mutating() && self.refuse_read_only_group(&group, &members) {
            return vec![];
        }
        self.notify(
            Level::Info,
            format!("planning {} on group {group} …", request.label()),
        );
        vec![Command::PlanGroup {
            group,
            members,
            request,
        }]
    }

    /// A group's run is guarded by its servers, not by the console that happens to be open:
    /// refused (one line naming why) when berth is read-only or any member is configured so.
    /// The runner checks again once the members are resolved (a server read-only through another
    /// at the same place).
    fn refuse_read_only_group(&mut self, group: &str, members: &[String]) -> bool {
        match crate::fleet::group::refuse_read_only(&self.config, false, group, members, true) {
            Ok(()) => false,
            Err(e) => {
                self.notify(Level::Error, printable(&e));
                true
            }
        }
    }

    fn refuse_while_running(&mut self) -> Vec<Command> {
        self.notify(
            Level::Warn,
            "a runbook is still running; wait for it to finish (the run view shows it)",
        );
        self.view = View::Runbook;
        vec![]
    }

    /// Whether a run (of one server or a group) has not finished.
    pub(super) fn run_in_progress(&self) -> bool {
        self.run.as_ref().is_some_and(|r| !r.finished())
            || self.group_run.as_ref().is_some_and(|g| !g.finished())
    }

    /// The group's plan on screen: every server's steps, one confirmation for all.
    pub(super) fn confirm_group(&mut self, shared: SharedGroupPlan) -> Vec<Command> {
        let p = shared.0.clone();
        self.status = None;
        let confirmation = match p.guard().confirmation(p.mutating(), &p.group) {
            Ok(c) => c,
            Err(e) => {
                self.notify(Level::Error, format!("group {}: {e}", p.group));
                return vec![];
            }
        };
        let names = p.names();
        let mut summary = vec![format!(
            "On group {}: {} server{}, one at a time: {}.",
            p.group,
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(" → ")
        )];
        summary.extend(p.notes().into_iter().map(|n| format!("• {n}")));
        let production = p.production_members();
        if !production.is_empty() {
            summary.push(format!(
                "• Production: {} (so the group's name is asked).",
                production.join(", ")
            ));
        }
        summary.push(
            "• Each server is verified before the next; the first failure stops the run and says which servers were done and which were not started.".into(),
        );
        let mut body = Vec::new();
        for (i, m) in p.members.iter().enumerate() {
            body.push(format!("[{}/{}] {}", i + 1, names.len(), m.target.name));
            for note in &m.plan.notes {
                body.push(format!("  note: {note}"));
            }
            for (n, step) in m.plan.steps.iter().enumerate() {
                body.push(format!("  {}. {}", n + 1, step.description));
            }
            for promise in &m.plan.promises {
                body.push(format!("  after: {}", promise.text));
            }
        }
        // Container and service names in the steps and notes came from the servers.
        let summary: Vec<String> = summary.iter().map(|l| printable(l)).collect();
        let body: Vec<String> = body.iter().map(|l| printable(l)).collect();
        let title = printable(&p.title());
        let run = vec![Command::RunGroup(shared)];
        match confirmation {
            Confirmation::None => self.confirmed(run),
            Confirmation::YesNo => {
                self.ask_plan(title, summary, body, None, run);
                vec![]
            }
            Confirmation::TypeName(name) => {
                self.ask_plan(title, summary, body, Some(name), run);
                vec![]
            }
        }
    }

    /// Opens the run view on the group's first server.
    pub(super) fn start_group_run(&mut self, shared: &SharedGroupPlan) {
        let p = &shared.0;
        let plans: Vec<Arc<Plan>> = p.members.iter().map(|m| Arc::new(m.plan.clone())).collect();
        let Some(first) = plans.first().cloned() else {
            return;
        };
        self.start_run(first);
        self.group_run = Some(GroupRun {
            group: p.group.clone(),
            servers: p.names(),
            plans,
            current: 0,
            outcome: None,
        });
    }

    /// The group's server `index` starts: the run view follows it.
    pub(super) fn on_group_member(&mut self, index: usize) {
        let Some(g) = &mut self.group_run else {
            return;
        };
        let Some(plan) = g.plans.get(index).cloned() else {
            return;
        };
        g.current = index;
        self.run = Some(super::runbook::RunState::new(plan, self.now));
    }

    pub(super) fn on_group_done(&mut self, outcome: Outcome) {
        let Some(g) = &mut self.group_run else {
            return;
        };
        let level = if outcome.ok() {
            Level::Info
        } else {
            Level::Error
        };
        // The failure's message may quote the server.
        let line = printable(&outcome.line(&g.group));
        g.outcome = Some(outcome);
        self.notify(level, line);
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::action::{Action, RunbookMsg};
    use crate::fixtures;
    use crate::fleet::ServerRow;
    use crate::fleet::group::{GroupPlan, Member};
    use crate::runbook::{RunEvent, RunResult};

    const CONFIG: &str = "[servers.app-1]\ntarget = \"a@127.0.0.1:2201\"\nenvironment = \"production\"\n\
        [servers.app-2]\ntarget = \"a@127.0.0.1:2202\"\n[servers.db]\ntarget = \"a@127.0.0.1:2203\"\n\
        [groups.app]\nservers = [\"app-1\", \"app-2\"]\n";

    fn key(app: &mut App, code: KeyCode) -> Vec<Command> {
        app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            key(app, KeyCode::Char(c));
        }
    }

    /// The console on the fleet of [`CONFIG`], every server answered; app-1 and app-2 list the
    /// shop fixture's containers.
    fn fleet_app() -> App {
        fleet_app_with(CONFIG)
    }

    /// [`fleet_app`] with this config text.
    fn fleet_app_with(text: &str) -> App {
        let config = crate::config::file::parse(text, std::path::Path::new("berth.toml")).unwrap();
        let mut app = App::new(
            config,
            crate::theme::Theme::default(),
            crate::keymap::Keymap::default(),
            fixtures::now(),
        );
        assert_eq!(app.start(None), vec![Command::WatchFleet { round: 1 }]);
        for server in ["app-1", "app-2", "db"] {
            let listing = if server == "db" {
                vec![]
            } else {
                fixtures::shop()
            };
            let row = ServerRow {
                server: server.into(),
                reachable: Some(true),
                listing: Arc::new(listing),
                ..Default::default()
            };
            app.update(Action::Fleet { round: 1, row });
        }
        app
    }

    /// A member planned on an engine that is never asked anything (the run is the runner's).
    fn member(name: &str, production: bool) -> Member {
        let mut target = crate::target::Target::local();
        target.name = name.into();
        target.environment = production.then(|| "production".into());
        // A client is made without connecting; nothing here asks it anything.
        let docker = bollard::Docker::connect_with_http(
            "http://127.0.0.1:9",
            5,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap();
        let engine = crate::engine::Engine {
            docker,
            target: target.clone(),
            transport: "unix socket".into(),
            version: Default::default(),
            ssh: None,
            prompter: None,
            typed_logins: Default::default(),
        };
        let mut plan = fixtures::plan("restart shop/web", "shop/web", 2);
        plan.target = name.into();
        Member {
            target,
            engine,
            plan,
        }
    }

    fn result(ok: bool, message: &str) -> RunResult {
        RunResult {
            ok,
            message: message.into(),
            duration: std::time::Duration::from_secs(3),
            images_before: vec![],
            images_after: vec![],
            metrics: Default::default(),
        }
    }

    fn restart_web() -> Request {
        Request::Action {
            kind: ActionKind::Restart,
            name: "web".into(),
            project: Some("shop".into()),
        }
    }

    /// R on a group row asks for the service in the palette and plans the group's run; the one
    /// confirmation types the group's name (app-1 is production); the run view follows each
    /// server, and the first failure's last word names what was done.
    #[test]
    fn a_group_row_plans_confirms_once_and_runs_server_by_server() {
        let mut app = fleet_app();
        assert_eq!(app.fleet.selected_row().unwrap().server, "app-1");
        key(&mut app, KeyCode::Up);
        assert_eq!(
            app.fleet.group,
            Some(0),
            "Up from the first server: the group"
        );
        assert!(app.fleet.selected_row().is_some());
        key(&mut app, KeyCode::Char('R'));
        let super::super::Overlay::Palette(p) = &app.overlay else {
            panic!("the palette asks for the service: {:?}", app.overlay);
        };
        assert_eq!(p.input.lines().join(""), "group-restart app ");
        typed(&mut app, "shop/web");
        let commands = key(&mut app, KeyCode::Enter);
        assert_eq!(
            commands,
            vec![Command::PlanGroup {
                group: "app".into(),
                members: vec!["app-1".into(), "app-2".into()],
                request: restart_web(),
            }]
        );

        let plan = SharedGroupPlan(Arc::new(GroupPlan {
            group: "app".into(),
            service: "shop/web".into(),
            members: vec![member("app-1", true), member("app-2", false)],
            skipped: vec![],
            same_host: vec![("app-3".into(), "app-1".into())],
        }));
        app.update(Action::Runbook(RunbookMsg::GroupPlanned(Ok(plan.clone()))));
        let super::super::Overlay::Confirm(c) = &app.overlay else {
            panic!("one confirmation: {:?}", app.overlay);
        };
        assert_eq!(
            c.typed.as_deref(),
            Some("app"),
            "production: the group's name"
        );
        assert!(c.summary[0].contains("app-1 → app-2"), "{:?}", c.summary);
        assert!(
            c.summary
                .iter()
                .any(|l| l.contains("app-3 is the same host as app-1")),
            "{:?}",
            c.summary
        );
        assert!(c.body.contains(&"[2/2] app-2".to_string()), "{:?}", c.body);
        typed(&mut app, "app");
        let commands = key(&mut app, KeyCode::Enter);
        assert_eq!(commands, vec![Command::RunGroup(plan)]);
        assert_eq!(app.view, View::Runbook);

        app.update(Action::Runbook(RunbookMsg::GroupMember { index: 0 }));
        let done = RunEvent::Done {
            result: result(true, "healthy"),
        };
        app.update(Action::Runbook(RunbookMsg::Event(done)));
        app.update(Action::Runbook(RunbookMsg::GroupMember { index: 1 }));
        assert_eq!(app.run.as_ref().unwrap().plan.target, "app-2");
        assert_eq!(app.group_run.as_ref().unwrap().current, 1);
        assert!(app.run_in_progress());
        // Another group action waits for this one.
        key(&mut app, KeyCode::Char('F'));
        assert_eq!(app.view, View::Fleet);
        assert!(key(&mut app, KeyCode::Char('R')).is_empty());
        assert_eq!(
            app.view,
            View::Runbook,
            "the run view shows the run in progress"
        );

        let failed = RunEvent::Done {
            result: result(false, "web did not become healthy"),
        };
        app.update(Action::Runbook(RunbookMsg::Event(failed)));
        let outcome = Outcome {
            done: vec!["app-1".into()],
            failed: Some(("app-2".into(), "web did not become healthy".into())),
            not_started: vec![],
        };
        app.update(Action::Runbook(RunbookMsg::GroupDone(outcome)));
        let status = app.status.as_ref().unwrap();
        assert_eq!(status.level, Level::Error);
        assert_eq!(
            status.text,
            "group app stopped at app-2: web did not become healthy; done: app-1; not started: none"
        );
        assert!(!app.run_in_progress());
        // No console open: the run view is not covered, and Esc goes back to the fleet.
        assert_eq!(app.view, View::Runbook);
        assert!(!app.body_is_covered());
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.view, View::Fleet);
    }

    /// On a service the search found on app-1 and app-2, R plans it across the group holding
    /// both; a service on servers no group holds together says so.
    #[test]
    fn a_found_service_runs_across_the_group_that_holds_its_servers() {
        let mut app = fleet_app();
        key(&mut app, KeyCode::Char('/'));
        typed(&mut app, "shop/web");
        key(&mut app, KeyCode::Enter);
        let found = app.fleet_found();
        assert_eq!(found[0].key, "shop/web");
        assert_eq!(found[0].servers(), ["app-1", "app-2"]);
        let commands = key(&mut app, KeyCode::Char('R'));
        assert_eq!(
            commands,
            vec![Command::PlanGroup {
                group: "app".into(),
                members: vec!["app-1".into(), "app-2".into()],
                request: restart_web(),
            }]
        );

        // The same service on db too: no group holds app-1, app-2 and db.
        let mut app = fleet_app();
        let row = ServerRow {
            server: "db".into(),
            reachable: Some(true),
            listing: Arc::new(fixtures::shop()),
            ..Default::default()
        };
        app.update(Action::Fleet { round: 1, row });
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Char('/'),
            KeyModifiers::NONE,
        )));
        typed(&mut app, "shop/web");
        key(&mut app, KeyCode::Enter);
        assert!(key(&mut app, KeyCode::Char('B')).is_empty());
        let status = app.status.as_ref().unwrap();
        assert!(
            status
                .text
                .contains("which no [groups.NAME] holds together"),
            "{}",
            status.text
        );
    }

    /// The palette form names the group; an unknown one lists those there are. Tab offers the
    /// groups, then the services the fleet saw on the group's servers.
    #[test]
    fn the_palette_names_the_group_and_the_service() {
        let mut app = fleet_app();
        let groups = app.palette_candidates("group-restart a");
        assert_eq!(groups[0], "group-restart app", "{groups:?}");
        let services = app.palette_candidates("group-restart app shop/w");
        assert_eq!(
            services,
            [
                "group-restart app shop/web",
                "group-restart app shop/worker"
            ]
        );
        let commands = app.run_palette("group-rollback app shop/web v1");
        let [Command::PlanGroup { group, request, .. }] = commands.as_slice() else {
            panic!("{commands:?}");
        };
        assert_eq!(group, "app");
        let Request::Rollback(r) = request else {
            panic!("{request:?}");
        };
        assert_eq!(
            (r.name.as_str(), r.project.as_deref(), r.to.as_deref()),
            ("web", Some("shop"), Some("v1"))
        );
        assert!(app.run_palette("group-restart nope web").is_empty());
        assert_eq!(
            app.status.as_ref().unwrap().text,
            "unknown group 'nope'; groups: app"
        );
        assert!(app.run_palette("group-restart app").is_empty());
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .contains(":group-restart app SERVICE"),
            "{}",
            app.status.as_ref().unwrap().text
        );
    }

    /// A group's run follows its servers' guards, not only the open console's: with a writable
    /// console open, a member configured read-only refuses it in one line naming that server
    /// (from the palette, the group row's R, a found service's R), and so does berth read-only
    /// (`--read-only` is folded into the config's `read_only`), also with no console open.
    #[test]
    fn a_read_only_member_or_berth_refuses_the_group_run() {
        let app2 = "[servers.app-2]\ntarget = \"a@127.0.0.1:2202\"\n";
        let text = CONFIG.replace(app2, &format!("{app2}read_only = true\n"));
        let mut app = fleet_app_with(&text);
        let mut db = crate::target::Target::local();
        db.name = "db".into();
        let _ = app.connect(db);
        key(&mut app, KeyCode::Char('F'));
        assert_eq!(app.view, View::Fleet);
        let refused = |app: &App| {
            let status = app.status.as_ref().expect("a refusal");
            assert_eq!(status.level, Level::Error);
            assert!(
                status.text.contains("server app-2 is read-only")
                    && status.text.contains("nothing was changed")
                    && !status.text.contains('\n'),
                "{}",
                status.text
            );
        };
        assert!(app.run_palette("group-restart app shop/web").is_empty());
        refused(&app);
        assert!(app.run_palette("group-rollback app shop/web v1").is_empty());
        refused(&app);
        app.status = None;
        key(&mut app, KeyCode::Up);
        assert_eq!(app.fleet.group, Some(0));
        assert!(key(&mut app, KeyCode::Char('R')).is_empty());
        assert!(
            matches!(app.overlay, super::super::Overlay::None),
            "no palette asks for a service the run could not change"
        );
        refused(&app);
        app.status = None;
        key(&mut app, KeyCode::Char('/'));
        typed(&mut app, "shop/web");
        key(&mut app, KeyCode::Enter);
        assert!(key(&mut app, KeyCode::Char('R')).is_empty());
        refused(&app);

        let mut app = fleet_app_with(&format!("read_only = true\n{CONFIG}"));
        assert!(app.run_palette("group-restart app shop/web").is_empty());
        let status = app.status.as_ref().unwrap();
        assert!(
            status.text.contains("berth is read-only"),
            "{}",
            status.text
        );

        // Berth read-only: a server opened from the fleet or the picker is read-only too.
        let mut app = fleet_app_with(&format!("read_only = true\n{CONFIG}"));
        let mut target = crate::target::Target::local();
        target.name = "app-1".into();
        app.update(Action::ServerResolved(Ok(target)));
        assert!(app.target.as_ref().unwrap().read_only);
    }
}
