//! Suricata and Snort rules from MISP attributes, after MISP's `NidsExport` /
//! `NidsSuricataExport`: one or more rules per network attribute, message
//! `MISP e<event id> [<tags>] <what>: <value>`, sid `base + 10 × attribute id + n`, rev 1,
//! classtype `trojan-activity`, priority = the event's threat level, and a reference to the
//! event. Pure.
//!
//! Unlike MISP, no attribute value reaches a rule unescaped: in `content` matches every byte
//! outside a small safe set is hex-encoded (`|22 3b|`), in `pcre` every such byte is `\xHH`,
//! in `msg` quotes, semicolons and backslashes are backslash-escaped and anything outside
//! printable ASCII becomes `?`; addresses and ports are parsed, never pasted; values that
//! cannot be expressed safely (an IP that does not parse, an over-long value) get no rule but
//! a comment naming the attribute uuid.

use serde_json::Value;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::event_json::{tag_names, text, ExportOptions};

/// Longest attribute value put into a rule, in bytes; longer values are skipped (Suricata's
/// and Snort's content matches are meant for short tokens, and rules stay readable).
pub const RULE_VALUE_BYTES_MAX: usize = 1024;

/// Longest value quoted inside a rule message, in characters (the rest is cut with `...`).
pub const MSG_VALUE_CHARS_MAX: usize = 128;

/// Rules per attribute: sids `base + 10 × id + 1` to `+ 9` (MISP's layout).
const SIDS_PER_ATTRIBUTE: u64 = 10;

/// Classtype of every rule (MISP's).
const CLASSTYPE: &str = "trojan-activity";

/// Threat level used when an event has none (MISP's 4, undefined).
const PRIORITY_DEFAULT: u8 = 4;

/// Which engine the rules are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Suricata (application-layer protocols and sticky buffers).
    Suricata,
    /// Snort 2 (tcp/udp rules with content modifiers).
    Snort,
}

/// The attribute types that produce rules.
pub const RULE_TYPES: [&str; 16] = [
    "ip-src",
    "ip-dst",
    "ip-src|port",
    "ip-dst|port",
    "domain",
    "domain|ip",
    "hostname",
    "url",
    "email",
    "email-src",
    "email-dst",
    "email-subject",
    "email-attachment",
    "user-agent",
    "ja3-fingerprint-md5",
    "ja3s-fingerprint-md5",
];

/// The header listing the rule variables the rules use.
fn header(engine: Engine) -> String {
    let name = match engine {
        Engine::Suricata => "suricata",
        Engine::Snort => "snort",
    };
    let mut out = format!(
        "# threatlog export of IDS rules - optimized for {name}\n\
         #\n\
         # These NIDS rules contain some variables that need to exist in your configuration.\n\
         # Make sure you have set:\n\
         #\n\
         # $HOME_NET     - Your internal network range\n\
         # $EXTERNAL_NET - The network considered as outside\n\
         # $SMTP_SERVERS - All your internal SMTP servers\n"
    );
    if engine == Engine::Snort {
        out.push_str("# $HTTP_PORTS   - The ports used to contain HTTP traffic\n");
    }
    out.push_str("#\n");
    out
}

/// Whether `byte` may stand for itself inside a quoted `content` match.
fn content_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b" .-_/~@=&%+,!#$*?'()[]{}<>^`".contains(&byte)
}

/// `bytes` as the inside of a `content:"…"` match: safe bytes as they are, runs of others
/// hex-encoded between pipes.
pub fn content(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut in_hex = false;
    for &byte in bytes {
        if content_safe(byte) {
            if in_hex {
                out.push('|');
                in_hex = false;
            }
            out.push(char::from(byte));
        } else {
            if in_hex {
                out.push(' ');
            } else {
                out.push('|');
                in_hex = true;
            }
            let _ = write!(out, "{byte:02x}");
        }
    }
    if in_hex {
        out.push('|');
    }
    out
}

/// `bytes` as a regular expression matching exactly them: alphanumerics as they are,
/// everything else `\xHH`.
pub fn pcre_literal(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// `text` made safe inside `msg:"…"`: `"`, `;` and `\` backslash-escaped, anything outside
/// printable ASCII replaced by `?`.
pub fn msg_text(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        match ch {
            '"' | ';' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            ' '..='~' => out.push(ch),
            _ => out.push('?'),
        }
    }
    out
}

/// A value shortened for a message.
fn short(value: &str) -> String {
    if value.chars().count() <= MSG_VALUE_CHARS_MAX {
        return value.to_string();
    }
    let cut: String = value.chars().take(MSG_VALUE_CHARS_MAX).collect();
    format!("{cut}...")
}

/// An IP address or CIDR network, checked and printed canonically.
fn network(text: &str) -> Option<String> {
    let text = text.trim();
    match text.split_once('/') {
        Some((address, bits)) => {
            let address: IpAddr = address.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            (bits <= max).then(|| format!("{address}/{bits}"))
        }
        None => text
            .parse::<IpAddr>()
            .ok()
            .map(|address| address.to_string()),
    }
}

/// An IP (or network) and port from an `ip-*` or `ip-*|port` value; the port is `any` when
/// absent.
fn address_port(ty: &str, value: &str) -> Option<(String, String)> {
    if ty.ends_with("|port") {
        let (address, port) = value.rsplit_once('|')?;
        let port: u16 = port.trim().parse().ok()?;
        Some((network(address)?, port.to_string()))
    } else {
        Some((network(value)?, "any".into()))
    }
}

/// The DNS wire form of a name for raw DNS matches: `|03|www|07|example|03|com|00|`.
fn dns_wire(name: &str) -> Option<String> {
    let mut out = String::new();
    for label in name.trim_end_matches('.').split('.') {
        let length = u8::try_from(label.len())
            .ok()
            .filter(|n| *n > 0 && *n < 64)?;
        let _ = write!(out, "|{length:02x}|{}", content(label.as_bytes()));
    }
    out.push_str("|00|");
    Some(out.replace("||", " "))
}

/// The per-event parts of every rule.
struct Context {
    engine: Engine,
    event_id: String,
    tags: String,
    priority: u8,
    reference: String,
}

/// One attribute's rule writer: numbers its rules from its first sid.
struct Writer<'a> {
    context: &'a Context,
    next_sid: u64,
    out: &'a mut String,
}

impl Writer<'_> {
    /// Appends `alert <head> (msg:…; <body> classtype; sid; rev; priority; reference;)`.
    fn rule(&mut self, head: &str, what: &str, body: &str) {
        let context = self.context;
        let msg = msg_text(&format!(
            "MISP e{} [{}] {what}",
            context.event_id, context.tags
        ));
        let _ = writeln!(
            self.out,
            "alert {head} (msg:\"{msg}\"; {body}{}classtype:{CLASSTYPE}; sid:{}; rev:1; \
             priority:{}; {})",
            if body.is_empty() { "" } else { " " },
            self.next_sid,
            context.priority,
            context.reference
        );
        self.next_sid += 1;
    }

    fn ip_dst(&mut self, ty: &str, value: &str) -> bool {
        let Some((address, port)) = address_port(ty, value) else {
            return false;
        };
        let proto = if port == "any" { "ip" } else { "tcp" };
        let head = format!("{proto} $HOME_NET any -> {address} {port}");
        self.rule(&head, &format!("Outgoing To IP: {}", short(value)), "");
        true
    }

    fn ip_src(&mut self, ty: &str, value: &str) -> bool {
        let Some((address, port)) = address_port(ty, value) else {
            return false;
        };
        let proto = if port == "any" { "ip" } else { "tcp" };
        let head = format!("{proto} {address} {port} -> $HOME_NET any");
        self.rule(&head, &format!("Incoming From IP: {}", short(value)), "");
        true
    }

    fn email(&mut self, what: &str, prefix: &str, value: &str, show: bool) {
        let body = format!(
            "flow:established,to_server; content:\"{prefix}\"; nocase; content:\"{}\"; \
             fast_pattern; nocase; content:\"|0D 0A 0D 0A|\"; within:8192; \
             tag:session,600,seconds;",
            content(value.as_bytes())
        );
        let what = if show {
            format!("{what}: {}", short(value))
        } else {
            what.to_string()
        };
        self.rule("tcp $EXTERNAL_NET any -> $SMTP_SERVERS 25", &what, &body);
    }

    /// DNS and HTTP rules for a domain (`exact_label`: a hostname, which must not be preceded
    /// by a further label character or dot).
    fn name(&mut self, label: &str, value: &str, hostname: bool) -> bool {
        let escaped = content(value.as_bytes());
        let before = if hostname {
            "(^|[^A-Za-z0-9\\x2d\\x2e])"
        } else {
            "(^|[^A-Za-z0-9\\x2d])"
        };
        let pattern = pcre_literal(value.as_bytes());
        match self.context.engine {
            Engine::Suricata => {
                let body = format!(
                    "dns.query; content:\"{escaped}\"; nocase; pcre:\"/{before}{pattern}$/i\";"
                );
                self.rule(
                    "dns any any -> any any",
                    &format!("{label}: {}", short(value)),
                    &body,
                );
                let body = format!(
                    "flow:to_server,established; content:\"Host|3a|\"; nocase; http_header; \
                     content:\"{escaped}\"; fast_pattern; nocase; http_header; \
                     pcre:\"/{before}{pattern}[^A-Za-z0-9\\x2d\\x2e]/Hi\"; \
                     tag:session,600,seconds;"
                );
                self.rule(
                    "http $HOME_NET any -> $EXTERNAL_NET any",
                    &format!("Outgoing HTTP {label}: {}", short(value)),
                    &body,
                );
            }
            Engine::Snort => {
                let Some(wire) = dns_wire(value) else {
                    return false;
                };
                let dns = format!(
                    "content:\"|01 00 00 01 00 00 00 00 00 01|\"; depth:10; offset:2; \
                     content:\"{wire}\"; fast_pattern; nocase;"
                );
                let what = format!("{label}: {}", short(value));
                self.rule("udp any any -> any 53", &what, &dns);
                self.rule(
                    "tcp any any -> any 53",
                    &what,
                    &format!("{dns} flow:established;"),
                );
                let body = format!(
                    "flow:to_server,established; content:\"Host|3a|\"; nocase; http_header; \
                     content:\"{escaped}\"; fast_pattern; nocase; http_header; \
                     pcre:\"/{before}{pattern}[^A-Za-z0-9\\x2d\\x2e]/H\"; \
                     tag:session,600,seconds;"
                );
                self.rule(
                    "tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS",
                    &format!("Outgoing HTTP {label}: {}", short(value)),
                    &body,
                );
            }
        }
        true
    }

    fn url(&mut self, value: &str) {
        let what = format!("Outgoing URL: {}", short(value));
        if self.context.engine == Engine::Snort {
            let body = format!(
                "flow:to_server,established; content:\"{}\"; nocase; http_uri; \
                 tag:session,600,seconds;",
                content(value.as_bytes())
            );
            self.rule(
                "tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS",
                &what,
                &body,
            );
            return;
        }
        let lower = value.to_ascii_lowercase();
        let (scheme, rest) = match lower.split_once("://") {
            Some((scheme, _)) => (scheme.to_string(), &value[scheme.len() + 3..]),
            None => (String::new(), value),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        // A port follows the last colon, unless that colon is inside a bare IPv6 address.
        let bare_ipv6 = !host_port.starts_with('[') && host_port.matches(':').count() > 1;
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() && !bare_ipv6 => (host, Some(port)),
            _ => (host_port, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = network(host).filter(|_| !host.contains('/'));
        match scheme.as_str() {
            "http" if !host.is_empty() => {
                let destination = ip.unwrap_or_else(|| "$EXTERNAL_NET".into());
                let port = port.unwrap_or("any");
                let mut body = format!(
                    "flow:to_server,established; content:\"{}\"; fast_pattern; nocase; \
                     http_header;",
                    content(host.as_bytes())
                );
                if !path.is_empty() && path != "/" {
                    let _ = write!(
                        body,
                        " content:\"{}\"; nocase; http_uri;",
                        content(path.as_bytes())
                    );
                }
                body.push_str(" tag:session,600,seconds;");
                let head = format!("http $HOME_NET any -> {destination} {port}");
                self.rule(&head, &what, &body);
            }
            "https" if !host.is_empty() => match ip {
                Some(address) => {
                    let head = format!("tcp $HOME_NET any -> {address} {}", port.unwrap_or("443"));
                    self.rule(
                        &head,
                        &what,
                        "flow:to_server; app-layer-protocol:tls; tag:session,600,seconds;",
                    );
                }
                None => {
                    let body = format!(
                        "tls.sni; content:\"{}\"; nocase; tag:session,600,seconds;",
                        content(host.as_bytes())
                    );
                    self.rule("tls $HOME_NET any -> $EXTERNAL_NET any", &what, &body);
                }
            },
            _ => {
                let body = format!(
                    "flow:to_server,established; content:\"{}\"; fast_pattern; nocase; \
                     http_uri; tag:session,600,seconds;",
                    content(value.as_bytes())
                );
                self.rule("http $HOME_NET any -> $EXTERNAL_NET any", &what, &body);
            }
        }
    }

    fn user_agent(&mut self, value: &str) {
        let what = format!("Outgoing User-Agent: {}", short(value));
        let escaped = content(value.as_bytes());
        match self.context.engine {
            Engine::Suricata => self.rule(
                "http $HOME_NET any -> $EXTERNAL_NET any",
                &what,
                &format!(
                    "flow:to_server,established; content:\"{escaped}\"; fast_pattern; \
                     http_user_agent; tag:session,600,seconds;"
                ),
            ),
            Engine::Snort => self.rule(
                "tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS",
                &what,
                &format!(
                    "flow:to_server,established; content:\"{escaped}\"; http_header; \
                     tag:session,600,seconds;"
                ),
            ),
        }
    }

    fn ja3(&mut self, server: bool, value: &str) -> bool {
        // Snort has no JA3 keywords (MISP writes no rule either).
        if self.context.engine == Engine::Snort {
            return true;
        }
        let hash = value.trim().to_ascii_lowercase();
        if hash.len() != 32 || !hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return false;
        }
        let (keyword, what, head) = if server {
            (
                "ja3s.hash",
                "JA3S",
                "tls $EXTERNAL_NET any -> $HOME_NET any",
            )
        } else {
            ("ja3.hash", "JA3", "tls $HOME_NET any -> $EXTERNAL_NET any")
        };
        let body = format!("{keyword}; content:\"{hash}\";");
        self.rule(head, &format!("{what}: {hash}"), &body);
        true
    }

    /// Writes the rules of one attribute; false when its value cannot be expressed.
    fn attribute(&mut self, ty: &str, value: &str) -> bool {
        match ty {
            "ip-dst" | "ip-dst|port" => self.ip_dst(ty, value),
            "ip-src" | "ip-src|port" => self.ip_src(ty, value),
            "domain" => self.name("Domain", value, false),
            "hostname" => self.name("Hostname", value, true),
            "domain|ip" => {
                let Some((domain, ip)) = value.split_once('|') else {
                    return false;
                };
                self.name("Domain", domain, false)
                    && self.ip_dst("ip-dst", ip)
                    && self.ip_src("ip-src", ip)
            }
            "url" => {
                self.url(value);
                true
            }
            "email" => {
                self.email("Source Email Address", "MAIL FROM|3a|", value, true);
                self.email("Destination Email Address", "RCPT TO|3a|", value, true);
                true
            }
            "email-src" => {
                self.email("Source Email Address", "MAIL FROM|3a|", value, true);
                true
            }
            "email-dst" => {
                self.email("Destination Email Address", "RCPT TO|3a|", value, true);
                true
            }
            "email-subject" => {
                self.email("Bad Email Subject", "Subject|3a|", value, false);
                true
            }
            "email-attachment" => {
                let with_quote = [value.as_bytes(), b"\""].concat();
                let body = format!(
                    "flow:established,to_server; content:\"Content-Disposition|3a| attachment|3b| \
                     filename|3d 22|\"; content:\"{}\"; fast_pattern; \
                     content:\"|0D 0A 0D 0A|\"; within:8192; tag:session,600,seconds;",
                    content(&with_quote)
                );
                self.rule(
                    "tcp $EXTERNAL_NET any -> $SMTP_SERVERS 25",
                    "Bad Email Attachment",
                    &body,
                );
                true
            }
            "user-agent" => {
                self.user_agent(value);
                true
            }
            "ja3-fingerprint-md5" => self.ja3(false, value),
            "ja3s-fingerprint-md5" => self.ja3(true, value),
            _ => true,
        }
    }
}

/// The reference option pointing at the event on this node.
fn reference(base_url: &str, event_uuid: &str) -> String {
    let base = base_url
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let base: String = base
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || ".-_/:~".contains(*ch))
        .collect();
    let uuid = uuid::Uuid::parse_str(event_uuid)
        .map(|uuid| uuid.to_string())
        .unwrap_or_default();
    format!("reference:url,{base}/events/view/{uuid};")
}

/// The rules for every network attribute of `events`, after a header naming the variables.
pub fn rules(engine: Engine, events: &[Value], options: &ExportOptions) -> String {
    let mut out = header(engine);
    for listed in super::event_json::attributes(events) {
        let attribute = listed.attribute;
        let ty = text(attribute, "type");
        if !RULE_TYPES.contains(&ty.as_ref()) {
            continue;
        }
        let event = listed.event;
        let mut tags: Vec<&str> = tag_names(attribute);
        tags.extend(tag_names(event));
        let context = Context {
            engine,
            event_id: text(event, "id")
                .chars()
                .filter(char::is_ascii_digit)
                .collect(),
            tags: tags.join(","),
            priority: text(event, "threat_level_id")
                .parse::<u8>()
                .ok()
                .filter(|level| (1..=4).contains(level))
                .unwrap_or(PRIORITY_DEFAULT),
            reference: reference(&options.base_url, &text(event, "uuid")),
        };
        let id: u64 = text(attribute, "id").parse().unwrap_or(0);
        let value = text(attribute, "value");
        let uuid = uuid::Uuid::parse_str(&text(attribute, "uuid"))
            .map(|uuid| uuid.to_string())
            .unwrap_or_default();
        if value.len() > RULE_VALUE_BYTES_MAX {
            let _ = writeln!(
                out,
                "# attribute {uuid} skipped: value over {RULE_VALUE_BYTES_MAX} bytes"
            );
            continue;
        }
        let mut rules = String::new();
        let mut writer = Writer {
            context: &context,
            next_sid: options.sid_base + SIDS_PER_ATTRIBUTE * id + 1,
            out: &mut rules,
        };
        if writer.attribute(&ty, &value) {
            out.push_str(&rules);
        } else {
            let _ = writeln!(
                out,
                "# attribute {uuid} skipped: its {} value is not valid",
                msg_text(&ty)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(ty: &str, value: &str) -> Vec<Value> {
        vec![json!({"Event": {
            "id": "12", "uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "threat_level_id": "2",
            "Tag": [{"name": "tlp:white"}],
            "Attribute": [{"id": "3", "type": ty, "value": value, "to_ids": true,
                           "uuid": "57c4448b-454c-4d17-90d1-4d2f950d210f",
                           "Tag": [{"name": "misp-galaxy:threat-actor=\"Sofacy\""}]}]
        }})]
    }

    fn rule_lines(engine: Engine, ty: &str, value: &str) -> Vec<String> {
        rules(engine, &event(ty, value), &ExportOptions::default())
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(String::from)
            .collect()
    }

    #[test]
    fn ip_rule_follows_misp_conventions() {
        let lines = rule_lines(Engine::Suricata, "ip-dst", "198.51.100.7");
        assert_eq!(
            lines,
            vec![
                "alert ip $HOME_NET any -> 198.51.100.7 any (msg:\"MISP e12 \
                 [misp-galaxy:threat-actor=\\\"Sofacy\\\",tlp:white] Outgoing To IP: \
                 198.51.100.7\"; classtype:trojan-activity; sid:4000031; rev:1; priority:2; \
                 reference:url,localhost/events/view/5b646415-7b48-40d5-86b4-c0070acd0835;)"
            ]
        );
        let lines = rule_lines(Engine::Snort, "ip-src|port", "2001:db8::1|8080");
        assert!(lines[0].starts_with("alert tcp 2001:db8::1 8080 -> $HOME_NET any ("));
        assert!(rule_lines(Engine::Suricata, "ip-dst", "1.2.3.4; drop").is_empty());
    }

    #[test]
    fn hostile_values_are_escaped() {
        let hostile = "a\"b;c\\d|e\nf:g)";
        assert_eq!(
            content(hostile.as_bytes()),
            "a|22|b|3b|c|5c|d|7c|e|0a|f|3a|g)"
        );
        assert_eq!(pcre_literal(b"a.b"), "a\\x2eb");
        assert_eq!(msg_text("x\"y;z\\w\n"), "x\\\"y\\;z\\\\w?");
        let lines = rule_lines(Engine::Suricata, "email-subject", hostile);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("content:\"a|22|b|3b|c|5c|d|7c|e|0a|f|3a|g)\""));
        assert!(lines[0].ends_with(";)"));
    }

    #[test]
    fn names_urls_and_sids() {
        let lines = rule_lines(Engine::Suricata, "domain", "evil.test");
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("dns.query; content:\"evil.test\"; nocase;"));
        assert!(lines[1].contains("sid:4000032;"));
        let lines = rule_lines(Engine::Snort, "hostname", "www.evil.test");
        assert!(lines[0].contains("content:\"|03|www|04|evil|04|test|00|\""));
        let lines = rule_lines(Engine::Suricata, "url", "http://evil.test:8080/a?b=c");
        assert!(lines[0].starts_with("alert http $HOME_NET any -> $EXTERNAL_NET 8080 ("));
        assert!(lines[0].contains("content:\"/a?b=c\"; nocase; http_uri;"));
        let lines = rule_lines(Engine::Suricata, "url", "http://[2001:db8::5]:8081/x");
        assert!(lines[0].starts_with("alert http $HOME_NET any -> 2001:db8::5 8081 ("));
        let lines = rule_lines(Engine::Suricata, "url", "https://203.0.113.4/login");
        assert!(lines[0].starts_with("alert tcp $HOME_NET any -> 203.0.113.4 443 ("));
        let lines = rule_lines(
            Engine::Suricata,
            "ja3-fingerprint-md5",
            "0749BAE92CA336A02C83D126E04EC628",
        );
        assert!(lines[0].contains("ja3.hash; content:\"0749bae92ca336a02c83d126e04ec628\";"));
        assert!(rule_lines(
            Engine::Snort,
            "ja3-fingerprint-md5",
            "0749bae92ca336a02c83d126e04ec628"
        )
        .is_empty());
    }

    /// The options of a rule line outside quoted strings: (keyword, quoted values).
    fn options(line: &str) -> Vec<(String, Vec<String>)> {
        let body = &line[line.find('(').expect("an option list") + 1..line.len() - 1];
        let mut out = Vec::new();
        let (mut keyword, mut quoted, mut current) = (String::new(), Vec::new(), String::new());
        let (mut in_quotes, mut escaped) = (false, false);
        for ch in body.chars() {
            if in_quotes {
                match (escaped, ch) {
                    (true, _) => {
                        current.push(ch);
                        escaped = false;
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        in_quotes = false;
                        quoted.push(std::mem::take(&mut current));
                    }
                    (false, _) => current.push(ch),
                }
            } else if ch == '"' {
                in_quotes = true;
            } else if ch == ';' {
                let name = keyword
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                out.push((name, std::mem::take(&mut quoted)));
                keyword.clear();
            } else {
                keyword.push(ch);
            }
        }
        assert!(
            !in_quotes && keyword.trim().is_empty(),
            "unterminated: {line}"
        );
        out
    }

    /// The bytes a `content` string matches.
    fn decode(content: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, part) in content.split('|').enumerate() {
            if index % 2 == 0 {
                out.extend_from_slice(part.as_bytes());
            } else {
                for byte in part.split_whitespace() {
                    out.push(u8::from_str_radix(byte, 16).expect("hex"));
                }
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn no_value_escapes_its_rule(
            value in "(\\PC|[\"';|\\\\\n\r:()\\x00])*",
            index in 0..RULE_TYPES.len(),
            snort in proptest::bool::ANY,
        ) {
            let engine = if snort { Engine::Snort } else { Engine::Suricata };
            let ty = RULE_TYPES[index];
            let out = rules(engine, &event(ty, &value), &ExportOptions::default());
            for line in out.lines().filter(|line| !line.starts_with('#')) {
                proptest::prop_assert!(line.starts_with("alert ") && line.ends_with(";)"), "{}", line);
                let options = options(line);
                let count = |name: &str| options.iter().filter(|(k, _)| k == name).count();
                proptest::prop_assert_eq!(count("msg"), 1, "{}", line);
                proptest::prop_assert_eq!(count("sid"), 1, "{}", line);
                proptest::prop_assert_eq!(count("rev"), 1, "{}", line);
                proptest::prop_assert_eq!(count("reference"), 1, "{}", line);
                for (keyword, _) in &options {
                    proptest::prop_assert!(
                        keyword.chars().all(|ch| ch.is_ascii_lowercase() || "._-".contains(ch)),
                        "keyword {} in {}", keyword, line
                    );
                }
            }
            if ty == "email-subject" && !value.is_empty() && value.len() <= RULE_VALUE_BYTES_MAX {
                let line = out.lines().find(|line| line.starts_with("alert ")).expect("a rule");
                let contents: Vec<String> = options(line)
                    .into_iter()
                    .filter(|(keyword, _)| keyword == "content")
                    .flat_map(|(_, quoted)| quoted)
                    .collect();
                proptest::prop_assert_eq!(decode(&contents[1]), value.as_bytes().to_vec());
            }
        }
    }
}
