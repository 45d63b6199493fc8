//! Suricata rules exported by `threatlog export suricata` load in the real Suricata engine
//! (`suricata -T`), and a rule for a hostile value (quotes, semicolons, newlines, pipes,
//! backslashes) loads as one rule and alerts on exactly that value in real traffic
//! (`suricata -r` on a capture the test writes).

mod common;

use common::{ok, threatlog};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared reference data: the nearest `shared/data` above the crate.
fn shared_data() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    loop {
        let candidate = dir.join("shared/data");
        if candidate.is_dir() {
            return candidate;
        }
        assert!(dir.pop(), "no shared/data above the crate");
    }
}

/// A minimal Suricata configuration: the rule variables, the distribution's classification
/// and reference files, fast.log, and the application-layer parsers the rules use.
fn suricata_yaml(dir: &Path) -> PathBuf {
    let path = dir.join("suricata.yaml");
    std::fs::write(
        &path,
        "%YAML 1.1\n---\n\
         vars:\n  address-groups:\n    HOME_NET: \"[10.0.0.0/8]\"\n    EXTERNAL_NET: \"!$HOME_NET\"\n    SMTP_SERVERS: \"$HOME_NET\"\n\
         \x20 port-groups:\n    HTTP_PORTS: \"80\"\n\
         classification-file: /etc/suricata/classification.config\n\
         reference-config-file: /etc/suricata/reference.config\n\
         outputs:\n  - fast:\n      enabled: yes\n      filename: fast.log\n\
         app-layer:\n  protocols:\n    tls:\n      enabled: yes\n      ja3-fingerprints: yes\n\
         \x20   http:\n      enabled: yes\n    dns:\n      tcp:\n        enabled: yes\n      udp:\n        enabled: yes\n",
    )
    .unwrap();
    path
}

/// Runs `suricata ARGS` with the test configuration; returns (success, stdout+stderr).
fn suricata(dir: &Path, args: &[&str]) -> (bool, String) {
    let yaml = suricata_yaml(dir);
    let output = Command::new("suricata")
        .arg("-c")
        .arg(&yaml)
        .args(args)
        .output()
        .expect("suricata is installed (deploy/prereqs.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The number in Suricata's "N rules successfully loaded, M rules failed".
fn loaded(log: &str) -> (usize, usize) {
    let line = log
        .lines()
        .find(|line| line.contains("rules successfully loaded"))
        .unwrap_or_else(|| panic!("no rule count in:\n{log}"));
    let numbers: Vec<usize> = line
        .split(|ch: char| !ch.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect();
    let at = numbers.len() - 3;
    (numbers[at], numbers[at + 1])
}

fn rule_count(rules: &str) -> usize {
    rules
        .lines()
        .filter(|line| line.starts_with("alert "))
        .count()
}

#[test]
fn rules_of_every_shared_event_load_in_suricata() {
    let (temp, dir) = common::node();
    let mut imported = 0;
    for entry in std::fs::read_dir(shared_data().join("events")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        // Some files in the folder are fragments (a lone tag, a sighting), not events.
        let output = threatlog(&dir, &["event", "import", path.to_str().unwrap()]);
        imported += usize::from(output.status.success());
    }
    assert_eq!(imported, 8, "the eight event files import");
    let rules_path = temp.path().join("all.rules");
    for extra in [&["--all-attributes"][..], &[][..]] {
        let mut args = vec!["export", "suricata", "--out", rules_path.to_str().unwrap()];
        args.extend(extra);
        ok(&dir, &args);
        let rules = std::fs::read_to_string(&rules_path).unwrap();
        assert!(rules.starts_with("# threatlog export of IDS rules - optimized for suricata"));
        assert!(rules.contains("# $SMTP_SERVERS"));
        let count = rule_count(&rules);
        let (success, log) = suricata(
            temp.path(),
            &[
                "-T",
                "-S",
                rules_path.to_str().unwrap(),
                "-l",
                temp.path().to_str().unwrap(),
            ],
        );
        assert!(success, "suricata -T failed:\n{log}");
        assert_eq!(loaded(&log), (count, 0), "{log}");
        if extra.is_empty() {
            // IDS defaults: to_ids attributes of published events only.
            assert_eq!(count, 56, "{rules}");
        } else {
            assert_eq!(count, 138);
        }
    }
    // Snort is not packaged by Debian; Suricata reads Snort 2 rule syntax, so the Snort
    // export is at least checked to parse there: raw DNS matches, $HTTP_PORTS, modifiers.
    let snort_path = temp.path().join("all.snort.rules");
    ok(
        &dir,
        &[
            "export",
            "snort",
            "--all-attributes",
            "--out",
            snort_path.to_str().unwrap(),
        ],
    );
    let rules = std::fs::read_to_string(&snort_path).unwrap();
    assert!(rules.contains("# $HTTP_PORTS"));
    // Two raw DNS rules (udp and tcp) and one HTTP rule per domain and hostname.
    assert_eq!(rule_count(&rules), 185);
    let (success, log) = suricata(
        temp.path(),
        &[
            "-T",
            "-S",
            snort_path.to_str().unwrap(),
            "-l",
            temp.path().to_str().unwrap(),
        ],
    );
    assert!(success, "suricata -T on the snort rules failed:\n{log}");
    assert_eq!(loaded(&log), (185, 0), "{log}");
}

/// A value that tries every way out of a quoted rule option (an attachment name, a type that
/// may span lines).
const HOSTILE: &str = "Invoice \"Q3\"; sid:1; rev:9;) alert ip any any -> any any (msg:\"pwned\"; |00 41| \\ end\nX-Second: line";

/// The same on one line (a subject, which MISP keeps to one line).
const HOSTILE_LINE: &str = "Re: \"urgent\"; pcre:\"/x/\"; |7c| \\\\ (done)";

/// An event holding every rule type, one of them with [`HOSTILE`].
fn hostile_event() -> serde_json::Value {
    let attributes: Vec<serde_json::Value> = [
        ("email-subject", HOSTILE_LINE),
        ("ip-src", "198.51.100.7"),
        ("ip-dst|port", "203.0.113.9|8443"),
        ("ip-src|port", "2001:db8::1|53"),
        ("domain", "evil-example.test"),
        ("hostname", "www.evil-example.test"),
        ("domain|ip", "c2.evil-example.test|198.51.100.8"),
        (
            "url",
            "http://evil-example.test:8080/gate.php?id=1&x=\"y\";z|w",
        ),
        ("url", "https://secure.evil-example.test/login"),
        ("url", "evil-example.test/no/scheme"),
        ("url", "http://[2001:db8::5]:8081/x"),
        ("url", "https://203.0.113.4/login"),
        ("email-src", "attacker@evil-example.test"),
        ("email-dst", "victim@example.org"),
        ("email-attachment", HOSTILE),
        ("user-agent", "Mozilla/5.0 (evil; \"quoted\"|piped\\)"),
        ("ja3-fingerprint-md5", "e7d705a3286e19ea42f587b344ee6865"),
    ]
    .iter()
    .enumerate()
    .map(|(index, (ty, value))| {
        let category = match *ty {
            "email-subject" | "email-src" | "email-dst" | "email-attachment" => "Payload delivery",
            _ => "Network activity",
        };
        json!({"type": ty, "category": category, "value": value, "to_ids": true,
               "uuid": format!("5c0e0000-0000-4000-8000-{index:012}")})
    })
    .collect();
    json!({"Event": {"uuid": "5c0e0000-0000-4000-8000-ffffffffffff", "info": "hostile values",
                     "date": "2024-01-02", "published": true, "threat_level_id": "1",
                     "analysis": "2", "distribution": "1", "Attribute": attributes}})
}

/// A capture file (pcap) writer for IPv4/TCP packets.
struct Pcap {
    bytes: Vec<u8>,
    time_us: u32,
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Pcap {
    fn new() -> Pcap {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&65_535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        Pcap { bytes, time_us: 0 }
    }

    /// One TCP segment from `src` to `dst` with `flags`.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&src.1.to_be_bytes());
        tcp.extend_from_slice(&dst.1.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.extend_from_slice(&[0x50, flags]);
        tcp.extend_from_slice(&65_535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.0);
        pseudo.extend_from_slice(&dst.0);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&tcp);
        let sum = checksum(&pseudo);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&src.0);
        ip.extend_from_slice(&dst.0);
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        ip.extend_from_slice(&tcp);
        let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        self.time_us += 1000;
        self.bytes
            .extend_from_slice(&1_700_000_000u32.to_le_bytes());
        self.bytes.extend_from_slice(&self.time_us.to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&frame);
    }

    /// A whole TCP session from `client` to `server` carrying `payload` to the server.
    fn session(&mut self, client: ([u8; 4], u16), server: ([u8; 4], u16), payload: &[u8]) {
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        const PSH: u8 = 0x08;
        const FIN: u8 = 0x01;
        let (c, s) = (1000u32, 5000u32);
        let n = payload.len() as u32;
        self.tcp(client, server, c, 0, SYN, &[]);
        self.tcp(server, client, s, c + 1, SYN | ACK, &[]);
        self.tcp(client, server, c + 1, s + 1, ACK, &[]);
        self.tcp(client, server, c + 1, s + 1, PSH | ACK, payload);
        self.tcp(server, client, s + 1, c + 1 + n, ACK, &[]);
        self.tcp(client, server, c + 1 + n, s + 1, FIN | ACK, &[]);
        self.tcp(server, client, s + 1, c + 2 + n, FIN | ACK, &[]);
        self.tcp(client, server, c + 2 + n, s + 2, ACK, &[]);
    }
}

fn smtp_message(subject: &str, attachment: &str) -> Vec<u8> {
    format!(
        "EHLO mail.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n\
         DATA\r\nFrom: a@example.net\r\nSubject: {subject}\r\n\r\nHello\r\n\
         Content-Disposition: attachment; filename=\"{attachment}\"\r\n\r\nAAAA\r\n.\r\n"
    )
    .into_bytes()
}

#[test]
fn hostile_value_rule_loads_and_matches_only_that_value() {
    let (temp, dir) = common::node();
    let event_path = temp.path().join("hostile.json");
    std::fs::write(&event_path, hostile_event().to_string()).unwrap();
    ok(&dir, &["event", "import", event_path.to_str().unwrap()]);
    let shown = ok(
        &dir,
        &["event", "show", "5c0e0000-0000-4000-8000-ffffffffffff"],
    );
    assert!(
        shown.contains("\\nX-Second: line"),
        "value kept as given: {shown}"
    );
    let rules_path = temp.path().join("hostile.rules");
    ok(
        &dir,
        &[
            "export",
            "suricata",
            "--out",
            rules_path.to_str().unwrap(),
            "--sid-base",
            "9000000",
        ],
    );
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    // Every attribute gives its rules and nothing else: no injected rule, no broken line.
    // domain 2, hostname 2, domain|ip 4, five urls 5, nine others 1 each.
    assert_eq!(rule_count(&rules), 22, "{rules}");
    assert_eq!(
        rules.lines().filter(|line| !line.starts_with('#')).count(),
        22,
        "one rule per line: {rules}"
    );
    let sid_of = |what: &str| -> (String, String) {
        let rule = rules
            .lines()
            .find(|line| line.contains(what))
            .unwrap_or_else(|| panic!("a rule with {what}"))
            .to_string();
        let sid = rule
            .split("sid:")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (rule, sid)
    };
    let (attachment_rule, attachment_sid) = sid_of("Bad Email Attachment");
    assert!(attachment_rule.contains(
        "content:\"Invoice |22|Q3|22 3b| sid|3a|1|3b| rev|3a|9|3b|) alert ip any any -> any any \
         (msg|3a 22|pwned|22 3b| |7c|00 41|7c| |5c| end|0a|X-Second|3a| line|22|\""
    ), "{attachment_rule}");
    let (subject_rule, subject_sid) = sid_of("Bad Email Subject");
    assert!(
        subject_rule.contains(
            "content:\"Re|3a| |22|urgent|22 3b| pcre|3a 22|/x/|22 3b| |7c|7c|7c| |5c 5c| (done)\""
        ),
        "{subject_rule}"
    );
    let (user_agent_rule, _) = sid_of("Outgoing User-Agent");
    assert!(user_agent_rule.contains(
        "msg:\"MISP e1 [] Outgoing User-Agent: Mozilla/5.0 (evil\\; \\\"quoted\\\"|piped\\\\)\";"
    ), "{user_agent_rule}");
    let log_dir = temp.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let (success, log) = suricata(
        temp.path(),
        &[
            "-T",
            "-S",
            rules_path.to_str().unwrap(),
            "-l",
            log_dir.to_str().unwrap(),
        ],
    );
    assert!(success, "suricata -T failed:\n{log}");
    assert_eq!(loaded(&log), (22, 0), "{log}");
    let snort_path = temp.path().join("hostile.snort.rules");
    ok(
        &dir,
        &["export", "snort", "--out", snort_path.to_str().unwrap()],
    );
    let snort = std::fs::read_to_string(&snort_path).unwrap();
    // Snort has no JA3 rule; domain and hostname get three rules each, domain|ip five.
    assert_eq!(rule_count(&snort), 24, "{snort}");
    let (success, log) = suricata(
        temp.path(),
        &[
            "-T",
            "-S",
            snort_path.to_str().unwrap(),
            "-l",
            log_dir.to_str().unwrap(),
        ],
    );
    assert!(success, "suricata -T on the snort rules failed:\n{log}");
    assert_eq!(loaded(&log), (24, 0), "{log}");

    // Traffic: the exact value once, and two near misses that must not alert.
    let mut pcap = Pcap::new();
    let server = ([10, 0, 0, 25], 25);
    pcap.session(
        ([203, 0, 113, 5], 40001),
        server,
        &smtp_message(HOSTILE_LINE, HOSTILE),
    );
    pcap.session(
        ([203, 0, 113, 6], 40002),
        server,
        &smtp_message(&HOSTILE_LINE.replace(';', ","), &HOSTILE.replace(';', ",")),
    );
    pcap.session(
        ([203, 0, 113, 7], 40003),
        server,
        &smtp_message(
            &HOSTILE_LINE.replace("(done)", "(dane)"),
            &HOSTILE.replace("|00 41|", "|00 42|"),
        ),
    );
    let pcap_path = temp.path().join("smtp.pcap");
    std::fs::write(&pcap_path, &pcap.bytes).unwrap();
    let (success, log) = suricata(
        temp.path(),
        &[
            "-k",
            "none",
            "-r",
            pcap_path.to_str().unwrap(),
            "-S",
            rules_path.to_str().unwrap(),
            "-l",
            log_dir.to_str().unwrap(),
        ],
    );
    assert!(success, "suricata -r failed:\n{log}");
    let fast = std::fs::read_to_string(log_dir.join("fast.log")).unwrap();
    let alerts: Vec<&str> = fast.lines().collect();
    assert_eq!(alerts.len(), 2, "one alert per hostile rule: {fast}");
    for sid in [&subject_sid, &attachment_sid] {
        let alert = alerts
            .iter()
            .find(|alert| alert.contains(&format!("[1:{sid}:1]")))
            .unwrap_or_else(|| panic!("no alert of sid {sid}: {fast}"));
        assert!(
            alert.contains("203.0.113.5:40001 -> 10.0.0.25:25"),
            "{fast}"
        );
    }
}
