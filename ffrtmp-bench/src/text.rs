//! Text helpers of the benchmark commands, shared with the binaries: durations written like
//! `30s`, and text from elsewhere (scenario names, job reasons) stripped of terminal controls.

use std::borrow::Cow;
use std::time::Duration;

const ESC: char = '\u{1b}';
const BEL: char = '\u{7}';
/// C1 string terminator.
const ST: char = '\u{9c}';

/// `text` without terminal control characters: escape sequences (CSI such as colours and
/// cursor moves, OSC such as window titles and hyperlinks, DCS/SOS/PM/APC strings, two-byte
/// escapes), their 8-bit C1 forms, and every other C0/C1 control and DEL. Newline and tab stay.
/// Borrowed when there is nothing to remove.
///
/// ```
/// use ffrtmp_bench::text::strip_controls;
/// assert_eq!(strip_controls("ok\u{1b}[2J\u{1b}[31mred\u{1b}[0m\r\n\tnext"), "okred\n\tnext");
/// assert_eq!(strip_controls("\u{1b}]0;pwned\u{7}title"), "title");
/// assert_eq!(strip_controls("\u{9b}1;1Hcafé"), "café");
/// ```
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_removed) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // ESC, intermediates (space to '/'), then one final character.
                Some(' '..='/') => {
                    while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                    chars.next();
                }
                // A two-character escape (ESC c, ESC 7…), or a lone ESC before text or another control.
                Some(_) | None => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_removed(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_removed(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// Skips a CSI sequence's parameters and intermediates up to and including its final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) || !(' '..='\u{7e}').contains(&c) {
            return;
        }
    }
}

/// Skips a control string (OSC, DCS, …) up to its terminator: BEL, ESC \ or ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            BEL | ST => return,
            ESC => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

/// Parses durations written like `30s`, `500ms`, `2m`, `1h`, `7d` or a bare number of seconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ffrtmp_bench::text::parse_duration("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(ffrtmp_bench::text::parse_duration("2m").unwrap(), Duration::from_secs(120));
/// assert!(ffrtmp_bench::text::parse_duration("soon").is_err());
/// assert!(ffrtmp_bench::text::parse_duration("99999999999999999999999d").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 30s, 500ms, 2m"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        _ => return Err(format!("invalid duration unit in {text:?}: use ms, s, m, h or d")),
    };
    // Also refuses what no Duration holds (`from_secs_f64` would panic on it).
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_kind_of_control_and_keeps_text() {
        let cases = [
            ("plain name", "plain name"),
            ("line\nnext\tcol", "line\nnext\tcol"),
            ("\u{1b}[1;31mred\u{1b}[0m", "red"),
            ("a\u{1b}[?1049hb", "ab"),
            ("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b", "alinkb"),
            ("\u{1b}]0;title\u{7}after", "after"),
            ("\u{1b}Pdcs data\u{1b}\\x", "x"),
            ("\u{1b}(Bx\u{1b}cy\u{1b}7z", "xyz"),
            ("bell\u{7}back\u{8}cr\rdel\u{7f}nul\u{0}", "bellbackcrdelnul"),
            ("\u{9b}31mc1\u{85}nel\u{9d}osc\u{9c}end", "c1nelend"),
            ("trailing\u{1b}", "trailing"),
            ("unterminated\u{1b}[12", "unterminated"),
            ("ünïcödé ✓", "ünïcödé ✓"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_controls(input), want, "{input:?}");
        }
        assert!(matches!(strip_controls("clean"), Cow::Borrowed(_)));
    }
}
