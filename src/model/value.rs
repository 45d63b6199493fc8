//! Attribute values: validation and normalisation per type, the way MISP's
//! `AttributeValidationTool` does it, and the values the index and correlation use.
//!
//! Every value is trimmed and must not be empty. Then, by type family:
//! - hex digests (md5, sha*, imphash, …) are checked for length and alphabet and lower-cased;
//!   fuzzy hashes (ssdeep, tlsh, impfuzzy, …) are checked for shape;
//! - IP addresses are canonical (`2001:DB8:0:0:0:0:0:1` → `2001:db8::1`); `ip-src`/`ip-dst` also
//!   take CIDR ranges; domains and host names are lower-cased and checked label by label;
//! - numbers, dates, CVE ids, AS numbers (stored bare, as MISP: `AS123` → `123`), booleans
//!   (`1`/`0`) and the like get MISP's canonical form;
//! - free-text types are only trimmed; the ones MISP keeps to one line refuse line breaks;
//! - composite types (`filename|sha256`, `ip-dst|port`, …) are split on the first `|`, each half
//!   normalised by its own type, and joined again with `|`. `ip-src|port`/`ip-dst|port` also
//!   accept `1.2.3.4:80` and `[2001:db8::1]:80`, and `hostname|port` accepts `host:80`, as MISP
//!   does; they are stored with `|`.

mod datetime;
mod hashes;
mod net;
mod scalar;

pub(crate) use datetime::is_date;

use super::lenient;
use super::types::AttributeType;
use super::ModelError;

/// How a component type's value is refused: the reason, for [`ModelError::InvalidValue`].
type Reason = String;

/// Validates and normalises `value` as a value of `ty`, as MISP stores it.
pub fn normalise(ty: AttributeType, value: &str) -> Result<String, ModelError> {
    let name = ty.name();
    let value = value.trim();
    if value.is_empty() {
        return Err(ModelError::invalid_value(name, value, "the value is empty"));
    }
    if !ty.is_composite() {
        return normalise_simple(name, value)
            .map_err(|reason| ModelError::invalid_value(name, value, reason));
    }
    let split = match name {
        "ip-src|port" | "ip-dst|port" => net::split_ip_port(value),
        "hostname|port" => net::split_host_port(value),
        _ => value.split_once('|'),
    };
    let Some((first, second)) = split else {
        return Err(ModelError::invalid_value(
            name,
            value,
            "a composite value has two parts separated by '|'",
        ));
    };
    let (first_type, second_type) = component_types(name);
    let half = |part_type: &str, part: &str| {
        let part = part.trim();
        if part.is_empty() {
            return Err(ModelError::invalid_value(
                name,
                value,
                format!("the {part_type} part is empty"),
            ));
        }
        normalise_simple(part_type, part).map_err(|reason| {
            ModelError::invalid_value(name, value, format!("{part_type} part '{part}': {reason}"))
        })
    };
    let first = half(first_type, first)?;
    let second = half(second_type, second)?;
    Ok(format!("{first}|{second}"))
}

/// The component types of a composite type. Most are the two halves of the name; the IP of
/// `domain|ip` and `ip-*|port` is a plain address (no CIDR), and the second half of
/// `regkey|value` is free text.
fn component_types(name: &str) -> (&str, &str) {
    match name {
        "ip-src|port" | "ip-dst|port" => ("ip", "port"),
        "domain|ip" => ("domain", "ip"),
        _ => name.split_once('|').unwrap_or((name, name)),
    }
}

/// Normalises a trimmed, non-empty value of a non-composite type (or of one half of a composite,
/// by its component name).
fn normalise_simple(name: &str, value: &str) -> Result<String, Reason> {
    if let Some(digits) = hashes::hex_length(name) {
        return hashes::hex_digest(value, digits, name.starts_with("x509-fingerprint"));
    }
    match name {
        "cdhash" => hashes::cdhash(value),
        "tlsh" => hashes::tlsh(value),
        "telfhash" => hashes::telfhash(value),
        "vhash" => hashes::vhash(value),
        "ssdeep" => hashes::ssdeep(value),
        "impfuzzy" => hashes::impfuzzy(value),
        "ssh-fingerprint" => hashes::ssh_fingerprint(value),
        "ip-src" | "ip-dst" => net::ip_or_cidr(value),
        "ip" => net::ip(value),
        "port" => net::port(value),
        "domain" | "hostname" => net::domain(value),
        "email" | "email-src" | "email-dst" | "target-email" | "whois-registrant-email" => {
            net::email(value, true)
        }
        "eppn" | "dns-soa-email" | "jabber-id" => net::email(value, false),
        "link" => net::link(value),
        "mac-address" => net::mac(value, 6),
        "mac-eui-64" => net::mac(value, 8),
        "AS" => scalar::asn(value),
        "counter" | "size-in-bytes" => scalar::unsigned(value),
        "integer" => scalar::integer(value),
        "float" | "bank-account-nr" | "aba-rtn" => scalar::numeric(value),
        "boolean" => scalar::boolean(value),
        "datetime" => datetime::datetime(value),
        "vulnerability" => scalar::vulnerability(value),
        "weakness" => scalar::weakness(value),
        "http-method" => scalar::http_method(value),
        "hex" => scalar::hex(value),
        "cc-number" | "bin" => scalar::card_number(value),
        "iban" | "bic" => scalar::bank_code(value),
        "prtn" | "phone-number" | "whois-registrant-phone" => scalar::phone(value),
        "btc" => scalar::btc(value),
        "dash" | "xmr" => scalar::alphanumeric(value),
        "uuid" => lenient::uuid_of(value)
            .map(|uuid| uuid.to_string())
            .ok_or_else(|| "not a uuid".to_string()),
        "cortex" => serde_json::from_str::<serde_json::Value>(value)
            .map(|_| value.to_string())
            .map_err(|_| "not valid JSON".to_string()),
        "windows-service-name" | "windows-service-displayname" => service_name(value),
        "malware-sample" => Ok(malware_sample(value)),
        "anonymised" => Ok(value.to_lowercase()),
        "onion-address" => single_line(value).map(|v| v.to_lowercase()),
        _ if is_single_line(name) => single_line(value),
        _ => Ok(value.to_string()),
    }
}

/// Whether MISP keeps values of this free-text type (or component) on one line.
fn is_single_line(name: &str) -> bool {
    name.starts_with("target-")
        || name.starts_with("whois-")
        || name.starts_with("passport-")
        || name.starts_with("place-")
        || name.starts_with("github-")
        || (name.starts_with("email-")
            && !matches!(name, "email-attachment" | "email-body" | "email-header"))
        || name.ends_with("-application-id")
        || name.ends_with("-extension-id")
        || matches!(
            name,
            "campaign-name"
                | "campaign-id"
                | "threat-actor"
                | "malware-type"
                | "url"
                | "uri"
                | "user-agent"
                | "regkey"
                | "value"
                | "filename"
                | "pdb"
                | "windows-scheduled-task"
                | "date-of-birth"
                | "gender"
                | "redress-number"
                | "nationality"
                | "visa-number"
                | "issue-date-of-the-visa"
                | "primary-residence"
                | "country-of-residence"
                | "special-service-request"
                | "frequent-flyer-number"
                | "travel-details"
                | "payment-details"
                | "passenger-name-record-locator-number"
                | "twitter-id"
                | "dkim"
                | "dkim-signature"
                | "favicon-mmh3"
                | "named pipe"
        )
}

/// A free-text value that must fit on one line.
fn single_line(value: &str) -> Result<String, Reason> {
    if value.contains(['\n', '\r']) {
        return Err("the value must not contain a line break".to_string());
    }
    Ok(value.to_string())
}

/// A Windows service name: at most 256 characters, no slashes.
fn service_name(value: &str) -> Result<String, Reason> {
    if value.chars().count() > 256 || value.contains(['/', '\\']) {
        return Err("at most 256 characters and no '/' or '\\'".to_string());
    }
    Ok(value.to_string())
}

/// A malware sample's value: a file name, or `filename|md5` as MISP writes it, with the md5
/// lower-cased.
fn malware_sample(value: &str) -> String {
    match value.split_once('|') {
        Some((file, md5)) if hashes::hex_digest(md5.trim(), 32, false).is_ok() => {
            format!("{}|{}", file.trim(), md5.trim().to_ascii_lowercase())
        }
        _ => value.to_string(),
    }
}

/// The two halves of an already normalised value of a composite type, split on the first `|`.
/// `malware-sample` values of the form `filename|md5` split too (MISP treats that type as
/// composite). `None` for other types, or when the value has no `|`.
pub fn split_composite(ty: AttributeType, value: &str) -> Option<(String, String)> {
    if !ty.is_composite() && ty.name() != "malware-sample" {
        return None;
    }
    value
        .split_once('|')
        .map(|(first, second)| (first.to_string(), second.to_string()))
}

/// The values the value index stores for an attribute: both halves of a composite value
/// (once if equal), else the value itself.
pub fn index_values(ty: AttributeType, value: &str) -> Vec<String> {
    match split_composite(ty, value) {
        Some((first, second)) if first == second => vec![first],
        Some((first, second)) => vec![first, second],
        None => vec![value.to_string()],
    }
}

/// The values an attribute correlates on (SPEC §5): none for non-correlating types; the first
/// half only for `ip-src|port`, `ip-dst|port` and `hostname|port` (MISP's primary-only
/// correlating types: a port alone says nothing); both halves of other composites; else the
/// value.
pub fn correlation_values(ty: AttributeType, value: &str) -> Vec<String> {
    if !ty.correlates() {
        return Vec::new();
    }
    if matches!(ty.name(), "ip-src|port" | "ip-dst|port" | "hostname|port") {
        return split_composite(ty, value)
            .map(|(first, _)| vec![first])
            .unwrap_or_else(|| vec![value.to_string()]);
    }
    index_values(ty, value)
}

#[cfg(test)]
mod tests;
