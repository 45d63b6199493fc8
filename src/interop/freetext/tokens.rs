//! Splitting a text into tokens (with their places) and refanging a token.

use std::net::Ipv6Addr;

use super::TOKEN_BYTES_MAX;

/// A token of the text and where it starts.
pub(super) struct Token<'a> {
    pub(super) text: &'a str,
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) offset: usize,
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | ';' | '<' | '>' | '"' | '`' | '\u{201c}' | '\u{201d}'
        )
}

/// The tokens of `text`, trimmed of wrapping brackets and trailing punctuation.
pub(super) fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut line_start = 0;
    let mut start: Option<usize> = None;
    let mut push = |from: usize, to: usize, line: usize, line_start: usize| {
        let raw = &text[from..to];
        if raw.len() > TOKEN_BYTES_MAX {
            return;
        }
        let (skipped, trimmed) = trim_token(raw);
        if trimmed.is_empty() {
            return;
        }
        let offset = from + skipped;
        out.push(Token {
            text: trimmed,
            line,
            column: text[line_start..offset].chars().count() + 1,
            offset,
        });
    };
    for (index, c) in text.char_indices() {
        if is_separator(c) {
            if let Some(from) = start.take() {
                push(from, index, line, line_start);
            }
            if c == '\n' {
                line += 1;
                line_start = index + 1;
            }
        } else if start.is_none() {
            start = Some(index);
        }
    }
    if let Some(from) = start {
        push(from, text.len(), line, line_start);
    }
    out
}

/// Trims quotes, unmatched brackets and sentence punctuation from both ends of a token;
/// returns the bytes skipped at the front and the rest.
fn trim_token(raw: &str) -> (usize, &str) {
    let mut token = raw;
    let mut skipped = 0;
    loop {
        let before = token.len();
        if let Some(first) = token.chars().next() {
            let closer = match first {
                '(' => Some(')'),
                '[' => Some(']'),
                '{' => Some('}'),
                _ => None,
            };
            let strip = match closer {
                // `[::1]:80` and `[.]` keep their brackets: only an unmatched opener goes.
                Some(closer) => token.matches(first).count() > token.matches(closer).count(),
                None => matches!(first, '\'' | '*' | '\u{2018}' | '\u{2019}'),
            };
            if strip {
                token = &token[first.len_utf8()..];
                skipped += first.len_utf8();
            }
        }
        // `2001:db8::` ends in a colon that belongs to it.
        let is_ipv6 = token.parse::<Ipv6Addr>().is_ok();
        if let Some(last) = token.chars().last().filter(|_| !is_ipv6) {
            let opener = match last {
                ')' => Some('('),
                ']' => Some('['),
                '}' => Some('{'),
                _ => None,
            };
            let strip = match opener {
                Some(opener) => token.matches(last).count() > token.matches(opener).count(),
                None => matches!(
                    last,
                    '.' | ':' | '!' | '?' | '\'' | '*' | '\u{2018}' | '\u{2019}'
                ),
            };
            if strip {
                token = &token[..token.len() - last.len_utf8()];
            }
        }
        if token.len() == before {
            return (skipped, token);
        }
    }
}

/// Replacements that undo common defanging, applied anywhere in a token (case-insensitive).
const REFANG_ANYWHERE: &[(&str, &str)] = &[
    ("[://]", "://"),
    ("[:]//", "://"),
    ("[:]", ":"),
    ("[.]", "."),
    ("(.)", "."),
    ("{.}", "."),
    ("[dot]", "."),
    ("(dot)", "."),
    ("{dot}", "."),
    ("\\.", "."),
    ("[@]", "@"),
    ("(@)", "@"),
    ("{@}", "@"),
    ("[at]", "@"),
    ("(at)", "@"),
    ("{at}", "@"),
    ("[/]", "/"),
];

/// Defanged URL schemes and what they stand for (matched case-insensitively at the start).
const REFANG_SCHEMES: &[(&str, &str)] = &[
    ("hxxps", "https"),
    ("hxxp", "http"),
    ("hxtps", "https"),
    ("hxtp", "http"),
    ("h**ps", "https"),
    ("h**p", "http"),
    ("h[tt]ps", "https"),
    ("h[tt]p", "http"),
    ("meows", "https"),
    ("meow", "http"),
    ("fxps", "ftps"),
    ("fxp", "ftp"),
];

/// Undoes common defanging: `hxxp://evil[.]com` → `http://evil.com`.
pub fn refang(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    let lower = token.to_ascii_lowercase();
    let mut rest = token;
    for (from, to) in REFANG_SCHEMES {
        if lower.starts_with(from) {
            out.push_str(to);
            rest = &token[from.len()..];
            break;
        }
    }
    'outer: while !rest.is_empty() {
        for (from, to) in REFANG_ANYWHERE {
            if rest
                .get(..from.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(from))
            {
                out.push_str(to);
                rest = &rest[from.len()..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("rest is not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.trim_end_matches('.').to_string()
}
