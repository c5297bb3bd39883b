//! Which task logs make up the log of a service or a stack, and how each line is labelled: the
//! manager reads each task's log from the node that runs it, and the log streams merge them in
//! timestamp order like compose replicas.

use super::{Named, Snapshot, TaskInfo};
use crate::logs::LogSource;
use crate::logs::stream::task_source;

/// At most this many tasks are read for one log: the newest ones, those still wanted first.
pub const MAX_TASKS: usize = 64;

/// The log sources of a service or a stack: every task that ran a container, newest first within
/// a slot, bounded by [`MAX_TASKS`]. Prefixes are `web.1` for a task wanted running and
/// `web.1~abc123` for an earlier one of the same slot; a stack's carry the full service name.
pub fn sources_for(snapshot: &Snapshot, named: &Named<'_>) -> Vec<LogSource> {
    let services = match named {
        Named::Service(s) => vec![*s],
        Named::Stack(_, members) => members.clone(),
    };
    let mut tasks: Vec<&TaskInfo> = services
        .iter()
        .flat_map(|s| snapshot.tasks_of(&s.id))
        .filter(|t| t.container_id.is_some())
        .collect();
    tasks.sort_by_key(|t| (!t.wants_running(), std::cmp::Reverse(t.created_at)));
    tasks.truncate(MAX_TASKS);
    let mut out: Vec<LogSource> = tasks
        .into_iter()
        .map(|t| {
            let base = t.label();
            let prefix = if t.wants_running() {
                base
            } else {
                format!("{base}~{}", &t.id[..t.id.len().min(6)])
            };
            LogSource {
                id: task_source(&t.id),
                name: prefix.clone(),
                prefix,
            }
        })
        .collect();
    out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    out
}
