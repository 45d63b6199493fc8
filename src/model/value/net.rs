//! Network values: IP addresses and ranges, ports, domain and host names, e-mail addresses,
//! links and MAC addresses.
//!
//! Each function takes a trimmed value and returns the normalised value or the reason it was
//! refused.

use std::net::IpAddr;

/// Longest DNS label, in characters (RFC 1035).
const DNS_LABEL_CHARS_MAX: usize = 63;

/// An IPv4 or IPv6 address in canonical form (IPv6 compressed and lower-cased, as PHP's
/// `inet_ntop`). IPv4 octets with leading zeros are refused, like PHP's `FILTER_VALIDATE_IP`.
pub(super) fn ip(value: &str) -> Result<String, String> {
    value
        .parse::<IpAddr>()
        .map(|address| address.to_string())
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())
}

/// An IP address or a CIDR range `address/prefix` (prefix at most 32 for IPv4, 128 for IPv6),
/// canonical. As MISP does, a `/32` IPv4 or `/128` IPv6 range becomes the bare address, and the
/// host bits of a range are kept (`10.1.2.3/8` stays as written).
pub(super) fn ip_or_cidr(value: &str) -> Result<String, String> {
    let Some((address, prefix)) = value.split_once('/') else {
        return ip(value);
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let bits_max = if address.is_ipv4() { 32 } else { 128 };
    let bits = prefix
        .parse::<u8>()
        .ok()
        .filter(|bits| prefix.bytes().all(|b| b.is_ascii_digit()) && *bits <= bits_max)
        .ok_or_else(|| format!("invalid CIDR prefix '/{prefix}' (expected 0 to {bits_max})"))?;
    if bits == bits_max {
        Ok(address.to_string())
    } else {
        Ok(format!("{address}/{bits}"))
    }
}

/// A TCP/UDP port, 1 to 65535 as MISP requires, written without leading zeros.
pub(super) fn port(value: &str) -> Result<String, String> {
    let reason = || "not a port number between 1 and 65535".to_string();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(reason());
    }
    match value.parse::<u16>() {
        Ok(port) if port >= 1 => Ok(port.to_string()),
        _ => Err(reason()),
    }
}

/// A domain or host name, lower-cased with leading and trailing dots removed. At least two
/// labels; labels of letters (any script: internationalised names are kept in Unicode, not
/// converted to punycode), digits, `-` and `_`, each at most 63 characters; the last label at
/// least two characters and without `_`.
pub(super) fn domain(value: &str) -> Result<String, String> {
    let lower = value.to_lowercase();
    let name = lower.trim_matches('.');
    if name.chars().any(char::is_whitespace) {
        return Err("a domain name contains no spaces".to_string());
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("a domain name has at least two labels (example.com)".to_string());
    }
    for label in &labels {
        if label.is_empty() {
            return Err("empty label (two dots in a row)".to_string());
        }
        if label.chars().count() > DNS_LABEL_CHARS_MAX {
            return Err(format!(
                "label longer than {DNS_LABEL_CHARS_MAX} characters"
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
        if let Some(bad) = label.chars().find(|c| !allowed(*c)) {
            return Err(format!("character '{bad}' is not allowed in a domain name"));
        }
    }
    let top = labels
        .last()
        .expect("split always yields at least one label");
    if top.chars().count() < 2 || top.contains('_') {
        return Err(format!("'{top}' is not a valid top-level label"));
    }
    Ok(name.to_string())
}

/// An e-mail address `local@domain`: no whitespace, a non-empty local part, and a domain with a
/// dot (MISP's check, which also accepts partial addresses). The domain is lower-cased; with
/// `lower_all` the whole address is, as MISP does for the e-mail types proper.
pub(super) fn email(value: &str, lower_all: bool) -> Result<String, String> {
    if value.chars().any(char::is_whitespace) {
        return Err("an e-mail address contains no spaces".to_string());
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("expected local@domain".to_string());
    };
    if local.is_empty() || domain.is_empty() || !domain.contains('.') {
        return Err("expected local@domain".to_string());
    }
    if lower_all {
        Ok(value.to_lowercase())
    } else {
        Ok(format!("{local}@{}", domain.to_lowercase()))
    }
}

/// A link: a URL with a scheme (`https://…`, `mailto:…`) and no whitespace; case kept.
pub(super) fn link(value: &str) -> Result<String, String> {
    if value.chars().any(char::is_whitespace) {
        return Err("a link contains no spaces".to_string());
    }
    let scheme_ok = value.split_once(':').is_some_and(|(scheme, rest)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.trim_start_matches('/').is_empty()
    });
    if !scheme_ok {
        return Err("expected a URL with a scheme, such as https://".to_string());
    }
    Ok(value.to_string())
}

/// A MAC address of `octets` bytes (6 for MAC-48, 8 for EUI-64), written in any of the usual
/// separators (`:`, `-`, `.`, space or none) and normalised to lower-case `aa:bb:…`.
pub(super) fn mac(value: &str, octets: usize) -> Result<String, String> {
    let hex: String = value
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != octets * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("expected {octets} hexadecimal octets"));
    }
    let pairs: Vec<&str> = (0..octets).map(|i| &hex[i * 2..i * 2 + 2]).collect();
    Ok(pairs.join(":"))
}

/// Splits an `ip|port` value. Besides MISP's `ip|port`, the forms MISP also accepts on input
/// are split: `1.2.3.4:80`, `[2001:db8::1]:80`, and `2001:db8::1|80`.
pub(super) fn split_ip_port(value: &str) -> Option<(&str, &str)> {
    if let Some(split) = value.split_once('|') {
        return Some(split);
    }
    if let Some(rest) = value.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        return Some((address, after.strip_prefix(':')?));
    }
    if value.matches(':').count() == 1 {
        return value.split_once(':');
    }
    None
}

/// Splits a `hostname|port` value, also accepting `hostname:port` as MISP does.
pub(super) fn split_host_port(value: &str) -> Option<(&str, &str)> {
    value.split_once('|').or_else(|| value.split_once(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(result: Result<String, String>) -> String {
        result.unwrap_or_else(|reason| panic!("expected a valid value, got: {reason}"))
    }

    #[test]
    fn ip_addresses() {
        assert_eq!(ok(ip("1.2.3.4")), "1.2.3.4");
        assert_eq!(ok(ip("2001:DB8:0:0:0:0:0:1")), "2001:db8::1");
        assert_eq!(ok(ip("::ffff:1.2.3.4")), "::ffff:1.2.3.4");
        for bad in [
            "999.1.1.1",
            "1.2.3",
            "01.2.3.4",
            "example.com",
            "1.2.3.4/24",
            "",
        ] {
            assert_eq!(
                ip(bad),
                Err("not an IPv4 or IPv6 address".to_string()),
                "{bad}"
            );
        }
    }

    #[test]
    fn cidr_ranges() {
        assert_eq!(ok(ip_or_cidr("10.0.0.0/8")), "10.0.0.0/8");
        assert_eq!(ok(ip_or_cidr("10.1.2.3/32")), "10.1.2.3");
        assert_eq!(ok(ip_or_cidr("2001:DB8::/32")), "2001:db8::/32");
        assert_eq!(ok(ip_or_cidr("2001:db8::1/128")), "2001:db8::1");
        assert!(ip_or_cidr("10.0.0.0/33").is_err());
        assert!(ip_or_cidr("10.0.0.0/+8").is_err());
        assert!(ip_or_cidr("10.0.0.0/").is_err());
        assert!(ip_or_cidr("2001:db8::/129").is_err());
        assert!(ip_or_cidr("10.0.0/8").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(ok(port("80")), "80");
        assert_eq!(ok(port("0443")), "443");
        assert_eq!(ok(port("65535")), "65535");
        for bad in ["0", "65536", "-1", "http", "", "8 0"] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(ok(domain("Example.COM")), "example.com");
        assert_eq!(ok(domain("www.example.com.")), "www.example.com");
        assert_eq!(ok(domain("_dmarc.example.com")), "_dmarc.example.com");
        assert_eq!(ok(domain("Bücher.Example")), "bücher.example");
        assert_eq!(ok(domain("例え.テスト")), "例え.テスト");
        for bad in [
            "localhost",
            "exa mple.com",
            "a..com",
            "example.c",
            "ex/ample.com",
            "x.c_m",
        ] {
            assert!(domain(bad).is_err(), "{bad}");
        }
        assert!(domain(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            ok(email("John.Doe@Example.COM", true)),
            "john.doe@example.com"
        );
        assert_eq!(
            ok(email("John.Doe@Example.COM", false)),
            "John.Doe@example.com"
        );
        assert_eq!(ok(email("a@b@c.org", false)), "a@b@c.org");
        for bad in [
            "john",
            "@example.com",
            "john@localhost",
            "jo hn@example.com",
            "john@",
        ] {
            assert!(email(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_and_macs() {
        assert_eq!(ok(link("https://Example.com/A")), "https://Example.com/A");
        assert_eq!(ok(link("mailto:a@b.c")), "mailto:a@b.c");
        for bad in ["example.com", "https://a b", "https://", "1http://x"] {
            assert!(link(bad).is_err(), "{bad}");
        }
        assert_eq!(ok(mac("00-1A-2B-3C-4D-5E", 6)), "00:1a:2b:3c:4d:5e");
        assert_eq!(ok(mac("001a.2b3c.4d5e", 6)), "00:1a:2b:3c:4d:5e");
        assert_eq!(ok(mac("0011223344556677", 8)), "00:11:22:33:44:55:66:77");
        assert!(mac("00:1a:2b:3c:4d", 6).is_err());
        assert!(mac("00:1a:2b:3c:4d:zz", 6).is_err());
    }

    #[test]
    fn ip_port_forms() {
        assert_eq!(split_ip_port("1.2.3.4|80"), Some(("1.2.3.4", "80")));
        assert_eq!(split_ip_port("1.2.3.4:80"), Some(("1.2.3.4", "80")));
        assert_eq!(
            split_ip_port("[2001:db8::1]:80"),
            Some(("2001:db8::1", "80"))
        );
        assert_eq!(split_ip_port("2001:db8::1|80"), Some(("2001:db8::1", "80")));
        assert_eq!(split_ip_port("2001:db8::1"), None);
        assert_eq!(split_ip_port("1.2.3.4"), None);
        assert_eq!(
            split_host_port("a.example:8080"),
            Some(("a.example", "8080"))
        );
    }
}
