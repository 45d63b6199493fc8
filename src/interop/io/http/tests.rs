//! The client against real servers on 127.0.0.1, each a thread answering one connection.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;

/// A server that answers one connection: `answer` gets the request head and the stream.
fn serve_once<T: Send + 'static>(
    answer: impl FnOnce(String, TcpStream) -> T + Send + 'static,
) -> (String, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        // The client's request head is small; the test bounds it anyway.
        while head.len() < 64 * 1024 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        answer(head, stream)
    });
    (url, server)
}

fn client() -> Client {
    Client::new(Vec::new(), HeaderMap::new()).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_head_line_that_never_ends_is_refused_at_the_bound() {
    let (url, server) = serve_once(|_, mut stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ");
        let endless = vec![b'a'; 16 * 1024];
        // Sends until the client hangs up: 64 MiB at most.
        let mut sent = 0;
        for _ in 0..4096 {
            if stream.write_all(&endless).is_err() {
                break;
            }
            sent += endless.len();
        }
        sent
    });
    let Err(error) = client().get(&format!("{url}/manifest.json"), None, 1_000_000) else {
        panic!("an endless head line is refused");
    };
    assert_eq!(error.message, "response head over the limit of 65536 bytes");
    assert_eq!(error.url, format!("{url}/manifest.json"));
    // The client hung up at the bound: the server did not get to send all it had.
    assert!(server.join().unwrap() < 4096 * 16 * 1024);
}

#[test]
fn validators_make_the_request_conditional() {
    let (url, server) = serve_once(|head, mut stream| {
        stream
            .write_all(b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n")
            .unwrap();
        head.to_ascii_lowercase()
    });
    let validators = Validators {
        etag: Some("\"v7\"".into()),
        last_modified: Some("Tue, 14 Nov 2023 22:13:20 GMT".into()),
    };
    let fetched = client().get(&format!("{url}/manifest.json"), Some(&validators), 1000);
    assert!(matches!(fetched, Ok(Fetched::NotModified)));
    let head = server.join().unwrap();
    assert!(
        head.starts_with("get /manifest.json http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("if-none-match: \"v7\"\r\n"), "{head}");
    assert!(
        head.contains("if-modified-since: tue, 14 nov 2023 22:13:20 gmt\r\n"),
        "{head}"
    );
}

#[test]
fn gzip_is_decoded_and_its_decoded_size_bounded() {
    let answer = |body: Vec<u8>| {
        move |_, mut stream: TcpStream| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\
                 ETag: \"g1\"\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            let _ = stream.write_all(&body);
        }
    };
    let (url, server) = serve_once(answer(gzip(b"[\"feed\"]")));
    let Ok(Fetched::Body(body, found)) = client().get(&format!("{url}/m.json"), None, 100) else {
        panic!("a gzip body is decoded");
    };
    assert_eq!(body, b"[\"feed\"]");
    assert_eq!(found.etag.as_deref(), Some("\"g1\""));
    server.join().unwrap();

    // A megabyte of spaces packs into about a kilobyte: the limit counts what it unpacks to.
    let bomb = gzip(&vec![b' '; 1024 * 1024]);
    assert!(bomb.len() < 4096);
    let (url, server) = serve_once(answer(bomb));
    let Err(error) = client().get(&format!("{url}/m.json"), None, 64 * 1024) else {
        panic!("a gzip body decoding past the limit is refused");
    };
    assert_eq!(error.message, "decoded body over the limit of 65536 bytes");
    server.join().unwrap();
}

#[test]
fn a_blocking_thread_of_a_runtime_may_fetch() {
    let (url, server) = serve_once(|_, mut stream| {
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]";
        stream.write_all(answer.as_bytes()).unwrap();
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // As the feed schedule does: the whole fetch, client and all, on a blocking thread.
    let fetched = runtime.block_on(async move {
        tokio::task::spawn_blocking(move || client().get(&format!("{url}/m.json"), None, 10))
            .await
            .unwrap()
    });
    let Ok(Fetched::Body(body, _)) = fetched else {
        panic!("the fetch works on a blocking thread");
    };
    assert_eq!(body, b"[]");
    server.join().unwrap();
}

#[test]
fn a_refused_connection_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let Err(error) = client().get(&format!("http://{addr}/m.json"), None, 10) else {
        panic!("nothing listens there");
    };
    assert!(error.message.starts_with("cannot connect: "), "{error:?}");
}
