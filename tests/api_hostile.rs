//! Clients that hold REST connections without using them: a head that never completes, an
//! idle kept-alive connection, a body that trickles, an answer the client stops reading, and
//! one address opening connection after connection. Each is cut off by its limit in `[api]`,
//! and an honest client is served meanwhile.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::server::Server;

/// How long a test waits for the node to end a connection before it calls the limit missing.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// A node whose `[api]` settings `settings` replace the template's.
fn node_with(settings: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let (temp, dir) = configured(settings);
    let server = Server::start(&dir);
    (temp, server)
}

/// A node's directory, not yet served, whose `[api]` settings `settings` replace the
/// template's.
fn configured(settings: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let (temp, dir) = common::node();
    let path = dir.join("threatlog.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (name, value) in settings {
        let prefix = format!("{name} = ");
        let line = text
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{name} in the configuration template"))
            .to_string();
        text = text.replace(&line, &format!("{prefix}{value}"));
    }
    std::fs::write(&path, text).unwrap();
    (temp, dir)
}

fn admin_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_string()
}

/// What the node does with `stream` after the test stopped writing: the bytes it sends
/// until it closes the connection, or `None` if it keeps it open past [`CLOSE_WAIT`].
fn until_closed(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(CLOSE_WAIT)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&received).into_owned())
            }
            Err(_) => return None,
        }
    }
}

/// The honest client: the node answers its version request.
fn served(server: &Server, key: &str) {
    let (status, version) = server.request("GET", "/servers/getVersion", Some(key), None);
    assert_eq!(status, 200);
    assert_eq!(version["version"], "2.5.0");
}

#[test]
fn a_head_that_never_completes_and_an_idle_connection_are_closed() {
    let (_temp, server) = node_with(&[("header_timeout_s", "1")]);
    let key = admin_key(&server.dir);
    let mut partial = TcpStream::connect(&server.addr).unwrap();
    partial
        .write_all(b"GET /servers/getVersion HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = TcpStream::connect(&server.addr).unwrap();
    let request = format!("GET /servers/getVersion HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nAccept: application/json\r\n\r\n");
    idle.write_all(request.as_bytes()).unwrap();
    let started = Instant::now();
    let answered = until_closed(&mut idle).expect("the idle kept-alive connection is closed");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(answered.contains("2.5.0"), "{answered}");
    let cut = until_closed(&mut partial).expect("the incomplete head's connection is closed");
    assert!(!cut.starts_with("HTTP/1.1 200"), "{cut}");
    assert!(started.elapsed() < CLOSE_WAIT);
    served(&server, &key);
}

#[test]
fn a_body_that_trickles_gets_408() {
    let (_temp, server) = node_with(&[("body_timeout_s", "1")]);
    let key = admin_key(&server.dir);
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /events/add HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"Event\": "
    );
    slow.write_all(head.as_bytes()).unwrap();
    let answer = until_closed(&mut slow).expect("the trickling body's connection is answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the request body did not arrive within api.body_timeout_s (1 s)"),
        "{answer}"
    );
    let (status, events) = server.request("GET", "/events/index", Some(&key), None);
    assert_eq!((status, events), (200, serde_json::json!([])));
}

/// A connection to `server` from source address `from`, sending nothing.
fn connect_from(from: &str, server: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(format!("{from}:0").parse::<SocketAddr>().unwrap())
            .unwrap();
        let stream = socket.connect(server.parse().unwrap()).await.unwrap();
        stream.into_std().unwrap()
    })
}

#[test]
fn one_address_cannot_take_every_connection() {
    let (_temp, server) = node_with(&[("connections_per_address_max", "4")]);
    let key = admin_key(&server.dir);
    let held: Vec<TcpStream> = (0..4)
        .map(|_| connect_from("127.0.0.2", &server.addr))
        .collect();
    let mut fifth = connect_from("127.0.0.2", &server.addr);
    fifth.set_nonblocking(false).unwrap();
    let refused = until_closed(&mut fifth).expect("the fifth connection is closed at once");
    assert_eq!(refused, "");
    // Another address is served while the first holds its four.
    served(&server, &key);
    for mut stream in held {
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut byte = [0u8; 1];
        let still_open = matches!(stream.read(&mut byte), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(still_open, "a connection within the limit stays open");
    }
}

#[test]
fn paging_past_every_result_is_an_empty_page() {
    let (_temp, server) = node_with(&[]);
    let key = admin_key(&server.dir);
    let event = r#"{"Event": {"info": "paged", "Attribute": [{"type": "ip-dst", "value": "198.51.100.9"}]}}"#;
    let (status, _) = server.request("POST", "/events/add", Some(&key), Some(event));
    assert_eq!(status, 200);
    let huge = r#"{"returnFormat": "json", "limit": 18446744073709551615, "page": 3}"#;
    for path in ["/attributes/restSearch", "/events/restSearch"] {
        let (status, found) = server.request("POST", path, Some(&key), Some(huge));
        assert_eq!(status, 200, "{path}: {found}");
        let rows = match path {
            "/attributes/restSearch" => &found["response"]["Attribute"],
            _ => &found["response"],
        };
        assert_eq!(rows, &serde_json::json!([]), "{path}");
    }
    let (status, text) = server.request_text(
        "POST",
        "/attributes/restSearch",
        Some(&key),
        Some(r#"{"returnFormat": "csv", "limit": 18446744073709551615, "page": 2}"#),
    );
    assert_eq!(status, 200);
    assert_eq!(text.lines().count(), 1, "only the header row: {text}");
}

#[test]
fn a_search_past_its_limits_gets_400_and_a_narrow_one_is_answered() {
    let (_temp, server) = node_with(&[("search_terms_max", "5"), ("search_examined_max", "50")]);
    let key = admin_key(&server.dir);
    let attributes: Vec<serde_json::Value> = (0..100)
        .map(|n| serde_json::json!({"type": "ip-dst", "value": format!("198.51.100.{n}")}))
        .collect();
    let event = serde_json::json!({"Event": {"info": "many", "Attribute": attributes}});
    let (status, _) = server.request("POST", "/events/add", Some(&key), Some(&event.to_string()));
    assert_eq!(status, 200);
    let search =
        |body: &str| server.request("POST", "/attributes/restSearch", Some(&key), Some(body));
    let (status, error) = search(r#"{"value": "%.1"}"#);
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error["message"],
        "the search examined more than 50 index entries and events; narrow it \
         (api.search_examined_max)."
    );
    let (status, error) = search(r#"{"value": ["a", "b", "c", "d", "e", "f"]}"#);
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error["message"],
        "The search has 6 filter terms, more than the 5 this node accepts \
         (api.search_terms_max); split it."
    );
    let (status, found) = search(r#"{"value": ["198.51.100.7", "198.51.100.42"]}"#);
    assert_eq!(status, 200, "{found}");
    let mut values: Vec<&str> = found["response"]["Attribute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attribute| attribute["value"].as_str().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["198.51.100.42", "198.51.100.7"]);
}

/// A request with `key` from source address `from` whose body never comes: it stays in
/// flight until the connection closes.
fn in_flight(from: &str, server: &str, key: &str) -> TcpStream {
    let mut stream = connect_from(from, server);
    stream.set_nonblocking(false).unwrap();
    let head = format!(
        "POST /events/add HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// The whole answer to a version request with `key` from source address `from`.
fn version_from(from: &str, server: &str, key: &str) -> String {
    let mut stream = connect_from(from, server);
    stream.set_nonblocking(false).unwrap();
    let request = format!(
        "GET /servers/getVersion HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    until_closed(&mut stream).expect("the version request is answered")
}

/// Asks with `ask` until its answer starts with `status` (the requests it waits on are
/// admitted asynchronously), at most for [`CLOSE_WAIT`]; the answer.
fn until_status(status: &str, ask: impl FnMut() -> String) -> String {
    until_refused(&mut Vec::new(), || unreachable!(), status, ask)
}

/// [`until_status`] while keeping the `held` requests in flight: one the node answered (turned
/// away because an earlier ask held a place when it arrived) is replaced by `refill`.
fn until_refused(
    held: &mut [TcpStream],
    refill: impl Fn() -> TcpStream,
    status: &str,
    mut ask: impl FnMut() -> String,
) -> String {
    let started = Instant::now();
    loop {
        let answer = ask();
        if answer.starts_with(status) || started.elapsed() > CLOSE_WAIT {
            return answer;
        }
        for stream in held.iter_mut() {
            stream.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            let answered = !matches!(stream.peek(&mut byte), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
            stream.set_nonblocking(false).unwrap();
            if answered {
                *stream = refill();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_key_or_one_address_holds_at_most_its_budget_of_requests_in_flight() {
    let (_temp, dir) = configured(&[
        ("requests_per_key_max", "3"),
        ("requests_per_address_max", "5"),
    ]);
    let other = common::accounts::org_user(&dir, "Other Org", "analyst@other.test");
    let server = Server::start(&dir);
    let admin = admin_key(&dir);
    let hold = || in_flight("127.0.0.2", &server.addr, &admin);
    let mut held: Vec<TcpStream> = (0..3).map(|_| hold()).collect();
    // The key's fourth request, from any address, is turned away before it is looked at.
    let refused = until_refused(&mut held, hold, "HTTP/1.1 429", || {
        version_from("127.0.0.3", &server.addr, &admin)
    });
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("retry-after: 1\r\n"), "{refused}");
    assert!(
        refused.contains(
            "Too many requests in flight with this API key (at most 3, api.requests_per_key_max)"
        ),
        "{refused}"
    );
    // Another key is served meanwhile, from the same address too.
    let answer = version_from("127.0.0.3", &server.addr, &other);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = version_from("127.0.0.2", &server.addr, &other);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Two more from the address fill its five; its sixth is turned away, whatever the key.
    let hold_more = || in_flight("127.0.0.2", &server.addr, &other);
    let mut more: Vec<TcpStream> = (0..2).map(|_| hold_more()).collect();
    let refused = until_refused(&mut more, hold_more, "HTTP/1.1 429", || {
        version_from("127.0.0.2", &server.addr, &other)
    });
    assert!(
        refused.contains(
            "Too many requests in flight from this address (at most 5, api.requests_per_address_max)"
        ),
        "{refused}"
    );
    // Requests given up give their places back.
    drop(held);
    let answer = until_status("HTTP/1.1 200", || {
        version_from("127.0.0.3", &server.addr, &admin)
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    served(&server, &admin);
}

#[test]
fn an_answer_of_more_rows_than_the_node_writes_at_once_gets_400_and_a_page_of_it_is_answered() {
    let (_temp, server) = node_with(&[("search_rows_max", "30")]);
    let key = admin_key(&server.dir);
    let attributes: Vec<serde_json::Value> = (0..100)
        .map(|n| serde_json::json!({"type": "ip-dst", "value": format!("198.51.100.{n}")}))
        .collect();
    let event = serde_json::json!({"Event": {"info": "many rows", "Attribute": attributes}});
    let (status, _) = server.request("POST", "/events/add", Some(&key), Some(&event.to_string()));
    assert_eq!(status, 200);
    let too_many = "The answer would hold 100 attributes, more than the 30 this node answers \
                    at once (api.search_rows_max); narrow the search or page it with limit and \
                    page.";
    for (path, body) in [
        ("/attributes/restSearch", r#"{"value": "198.51.100.%"}"#),
        (
            "/attributes/restSearch",
            r#"{"value": "198.51.100.%", "returnFormat": "text"}"#,
        ),
        // The event matches by one value, but is written whole.
        ("/events/restSearch", r#"{"value": "198.51.100.7"}"#),
    ] {
        let (status, error) = server.request("POST", path, Some(&key), Some(body));
        assert_eq!(
            (status, error["message"].as_str()),
            (400, Some(too_many)),
            "{path} {body}"
        );
    }
    // A page within the bound is answered, the last page too.
    let page = |page: u32| {
        let body = format!(r#"{{"value": "198.51.100.%", "limit": 30, "page": {page}}}"#);
        let (status, found) =
            server.request("POST", "/attributes/restSearch", Some(&key), Some(&body));
        assert_eq!(status, 200, "{found}");
        found["response"]["Attribute"].as_array().unwrap().len()
    };
    assert_eq!((page(1), page(4)), (30, 10));
    // Matching a few attributes of the event is fine.
    let (status, found) = server.request(
        "POST",
        "/attributes/restSearch",
        Some(&key),
        Some(r#"{"value": "198.51.100.1%"}"#),
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["response"]["Attribute"].as_array().unwrap().len(), 11);
}

#[test]
fn a_client_that_stops_reading_a_large_answer_is_cut_off() {
    let (_temp, server) = node_with(&[("send_stall_timeout_s", "1")]);
    let key = admin_key(&server.dir);
    // An event whose JSON is several MiB: more than the kernel buffers on both sides hold.
    let comment = "c".repeat(1500);
    let attributes: Vec<serde_json::Value> = (0..6000)
        .map(|n| serde_json::json!({"type": "domain", "value": format!("d{n}.example.org"), "comment": comment}))
        .collect();
    let event = serde_json::json!({"Event": {"info": "large", "Attribute": attributes}});
    let (status, added) =
        server.request("POST", "/events/add", Some(&key), Some(&event.to_string()));
    assert_eq!(status, 200, "{added}");
    let uuid = added["Event"]["uuid"].as_str().unwrap().to_string();
    let path = format!("/events/view/{uuid}");
    let (status, whole) = server.request_text("GET", &path, Some(&key), None);
    assert_eq!(status, 200);
    assert!(whole.len() > 8 << 20, "{} bytes", whole.len());

    // A client with a small receive window asks for it and reads nothing for a while.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let mut stalled = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(server.addr.parse().unwrap()).await.unwrap();
        stream.into_std().unwrap()
    });
    stalled.set_nonblocking(false).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nAccept: application/json\r\n\r\n"
    );
    stalled.write_all(request.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // Meanwhile others are served, and the stalled answer was cut short: the node closed the
    // connection rather than wait for the client.
    served(&server, &key);
    let received = until_closed(&mut stalled).expect("the stalled connection is closed");
    assert!(
        received.starts_with("HTTP/1.1 200"),
        "{}",
        received.chars().take(64).collect::<String>()
    );
    assert!(
        received.len() < whole.len(),
        "{} of {} bytes",
        received.len(),
        whole.len()
    );
}

/// The status line and the seconds a request with `key` from `from` took to be answered.
fn timed_version_from(from: &str, server: &str, key: &str) -> (String, f64) {
    let started = Instant::now();
    let answer = version_from(from, server, key);
    let status = answer.lines().next().unwrap_or("").to_string();
    (status, started.elapsed().as_secs_f64())
}

#[test]
fn an_address_refused_over_and_over_gets_its_refusals_slowly_and_others_do_not() {
    let (_temp, server) = node_with(&[]);
    let pause = threatlog::api::admission::REFUSAL_PAUSE.as_secs_f64();
    let free = threatlog::api::admission::REFUSALS_FREE as usize;
    // A wrong key over and over from one address: refused at once at first, then paced.
    // (MISP answers a wrong key with 403.)
    let answers: Vec<(String, f64)> = (0..free + 4)
        .map(|_| timed_version_from("127.0.0.4", &server.addr, "wrong-key"))
        .collect();
    for (status, _) in &answers {
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
    }
    // The ninth waits the pause (during which half of the count is forgotten).
    let paced: Vec<bool> = answers
        .iter()
        .map(|(_, took)| *took >= pause * 0.9)
        .collect();
    assert!(!paced[..free].contains(&true) && paced[free], "{answers:?}");
    // Another address's refusal is not paced, and the paced address is still served.
    let (status, other) = timed_version_from("127.0.0.5", &server.addr, "wrong-key");
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
    assert!(other < pause * 0.9, "{other}");
    let key = admin_key(&server.dir);
    let (status, _) = timed_version_from("127.0.0.4", &server.addr, &key);
    assert_eq!(status, "HTTP/1.1 200 OK");
}
