//! Blocklist exports that devices read directly, as MISP writes them: a hosts file, iptables
//! rules (`netfilter`) and a DNS response policy zone (`rpz`). Pure: the exported attributes'
//! (type, value) pairs in (as [`super::export`] lists them), text out.
//!
//! Every value is checked against the syntax of the place it lands in (a DNS name, an IP
//! address or network) and skipped when it does not fit, so that no value shared by another
//! organisation can add a line, a record or a shell word to a file a resolver loads or a
//! script runs. Settings given with the request are checked the same way
//! ([`BlocklistOptions::set`]).

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::model::date::civil_from_days;

/// An exported attribute: its type and value.
pub type Typed = (String, String);

/// Options of the blocklist exports (hosts, netfilter, rpz, and the cache export's hash),
/// from the restSearch parameters of the same names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlocklistOptions {
    /// Address the hosts file maps each domain to (`ip_address`; MISP's default `0.0.0.0`).
    pub ip_address: String,
    /// iptables target of each rule (`netfilter_action`; default `DROP`).
    pub netfilter_action: String,
    /// The zone's policy (`policy`): what the resolver answers for a listed name.
    pub policy: RpzPolicy,
    /// Where the `Local-Data` policy sends listed names (`walled_garden`).
    pub walled_garden: String,
    /// The zone's name server (`ns`) and optional second one (`ns_alt`).
    pub ns: String,
    /// The second name server, if any.
    pub ns_alt: Option<String>,
    /// The SOA contact (`email`, in zone-file form: `root.localhost`).
    pub email: String,
    /// The SOA serial (`serial`); `$date` becomes the day's `YYYYMMDD`, `$time` epoch seconds.
    pub serial: String,
    /// SOA refresh, retry, expiry and minimum TTL, and the zone's `$TTL` (seconds, or a
    /// number with `s`, `m`, `h`, `d` or `w`).
    pub refresh: String,
    /// SOA retry.
    pub retry: String,
    /// SOA expiry.
    pub expiry: String,
    /// SOA minimum TTL.
    pub minimum_ttl: String,
    /// The zone's default TTL.
    pub ttl: String,
    /// The hash the cache export writes of each value (`hash_type`; MISP's default md5).
    pub hash_type: CacheHash,
}

/// A hash the cache export writes (`hash_type`): MISP takes any PHP hash name; these are the
/// ones feed caches use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheHash {
    /// MD5, MISP's default (its feed caches key values by it).
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl CacheHash {
    /// The hash named `name`.
    pub fn parse(name: &str) -> Option<CacheHash> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "md5" => CacheHash::Md5,
            "sha1" => CacheHash::Sha1,
            "sha256" => CacheHash::Sha256,
            "sha512" => CacheHash::Sha512,
            _ => return None,
        })
    }

    /// The lowercase hex digest of `text`.
    pub fn hex(self, text: &str) -> String {
        use sha2::Digest;
        let bytes = text.as_bytes();
        match self {
            CacheHash::Md5 => hex::encode(md5::Md5::digest(bytes)),
            CacheHash::Sha1 => hex::encode(sha1::Sha1::digest(bytes)),
            CacheHash::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
            CacheHash::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        }
    }
}

impl Default for BlocklistOptions {
    /// MISP's defaults.
    fn default() -> Self {
        let text = |text: &str| text.to_string();
        BlocklistOptions {
            ip_address: text("0.0.0.0"),
            netfilter_action: text("DROP"),
            policy: RpzPolicy::NxDomain,
            walled_garden: text("127.0.0.1"),
            ns: text("localhost."),
            ns_alt: None,
            email: text("root.localhost"),
            serial: text("$date00"),
            refresh: text("2h"),
            retry: text("30m"),
            expiry: text("30d"),
            minimum_ttl: text("1h"),
            ttl: text("1w"),
            hash_type: CacheHash::Md5,
        }
    }
}

/// The restSearch parameters [`BlocklistOptions::set`] reads.
pub const OPTION_NAMES: [&str; 14] = [
    "ip_address",
    "netfilter_action",
    "policy",
    "walled_garden",
    "ns",
    "ns_alt",
    "email",
    "serial",
    "refresh",
    "retry",
    "expiry",
    "minimum_ttl",
    "ttl",
    "hash_type",
];

/// What a response policy zone answers for a listed name (MISP's `RPZ_policy` choices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpzPolicy {
    /// No answer at all (`rpz-drop.`).
    Drop,
    /// "No such name" (`.`).
    NxDomain,
    /// "The name exists but has no such record" (`*.`).
    NoData,
    /// The walled garden's address instead (a CNAME to it).
    LocalData,
    /// The real answer (`rpz-passthru.`): lists names without blocking them.
    Passthru,
    /// Only over TCP (`rpz-tcp-only.`).
    TcpOnly,
}

impl RpzPolicy {
    /// The policy named `name` (MISP's names and numbers; `walled-garden` is `Local-Data`).
    pub fn parse(name: &str) -> Option<RpzPolicy> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "0" | "drop" => RpzPolicy::Drop,
            "1" | "nxdomain" => RpzPolicy::NxDomain,
            "2" | "nodata" => RpzPolicy::NoData,
            "3" | "local-data" | "walled-garden" => RpzPolicy::LocalData,
            "4" | "passthru" => RpzPolicy::Passthru,
            "5" | "tcp-only" => RpzPolicy::TcpOnly,
            _ => return None,
        })
    }

    /// What the zone's comment says the policy does.
    fn explanation(self) -> &'static str {
        match self {
            RpzPolicy::Drop => "timeout.",
            RpzPolicy::NxDomain => {
                "return NXDOMAIN (name does not exist) irrespective of actual result received."
            }
            RpzPolicy::NoData => {
                "returns NODATA (name exists but no answers returned) irrespective of actual \
                 result received."
            }
            RpzPolicy::LocalData => "returns the defined alternate location.",
            RpzPolicy::Passthru => "be allowed (passthru).",
            RpzPolicy::TcpOnly => "be answered over TCP only.",
        }
    }
}

impl BlocklistOptions {
    /// Sets the option `name` ([`OPTION_NAMES`]) to `value`; an error says why the value
    /// cannot go where the option writes it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        let refuse = |what: &str| Err(format!("{name} must be {what}, not '{value}'"));
        let duration = |value: &str| {
            let digits = value
                .strip_suffix(['s', 'm', 'h', 'd', 'w'])
                .unwrap_or(value);
            !digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit())
        };
        match name {
            "ip_address" if value.parse::<IpAddr>().is_ok() => self.ip_address = value.into(),
            "ip_address" => return refuse("an IP address"),
            "netfilter_action" if is_netfilter_target(value) => {
                self.netfilter_action = value.into()
            }
            "netfilter_action" => return refuse("an iptables target such as DROP or REJECT"),
            "policy" => match RpzPolicy::parse(value) {
                Some(policy) => self.policy = policy,
                None => return refuse("DROP, NXDOMAIN, NODATA, Local-Data, PASSTHRU or TCP-only"),
            },
            "walled_garden" if is_zone_name(value) || value.parse::<IpAddr>().is_ok() => {
                self.walled_garden = value.into()
            }
            "ns" | "email" | "walled_garden" if !is_zone_name(value) => {
                return refuse("a DNS name")
            }
            "ns" => self.ns = value.into(),
            "email" => self.email = value.into(),
            "ns_alt" if value.is_empty() => self.ns_alt = None,
            "ns_alt" if is_zone_name(value) => self.ns_alt = Some(value.into()),
            "ns_alt" => return refuse("a DNS name"),
            "serial" => {
                let digits = value.replace("$date", "").replace("$time", "");
                if digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return refuse("digits, $date or $time");
                }
                self.serial = value.into();
            }
            "refresh" | "retry" | "expiry" | "minimum_ttl" | "ttl" if !duration(value) => {
                return refuse("seconds, or a number with s, m, h, d or w")
            }
            "refresh" => self.refresh = value.into(),
            "retry" => self.retry = value.into(),
            "expiry" => self.expiry = value.into(),
            "minimum_ttl" => self.minimum_ttl = value.into(),
            "ttl" => self.ttl = value.into(),
            "hash_type" => match CacheHash::parse(value) {
                Some(hash) => self.hash_type = hash,
                None => return refuse("md5, sha1, sha256 or sha512"),
            },
            _ => return Err(format!("{name} is not a blocklist option")),
        }
        Ok(())
    }
}

/// Whether `text` is an iptables target: a word of letters, digits, `_` and `-`.
fn is_netfilter_target(text: &str) -> bool {
    text.len() <= 32
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `text` is a DNS name that a hosts file or a zone can hold as it is: labels of
/// letters, digits, `-` and `_`, at most 63 bytes each and 253 in all.
fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A DNS name, or one written absolute (with its final dot), as zone settings are.
fn is_zone_name(text: &str) -> bool {
    is_dns_name(text.strip_suffix('.').unwrap_or(text))
}

/// Shortest IPv4 prefix a blocklist takes: one shared value must not block a large part of
/// the internet (a `0.0.0.0/0` would block everything).
pub const IPV4_PREFIX_MIN: u8 = 8;
/// Shortest IPv6 prefix a blocklist takes.
pub const IPV6_PREFIX_MIN: u8 = 32;

/// An IP address or network (`address/prefix`, no spaces) as (address, prefix length); `None`
/// for anything else, and for networks wider than [`IPV4_PREFIX_MIN`] or
/// [`IPV6_PREFIX_MIN`].
fn ip_network(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let (least, full) = match address {
        IpAddr::V4(_) => (IPV4_PREFIX_MIN, 32),
        IpAddr::V6(_) => (IPV6_PREFIX_MIN, 128),
    };
    let prefix = match prefix {
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
        Some(_) => return None,
        None => full,
    };
    (least..=full)
        .contains(&prefix)
        .then_some((address, prefix))
}

/// An address or network as a rule writes it, from its parsed parts: the address alone, or
/// `address/prefix`.
fn network_text((address, prefix): (IpAddr, u8)) -> String {
    match (address, prefix) {
        (IpAddr::V4(_), 32) | (IpAddr::V6(_), 128) => address.to_string(),
        _ => format!("{address}/{prefix}"),
    }
}

/// The values of every attribute whose type is in `picks`, the part of the value each names
/// (`None`: all of it, `Some(i)`: the i-th `|`-separated part), in order, once each.
fn values(attributes: &[Typed], picks: &[(&str, Option<usize>)]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (ty, value) in attributes {
        for (_, part) in picks.iter().filter(|(name, _)| name == ty) {
            let picked = match part {
                None => Some(value.trim()),
                Some(index) => value.split('|').nth(*index).map(str::trim),
            };
            if let Some(picked) = picked.filter(|picked| seen.insert(picked.to_string())) {
                out.push(picked.to_string());
            }
        }
    }
    out
}

/// MISP's `hosts` export: each domain mapped to `options.ip_address`, once, after a header
/// stating when it was generated (`now`, epoch seconds).
pub fn hosts(attributes: &[Typed], options: &BlocklistOptions, now: i64) -> String {
    let (y, m, d) = civil_from_days(now.div_euclid(86_400));
    let seconds = now.rem_euclid(86_400);
    let mut out = format!(
        "# Blocklist in the HOSTS format\n# Generated: {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000\n",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    for domain in values(attributes, &[("domain", None)]) {
        if is_dns_name(&domain) {
            out.push_str(&format!("{} {domain}\n", options.ip_address));
        }
    }
    out
}

/// MISP's `netfilter` export: an iptables rule per source address (`ip-src`, `ip-dst`, and
/// the address part of `domain|ip`, `ip-src|port` and `ip-dst|port`).
pub fn netfilter(attributes: &[Typed], options: &BlocklistOptions) -> String {
    let picks = [
        ("ip-dst", None),
        ("ip-src", None),
        ("domain|ip", Some(1)),
        ("ip-dst|port", Some(0)),
        ("ip-src|port", Some(0)),
    ];
    let mut out = String::new();
    for network in values(attributes, &picks)
        .iter()
        .filter_map(|text| ip_network(text))
    {
        out.push_str(&format!(
            "iptables -A INPUT -s {} -j {}\n",
            network_text(network),
            options.netfilter_action
        ));
    }
    out
}

/// The `rpz-ip` owner name of an address or network: the prefix length, then the address's
/// parts in reverse (IPv6 groups as written compressed, `::` as `zz`).
fn rpz_ip(address: IpAddr, prefix: u8) -> String {
    let reversed: Vec<String> = match address {
        IpAddr::V4(v4) => v4.octets().iter().rev().map(u8::to_string).collect(),
        IpAddr::V6(v6) => v6
            .to_string()
            .replace("::", ":zz:")
            .split(':')
            .filter(|group| !group.is_empty())
            .rev()
            .map(String::from)
            .collect(),
    };
    format!("{prefix}.{}.rpz-ip", reversed.join("."))
}

/// MISP's `rpz` export: a response policy zone (SOA and NS from `options`) listing addresses
/// (`ip-src`, `ip-dst`, the address of `domain|ip`), domains with all their subdomains
/// (`domain`, the domain of `domain|ip`) and hostnames, each answered by `options.policy`.
/// `now` (epoch seconds) fills the serial's `$date` and `$time`.
pub fn rpz(attributes: &[Typed], options: &BlocklistOptions, now: i64) -> String {
    let (y, m, d) = civil_from_days(now.div_euclid(86_400));
    let serial = options
        .serial
        .replace("$date", &format!("{y:04}{m:02}{d:02}"))
        .replace("$time", &now.to_string());
    let action = match options.policy {
        RpzPolicy::Drop => "rpz-drop.".to_string(),
        RpzPolicy::NxDomain => ".".to_string(),
        RpzPolicy::NoData => "*.".to_string(),
        RpzPolicy::LocalData => options.walled_garden.clone(),
        RpzPolicy::Passthru => "rpz-passthru.".to_string(),
        RpzPolicy::TcpOnly => "rpz-tcp-only.".to_string(),
    };
    let mut out = format!(
        "$TTL {};\n@               SOA {} {} ({serial} {} {} {} {})\n                NS {}\n",
        options.ttl,
        options.ns,
        options.email,
        options.refresh,
        options.retry,
        options.expiry,
        options.minimum_ttl,
        options.ns
    );
    if let Some(alternate) = &options.ns_alt {
        out.push_str(&format!("                NS {alternate}\n"));
    }
    out.push('\n');
    let explanation = options.policy.explanation();
    let ips: Vec<String> = values(
        attributes,
        &[("ip-src", None), ("ip-dst", None), ("domain|ip", Some(1))],
    )
    .iter()
    .filter_map(|text| ip_network(text))
    .map(|(address, prefix)| format!("{} CNAME {action}\n", rpz_ip(address, prefix)))
    .collect();
    let domains: Vec<String> = values(attributes, &[("domain", None), ("domain|ip", Some(0))])
        .into_iter()
        .filter(|name| is_dns_name(name))
        .map(|name| format!("{name} CNAME {action}\n*.{name} CNAME {action}\n"))
        .collect();
    let hostnames: Vec<String> = values(attributes, &[("hostname", None)])
        .into_iter()
        .filter(|name| is_dns_name(name))
        .map(|name| format!("{name} CNAME {action}\n"))
        .collect();
    for (lines, what) in [
        (ips, "IP addresses"),
        (domains, "domain names and all of their sub-domains"),
        (hostnames, "hostnames"),
    ] {
        if !lines.is_empty() {
            out.push_str(&format!("; The following {what} will {explanation}\n"));
            out.extend(lines);
            out.push('\n');
        }
    }
    out
}

/// MISP's cache export: the hash ([`BlocklistOptions::hash_type`]) of each value, one per
/// line, as a feed cache or a lookup table keys them.
pub fn cache(attributes: &[Typed], options: &BlocklistOptions) -> String {
    let mut out = String::new();
    for (_, value) in attributes {
        out.push_str(&options.hash_type.hex(value));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<Typed> {
        [
            ("domain", "evil.test"),
            ("domain", "evil.test"),
            ("domain", "bad name.test\n0.0.0.0 bank.test"),
            ("ip-dst", "198.51.100.7"),
            ("ip-src", "2001:db8::1"),
            ("ip-dst", "198.51.100.0/24; rm -rf /"),
            ("ip-dst", "198.51.100.8\n/32"),
            ("ip-dst", "0.0.0.0/0"),
            ("ip-src", "203.0.113.0/24"),
            ("domain|ip", "pair.test|203.0.113.9"),
            ("ip-dst|port", "192.0.2.1|443"),
            ("hostname", "www.evil.test"),
            ("url", "http://evil.test/x"),
        ]
        .map(|(ty, value)| (ty.to_string(), value.to_string()))
        .to_vec()
    }

    const NOON: i64 = 1_733_313_600; // 2024-12-04 12:00:00 UTC

    #[test]
    fn cache_writes_the_chosen_hash_of_each_value() {
        let typed = vec![("ip-dst".to_string(), "198.51.100.7".to_string())];
        let mut options = BlocklistOptions::default();
        assert_eq!(
            cache(&typed, &options),
            "526291673f8700ef4e4902e29550a03b\n"
        );
        options.set("hash_type", "SHA1").unwrap();
        assert_eq!(
            cache(&typed, &options),
            "4fce9e07a95cbd5e64d9fe952f54743b255a7a93\n"
        );
        options.set("hash_type", "sha256").unwrap();
        assert_eq!(
            cache(&typed, &options),
            "e183220b699c10a83ca7be3433d228ed0860a5ecf9480f83e9655f16bad58908\n"
        );
        assert_eq!(
            options.set("hash_type", "crc32"),
            Err("hash_type must be md5, sha1, sha256 or sha512, not 'crc32'".into())
        );
    }

    #[test]
    fn hosts_lists_each_domain_once_and_skips_what_is_not_a_name() {
        let mut options = BlocklistOptions::default();
        options.set("ip_address", "127.0.0.1").unwrap();
        assert_eq!(
            hosts(&events(), &options, NOON),
            "# Blocklist in the HOSTS format\n# Generated: 2024-12-04 12:00:00 +0000\n\
             127.0.0.1 evil.test\n"
        );
    }

    #[test]
    fn netfilter_rules_take_the_address_part_and_a_checked_target() {
        let mut options = BlocklistOptions::default();
        assert_eq!(
            netfilter(&events(), &options),
            "iptables -A INPUT -s 198.51.100.7 -j DROP\n\
             iptables -A INPUT -s 2001:db8::1 -j DROP\n\
             iptables -A INPUT -s 203.0.113.0/24 -j DROP\n\
             iptables -A INPUT -s 203.0.113.9 -j DROP\n\
             iptables -A INPUT -s 192.0.2.1 -j DROP\n"
        );
        assert!(options.set("netfilter_action", "DROP; reboot").is_err());
        options.set("netfilter_action", "REJECT").unwrap();
        assert!(netfilter(&events(), &options).ends_with("-s 192.0.2.1 -j REJECT\n"));
    }

    #[test]
    fn rpz_zone_with_settings_and_reversed_addresses() {
        let mut options = BlocklistOptions::default();
        for (name, value) in [
            ("policy", "DROP"),
            ("ns", "ns1.example."),
            ("ns_alt", "ns2"),
        ] {
            options.set(name, value).unwrap();
        }
        assert_eq!(
            rpz(&events(), &options, NOON),
            "$TTL 1w;\n\
             @               SOA ns1.example. root.localhost (2024120400 2h 30m 30d 1h)\n\
             \x20               NS ns1.example.\n\
             \x20               NS ns2\n\n\
             ; The following IP addresses will timeout.\n\
             32.7.100.51.198.rpz-ip CNAME rpz-drop.\n\
             128.1.zz.db8.2001.rpz-ip CNAME rpz-drop.\n\
             24.0.113.0.203.rpz-ip CNAME rpz-drop.\n\
             32.9.113.0.203.rpz-ip CNAME rpz-drop.\n\n\
             ; The following domain names and all of their sub-domains will timeout.\n\
             evil.test CNAME rpz-drop.\n*.evil.test CNAME rpz-drop.\n\
             pair.test CNAME rpz-drop.\n*.pair.test CNAME rpz-drop.\n\n\
             ; The following hostnames will timeout.\n\
             www.evil.test CNAME rpz-drop.\n\n"
        );
        options.set("policy", "walled-garden").unwrap();
        options.set("walled_garden", "garden.example.").unwrap();
        assert!(rpz(&events(), &options, NOON).contains("evil.test CNAME garden.example.\n"));
        for (name, bad) in [
            ("policy", "ALLOW"),
            ("ttl", "1w\n@ NS evil."),
            ("ns", "a b"),
            ("serial", "1;"),
            ("no_such", "1"),
        ] {
            assert!(options.set(name, bad).is_err(), "{name}={bad}");
        }
    }
}
