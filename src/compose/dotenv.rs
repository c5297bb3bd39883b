//! A compose project's `.env`: its variables as compose reads them, and rewriting one variable's
//! value in place with every other byte of the file (comments, quoting, `export`, CRLF) unchanged.

use std::collections::BTreeMap;

/// How a value is written on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    None,
    Single,
    Double,
}

/// One variable's definition: where its value sits on its line, so it can be replaced alone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Definition {
    name: String,
    value: String,
    /// Byte range of the value token (quotes included) within the file.
    token: std::ops::Range<usize>,
    quote: Quote,
}

/// The variables of a `.env` file; a name defined twice takes its last value, as compose does.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    definitions(text)
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect()
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every definition in file order. A quoted value that does not close on its line is skipped (a
/// multi-line value never holds an image reference, and berth never rewrites one).
fn definitions(text: &str) -> Vec<Definition> {
    let mut out = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let body = line.trim_start_matches('\u{feff}').trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let body = match body.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => body,
        };
        let Some((key, rest)) = body.split_once('=') else {
            continue;
        };
        let name = key.trim();
        if !is_name(name) {
            continue;
        }
        let value_text = rest.trim_start();
        // Offsets within the file: the value starts where `value_text` starts on this line.
        let value_at = line_start + (line.len() - value_text.len());
        let (value, len, quote) = if let Some(q) = value_text.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => v.push('\n'),
                        Some((_, 't')) => v.push('\t'),
                        Some((_, e)) => v.push(e),
                        None => {}
                    },
                    c => v.push(c),
                }
            }
            let Some(end) = end else { continue };
            (v, end + 2, Quote::Double)
        } else if let Some(q) = value_text.strip_prefix('\'') {
            let Some(end) = q.find('\'') else { continue };
            (q[..end].to_string(), end + 2, Quote::Single)
        } else {
            // Unquoted: a `#` after whitespace starts a comment; trailing blanks are not the value.
            let mut end = value_text.len();
            let bytes = value_text.as_bytes();
            for i in 0..bytes.len() {
                if bytes[i] == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
                    end = i;
                    break;
                }
            }
            let v = value_text[..end].trim_end();
            (v.to_string(), v.len(), Quote::None)
        };
        out.push(Definition {
            name: name.to_string(),
            value,
            token: value_at..value_at + len,
            quote,
        });
    }
    out
}

/// Characters an image reference is made of: a value of these needs no quoting or escaping in
/// any quoting style, so the rewritten line keeps the style it had.
pub fn is_plain_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '@'))
}

/// `text` with the value of `name` (its last definition, the one compose uses) replaced by
/// `value`; every other byte stays. Errors say why the file cannot be pinned.
pub fn rewrite(text: &str, name: &str, value: &str) -> Result<String, String> {
    if !is_plain_value(value) {
        return Err(format!(
            "{value:?} is not a plain image reference; berth writes only [A-Za-z0-9._:/@-] into .env"
        ));
    }
    let Some(d) = definitions(text).into_iter().rfind(|d| d.name == name) else {
        return Err(format!("{name} is not set in .env"));
    };
    let token = match d.quote {
        Quote::None => value.to_string(),
        Quote::Single => format!("'{value}'"),
        Quote::Double => format!("\"{value}\""),
    };
    let mut out = String::with_capacity(text.len() + value.len());
    out.push_str(&text[..d.token.start]);
    out.push_str(&token);
    out.push_str(&text[d.token.end..]);
    Ok(out)
}

/// What changed between two texts of a `.env`, variable by variable, in one line: values of
/// secret-looking variables (and URL passwords) are masked as the environment is elsewhere.
pub fn difference(before: &str, now: &str) -> String {
    use crate::engine::model::mask_env;
    let (a, b) = (parse(before), parse(now));
    let shown = |name: &str, value: &str| {
        let masked = mask_env(&format!("{name}={value}"));
        masked
            .split_once('=')
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    for (name, old) in &a {
        match b.get(name) {
            Some(new) if new != old => parts.push(format!(
                "{name}: {} → {}",
                shown(name, old),
                shown(name, new)
            )),
            Some(_) => {}
            None => parts.push(format!("{name} removed")),
        }
    }
    for (name, new) in b.iter().filter(|(n, _)| !a.contains_key(*n)) {
        parts.push(format!("{name}={} added", shown(name, new)));
    }
    if parts.is_empty() {
        return if before == now {
            "no difference".into()
        } else {
            "the same variables, other lines (comments, spacing) changed".into()
        };
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "# deploy settings\r\nexport WEB_TAG=\"v2\"   # the web tag\r\n\r\n  DB_TAG = 'pg-15' \r\nEMPTY=\r\nHASH=a#b\r\nURL=\"http://x/?a=1\\\"b\"\r\nnot a line\r\nWEB_TAG=v3 # later wins\r\nLAST=final";

    #[test]
    fn parses_like_compose() {
        let v = parse(NASTY);
        assert_eq!(v["WEB_TAG"], "v3", "the last definition wins");
        assert_eq!(v["DB_TAG"], "pg-15");
        assert_eq!(v["EMPTY"], "");
        assert_eq!(v["HASH"], "a#b", "a # inside a word is not a comment");
        assert_eq!(v["URL"], "http://x/?a=1\"b");
        assert_eq!(v["LAST"], "final");
        assert!(!v.contains_key("not a line"));
    }

    #[test]
    fn rewrites_only_the_value_of_the_last_definition() {
        let out = rewrite(NASTY, "WEB_TAG", "v1").unwrap();
        assert_eq!(out, NASTY.replace("WEB_TAG=v3 #", "WEB_TAG=v1 #"));
        assert_eq!(parse(&out)["WEB_TAG"], "v1");
    }

    #[test]
    fn keeps_quoting_export_spacing_and_crlf() {
        let text = "A=1\r\nexport  TAG = \"v2\"  # pinned by hand\r\nB=2\r\n";
        assert_eq!(
            rewrite(text, "TAG", "v1").unwrap(),
            "A=1\r\nexport  TAG = \"v1\"  # pinned by hand\r\nB=2\r\n"
        );
        let text = "TAG='v2'\nOTHER=x";
        assert_eq!(rewrite(text, "TAG", "v1").unwrap(), "TAG='v1'\nOTHER=x");
        let text = "IMAGE=registry.local:5000/app:v2";
        assert_eq!(
            rewrite(text, "IMAGE", "registry.local:5000/app@sha256:abc").unwrap(),
            "IMAGE=registry.local:5000/app@sha256:abc"
        );
        let text = "\u{feff}TAG=v2\n";
        assert_eq!(rewrite(text, "TAG", "v1").unwrap(), "\u{feff}TAG=v1\n");
    }

    #[test]
    fn empty_value_and_trailing_whitespace() {
        let text = "TAG=\nX=1\n";
        assert_eq!(rewrite(text, "TAG", "v1").unwrap(), "TAG=v1\nX=1\n");
        let text = "TAG=v2   \t\nX=1";
        assert_eq!(rewrite(text, "TAG", "v1").unwrap(), "TAG=v1   \t\nX=1");
    }

    #[test]
    fn refuses_what_it_cannot_write_exactly() {
        assert!(
            rewrite("TAG=v2\n", "NOPE", "v1")
                .unwrap_err()
                .contains("not set")
        );
        assert!(rewrite("TAG=v2\n", "TAG", "v1 && rm").is_err());
        assert!(rewrite("TAG=v2\n", "TAG", "").is_err());
        // A quote that never closes is not a definition berth touches.
        assert!(rewrite("TAG=\"v2\nX=1\n", "TAG", "v1").is_err());
    }

    #[test]
    fn differences_name_the_variables_and_mask_secrets() {
        assert_eq!(
            difference(
                "WEB_TAG=v2\nDB_PASSWORD=old\nGONE=1\n",
                "WEB_TAG=v3\nDB_PASSWORD=new\nNEW=x\n"
            ),
            "DB_PASSWORD: •••••••• → ••••••••, GONE removed, WEB_TAG: v2 → v3, NEW=x added"
        );
        assert_eq!(
            difference("A=1\n", "# note\nA=1\n"),
            "the same variables, other lines (comments, spacing) changed"
        );
    }
}
