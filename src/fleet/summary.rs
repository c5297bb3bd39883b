//! One server's containers summed up for the fleet: how many run, and how many are in trouble.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::engine::model::{Container, Health, State};

/// A restart within this window with a non-zero restart count counts as crash-looping.
const CRASH_LOOP_WINDOW: i64 = 10;
/// A non-zero exit within this window counts as a recent failure.
const RECENT_EXIT_WINDOW: i64 = 60;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerSummary {
    pub running: usize,
    pub total: usize,
    pub unhealthy: usize,
    /// Restarting now, or restarted by its policy in the last 10 minutes.
    pub restarting: usize,
    /// Exited with a non-zero code in the last hour.
    pub exited_recently: usize,
}

impl ContainerSummary {
    /// berth's own kept containers are history, not trouble, and are not counted.
    pub fn of(containers: &[Container], now: DateTime<Utc>) -> ContainerSummary {
        let mut s = ContainerSummary::default();
        for c in containers.iter().filter(|c| !c.is_kept()) {
            s.total += 1;
            if c.state == State::Running {
                s.running += 1;
            }
            if c.current_health() == Health::Unhealthy {
                s.unhealthy += 1;
            }
            let restarted_lately = c.restart_count > 0
                && c.started_at
                    .is_some_and(|t| now - t < Duration::minutes(CRASH_LOOP_WINDOW));
            if c.state == State::Restarting || restarted_lately {
                s.restarting += 1;
            }
            if matches!(c.state, State::Exited | State::Dead)
                && c.exit_code.is_some_and(|code| code != 0)
                && c.finished_at
                    .is_some_and(|t| now - t < Duration::minutes(RECENT_EXIT_WINDOW))
            {
                s.exited_recently += 1;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{minutes_ago, now, shop};

    #[test]
    fn counts_trouble_in_the_shop() {
        let mut containers = shop();
        let mut looping = crate::fixtures::container("looper");
        looping.restart_count = 4;
        looping.started_at = minutes_ago(1);
        let mut old_failure = crate::fixtures::container("old-failure");
        old_failure.state = State::Exited;
        old_failure.exit_code = Some(1);
        old_failure.finished_at = minutes_ago(120);
        containers.extend([looping, old_failure]);
        let s = ContainerSummary::of(&containers, now());
        assert_eq!(s.total, containers.len());
        assert_eq!(s.unhealthy, 1, "{s:?}");
        assert!(s.restarting >= 1, "{s:?}");
        assert!(s.running < s.total);
        let recent = containers
            .iter()
            .filter(|c| {
                c.state == State::Exited
                    && c.exit_code.is_some_and(|x| x != 0)
                    && c.finished_at
                        .is_some_and(|t| now() - t < Duration::minutes(60))
            })
            .count();
        assert_eq!(s.exited_recently, recent);
    }
}
