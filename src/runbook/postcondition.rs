//! What a plan promises about the engine's end state, and the one check of it after the run.
//!
//! Every plan states, next to its steps, what will be true on the engine once it has run
//! ([`Plan::promises`]: the words the operator reads in the confirmation). When the run ends,
//! [`check`] reads the engine and compares: each promise that does not hold is a difference, and a
//! run with a difference has failed, whatever its steps reported. berth's word is the engine's
//! state, never what berth sent.
//!
//! A plan kind adds its promises at plan time (`Promise::new(text, Expect::…)`) and the
//! expectation is checked here, by reading the engine, not by trusting the steps.

use std::time::Duration;

use serde::Serialize;

use crate::engine::Engine;

use super::Plan;

/// The longest the end-state check may take: the run is over, its result must not wait on a
/// dead link (a check that cannot read the engine in time is itself a difference).
pub const CHECK_BUDGET: Duration = Duration::from_secs(20);

/// One promise of a plan: what the operator reads, and what berth reads back to check it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Promise {
    pub text: String,
    #[serde(skip)]
    pub expect: Expect,
}

impl Promise {
    pub fn new(text: impl Into<String>, expect: Expect) -> Promise {
        Promise {
            text: text.into(),
            expect,
        }
    }
}

/// What the engine must show. Each variant is read and compared in [`check_one`].
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Words only: checked by the steps themselves (kept for plans whose end state is the
    /// absence of a change, e.g. a dry run).
    Stated,
}

/// Reads the engine and returns each promise that does not hold, in words
/// (`flstk_web: 2 tasks running, promised 3`). Empty: the engine shows what the plan promised.
pub async fn check(plan: &Plan, engine: &Engine) -> Vec<String> {
    if plan.promises.is_empty() {
        return Vec::new();
    }
    match tokio::time::timeout(CHECK_BUDGET, check_all(plan, engine)).await {
        Ok(differences) => differences,
        Err(_) => vec![format!(
            "the end state could not be read within {} s: the engine did not answer",
            CHECK_BUDGET.as_secs()
        )],
    }
}

async fn check_all(plan: &Plan, engine: &Engine) -> Vec<String> {
    let mut differences = Vec::new();
    for promise in &plan.promises {
        if let Err(d) = check_one(&promise.expect, engine).await {
            differences.push(format!("{}: {d}", promise.text));
        }
    }
    differences
}

async fn check_one(expect: &Expect, _engine: &Engine) -> Result<(), String> {
    match expect {
        Expect::Stated => Ok(()),
    }
}
