//! Log bytes → text that is safe to put on a terminal. Escape sequences (OSC title / clipboard /
//! hyperlink, CSI cursor moves and clears, DCS, APC, PM, SOS) and C0/C1 controls are removed or shown
//! as inert symbols; SGR colours become [`Span`]s the view may render as styles. Invalid UTF-8 becomes
//! U+FFFD. Lines are capped at [`MAX_LINE_BYTES`] so one huge line cannot stall a frame.

/// Bytes of a line that are kept; the rest is counted and dropped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A colour from an SGR sequence: one of the 256 indexed colours or true colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgrColor {
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// What SGR asked for over a range of the text; `None` fields mean the view's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SgrStyle {
    pub fg: Option<SgrColor>,
    pub bg: Option<SgrColor>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub reverse: bool,
}

impl SgrStyle {
    fn is_plain(&self) -> bool {
        *self == SgrStyle::default()
    }
}

/// A styled byte range of the sanitized text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
    pub style: SgrStyle,
}

/// A sanitized line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clean {
    pub text: String,
    /// Styled ranges; empty for the common plain line.
    pub spans: Vec<Span>,
}

/// Sanitizes one line (without its newline). `cut` bytes beyond the cap were already dropped by the
/// caller (a stream assembling a long line); they are reported at the end of the text.
pub fn sanitize(bytes: &[u8], cut: usize) -> Clean {
    let (kept, extra) = if bytes.len() > MAX_LINE_BYTES {
        (&bytes[..MAX_LINE_BYTES], bytes.len() - MAX_LINE_BYTES)
    } else {
        (bytes, 0)
    };
    let cut = cut + extra;
    // The common line is printable ASCII: copy it.
    let mut clean = if kept
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        Clean {
            // SAFETY-free: printable ASCII is valid UTF-8.
            text: String::from_utf8_lossy(kept).into_owned(),
            spans: Vec::new(),
        }
    } else {
        slow(kept)
    };
    if cut > 0 {
        clean.text.push_str(&format!(" … ({cut} bytes cut)"));
    }
    clean
}

/// One field from the server (a name, a label, an image, a health probe's output, an engine error)
/// as one inert line of text: the same cleaning as a log line, colours dropped, line breaks and tabs
/// shown as symbols / spaces so a field cannot break the layout around it. Every path that puts
/// server text on a terminal — views and CLI commands alike — goes through this or [`sanitize`].
pub fn plain(text: &str) -> String {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_string();
    }
    sanitize(text.as_bytes(), 0).text.replace('\t', " ")
}

/// Multi-line text for a terminal (a CLI command's whole output): each line through [`plain`],
/// line breaks kept.
pub fn plain_lines(text: &str) -> String {
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\n')
    {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&plain(line));
    }
    out
}

/// JSON for a terminal: serde escapes C0 controls but writes C1 controls (U+0080–U+009F, which some
/// terminals obey) and bidirectional overrides as they are. They are written as `\u` escapes here,
/// so the data is exact for a JSON reader and inert on a screen.
pub fn json_safe(json: &str) -> String {
    if json.is_ascii() {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

fn slow(bytes: &[u8]) -> Clean {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut spans: Vec<Span> = Vec::new();
    let mut style = SgrStyle::default();
    let mut style_start = 0usize;
    let mut chars = text.chars().peekable();
    // Inside a string sequence (OSC, DCS, SOS, PM, APC): runs to ST (ESC \ or C1 0x9c) or BEL.
    let mut in_string = false;

    let close = |out: &String, spans: &mut Vec<Span>, style: &SgrStyle, start: usize| {
        if !style.is_plain() && out.len() > start {
            spans.push(Span {
                start: start as u32,
                end: out.len() as u32,
                style: *style,
            });
        }
    };

    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\u{7}' | '\u{9c}' => in_string = false,
                '\u{1b}' => {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    in_string = false;
                }
                _ => {}
            }
            continue;
        }
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    let (params, fin) = read_csi(&mut chars);
                    if fin == Some('m') {
                        close(&out, &mut spans, &style, style_start);
                        apply_sgr(&mut style, &params);
                        style_start = out.len();
                    }
                }
                Some(']' | 'P' | 'X' | '^' | '_') => in_string = true,
                Some(c2) if ('\u{20}'..='\u{2f}').contains(&c2) => {
                    // ESC intermediate… final (charset selection and the like).
                    while let Some(&n) = chars.peek() {
                        chars.next();
                        if !('\u{20}'..='\u{2f}').contains(&n) {
                            break;
                        }
                    }
                }
                // ESC c (reset), ESC 7/8, ESC D/M …: two characters, dropped.
                _ => {}
            },
            '\u{9b}' => {
                // C1 CSI: same as ESC [, but never styles (rare, and only 8-bit terminals read it).
                let _ = read_csi(&mut chars);
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => in_string = true,
            '\t' => out.push('\t'),
            '\r' => {}
            c if (c as u32) < 0x20 => {
                // Shown as the Unicode control picture: visible, inert.
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'));
            }
            '\u{7f}' => out.push('\u{2421}'),
            c if ('\u{80}'..='\u{9f}').contains(&c) => {}
            // Bidirectional overrides reorder what follows them on screen (Trojan Source): shown
            // as a replacement character instead.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    close(&out, &mut spans, &style, style_start);
    Clean { text: out, spans }
}

/// Reads a CSI sequence after `ESC [`: parameters up to the final byte. Bounded by the line.
fn read_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> (String, Option<char>) {
    let mut params = String::new();
    for c in chars.by_ref() {
        match c {
            '\u{30}'..='\u{3f}' => {
                if params.len() < 64 {
                    params.push(c)
                }
            }
            '\u{20}'..='\u{2f}' => {}
            '\u{40}'..='\u{7e}' => return (params, Some(c)),
            // Anything else aborts the sequence; the character is dropped with it.
            _ => return (params, None),
        }
    }
    (params, None)
}

fn apply_sgr(style: &mut SgrStyle, params: &str) {
    if params.is_empty() {
        *style = SgrStyle::default();
        return;
    }
    let nums: Vec<u16> = params
        .split([';', ':'])
        .map(|p| p.parse::<u16>().unwrap_or(0))
        .collect();
    let mut i = 0;
    while i < nums.len() {
        match nums[i] {
            0 => *style = SgrStyle::default(),
            1 => style.bold = true,
            2 => style.dim = true,
            3 => style.italic = true,
            4 => style.underline = true,
            7 => style.reverse = true,
            22 => {
                style.bold = false;
                style.dim = false
            }
            23 => style.italic = false,
            24 => style.underline = false,
            27 => style.reverse = false,
            n @ 30..=37 => style.fg = Some(SgrColor::Indexed((n - 30) as u8)),
            n @ 90..=97 => style.fg = Some(SgrColor::Indexed((n - 90 + 8) as u8)),
            39 => style.fg = None,
            n @ 40..=47 => style.bg = Some(SgrColor::Indexed((n - 40) as u8)),
            n @ 100..=107 => style.bg = Some(SgrColor::Indexed((n - 100 + 8) as u8)),
            49 => style.bg = None,
            n @ (38 | 48) => {
                let color = match nums.get(i + 1) {
                    Some(5) => {
                        let c = nums.get(i + 2).map(|v| SgrColor::Indexed(*v as u8));
                        i += 2;
                        c
                    }
                    Some(2) => {
                        let g = |k: usize| nums.get(i + k).copied().unwrap_or(0) as u8;
                        let c = Some(SgrColor::Rgb(g(2), g(3), g(4)));
                        i += 4;
                        c
                    }
                    _ => None,
                };
                if n == 38 {
                    style.fg = color;
                } else {
                    style.bg = color;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_and_json_are_inert() {
        assert_eq!(plain("svc\u{1b}]0;PWNED\u{7}\u{1b}[2J"), "svc");
        assert_eq!(plain("a\tb\nc"), "a b␊c");
        assert_eq!(plain("x\u{9b}2Jy\u{90}q\u{9c}z"), "xyz");
        assert_eq!(plain_lines("a\u{1b}[31m\nb\u{7}"), "a\nb␇");
        let j = serde_json::to_string("\u{9b}2J\u{202e}\u{1b}").unwrap();
        let safe = json_safe(&j);
        assert_eq!(safe, "\"\\u009b2J\\u202e\\u001b\"");
        assert_eq!(
            serde_json::from_str::<String>(&safe).unwrap(),
            "\u{9b}2J\u{202e}\u{1b}"
        );
    }

    fn text(b: &[u8]) -> String {
        sanitize(b, 0).text
    }

    fn no_escapes(s: &str) {
        assert!(
            !s.chars()
                .any(|c| (c as u32) < 0x20 && c != '\t' || ('\u{7f}'..='\u{9f}').contains(&c)),
            "{s:?}"
        );
    }

    #[test]
    fn plain_ascii_is_copied() {
        let c = sanitize(b"GET /health 200 12ms", 0);
        assert_eq!(c.text, "GET /health 200 12ms");
        assert!(c.spans.is_empty());
    }

    #[test]
    fn osc_title_clipboard_and_hyperlink_are_removed() {
        assert_eq!(text(b"a\x1b]0;pwned title\x07b"), "ab");
        assert_eq!(text(b"a\x1b]52;c;ZWNobyBoaQ==\x1b\\b"), "ab");
        assert_eq!(
            text(b"see \x1b]8;;http://evil.example\x1b\\here\x1b]8;;\x1b\\ now"),
            "see here now"
        );
        // Unterminated: everything after is swallowed, nothing leaks.
        assert_eq!(text(b"x\x1b]0;no end"), "x");
    }

    #[test]
    fn csi_cursor_moves_and_clears_are_removed() {
        let t = text(b"\x1b[2J\x1b[H\x1b[10;20Hhi\x1b[1A\x1b[?1049h\x1b[3Kthere");
        assert_eq!(t, "hithere");
    }

    #[test]
    fn dcs_apc_pm_sos_are_removed() {
        assert_eq!(text(b"a\x1bPq#0;2;0;0;0\x1b\\b"), "ab");
        assert_eq!(text(b"a\x1b_Gf=100;AAAA\x1b\\b"), "ab");
        assert_eq!(text(b"a\x1b^privacy\x1b\\b"), "ab");
        assert_eq!(text(b"a\x1bXsos\x1b\\b"), "ab");
    }

    #[test]
    fn c1_controls_are_removed() {
        // U+009B CSI, U+009D OSC encoded as UTF-8.
        let t = text("a\u{9b}2Jb\u{9d}0;title\u{9c}c\u{85}d".as_bytes());
        assert_eq!(t, "abcd");
        no_escapes(&t);
    }

    #[test]
    fn c0_controls_become_inert_pictures() {
        let t = text(b"bell\x07 bs\x08 nul\x00 cr\r");
        assert_eq!(t, "bell\u{2407} bs\u{2408} nul\u{2400} cr");
        no_escapes(&t);
    }

    #[test]
    fn bidi_overrides_are_inert() {
        assert_eq!(
            text("user \u{202e}txt.exe".as_bytes()),
            "user \u{fffd}txt.exe"
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let t = text(b"ok \xff\xfe \xc3\x28 \x9b2J");
        assert!(t.contains('\u{fffd}'));
        assert!(t.starts_with("ok "));
        no_escapes(&t);
    }

    #[test]
    fn sgr_becomes_spans() {
        let c = sanitize(b"\x1b[31mred\x1b[0m plain \x1b[1;38;5;208mbold\x1b[m", 0);
        assert_eq!(c.text, "red plain bold");
        assert_eq!(c.spans.len(), 2);
        assert_eq!((c.spans[0].start, c.spans[0].end), (0, 3));
        assert_eq!(c.spans[0].style.fg, Some(SgrColor::Indexed(1)));
        assert_eq!(
            &c.text[c.spans[1].start as usize..c.spans[1].end as usize],
            "bold"
        );
        assert!(c.spans[1].style.bold);
        assert_eq!(c.spans[1].style.fg, Some(SgrColor::Indexed(208)));
        let rgb = sanitize(b"\x1b[38;2;1;2;3mx", 0);
        assert_eq!(rgb.spans[0].style.fg, Some(SgrColor::Rgb(1, 2, 3)));
    }

    #[test]
    fn a_megabyte_line_is_capped() {
        let line = vec![b'x'; 1 << 20];
        let c = sanitize(&line, 0);
        assert!(c.text.len() < MAX_LINE_BYTES + 64);
        assert!(
            c.text
                .ends_with(&format!("({} bytes cut)", (1 << 20) - MAX_LINE_BYTES))
        );
        let c = sanitize(b"short", 100);
        assert_eq!(c.text, "short … (100 bytes cut)");
    }

    #[test]
    fn random_bytes_never_leak_controls() {
        // A fixed pseudo-random sequence: deterministic, and covers every byte value.
        let mut x: u32 = 0x1234_5678;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x & 0xff) as u8
            })
            .collect();
        no_escapes(&text(&bytes));
    }
}
