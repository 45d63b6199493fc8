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
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{self, registry, Attribute, ModelError};

mod btc;
mod lists;
mod tokens;

use btc::is_btc;
use lists::FILE_EXTENSIONS;
pub use lists::TLDS;
pub use tokens::refang;
use tokens::tokens;

/// Largest text accepted, in bytes: a pasted report, not a data dump.
pub const FREETEXT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most distinct finds in one text; more is refused rather than silently cut.
pub const FINDS_MAX: usize = 10_000;
/// Longest token examined, in bytes; longer runs of non-separators (base64 blobs) are skipped.
const TOKEN_BYTES_MAX: usize = 4096;

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

#[cfg(test)]
mod tests;
