use super::*;

const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
const SHA224: &str = "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f";
const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SHA384: &str = "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b";
const SHA512: &str = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
const SSDEEP: &str =
    "96:s4Ud1Lj96tHHlZDrwciQmA+4uy1I0G4HYuL8N3TzS8QsO/wqWXLcMSx:sF1LjEtHHlZDrNmA+4uy1I0G4HYuL8N3TP";

/// (snippet, expected finds as (type, value)), in order of first occurrence.
fn table() -> Vec<(String, Vec<(&'static str, String)>)> {
    let s = |text: &str| text.to_string();
    let one = |ty: &'static str, value: &str| vec![(ty, value.to_string())];
    vec![
        // Defanged URLs.
        (
            s("hxxp://evil[.]com/payload.exe"),
            one("url", "http://evil.com/payload.exe"),
        ),
        (
            s("login at hxxps://login.bad-site[.]net/auth?x=1 now"),
            one("url", "https://login.bad-site.net/auth?x=1"),
        ),
        (s("hxxp[:]//evil[.]com/a"), one("url", "http://evil.com/a")),
        (
            s("HXXPS[://]update[.]example[.]org/x"),
            one("url", "https://update.example.org/x"),
        ),
        (
            s("fxp://files[.]example[.]org/drop"),
            one("url", "ftp://files.example.org/drop"),
        ),
        (
            s("meow://c2[dot]evil[dot]ru/gate.php"),
            one("url", "http://c2.evil.ru/gate.php"),
        ),
        (
            s("hxxp://1.2.3[.]4/index.html"),
            one("url", "http://1.2.3.4/index.html"),
        ),
        (
            s("http://evil.com:8080/x"),
            one("url", "http://evil.com:8080/x"),
        ),
        (
            s("code at github.com/MISP/MISP."),
            one("url", "github.com/MISP/MISP"),
        ),
        (
            s("https://www.virustotal.com/gui/file/abc"),
            one("link", "https://www.virustotal.com/gui/file/abc"),
        ),
        // Domains and host names by known TLD.
        (s("evil(.)com"), one("domain", "evil.com")),
        (
            s("Contact: bad{.}actor.xyz"),
            one("hostname", "bad.actor.xyz"),
        ),
        (s("www.example.co.uk"), one("hostname", "www.example.co.uk")),
        (s("(see Evil.COM)."), one("domain", "evil.com")),
        (s("evil[dot]org:8443"), one("domain", "evil.org")),
        (
            s("expyuzz4wqqyqhjn.onion"),
            one("domain", "expyuzz4wqqyqhjn.onion"),
        ),
        (
            s("dup evil.com, EVIL.com; evil.com"),
            one("domain", "evil.com"),
        ),
        // IPs, IP:port, CIDR.
        (s("Beacon to 10.0.0.1"), one("ip-dst", "10.0.0.1")),
        (s("192[.]0[.]2[.]44"), one("ip-dst", "192.0.2.44")),
        (
            s("C2 at 192.168.1.10:8080."),
            one("ip-dst|port", "192.168.1.10|8080"),
        ),
        (
            s("[2001:db8::1]:443"),
            one("ip-dst|port", "2001:db8::1|443"),
        ),
        (s("2001:DB8:0:0:0:0:0:1"), one("ip-dst", "2001:db8::1")),
        (
            s("prefix 2001:db8:: is routed"),
            one("ip-dst", "2001:db8::"),
        ),
        (s("1.2.3[.]4[:]8080"), one("ip-dst|port", "1.2.3.4|8080")),
        (s("range 203.0.113.0/24"), one("ip-dst", "203.0.113.0/24")),
        // Hashes by length, mixed, composite, fuzzy.
        (s(&MD5.to_uppercase()), one("md5", MD5)),
        (s(SHA1), one("sha1", SHA1)),
        (s(SHA224), one("sha224", SHA224)),
        (s(SHA256), one("sha256", SHA256)),
        (s(SHA384), one("sha384", SHA384)),
        (s(SHA512), one("sha512", SHA512)),
        (
            format!("mixed: {MD5}, {SHA1};{SHA256}"),
            vec![("md5", s(MD5)), ("sha1", s(SHA1)), ("sha256", s(SHA256))],
        ),
        (
            format!("dropper.exe|{MD5}"),
            one("filename|md5", &format!("dropper.exe|{MD5}")),
        ),
        (s(SSDEEP), one("ssdeep", SSDEEP)),
        // Emails.
        (
            s("mail from attacker[@]phish[.]com"),
            one("email-src", "attacker@phish.com"),
        ),
        (
            s("john.doe[at]example[.]org"),
            one("email-src", "john.doe@example.org"),
        ),
        (
            s("<Info@Example.ORG>"),
            one("email-src", "info@example.org"),
        ),
        // CVEs, AS numbers, BTC.
        (
            s("Exploits CVE-2021-44228 and cve-2017-0144."),
            vec![
                ("vulnerability", s("CVE-2021-44228")),
                ("vulnerability", s("CVE-2017-0144")),
            ],
        ),
        (s("announced by AS13335"), one("AS", "13335")),
        (
            s("pay 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
            one("btc", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
        ),
        (
            s("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
            one("btc", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
        ),
        (
            s("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            one("btc", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        ),
        // File names.
        (s("see report.pdf"), one("filename", "report.pdf")),
        (s("run setup.exe first"), one("filename", "setup.exe")),
        (s("archive file.tar.gz"), one("filename", "file.tar.gz")),
        // Noise: nothing to find.
        (s("version 1.2.3"), vec![]),
        (s("python3.11 is installed"), vec![]),
        (s("v2.0.1-beta, build 3.14159"), vec![]),
        (s("e.g. i.e. etc."), vec![]),
        (s("meeting at 12:30:45 or 10:00"), vec![]),
        (s("root@localhost"), vec![]),
        (s("192.168.1.300"), vec![]),
        (s("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"), vec![]),
        (s("AS or ASN numbers"), vec![]),
        (s("CVE-21-1"), vec![]),
        (s(&MD5[..31]), vec![]),
    ]
}

#[test]
fn snippets_give_the_expected_finds() {
    let table = table();
    assert!(table.len() >= 40, "{} snippets", table.len());
    let mut failures = Vec::new();
    for (snippet, expected) in &table {
        let got: Vec<(&'static str, String)> = extract(snippet)
            .expect("small text")
            .into_iter()
            .map(|find| (find.type_name, find.value))
            .collect();
        if &got != expected {
            failures.push(format!("{snippet:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn finds_carry_category_ids_flag_comment_and_place() {
    let text = "Report\n  C2: hxxp://evil[.]com/gate and evil.org:8443\nCVE-2021-44228, evil.org";
    let finds = extract(text).unwrap();
    let summary: Vec<_> = finds
        .iter()
        .map(|f| {
            (
                f.type_name,
                f.category,
                f.to_ids,
                f.comment.as_deref(),
                f.line,
                f.column,
                f.occurrences,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("url", "Network activity", true, None, 2, 7, 1),
            (
                "domain",
                "Network activity",
                true,
                Some("On port 8443"),
                2,
                34,
                2
            ),
            ("vulnerability", "External analysis", false, None, 3, 1, 1),
        ]
    );
    assert_eq!(finds[0].raw, "hxxp://evil[.]com/gate");
    assert_eq!(&text[finds[0].offset..][..4], "hxxp");
    assert_eq!(&text[finds[2].offset..][..3], "CVE");
}

#[test]
fn refang_undoes_common_defanging() {
    for (defanged, expected) in [
        ("hxxp://a[.]b", "http://a.b"),
        ("hXXps://a(.)b", "https://a.b"),
        ("h[tt]p://a{.}b", "http://a.b"),
        ("a[dot]b(DOT)c", "a.b.c"),
        ("x[at]y[.]z", "x@y.z"),
        ("x(@)y", "x@y"),
        ("http[:]//a", "http://a"),
        ("http[://]a", "http://a"),
        ("fxp://a", "ftp://a"),
        ("evil.com.", "evil.com"),
    ] {
        assert_eq!(refang(defanged), expected, "{defanged}");
    }
}

#[test]
fn limits_are_enforced() {
    let big = "a".repeat(FREETEXT_BYTES_MAX + 1);
    assert_eq!(
        extract(&big),
        Err(FreetextError::TooLarge {
            bytes: FREETEXT_BYTES_MAX + 1,
            max_bytes: FREETEXT_BYTES_MAX
        })
    );
    let many: String = (0..=FINDS_MAX)
        .map(|n| format!("10.{}.{}.{} ", n / 65536, (n / 256) % 256, n % 256))
        .collect();
    assert_eq!(
        extract(&many),
        Err(FreetextError::TooManyFinds { max: FINDS_MAX })
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text, including multi-byte characters and defang brackets, is searched without
        /// panicking, and every find points at its raw token in the text.
        #[test]
        fn any_text_is_searched_safely(text in "(\\PC|[\\[\\]().:/@|,; \n]|hxxp|as|bc1){0,200}") {
            let finds = extract(&text).unwrap();
            for find in finds {
                prop_assert!(text[find.offset..].starts_with(&find.raw));
            }
        }

        /// An IPv4 address surrounded by words is found, defanged or not.
        #[test]
        fn ipv4_in_prose_is_found(
            octets in proptest::array::uniform4(0u8..=255),
            defang in any::<bool>(),
        ) {
            let address = std::net::Ipv4Addr::from(octets).to_string();
            let written = if defang { address.replace('.', "[.]") } else { address.clone() };
            let finds = extract(&format!("seen at {written}, twice")).unwrap();
            prop_assert_eq!(finds.len(), 1);
            prop_assert_eq!(finds[0].type_name, "ip-dst");
            prop_assert_eq!(&finds[0].value, &address);
        }
    }
}
