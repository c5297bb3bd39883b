//! `berth notify test`: a test message to every `[[notify]]` webhook, one line each (ok, or why
//! not, the URL masked); the exit code fails when any failed.

use std::process::ExitCode;

use crate::context::Context;
use crate::format::printable;
use crate::notify::{Retry, test_all};

pub async fn run_test(ctx: &Context) -> color_eyre::Result<ExitCode> {
    let entries = &ctx.config.notify;
    if entries.is_empty() {
        let at = ctx
            .config_path
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default();
        return Err(color_eyre::eyre::eyre!(
            "no [[notify]] webhook is configured: add one{at} (kind = \"discord\" | \"slack\" | \"generic\", url = \"https://…\")"
        ));
    }
    let mut failed = 0;
    for r in test_all(entries, Retry::default()).await {
        match r.outcome {
            Ok(_) => println!("ok      {:<8} {}", r.kind, printable(&r.url)),
            Err(e) => {
                failed += 1;
                println!(
                    "failed  {:<8} {}: {}",
                    r.kind,
                    printable(&r.url),
                    printable(&e)
                );
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("berth: {failed} of {} webhooks failed", entries.len());
        ExitCode::FAILURE
    })
}
