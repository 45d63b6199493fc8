//! Normalisation per type family, with the values MISP would store.

use super::*;
use crate::model::registry;

fn ty(name: &str) -> AttributeType {
    registry()
        .lookup(name)
        .unwrap_or_else(|| panic!("{name} is a MISP type"))
}

fn norm(name: &str, value: &str) -> String {
    normalise(ty(name), value).unwrap_or_else(|e| panic!("{name} '{value}': {e}"))
}

fn reason(name: &str, value: &str) -> String {
    match normalise(ty(name), value) {
        Err(ModelError::InvalidValue { reason, .. }) => reason,
        other => panic!("{name} '{value}': expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn hashes_are_lower_cased_and_checked() {
    assert_eq!(
        norm("md5", " 0749BAE92CA336A02C83D126E04EC628 "),
        "0749bae92ca336a02c83d126e04ec628"
    );
    assert_eq!(
        reason("md5", "0749bae92ca336a02c83d126e04ec6"),
        "expected 32 hexadecimal characters"
    );
    assert_eq!(norm("sha1", &"AB".repeat(20)), "ab".repeat(20));
    assert!(normalise(ty("sha1"), &"ab".repeat(16)).is_err());
    assert_eq!(norm("sha256", &"F".repeat(64)), "f".repeat(64));
    assert_eq!(norm("sha512/224", &"e".repeat(56)), "e".repeat(56));
    assert_eq!(norm("sha3-512", &"C".repeat(128)), "c".repeat(128));
    assert_eq!(norm("imphash", &"A".repeat(32)), "a".repeat(32));
    assert_eq!(norm("git-commit-id", &"D".repeat(40)), "d".repeat(40));
    assert_eq!(norm("ja3-fingerprint-md5", &"1".repeat(32)), "1".repeat(32));
    assert_eq!(norm("jarm-fingerprint", &"2".repeat(62)), "2".repeat(62));
    assert_eq!(
        norm("x509-fingerprint-sha1", &"AB:".repeat(20)[..59]),
        "ab".repeat(20)
    );
    assert_eq!(
        norm("tlsh", &format!("T1{}", "9".repeat(70))),
        format!("t1{}", "9".repeat(70))
    );
    assert_eq!(
        norm("ssdeep", "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C"),
        "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C"
    );
    assert_eq!(reason("ssdeep", "abc"), "expected blocksize:hash:hash");
    assert!(normalise(ty("sha256"), &"g".repeat(64)).is_err());
}

#[test]
fn ip_addresses_are_canonical() {
    assert_eq!(norm("ip-dst", "2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
    assert_eq!(norm("ip-src", "192.168.0.0/16"), "192.168.0.0/16");
    assert_eq!(norm("ip-src", "192.168.1.1/32"), "192.168.1.1");
    assert_eq!(norm("ip-dst", "2001:DB8::/48"), "2001:db8::/48");
    assert_eq!(reason("ip-dst", "999.1.1.1"), "not an IPv4 or IPv6 address");
    assert!(reason("ip-dst", "10.0.0.0/40").contains("invalid CIDR prefix"));
    let error = normalise(ty("ip-dst"), "999.1.1.1").expect_err("not an address");
    assert_eq!(
        error.to_string(),
        "invalid value '999.1.1.1' for type 'ip-dst': not an IPv4 or IPv6 address"
    );
}

#[test]
fn names_and_addresses() {
    assert_eq!(norm("domain", "Example.COM"), "example.com");
    assert_eq!(norm("domain", "www.Example.com."), "www.example.com");
    assert_eq!(norm("hostname", "WebMonder.gicp.NET"), "webmonder.gicp.net");
    assert!(normalise(ty("domain"), "not a domain").is_err());
    assert!(normalise(ty("hostname"), "localhost").is_err());
    assert_eq!(
        norm("email-src", "Bill_Clay@Yahoo.COM"),
        "bill_clay@yahoo.com"
    );
    assert_eq!(norm("jabber-id", "Alice@Jabber.ORG"), "Alice@jabber.org");
    assert!(normalise(ty("email-dst"), "nobody").is_err());
    assert_eq!(
        norm("url", "http://Example.com/Path?Q=1"),
        "http://Example.com/Path?Q=1"
    );
    assert!(normalise(ty("url"), "http://a\nhttp://b").is_err());
    assert!(normalise(ty("link"), "not a link").is_err());
    assert_eq!(
        norm("mac-address", "AA-BB-CC-DD-EE-FF"),
        "aa:bb:cc:dd:ee:ff"
    );
    assert_eq!(norm("port", "443"), "443");
    assert!(normalise(ty("port"), "70000").is_err());
}

#[test]
fn structured_scalars() {
    assert_eq!(norm("AS", "AS3356"), "3356");
    assert_eq!(norm("AS", "as3356"), "3356");
    assert_eq!(norm("vulnerability", "cve-2015-1641"), "CVE-2015-1641");
    assert!(normalise(ty("vulnerability"), "2015-1641").is_err());
    assert_eq!(norm("boolean", "true"), "1");
    assert_eq!(norm("float", "2.54792"), "2.54792");
    assert!(normalise(ty("float"), "2,5").is_err());
    assert_eq!(norm("counter", "4"), "4");
    assert_eq!(norm("size-in-bytes", "3072"), "3072");
    assert!(normalise(ty("size-in-bytes"), "3 KB").is_err());
    assert_eq!(
        norm("datetime", "2018-08-03T14:20:58Z"),
        "2018-08-03T14:20:58.000000+0000"
    );
    assert_eq!(
        norm("uuid", "5758EBF5-C898-48E6-9FE9-5665C0A83866"),
        "5758ebf5-c898-48e6-9fe9-5665c0a83866"
    );
    assert_eq!(
        norm("btc", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
    );
    assert!(normalise(ty("btc"), "not-a-wallet").is_err());
    assert!(normalise(ty("cortex"), "{not json").is_err());
}

#[test]
fn free_text_is_only_trimmed() {
    assert_eq!(
        norm("text", "  Key: 85350044dF4AC3518D\r\nRounds: 8 "),
        "Key: 85350044dF4AC3518D\r\nRounds: 8"
    );
    assert_eq!(norm("comment", "line one\nline two"), "line one\nline two");
    assert_eq!(norm("filename", " Brochure .DOC "), "Brochure .DOC");
    assert!(normalise(ty("filename"), "a\nb").is_err());
    assert_eq!(norm("malware-sample", "bar.exe"), "bar.exe");
    assert_eq!(
        norm("malware-sample", &format!("bar.exe|{}", "A".repeat(32))),
        format!("bar.exe|{}", "a".repeat(32))
    );
    assert_eq!(reason("text", "   "), "the value is empty");
}

#[test]
fn composites_normalise_each_half() {
    assert_eq!(norm("ip-dst|port", "1.2.3.4|80"), "1.2.3.4|80");
    assert_eq!(norm("ip-dst|port", "1.2.3.4:080"), "1.2.3.4|80");
    assert_eq!(norm("ip-src|port", "[2001:DB8::1]:443"), "2001:db8::1|443");
    assert_eq!(
        norm("hostname|port", "Mail.Example.com:25"),
        "mail.example.com|25"
    );
    assert_eq!(
        norm("domain|ip", "Example.COM|2001:DB8:0:0:0:0:0:1"),
        "example.com|2001:db8::1"
    );
    let sha = "7A200C4DF99887991C638FE625D07A4A3FC2BDC887112437752B3DF5C8DA79B6";
    assert_eq!(
        norm("filename|sha256", &format!("IEChecker.exe|{sha}")),
        format!("IEChecker.exe|{}", sha.to_ascii_lowercase())
    );
    assert_eq!(
        norm("regkey|value", r"HKLM\Run|C:\a|b.exe"),
        r"HKLM\Run|C:\a|b.exe"
    );
    assert_eq!(
        reason("ip-dst|port", "1.2.3.4"),
        "a composite value has two parts separated by '|'"
    );
    assert_eq!(
        reason("ip-dst|port", "999.1.1.1|80"),
        "ip part '999.1.1.1': not an IPv4 or IPv6 address"
    );
    assert!(reason("filename|md5", "a.exe|123").starts_with("md5 part '123'"));
    assert_eq!(
        reason("filename|md5", &format!("|{}", "a".repeat(32))),
        "the filename part is empty"
    );
    assert!(normalise(ty("domain|ip"), "example.com|10.0.0.0/8").is_err());
}

#[test]
fn split_index_and_correlation_values() {
    let ip_port = ty("ip-dst|port");
    assert_eq!(
        split_composite(ip_port, "1.2.3.4|80"),
        Some(("1.2.3.4".to_string(), "80".to_string()))
    );
    assert_eq!(split_composite(ty("md5"), "a|b"), None);
    assert_eq!(index_values(ip_port, "1.2.3.4|80"), vec!["1.2.3.4", "80"]);
    assert_eq!(correlation_values(ip_port, "1.2.3.4|80"), vec!["1.2.3.4"]);
    assert_eq!(
        correlation_values(ty("hostname|port"), "a.example|25"),
        vec!["a.example"]
    );
    let domain_ip = ty("domain|ip");
    assert_eq!(
        index_values(domain_ip, "example.com|1.2.3.4"),
        vec!["example.com", "1.2.3.4"]
    );
    assert_eq!(
        correlation_values(domain_ip, "example.com|1.2.3.4"),
        vec!["example.com", "1.2.3.4"]
    );
    assert_eq!(index_values(ty("regkey|value"), "k|k"), vec!["k"]);
    assert_eq!(
        index_values(ty("md5"), &"a".repeat(32)),
        vec!["a".repeat(32)]
    );
    assert_eq!(correlation_values(ty("ip-dst"), "1.2.3.4"), vec!["1.2.3.4"]);
    assert!(correlation_values(ty("comment"), "UPX packed").is_empty());
    assert!(correlation_values(ty("port"), "80").is_empty());
    let sample = ty("malware-sample");
    let md5 = "a".repeat(32);
    assert_eq!(
        index_values(sample, &format!("bar.exe|{md5}")),
        vec!["bar.exe".to_string(), md5]
    );
    assert_eq!(index_values(sample, "bar.exe"), vec!["bar.exe"]);
}

#[test]
fn every_registry_type_accepts_some_value() {
    // A value that fits each family; the point is that no registry type is unreachable.
    for name in registry().types() {
        let ty = ty(name);
        let candidates = [
            "a".repeat(128),
            "a".repeat(96),
            "a".repeat(70),
            "a".repeat(64),
            "a".repeat(62),
            "a".repeat(56),
            "a".repeat(40),
            "a".repeat(32),
            "1".to_string(),
            "1.2.3.4".to_string(),
            "x.example.com|1.2.3.4".to_string(),
            "1.2.3.4|80".to_string(),
            "x.example.com|80".to_string(),
            format!("f.exe|{}", "a".repeat(32)),
            format!("f.exe|{}", "a".repeat(40)),
            format!("f.exe|{}", "a".repeat(56)),
            format!("f.exe|{}", "a".repeat(64)),
            format!("f.exe|{}", "a".repeat(96)),
            format!("f.exe|{}", "a".repeat(128)),
            format!("f.exe|T1{}", "a".repeat(70)),
            "f.exe|3:abc:def".to_string(),
            "3:abc:def".to_string(),
            "x.example.com".to_string(),
            "a@example.com".to_string(),
            "https://example.com".to_string(),
            "CVE-2020-1234".to_string(),
            "CWE-79".to_string(),
            "GET".to_string(),
            "00:11:22:33:44:55".to_string(),
            "0011223344556677".to_string(),
            "2020-01-01".to_string(),
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2".to_string(),
            "5758ebf5-c898-48e6-9fe9-5665c0a83866".to_string(),
            "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8".to_string(),
        ];
        assert!(
            candidates.iter().any(|c| normalise(ty, c).is_ok()),
            "no sample value fits type {name}"
        );
    }
}
