//! `threatlog export FORMAT` on a real data directory: the line formats, filters, the IDS
//! defaults (to_ids and published), STIX to standard output, and precise errors. MISP feeds
//! exported, then fetched from a directory and from real http and https servers on 127.0.0.1:
//! a private CA, custom headers, redirects, and bodies over the limit.

mod common;

use common::feed_server::{files, respond, FeedServer, Request, TestCa};
use common::{fails, ok};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const PUBLISHED: &str = "6a0c0000-0000-4000-8000-000000000001";
const DRAFT: &str = "6a0c0000-0000-4000-8000-000000000002";

fn events() -> Value {
    let attribute = |n: u32, ty: &str, value: &str, to_ids: bool| {
        json!({"uuid": format!("6a0c0000-0000-4000-8000-1000000000{n:02}"), "type": ty,
               "category": if ty == "domain" { "Network activity" } else { "Payload delivery" },
               "value": value, "to_ids": to_ids, "timestamp": "1700000000",
               "comment": if n == 1 { "first, \"quoted\"" } else { "" }})
    };
    json!({"response": [
        {"Event": {"uuid": PUBLISHED, "info": "published", "date": "2023-11-14",
                   "published": true, "timestamp": "1700000000", "distribution": "1",
                   "Tag": [{"name": "tlp:green"}],
                   "Attribute": [
                       attribute(1, "md5", "0749bae92ca336a02c83d126e04ec628", true),
                       attribute(2, "filename|sha256", "a.exe|b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68", true),
                       attribute(3, "domain", "evil-example.test", true),
                       attribute(4, "sha1", "77b0c41b7d340b8a3d903f21347bbf06aa766b5b", false)]}},
        {"Event": {"uuid": DRAFT, "info": "draft", "date": "2023-11-15", "published": false,
                   "timestamp": "1700000000", "distribution": "1",
                   "Attribute": [attribute(5, "md5", "d41d8cd98f00b204e9800998ecf8427e", true)]}}
    ]})
}

fn node_with_events() -> (tempfile::TempDir, std::path::PathBuf) {
    let (temp, dir) = common::node();
    let path = temp.path().join("events.json");
    std::fs::write(&path, events().to_string()).unwrap();
    ok(&dir, &["event", "import", path.to_str().unwrap()]);
    (temp, dir)
}

fn export(dir: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["export"];
    all.extend(args);
    all.extend(["--out", "-"]);
    ok(dir, &all)
}

#[test]
fn line_formats_and_filters() {
    let (_temp, dir) = node_with_events();
    // hashes is an IDS format: to_ids attributes of published events, hash halves too.
    assert_eq!(
        export(&dir, &["hashes"]),
        "0749bae92ca336a02c83d126e04ec628\n\
         b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68\n"
    );
    let all = export(&dir, &["hashes", "--all-attributes"]);
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.contains("77b0c41b7d340b8a3d903f21347bbf06aa766b5b"));
    assert!(all.contains("d41d8cd98f00b204e9800998ecf8427e"));
    // text lists every attribute value, filtered by type and event.
    assert_eq!(
        export(&dir, &["text", "--type", "domain", "md5"]),
        "0749bae92ca336a02c83d126e04ec628\nevil-example.test\nd41d8cd98f00b204e9800998ecf8427e\n"
    );
    assert_eq!(
        export(&dir, &["text", "--event", DRAFT]),
        "d41d8cd98f00b204e9800998ecf8427e\n"
    );
    assert_eq!(
        export(&dir, &["text", "--tags", "tlp:green"])
            .lines()
            .count(),
        4
    );
    assert_eq!(export(&dir, &["text", "--published"]).lines().count(), 4);
    // csv: MISP's columns, quoting.
    let csv = export(&dir, &["csv", "--type", "md5", "--event", PUBLISHED]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,\
         object_uuid,object_name,object_meta_category"
    );
    assert_eq!(
        lines[1],
        "6a0c0000-0000-4000-8000-100000000001,1,Payload delivery,md5,\
         0749bae92ca336a02c83d126e04ec628,\"first, \"\"quoted\"\"\",1,20231114,,,,,"
    );
    assert_eq!(lines.len(), 2);
    // json: MISP's search response.
    let document: Value = serde_json::from_str(&export(&dir, &["json"])).unwrap();
    assert_eq!(document["response"].as_array().unwrap().len(), 2);
    assert_eq!(document["response"][0]["Event"]["uuid"], PUBLISHED);
}

#[test]
fn stix_and_rules_to_files_and_errors() {
    let (temp, dir) = node_with_events();
    let bundle: Value =
        serde_json::from_str(&export(&dir, &["stix2", "--event", PUBLISHED])).unwrap();
    let objects = bundle["objects"].as_array().unwrap();
    let pattern = |uuid: &str| {
        objects
            .iter()
            .find(|object| object["id"] == format!("indicator--{uuid}"))
            .map(|object| object["pattern"].as_str().unwrap().to_string())
    };
    assert_eq!(
        pattern("6a0c0000-0000-4000-8000-100000000003").as_deref(),
        Some("[domain-name:value = 'evil-example.test']")
    );
    assert!(objects
        .iter()
        .any(|object| object["id"] == "observed-data--6a0c0000-0000-4000-8000-100000000004"));
    let report = objects.iter().find(|o| o["type"] == "report").unwrap();
    assert_eq!(
        report["object_marking_refs"],
        json!(["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"])
    );

    let out = temp.path().join("rules.txt");
    ok(
        &dir,
        &[
            "export",
            "suricata",
            "--sid-base",
            "100",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let rules = std::fs::read_to_string(&out).unwrap();
    // The domain attribute has local id 3: sids 100 + 10 × 3 + 1 and + 2.
    assert!(
        rules.contains("sid:131;") && rules.contains("sid:132;"),
        "{rules}"
    );
    assert!(rules.contains("msg:\"MISP e1 [tlp:green] Domain: evil-example.test\""));

    let error = fails(&dir, &["export", "xml", "--out", "-"]);
    assert!(
        error.contains(
            "unknown export format 'xml': use one of json, csv, text, hashes, suricata, snort, stix2, hosts, netfilter, rpz, cache, feed"
        ),
        "{error}"
    );
}

#[test]
fn feed_settings_are_checked() {
    let (temp, dir) = node_with_events();
    let feed = temp.path().join("feed");
    ok(&dir, &["export", "feed", "--out", feed.to_str().unwrap()]);
    let names: Vec<String> = std::fs::read_dir(&feed)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for name in [
        "manifest.json",
        "hashes.csv",
        &format!("{PUBLISHED}.json"),
        &format!("{DRAFT}.json"),
    ] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    let feed = feed.to_str().unwrap();
    let error = fails(&dir, &["feed", "add", "a/b", feed]);
    assert!(
        error.contains("feed name 'a/b' must be 1-64 letters"),
        "{error}"
    );
    let error = fails(&dir, &["feed", "add", "files", "ftp://feeds.example/misp"]);
    assert!(
        error.contains("neither an http:// or https:// URL nor an existing directory"),
        "{error}"
    );
    let error = fails(
        &dir,
        &["feed", "add", "local", feed, "--header", "X-Key: 1"],
    );
    assert!(
        error.contains("the headers setting is for http:// and https:// feeds only"),
        "{error}"
    );
    let url = "https://feeds.example/misp";
    let error = fails(&dir, &["feed", "add", "web", url, "--header", "Host: a"]);
    assert!(
        error.contains("feed headers: host is the client's own header"),
        "{error}"
    );
    let not_pem = temp.path().join("events.json");
    let not_pem = not_pem.to_str().unwrap();
    let error = fails(&dir, &["feed", "add", "web", url, "--ca-file", not_pem]);
    assert!(
        error.contains("events.json: holds no PEM certificate"),
        "{error}"
    );
    let error = fails(&dir, &["feed", "add", "wide", feed, "--distribution", "4"]);
    assert!(error.contains("--distribution must be 0-3"), "{error}");
    let error = fails(&dir, &["feed", "fetch", "missing"]);
    assert!(error.contains("no feed named 'missing'"), "{error}");
    let error = fails(&dir, &["export", "feed", "--out", "-"]);
    assert!(error.contains("a feed is a directory"), "{error}");
    ok(&dir, &["feed", "add", "mine", feed, "--tags", "a", "b"]);
    let listed = ok(&dir, &["feed", "list"]);
    let line = listed.lines().nth(1).expect("one feed");
    assert!(
        line.starts_with("mine") && line.ends_with("a,b"),
        "{listed}"
    );
    // The node's own events come back unchanged.
    let out = ok(&dir, &["feed", "fetch", "mine"]);
    assert_eq!(
        out.trim(),
        "feed mine: 0 added, 0 updated, 2 unchanged, 0 failed"
    );
}

/// A node holding the two events, their feed exported to `TEMP/feed`.
fn exported_feed() -> (tempfile::TempDir, std::path::PathBuf) {
    let (temp, dir) = node_with_events();
    let feed = temp.path().join("feed");
    ok(&dir, &["export", "feed", "--out", feed.to_str().unwrap()]);
    (temp, feed)
}

#[test]
fn https_feed_trusted_by_its_ca_file_with_its_headers() {
    let (temp, feed) = exported_feed();
    let ca = TestCa::new();
    let ca_file = temp.path().join("feed-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let server = FeedServer::https(&ca, files(feed));
    let url = format!("{}/misp", server.url);
    let (_reader_temp, reader) = common::node();

    // The system's roots alone do not trust the test CA.
    ok(&reader, &["feed", "add", "untrusted", &url]);
    let error = fails(&reader, &["feed", "fetch", "untrusted"]);
    assert!(
        error.contains(&format!(
            "{url}/manifest.json: TLS: certificate not trusted"
        )),
        "{error}"
    );
    assert!(server.seen().is_empty(), "no request passed the handshake");

    let ca_file = ca_file.to_str().unwrap();
    let add = ["feed", "add", "web", &url, "--ca-file", ca_file];
    let headers = [
        "--header",
        "Authorization: key-1",
        "--header",
        "X-Feed: a b",
    ];
    ok(&reader, &[&add[..], &headers[..]].concat());
    let out = ok(&reader, &["feed", "fetch", "web"]);
    assert_eq!(
        out.trim(),
        "feed web: 2 added, 0 updated, 0 unchanged, 0 failed"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "the manifest and two events: {seen:?}");
    for request in &seen {
        assert_eq!(
            request.header("authorization"),
            Some("key-1"),
            "{request:?}"
        );
        assert_eq!(request.header("x-feed"), Some("a b"), "{request:?}");
    }
    // The manifest's ETag makes the next fetch conditional, and the server says unchanged.
    let out = ok(&reader, &["feed", "fetch", "web"]);
    assert_eq!(out.trim(), "feed web: not modified since the last fetch");
    let last = server.seen().pop().unwrap();
    assert!(last.header("if-none-match").is_some(), "{last:?}");
}

#[test]
fn https_never_redirects_to_http() {
    let ca = TestCa::new();
    let (temp, dir) = common::node();
    let ca_file = temp.path().join("feed-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let plain = FeedServer::http(|_, out| respond(out, "200 OK", &[], b"[]"));
    let target = format!("{}/misp/manifest.json", plain.url);
    let server = FeedServer::https(&ca, move |_, out| {
        respond(out, "302 Found", &[format!("Location: {target}")], b"")
    });
    let url = format!("{}/misp", server.url);
    let ca_file = ca_file.to_str().unwrap();
    ok(&dir, &["feed", "add", "web", &url, "--ca-file", ca_file]);
    let error = fails(&dir, &["feed", "fetch", "web"]);
    assert!(
        error.contains(&format!(
            "redirect from https to {}/misp/manifest.json refused",
            plain.url
        )),
        "{error}"
    );
    assert!(plain.seen().is_empty());
}

/// Answers `/moved/NAME` with a redirect to `/misp/NAME`, `/loop/NAME` with a redirect to
/// itself, `/away/NAME` with a redirect to `/misp/NAME` on `localhost` (another origin), and
/// serves the feed in `feed` (gzip-encoded) under `/misp/`.
fn redirecting(feed: std::path::PathBuf) -> impl Fn(&Request, &mut dyn Write) + Send + Sync {
    let serve = files(feed);
    move |request, out| {
        let (folder, name) = request.path.rsplit_once('/').unwrap();
        let host = request.header("host").unwrap();
        let port = host.rsplit(':').next().unwrap();
        let location = match folder {
            "/moved" => format!("/misp/{name}"),
            "/loop" => request.path.clone(),
            "/away" => format!("http://localhost:{port}/misp/{name}"),
            _ => return serve(request, out),
        };
        respond(out, "301 Moved", &[format!("Location: {location}")], b"");
    }
}

#[test]
fn redirects_are_followed_a_few_times_and_headers_stay_home() {
    let (_temp, feed) = exported_feed();
    let server = FeedServer::http(redirecting(feed));
    let (_reader_temp, reader) = common::node();
    let header = ["--header", "X-Feed: secret"];
    let moved = format!("{}/moved", server.url);
    ok(
        &reader,
        &[&["feed", "add", "moved", &moved][..], &header].concat(),
    );
    let out = ok(&reader, &["feed", "fetch", "moved"]);
    assert_eq!(
        out.trim(),
        "feed moved: 2 added, 0 updated, 0 unchanged, 0 failed"
    );
    let seen = server.seen();
    let paths: Vec<&str> = seen.iter().map(|request| request.path.as_str()).collect();
    assert_eq!(
        paths.len(),
        6,
        "three files, each redirected once: {paths:?}"
    );
    assert_eq!(paths[..2], ["/moved/manifest.json", "/misp/manifest.json"]);
    assert!(seen
        .iter()
        .all(|request| request.header("x-feed") == Some("secret")));
    // The feed was served gzip-encoded, and imported all the same.
    assert!(seen
        .iter()
        .all(|request| request.header("accept-encoding") == Some("gzip")));

    let away = format!("{}/away", server.url);
    ok(
        &reader,
        &[&["feed", "add", "away", &away][..], &header].concat(),
    );
    ok(&reader, &["feed", "fetch", "away"]);
    let seen = server.seen();
    let elsewhere = seen.last().unwrap();
    assert!(elsewhere.header("host").unwrap().starts_with("localhost:"));
    assert_eq!(elsewhere.path, "/misp/manifest.json");
    assert_eq!(
        elsewhere.header("x-feed"),
        None,
        "another origin gets no feed header"
    );

    let looping = format!("{}/loop", server.url);
    let before = server.seen().len();
    ok(&reader, &["feed", "add", "loop", &looping]);
    let error = fails(&reader, &["feed", "fetch", "loop"]);
    assert!(
        error.contains("loop/manifest.json: too many redirects (6)"),
        "{error}"
    );
    assert_eq!(
        server.seen().len() - before,
        6,
        "the first request and five redirects"
    );
}

#[test]
fn bodies_over_the_limit_are_refused_as_they_stream() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let server = FeedServer::http(move |request, out| match request.path.as_str() {
        "/chunked/manifest.json" => {
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let chunk = [b"4000\r\n".as_slice(), &[b' '; 0x4000], b"\r\n"].concat();
            // Sends until the client hangs up: 256 MiB at most.
            for _ in 0..16 * 1024 {
                if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
                    return;
                }
                counter.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        }
        // Announces ten megabytes and sends none: only a refusal by the length ends this
        // before the client's read timeout.
        _ => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n";
            let _ = out.write_all(head.as_bytes());
            let _ = out.flush();
            std::thread::sleep(std::time::Duration::from_secs(20));
        }
    });
    let (_temp, dir) = common::node();
    let config = dir.join("threatlog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let limit = "import_file_bytes_max = 65536";
    let text: Vec<&str> = text
        .lines()
        .map(|line| match line.starts_with("import_file_bytes_max =") {
            true => limit,
            false => line,
        })
        .collect();
    assert!(text.contains(&limit), "the config names the limit");
    std::fs::write(&config, text.join("\n")).unwrap();

    ok(
        &dir,
        &["feed", "add", "chunked", &format!("{}/chunked", server.url)],
    );
    let error = fails(&dir, &["feed", "fetch", "chunked"]);
    assert!(
        error.contains("chunked/manifest.json: body over the limit of 65536 bytes"),
        "{error}"
    );
    // The client stopped reading at the limit: far less than the 256 MiB went out.
    let sent = sent.load(Ordering::SeqCst);
    assert!(sent < 64 * 1024 * 1024, "{sent} bytes sent");

    ok(
        &dir,
        &["feed", "add", "sized", &format!("{}/sized", server.url)],
    );
    let error = fails(&dir, &["feed", "fetch", "sized"]);
    assert!(
        error.contains("sized/manifest.json: body over the limit of 65536 bytes"),
        "{error}"
    );
}
