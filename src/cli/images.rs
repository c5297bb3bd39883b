//! `berth rollback SERVICE --list`: the images the service could run, on the server and in its
//! registry, newest first where a date is known, with the digest; a registry that cannot be
//! listed is one note line, and the server's images still show.

use std::process::ExitCode;

use crate::context::Context;
use crate::logs::sanitize::{json_safe, plain};
use crate::runbook::Candidate;
use crate::runbook::guard::Guard;

pub async fn run(ctx: &Context, a: &super::RollbackArgs) -> color_eyre::Result<ExitCode> {
    let target = ctx.cli_target()?;
    Guard::for_target(&target).allows(false)?;
    let engine = ctx.connect(&target).await?;
    let (cands, note) =
        crate::runbook::candidates_with_registry(&engine, &a.name, a.project.as_deref()).await?;
    if a.guard.json {
        let json = serde_json::json!({ "candidates": cands, "note": note }).to_string();
        println!("{}", json_safe(&json));
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&cands, note.as_deref()));
    Ok(ExitCode::SUCCESS)
}

/// The list as text, every field from the server or the registry cleaned.
pub fn table(cands: &[Candidate], note: Option<&str>) -> String {
    let width = cands
        .iter()
        .map(|c| plain(&c.label()).chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:<width$}  {:<23}  {:<19}  {:<16}  {:>9}  MARK\n",
        "IMAGE", "WHERE", "DIGEST", "CREATED", "SIZE"
    );
    for c in cands {
        let digest = c
            .digest()
            .map(|d| {
                let d = plain(d);
                let n = d.find(':').map(|i| i + 13).unwrap_or(12).min(d.len());
                d[..n].to_string()
            })
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<width$}  {:<23}  {:<19}  {:<16}  {:>9}  {}\n",
            plain(&c.label()),
            c.place(),
            digest,
            c.created
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into()),
            if c.size > 0 {
                crate::format::bytes(c.size as u64)
            } else {
                "-".into()
            },
            c.mark().unwrap_or("")
        ));
    }
    if let Some(n) = note {
        out.push_str(&format!("note: {}\n", plain(n)));
    }
    out
}
