//! Freetext import: finds indicators of compromise in pasted text, the way MISP's freetext
//! import (`ComplexTypeTool`) does. Pure.
//!
//! The text is split into tokens on white space and on `,` `;` `<` `>` `"` `` ` `` (quotes and
//! brackets around a token are trimmed, as is sentence punctuation after it). Each token is
//! classified in MISP's order:
//!
//! 1. hashes by length of their hex digits (md5 32, sha1 40, sha224 56, sha256 64, sha384 96,
//!    sha512 128), `filename|hash` pairs and ssdeep hashes, checked before refanging;
//! 2. the token is refanged (`hxxp`, `[.]`, `(.)`, `{.}`, `[dot]`, `[@]`, `[at]`, `[:]`,
//!    `[://]`, `fxp`, …);
//! 3. email addresses (`email-src`), AS numbers (`AS`), CVE ids (`vulnerability`);
//! 4. IP addresses (`ip-dst`), CIDR ranges (`ip-dst`), `ip:port` and `[ipv6]:port`
//!    (`ip-dst|port`);
//! 5. URLs (`url`; `link` for VirusTotal reports): a scheme, or a host followed by a path;
//! 6. domains and host names whose last label is a known top-level domain ([`TLDS`]): two
//!    labels are a `domain`, more a `hostname`; a `:port` suffix becomes the comment
//!    `On port N`;
//! 7. Bitcoin addresses (`btc`), with their base58check or bech32 checksum verified;
//! 8. file names with a common file extension (`filename`).
//!
//! `report.pdf`, `setup.exe`, `version 1.2.3` and `python3.11` are therefore not domains (their
//! last labels are no top-level domains); `report.pdf` is a file name. Every find is normalised
//! by the type registry (lower-case hashes and domains, canonical IPs) and dropped if the
//! registry refuses it; its category and `to_ids` are the type's defaults. Finds are
//! deduplicated by type and value; each remembers where it was first seen and how often.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{self, registry, Attribute, ModelError};

/// Largest text accepted, in bytes: a pasted report, not a data dump.
pub const FREETEXT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most distinct finds in one text; more is refused rather than silently cut.
pub const FINDS_MAX: usize = 10_000;
/// Longest token examined, in bytes; longer runs of non-separators (base64 blobs) are skipped.
const TOKEN_BYTES_MAX: usize = 4096;

/// Top-level domains a domain or host name must end in: the common generic TLDs, every
/// country-code TLD, and `onion`. `zip` and `mov` are left out on purpose: they are far more
/// often file extensions than domains in threat reports.
pub const TLDS: &[&str] = &[
    // generic
    "aero",
    "agency",
    "app",
    "arpa",
    "art",
    "asia",
    "bank",
    "bar",
    "best",
    "bet",
    "bid",
    "biz",
    "blog",
    "bond",
    "buzz",
    "cam",
    "casa",
    "casino",
    "cat",
    "center",
    "cfd",
    "chat",
    "click",
    "cloud",
    "club",
    "com",
    "company",
    "coop",
    "cyou",
    "date",
    "dev",
    "digital",
    "download",
    "edu",
    "email",
    "finance",
    "fit",
    "fun",
    "gdn",
    "global",
    "gov",
    "group",
    "guru",
    "help",
    "host",
    "icu",
    "info",
    "ink",
    "int",
    "jobs",
    "kim",
    "lat",
    "life",
    "link",
    "live",
    "loan",
    "lol",
    "ltd",
    "media",
    "men",
    "mil",
    "mobi",
    "moe",
    "mom",
    "monster",
    "museum",
    "name",
    "net",
    "network",
    "news",
    "ninja",
    "one",
    "onion",
    "online",
    "org",
    "page",
    "party",
    "pics",
    "post",
    "pro",
    "pub",
    "quest",
    "racing",
    "red",
    "rest",
    "review",
    "rocks",
    "run",
    "sbs",
    "science",
    "services",
    "shop",
    "site",
    "social",
    "solutions",
    "space",
    "store",
    "stream",
    "studio",
    "support",
    "systems",
    "tech",
    "tel",
    "today",
    "top",
    "trade",
    "travel",
    "uno",
    "vip",
    "website",
    "wiki",
    "win",
    "work",
    "world",
    "wtf",
    "xxx",
    "xyz",
    "zone",
    // country codes
    "ac",
    "ad",
    "ae",
    "af",
    "ag",
    "ai",
    "al",
    "am",
    "ao",
    "aq",
    "ar",
    "as",
    "at",
    "au",
    "aw",
    "ax",
    "az",
    "ba",
    "bb",
    "bd",
    "be",
    "bf",
    "bg",
    "bh",
    "bi",
    "bj",
    "bm",
    "bn",
    "bo",
    "br",
    "bs",
    "bt",
    "bw",
    "by",
    "bz",
    "ca",
    "cc",
    "cd",
    "cf",
    "cg",
    "ch",
    "ci",
    "ck",
    "cl",
    "cm",
    "cn",
    "co",
    "cr",
    "cu",
    "cv",
    "cw",
    "cx",
    "cy",
    "cz",
    "de",
    "dj",
    "dk",
    "dm",
    "do",
    "dz",
    "ec",
    "ee",
    "eg",
    "er",
    "es",
    "et",
    "eu",
    "fi",
    "fj",
    "fk",
    "fm",
    "fo",
    "fr",
    "ga",
    "gb",
    "gd",
    "ge",
    "gf",
    "gg",
    "gh",
    "gi",
    "gl",
    "gm",
    "gn",
    "gp",
    "gq",
    "gr",
    "gs",
    "gt",
    "gu",
    "gw",
    "gy",
    "hk",
    "hm",
    "hn",
    "hr",
    "ht",
    "hu",
    "id",
    "ie",
    "il",
    "im",
    "in",
    "io",
    "iq",
    "ir",
    "is",
    "it",
    "je",
    "jm",
    "jo",
    "jp",
    "ke",
    "kg",
    "kh",
    "ki",
    "km",
    "kn",
    "kp",
    "kr",
    "kw",
    "ky",
    "kz",
    "la",
    "lb",
    "lc",
    "li",
    "lk",
    "lr",
    "ls",
    "lt",
    "lu",
    "lv",
    "ly",
    "ma",
    "mc",
    "md",
    "me",
    "mg",
    "mh",
    "mk",
    "ml",
    "mm",
    "mn",
    "mo",
    "mp",
    "mq",
    "mr",
    "ms",
    "mt",
    "mu",
    "mv",
    "mw",
    "mx",
    "my",
    "mz",
    "na",
    "nc",
    "ne",
    "nf",
    "ng",
    "ni",
    "nl",
    "no",
    "np",
    "nr",
    "nu",
    "nz",
    "om",
    "pa",
    "pe",
    "pf",
    "pg",
    "ph",
    "pk",
    "pl",
    "pm",
    "pn",
    "pr",
    "ps",
    "pt",
    "pw",
    "py",
    "qa",
    "re",
    "ro",
    "rs",
    "ru",
    "rw",
    "sa",
    "sb",
    "sc",
    "sd",
    "se",
    "sg",
    "sh",
    "si",
    "sk",
    "sl",
    "sm",
    "sn",
    "so",
    "sr",
    "ss",
    "st",
    "su",
    "sv",
    "sx",
    "sy",
    "sz",
    "tc",
    "td",
    "tf",
    "tg",
    "th",
    "tj",
    "tk",
    "tl",
    "tm",
    "tn",
    "to",
    "tr",
    "tt",
    "tv",
    "tw",
    "tz",
    "ua",
    "ug",
    "uk",
    "us",
    "uy",
    "uz",
    "va",
    "vc",
    "ve",
    "vg",
    "vi",
    "vn",
    "vu",
    "wf",
    "ws",
    "ye",
    "yt",
    "za",
    "zm",
    "zw",
];

/// File extensions that make a dotted token a file name (when it is not a domain).
const FILE_EXTENSIONS: &[&str] = &[
    "7z", "apk", "asp", "aspx", "bat", "bin", "cab", "chm", "cmd", "com", "cpl", "csv", "dat",
    "deb", "dll", "dmg", "doc", "docm", "docx", "drv", "elf", "eml", "exe", "gz", "hta", "htm",
    "html", "img", "iso", "jar", "jpg", "js", "jse", "jsp", "lnk", "log", "macho", "msg", "msi",
    "ocx", "one", "pdf", "php", "pif", "png", "ppt", "pptm", "pptx", "ps1", "py", "rar", "rpm",
    "rtf", "scr", "sh", "so", "sys", "tar", "tgz", "tmp", "txt", "vbe", "vbs", "wsf", "xls",
    "xlsb", "xlsm", "xlsx", "xml", "zip",
];

/// Why a text could not be searched.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FreetextError {
    /// The text is larger than [`FREETEXT_BYTES_MAX`].
    #[error("the text is {bytes} bytes, over the freetext limit of {max_bytes} bytes")]
    TooLarge {
        /// The text's size.
        bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The text holds more than [`FINDS_MAX`] distinct indicators.
    #[error("the text holds more than {max} distinct indicators; split it into smaller parts")]
    TooManyFinds {
        /// The limit.
        max: usize,
    },
}

/// One indicator found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Find {
    /// MISP attribute type, e.g. `ip-dst|port`.
    pub type_name: &'static str,
    /// The type's default category from the registry.
    pub category: &'static str,
    /// The value, refanged and normalised as the registry stores it.
    pub value: String,
    /// The type's default IDS flag.
    pub to_ids: bool,
    /// A note MISP adds, e.g. `On port 8080` for a host name with a port.
    pub comment: Option<String>,
    /// The token as it was written (possibly defanged).
    pub raw: String,
    /// Line of the first occurrence, from 1.
    pub line: usize,
    /// Column of the first occurrence, in characters from 1.
    pub column: usize,
    /// Byte offset of the first occurrence in the text.
    pub offset: usize,
    /// How many times the value occurs in the text.
    pub occurrences: usize,
}

impl Find {
    /// The MISP JSON of the attribute this find becomes, with `distribution` (0–5; 5, inherit
    /// the event's, when `None`). The comment says where the value was found.
    pub fn attribute_json(&self, distribution: Option<u8>) -> Value {
        let place = format!("freetext import, line {} column {}", self.line, self.column);
        let comment = match &self.comment {
            Some(note) => format!("{note}; {place}"),
            None => place,
        };
        json!({
            "type": self.type_name,
            "category": self.category,
            "value": self.value,
            "to_ids": self.to_ids,
            "comment": comment,
            "distribution": distribution.unwrap_or(5).to_string(),
        })
    }

    /// The find as MISP's freetext "meta attribute" (`returnMetaAttributes`), with where it was
    /// found.
    pub fn meta_json(&self) -> Value {
        json!({
            "value": self.value,
            "types": [self.type_name],
            "default_type": self.type_name,
            "category": self.category,
            "to_ids": self.to_ids,
            "comment": self.comment.clone().unwrap_or_default(),
            "raw": self.raw,
            "line": self.line,
            "column": self.column,
            "offset": self.offset,
            "occurrences": self.occurrences,
        })
    }
}

/// The attributes `finds` add to an event whose MISP JSON is `event`: finds whose type,
/// category and value repeat a live attribute of the event are left out (MISP refuses such
/// duplicates). Returns the new attributes, stamped `timestamp`, and the number left out.
pub fn new_attributes(
    finds: &[Find],
    event: &Value,
    distribution: Option<u8>,
    timestamp: i64,
) -> Result<(Vec<Attribute>, usize), ModelError> {
    let existing: Vec<(String, String, String)> = event
        .pointer("/Event/Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.get("deleted") != Some(&json!(true)))
        .map(|a| {
            let field = |name| a.get(name).and_then(Value::as_str).unwrap_or_default();
            (
                field("type").to_string(),
                field("category").to_string(),
                field("value").to_string(),
            )
        })
        .collect();
    let mut attributes = Vec::new();
    let mut duplicates = 0;
    for find in finds {
        let key = (
            find.type_name.to_string(),
            find.category.to_string(),
            find.value.clone(),
        );
        if existing.contains(&key) {
            duplicates += 1;
            continue;
        }
        let mut attribute = Attribute::from_json(&find.attribute_json(distribution))?;
        attribute.timestamp = Some(timestamp);
        attributes.push(attribute);
    }
    Ok((attributes, duplicates))
}

/// What a token is, before normalisation: type, value, comment.
type Classified = (&'static str, String, Option<String>);

/// Finds the indicators in `text`, deduplicated, in order of first occurrence.
pub fn extract(text: &str) -> Result<Vec<Find>, FreetextError> {
    if text.len() > FREETEXT_BYTES_MAX {
        return Err(FreetextError::TooLarge {
            bytes: text.len(),
            max_bytes: FREETEXT_BYTES_MAX,
        });
    }
    let mut finds: Vec<Find> = Vec::new();
    let mut seen: HashMap<(&'static str, String), usize> = HashMap::new();
    for token in tokens(text) {
        let Some((type_name, value, comment)) = classify(token.text) else {
            continue;
        };
        let Some(ty) = registry().lookup(type_name) else {
            continue;
        };
        let Ok(value) = model::normalise(ty, &value) else {
            continue;
        };
        if let Some(&index) = seen.get(&(type_name, value.clone())) {
            finds[index].occurrences += 1;
            continue;
        }
        if finds.len() >= FINDS_MAX {
            return Err(FreetextError::TooManyFinds { max: FINDS_MAX });
        }
        seen.insert((type_name, value.clone()), finds.len());
        finds.push(Find {
            type_name,
            category: ty.default_category(),
            value,
            to_ids: ty.to_ids_default(),
            comment,
            raw: token.text.to_string(),
            line: token.line,
            column: token.column,
            offset: token.offset,
            occurrences: 1,
        });
    }
    Ok(finds)
}

/// A token of the text and where it starts.
struct Token<'a> {
    text: &'a str,
    line: usize,
    column: usize,
    offset: usize,
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | ';' | '<' | '>' | '"' | '`' | '\u{201c}' | '\u{201d}'
        )
}

/// The tokens of `text`, trimmed of wrapping brackets and trailing punctuation.
fn tokens(text: &str) -> Vec<Token<'_>> {
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

/// The hash type of a run of hex digits, by its length.
fn hash_type(value: &str) -> Option<&'static str> {
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(match value.len() {
        32 => "md5",
        40 => "sha1",
        56 => "sha224",
        64 => "sha256",
        96 => "sha384",
        128 => "sha512",
        _ => return None,
    })
}

/// Whether `value` has the shape of an ssdeep hash: `blocksize:hash:hash` in base64 letters,
/// long enough not to be a time of day or a ratio.
fn is_ssdeep(value: &str) -> bool {
    let parts: Vec<&str> = value.split(':').collect();
    let base64 = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
    };
    parts.len() == 3
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && !parts[0].is_empty()
        && base64(parts[1])
        && base64(parts[2])
        && parts[1].len() >= 6
        && parts[1].bytes().any(|b| b.is_ascii_alphabetic())
}

/// Classifies one trimmed token.
fn classify(raw: &str) -> Option<Classified> {
    if let Some(type_name) = hash_type(raw) {
        return Some((type_name, raw.to_string(), None));
    }
    if let Some((name, hash)) = raw.split_once('|') {
        if let Some(type_name) = hash_type(hash) {
            if is_filename(name) {
                let composite = match type_name {
                    "md5" => "filename|md5",
                    "sha1" => "filename|sha1",
                    "sha224" => "filename|sha224",
                    "sha256" => "filename|sha256",
                    "sha384" => "filename|sha384",
                    _ => "filename|sha512",
                };
                return Some((composite, raw.to_string(), None));
            }
        }
    }
    if is_ssdeep(raw) {
        return Some(("ssdeep", raw.to_string(), None));
    }
    let refanged = refang(raw);
    let token = refanged.as_str();
    if token.is_empty() {
        return None;
    }
    if let Some(email) = email(token) {
        return Some(("email-src", email, None));
    }
    if is_asn(token) {
        return Some(("AS", token.to_ascii_uppercase(), None));
    }
    if is_cve(token) {
        return Some(("vulnerability", token.to_ascii_uppercase(), None));
    }
    if let Some(found) = ip(token) {
        return Some(found);
    }
    if let Some(found) = url(token) {
        return Some(found);
    }
    if let Some(found) = domain_with_port(token) {
        return Some(found);
    }
    if is_btc(token) {
        return Some(("btc", token.to_string(), None));
    }
    if is_filename(raw) {
        return Some(("filename", raw.to_string(), None));
    }
    None
}

fn is_asn(token: &str) -> bool {
    // `get` rather than slicing: the token may start with a multi-byte character.
    match (token.get(..2), token.get(2..)) {
        (Some(prefix), Some(digits)) => {
            prefix.eq_ignore_ascii_case("as")
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

fn is_cve(token: &str) -> bool {
    let parts: Vec<&str> = token.split('-').collect();
    parts.len() == 3
        && parts[0].eq_ignore_ascii_case("cve")
        && parts[1].len() == 4
        && parts[1].bytes().all(|b| b.is_ascii_digit())
        && (4..=9).contains(&parts[2].len())
        && parts[2].bytes().all(|b| b.is_ascii_digit())
}

/// An email address whose domain ends in a known TLD.
fn email(token: &str) -> Option<String> {
    let (local, domain) = token.split_once('@')?;
    let local = local.strip_prefix("mailto:").unwrap_or(local);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&*+-/=?^_{|}~.".contains(c));
    (local_ok && is_domain(domain)).then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// Whether `name` is a domain or host name ending in a known TLD.
fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |label: &&str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    };
    let top = labels[labels.len() - 1].to_ascii_lowercase();
    labels.iter().all(label_ok) && TLDS.contains(&top.as_str())
}

/// A port number 1–65535 written as digits.
fn port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|port| *port > 0)
}

/// An IP address, CIDR range, `ipv4:port` or `[ipv6]:port`.
fn ip(token: &str) -> Option<Classified> {
    if token.parse::<IpAddr>().is_ok() {
        return Some(("ip-dst", token.to_string(), None));
    }
    if let Some((address, bits)) = token.split_once('/') {
        let address: IpAddr = address.parse().ok()?;
        let bits: u8 = bits.parse().ok().filter(|_| bits.len() <= 3)?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        return (bits <= max).then(|| ("ip-dst", token.to_string(), None));
    }
    if let Some(rest) = token.strip_prefix('[') {
        let (address, port_text) = rest.split_once("]:")?;
        let address: Ipv6Addr = address.parse().ok()?;
        let port = port(port_text)?;
        return Some(("ip-dst|port", format!("{address}|{port}"), None));
    }
    let (address, port_text) = token.rsplit_once(':')?;
    let address: Ipv4Addr = address.parse().ok()?;
    let port = port(port_text)?;
    Some(("ip-dst|port", format!("{address}|{port}"), None))
}

/// Whether `host` (a URL's authority without user info) is a known domain or an IP, with an
/// optional port.
fn is_url_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() || is_domain(host) {
        return true;
    }
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(address, tail)| {
            address.parse::<Ipv6Addr>().is_ok()
                && (tail.is_empty() || tail.strip_prefix(':').and_then(port).is_some())
        });
    }
    match host.rsplit_once(':') {
        Some((name, port_text)) => {
            port(port_text).is_some() && (name.parse::<Ipv4Addr>().is_ok() || is_domain(name))
        }
        None => false,
    }
}

/// A URL: a scheme with a known host, or a known host followed by a path.
fn url(token: &str) -> Option<Classified> {
    let (scheme, rest) = match token.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, token),
    };
    if let Some(scheme) = scheme {
        let scheme_ok = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return None;
        }
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if scheme.is_none() && end == rest.len() {
        return None;
    }
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if !is_url_host(host) {
        return None;
    }
    let lower = token.to_ascii_lowercase();
    let virustotal = ["https://www.virustotal.com/", "https://virustotal.com/"]
        .iter()
        .any(|prefix| lower.starts_with(prefix));
    let type_name = if virustotal { "link" } else { "url" };
    Some((type_name, token.to_string(), None))
}

/// A domain (two labels) or host name (more), with an optional `:port` noted as a comment.
fn domain_with_port(token: &str) -> Option<Classified> {
    let (name, comment) = match token.rsplit_once(':') {
        Some((name, port_text)) => (name, Some(format!("On port {}", port(port_text)?))),
        None => (token, None),
    };
    if !is_domain(name) {
        return None;
    }
    let type_name = if name.split('.').count() > 2 {
        "hostname"
    } else {
        "domain"
    };
    Some((type_name, name.to_string(), comment))
}

/// Whether `name` looks like a file name: a base and a known file extension, no path
/// separators or URL characters.
fn is_filename(name: &str) -> bool {
    let Some((base, extension)) = name.rsplit_once('.') else {
        return false;
    };
    !base.is_empty()
        && !base.starts_with('.')
        && !name.contains("..")
        && !name.chars().any(|c| {
            matches!(
                c,
                '/' | '\\' | ':' | '@' | '?' | '*' | '<' | '>' | '|' | '['
            )
        })
        && FILE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
}

/// The base58 alphabet of Bitcoin addresses.
const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// The bech32 alphabet of segwit addresses.
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Whether `token` is a Bitcoin address with a valid checksum: legacy base58check (`1…`,
/// `3…`) or segwit bech32/bech32m (`bc1…`).
fn is_btc(token: &str) -> bool {
    let segwit = token
        .get(..3)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("bc1"));
    if token.len() >= 14 && segwit {
        return is_bech32(token);
    }
    (26..=35).contains(&token.len())
        && (token.starts_with('1') || token.starts_with('3'))
        && base58check_ok(token)
}

fn base58check_ok(token: &str) -> bool {
    // 25 bytes: version, 20-byte hash, 4-byte checksum. Big-endian base conversion.
    let mut bytes = [0u8; 25];
    for c in token.bytes() {
        let Some(digit) = BASE58.iter().position(|&b| b == c) else {
            return false;
        };
        let mut carry = digit as u32;
        for byte in bytes.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        if carry != 0 {
            return false;
        }
    }
    let checksum = Sha256::digest(Sha256::digest(&bytes[..21]));
    checksum[..4] == bytes[21..]
}

fn is_bech32(token: &str) -> bool {
    if token.len() > 90 || (token != token.to_lowercase() && token != token.to_uppercase()) {
        return false;
    }
    let lower = token.to_ascii_lowercase();
    let Some((hrp, data)) = lower.rsplit_once('1') else {
        return false;
    };
    if hrp != "bc" || data.len() < 6 + 1 {
        return false;
    }
    let mut values = Vec::with_capacity(data.len());
    for c in data.bytes() {
        match BECH32.iter().position(|&b| b == c) {
            Some(value) => values.push(value as u8),
            None => return false,
        }
    }
    let mut expanded: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    expanded.push(0);
    expanded.extend(hrp.bytes().map(|b| b & 31));
    expanded.extend(&values);
    let polymod = expanded.iter().fold(1u32, |chk, &value| {
        let top = chk >> 25;
        let mut chk = ((chk & 0x1ff_ffff) << 5) ^ u32::from(value);
        for (bit, generator) in [
            0x3b6a_57b2,
            0x2650_8e6d,
            0x1ea1_19fa,
            0x3d42_33dd,
            0x2a14_62b3,
        ]
        .iter()
        .enumerate()
        {
            if (top >> bit) & 1 == 1 {
                chk ^= generator;
            }
        }
        chk
    });
    // Witness version 0 uses bech32 (constant 1), later versions bech32m.
    let constant = if values[0] == 0 { 1 } else { 0x2bc8_30a3 };
    polymod == constant
}

#[cfg(test)]
mod tests;
