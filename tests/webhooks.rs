//! Webhooks: a real node POSTs each publish and sighting its webhook's user may see to a
//! local HTTP endpoint, signed with HMAC-SHA256, retried after a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::accounts::{admin_key, org_user};
use common::server::Server;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// One request the endpoint received: its headers (names in lower case), body and the status
/// it was answered.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: Value,
    raw: Vec<u8>,
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        let found = self.headers.iter().find(|(key, _)| key == name);
        found.map(|(_, value)| value.as_str()).unwrap_or_default()
    }
}

/// An HTTP endpoint on loopback that answers its first request 500 and every other 200,
/// keeping what it received.
fn endpoint() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                match line.trim_end().split_once(':') {
                    Some((name, value)) => {
                        headers.push((name.to_ascii_lowercase(), value.trim().to_string()))
                    }
                    None => break,
                }
            }
            let length = (headers.iter())
                .find(|(name, _)| name == "content-length")
                .map_or(0, |(_, value)| value.parse().unwrap());
            let mut raw = vec![0; length];
            reader.read_exact(&mut raw).unwrap();
            let mut received = kept.lock().unwrap();
            let answered = if received.is_empty() { 500 } else { 200 };
            received.push(Received {
                headers,
                body: serde_json::from_slice(&raw).unwrap(),
                raw,
                answered,
            });
            let answer =
                format!("HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(answer.as_bytes()).unwrap();
        }
    });
    (url, received)
}

#[test]
fn publishes_and_sightings_reach_the_webhook_as_its_user_sees_them_signed_and_retried() {
    let (_temp, dir) = common::node();
    let admin = admin_key(&dir);
    org_user(&dir, "Org B", "siem@b.example");
    let secret = b"a webhook key of 32 random bytes";
    std::fs::write(dir.join("webhook.key"), secret).unwrap();
    let (url, received) = endpoint();
    let config = dir.join("threatlog.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[webhook]]\nurl = \"{url}\"\nsecret_file = \"webhook.key\"\nuser = \"siem@b.example\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&dir);

    let add = |info: &str, distribution: u8| {
        let body = json!({"Event": {"info": info, "distribution": distribution,
            "published": true, "Attribute": [{"type": "domain", "value": format!("{distribution}.hook.test")}]}});
        let (status, added) =
            server.request("POST", "/events/add", Some(&admin), Some(&body.to_string()));
        assert_eq!(status, 200, "{added}");
        added["Event"].clone()
    };
    // Org B's user may not see the organisation-only event: it is never sent.
    add("for the host organisation only", 0);
    let shared = add("for the community", 1);
    let sighting = json!({"value": "1.hook.test", "source": "sensor-1"}).to_string();
    let (status, added) = server.request("POST", "/sightings/add", Some(&admin), Some(&sighting));
    assert_eq!(status, 200, "{added}");

    let started = Instant::now();
    let accepted = loop {
        let accepted: Vec<Received> = (received.lock().unwrap().iter())
            .filter(|request| request.answered == 200)
            .cloned()
            .collect();
        if accepted.len() >= 2 || started.elapsed() > Duration::from_secs(30) {
            break accepted;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let kinds: Vec<(&str, &str)> = accepted
        .iter()
        .map(|request| {
            let kind = request.body["kind"].as_str().unwrap();
            (request.header("x-threatlog-event"), kind)
        })
        .collect();
    assert_eq!(kinds, [("publish", "publish"), ("sighting", "sighting")]);
    let [publish, sighted] = [&accepted[0], &accepted[1]];
    assert_eq!(publish.body["Event"]["uuid"], shared["uuid"]);
    assert_eq!(publish.body["Event"]["info"], "for the community");
    let attribute = &shared["Attribute"][0];
    assert_eq!(
        sighted.body["Sighting"]["attribute_uuid"],
        attribute["uuid"]
    );
    assert_eq!(sighted.body["Sighting"]["event_uuid"], shared["uuid"]);
    assert_eq!(sighted.body["Sighting"]["source"], "sensor-1");
    // Every body is signed with the webhook's key.
    for request in &accepted {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(&request.raw);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(request.header("x-threatlog-signature"), expected);
    }
    // The first POST was refused (500) and the same delivery came again.
    let all = received.lock().unwrap().clone();
    assert_eq!(all[0].answered, 500);
    assert_eq!(all[0].raw, all[1].raw);
    assert_eq!(
        all[0].header("x-threatlog-delivery"),
        all[1].header("x-threatlog-delivery")
    );
    assert_eq!(all.len(), 3, "nothing else was sent: {all:?}");
    server.stop();
}

#[test]
fn a_webhook_with_an_unknown_user_or_a_short_key_stops_serve_with_a_clear_error() {
    for (secret, user, expected) in [
        (&b"short"[..], "admin@admin.test", "holds 5 bytes"),
        (
            &b"a webhook key of 32 random bytes"[..],
            "nobody@x.example",
            "no enabled user nobody@x.example",
        ),
    ] {
        let (_temp, dir) = common::node();
        std::fs::write(dir.join("webhook.key"), secret).unwrap();
        let config = dir.join("threatlog.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[[webhook]]\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = \"webhook.key\"\nuser = \"{user}\"\n"
        ));
        std::fs::write(&config, text).unwrap();
        let error = common::fails(&dir, &["serve", "--api-listen", "127.0.0.1:0"]);
        assert!(
            error.contains("webhook http://127.0.0.1:9/hook") && error.contains(expected),
            "{error}"
        );
    }
}
