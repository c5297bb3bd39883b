//! The bodies posted for a notice: Discord's `{"content", "embeds"}`, Slack's `{"text", "blocks"}`
//! and berth's own flat object. Every string from the server goes through the one sanitiser here,
//! and through the receiver's own escaping (Slack's `<>&`, Discord's mentions switched off), so a
//! container name cannot ping a channel or break the message.

use serde_json::{Value, json};

use crate::config::notify::NotifyKind;
use crate::runbook::notice::{Outcome, Phase, RunNotice};

/// Discord refuses a `content` over 2000 characters and a field value over 1024.
const DISCORD_CONTENT: usize = 2000;
const DISCORD_FIELD: usize = 1024;
/// Slack's section text limit is 3000.
const SLACK_TEXT: usize = 3000;

/// One line of server text, inert: control characters out (the shared sanitiser).
fn clean(text: &str) -> String {
    crate::format::printable(text)
}

/// Several lines (an error's first lines), each cleaned, line breaks kept.
fn clean_lines(text: &str) -> String {
    text.lines().map(clean).collect::<Vec<_>>().join("\n")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn mark(result: Outcome) -> &'static str {
    match result {
        Outcome::Started => "▶",
        Outcome::Succeeded => "✅",
        Outcome::Failed => "❌",
        Outcome::Restored => "↩️",
        Outcome::Interrupted => "⚠️",
    }
}

fn server_label(n: &RunNotice) -> String {
    match &n.environment {
        Some(e) => format!("{} ({})", clean(&n.server), clean(e)),
        None => clean(&n.server),
    }
}

fn duration_label(n: &RunNotice) -> String {
    format!("{:.1} s", n.duration.as_secs_f64())
}

/// `from → to`, when the run changes the image.
fn image_change(n: &RunNotice) -> Option<String> {
    match (&n.from_image, &n.to_image) {
        (None, None) => None,
        (from, to) => Some(format!(
            "{} → {}",
            from.as_deref().map(clean).unwrap_or_else(|| "?".into()),
            to.as_deref().map(clean).unwrap_or_else(|| "?".into())
        )),
    }
}

/// The one-line summary every kind carries: `✅ rollback of shop/web on prod (production)
/// succeeded in 12.3 s: web:v2 → web:v1, by ana@laptop`.
pub fn summary(n: &RunNotice) -> String {
    let what = format!(
        "{} {} of {} on {}",
        mark(n.result),
        clean(&n.action),
        clean(&n.service),
        server_label(n)
    );
    let how = match n.phase {
        Phase::Started => "started".to_string(),
        Phase::Finished => format!("{} in {}", n.result.as_str(), duration_label(n)),
    };
    let images = image_change(n)
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    let mut line = format!("{what} {how}{images}, by {}", clean(&n.user));
    if let Some(step) = &n.failed_step {
        line.push_str(&format!(" — failed at: {}", clean(step)));
    }
    line
}

/// Name/value pairs shown as fields (Discord) or a field list (Slack).
fn facts(n: &RunNotice) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Server", server_label(n)),
        ("Service", clean(&n.service)),
        ("Action", clean(&n.action)),
        ("Result", n.result.as_str().to_string()),
        ("User", clean(&n.user)),
    ];
    if n.phase == Phase::Finished {
        f.push(("Duration", duration_label(n)));
    }
    if let Some(c) = image_change(n) {
        f.push(("Image", c));
    }
    if let Some(s) = &n.failed_step {
        f.push(("Failed step", clean(s)));
    }
    f
}

/// The body for `kind`.
pub fn body(kind: NotifyKind, n: &RunNotice) -> Value {
    match kind {
        NotifyKind::Discord => discord(n),
        NotifyKind::Slack => slack(n),
        NotifyKind::Generic => generic(n),
    }
}

fn discord(n: &RunNotice) -> Value {
    let colour = match n.result {
        Outcome::Started => 0x3b82f6,
        Outcome::Succeeded => 0x22c55e,
        Outcome::Failed => 0xef4444,
        Outcome::Restored | Outcome::Interrupted => 0xf59e0b,
    };
    let mut fields: Vec<Value> = facts(n)
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": cut(&value, DISCORD_FIELD), "inline": name != "Image" && name != "Failed step" }))
        .collect();
    if let Some(e) = &n.error {
        fields.push(json!({ "name": "Error", "value": cut(&format!("```\n{}\n```", clean_lines(e).replace("```", "'''")), DISCORD_FIELD), "inline": false }));
    }
    json!({
        "content": cut(&summary(n), DISCORD_CONTENT),
        "embeds": [{
            "title": cut(&format!("{} {}", clean(&n.action), clean(&n.service)), 256),
            "description": cut(&clean(&n.message), 4096),
            "color": colour,
            "fields": fields,
        }],
        // A name from the server must not ping @everyone.
        "allowed_mentions": { "parse": [] },
    })
}

/// Slack reads `<…>` as links and mentions (`<!channel>`): escape its three control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(n: &RunNotice) -> Value {
    let summary = slack_escape(&summary(n));
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .map(|(name, value)| json!({ "type": "mrkdwn", "text": cut(&format!("*{name}*\n{}", slack_escape(&value)), 2000) }))
        .collect();
    let mut blocks = vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": cut(&summary, SLACK_TEXT) } }),
        // Slack takes at most ten fields in a section.
        json!({ "type": "section", "fields": fields.into_iter().take(10).collect::<Vec<_>>() }),
    ];
    if let Some(e) = &n.error {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": cut(&format!("```{}```", slack_escape(&clean_lines(e))), SLACK_TEXT) } }));
    }
    json!({ "text": cut(&summary, SLACK_TEXT), "blocks": blocks })
}

fn generic(n: &RunNotice) -> Value {
    let opt = |v: &Option<String>| v.as_deref().map(clean);
    json!({
        "action": clean(&n.action),
        "phase": n.phase,
        "server": clean(&n.server),
        "environment": opt(&n.environment),
        "service": clean(&n.service),
        "result": n.result.as_str(),
        "from_image": opt(&n.from_image),
        "to_image": opt(&n.to_image),
        "user": clean(&n.user),
        "duration_ms": n.duration.as_millis() as u64,
        "message": clean(&n.message),
        "failed_step": opt(&n.failed_step),
        "error": n.error.as_deref().map(clean_lines),
    })
}

/// The body `berth notify test` posts.
pub fn test_body(kind: NotifyKind, user: &str) -> Value {
    let text = format!(
        "berth test notification from {}: this webhook will be told when a runbook action starts and ends",
        clean(user)
    );
    match kind {
        NotifyKind::Discord => {
            json!({ "content": text, "embeds": [], "allowed_mentions": { "parse": [] } })
        }
        NotifyKind::Slack => {
            let text = slack_escape(&text);
            json!({ "text": text, "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": text } }] })
        }
        NotifyKind::Generic => json!({
            "action": "test", "phase": "test", "server": null, "environment": null,
            "service": null, "result": "test", "from_image": null, "to_image": null,
            "user": clean(user), "duration_ms": 0, "message": text,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn notice() -> RunNotice {
        RunNotice {
            action: "rollback".into(),
            phase: Phase::Finished,
            server: "prod".into(),
            environment: Some("production".into()),
            service: "shop/web\u{1b}[31m<!channel>".into(),
            result: Outcome::Restored,
            from_image: Some("web:v2 (sha256:bbbbbbbbbbbb)".into()),
            to_image: Some("web:v1 (sha256:aaaaaaaaaaaa)".into()),
            user: "ana@laptop".into(),
            duration: Duration::from_millis(12_345),
            message: "restored web:v2 after the health check failed".into(),
            failed_step: Some("verify health of shop-web-1".into()),
            error: Some("unhealthy: exit 1\n\u{1b}]52;c;AAAA\u{7}second".into()),
        }
    }

    #[test]
    fn generic_has_every_field() {
        let b = body(NotifyKind::Generic, &notice());
        for key in [
            "action",
            "phase",
            "server",
            "environment",
            "service",
            "result",
            "from_image",
            "to_image",
            "user",
            "duration_ms",
            "message",
        ] {
            assert!(b.get(key).is_some(), "{key} missing: {b}");
        }
        assert_eq!(b["phase"], "finished");
        assert_eq!(b["result"], "restored");
        assert_eq!(b["duration_ms"], 12_345);
        assert_eq!(b["to_image"], "web:v1 (sha256:aaaaaaaaaaaa)");
        let text = b.to_string();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
    }

    #[test]
    fn discord_and_slack_shapes() {
        let d = body(NotifyKind::Discord, &notice());
        let content = d["content"].as_str().unwrap();
        assert!(
            content.contains("rollback of shop/web")
                && content.contains("restored in 12.3 s")
                && content.contains("web:v2 (sha256:bbbbbbbbbbbb) → web:v1")
                && content.contains("by ana@laptop")
                && content.contains("failed at: verify health"),
            "{content}"
        );
        assert!(!content.contains('\u{1b}'));
        assert_eq!(d["allowed_mentions"]["parse"], json!([]));
        let fields = d["embeds"][0]["fields"].as_array().unwrap();
        assert!(
            fields.iter().any(|f| f["name"] == "Error"
                && f["value"].as_str().unwrap().contains("unhealthy: exit 1"))
        );
        let s = body(NotifyKind::Slack, &notice());
        let text = s["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
            "{text}"
        );
        assert_eq!(s["blocks"][0]["type"], "section");
        assert!(
            s["blocks"][2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("second")
        );
    }

    #[test]
    fn started_says_started_and_no_duration() {
        let mut n = notice();
        n.phase = Phase::Started;
        n.result = Outcome::Started;
        n.failed_step = None;
        n.error = None;
        let s = summary(&n);
        assert!(
            s.starts_with("▶ rollback of") && s.contains(") started: web:v2"),
            "{s}"
        );
        assert!(!facts(&n).iter().any(|(k, _)| *k == "Duration"));
    }

    #[test]
    fn long_fields_are_cut_to_the_receivers_limits() {
        let mut n = notice();
        n.service = "x".repeat(5000);
        let d = body(NotifyKind::Discord, &n);
        assert!(d["content"].as_str().unwrap().chars().count() <= DISCORD_CONTENT);
        for f in d["embeds"][0]["fields"].as_array().unwrap() {
            assert!(f["value"].as_str().unwrap().chars().count() <= DISCORD_FIELD);
        }
    }
}
