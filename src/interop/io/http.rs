//! The plain-HTTP/1.1 GET client of feed fetches: one request per connection, conditional
//! when validators (ETag, Last-Modified) are known, the body size-limited and read by
//! `Content-Length`, chunked encoding or connection close. IO: it opens TCP connections.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Connect timeout of feed requests, in seconds.
const CONNECT_TIMEOUT_S: u64 = 10;
/// Read and write timeout of feed requests, in seconds.
const IO_TIMEOUT_S: u64 = 60;
/// Longest HTTP response head, in bytes.
const HEAD_BYTES_MAX: usize = 64 * 1024;

/// The HTTP validators remembered for a feed's manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` of the last response, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` of the last response, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// A fetched body, or "not modified".
pub enum Fetched {
    /// The body and the validators that came with it.
    Body(Vec<u8>, Validators),
    /// The server answered 304: what was fetched before is current.
    NotModified,
}

/// A GET that failed: the URL and what went wrong.
#[derive(Debug)]
pub struct HttpError {
    /// The URL requested.
    pub url: String,
    /// What went wrong, in words.
    pub message: String,
}

/// The head of a response: status, validators and how the body is framed.
struct ResponseHead {
    /// The status code.
    status: u16,
    /// The validators the response carries.
    validators: Validators,
    /// `Content-Length`, if given.
    length: Option<u64>,
    /// Whether the body is chunked.
    chunked: bool,
}

/// A plain HTTP/1.1 GET of `<host[:port]/base>/<name>` (`rest` is the URL after `http://`),
/// conditional when validators are known; a body over `bytes_max` bytes is refused.
pub fn get(
    rest: &str,
    name: &str,
    validators: Option<&Validators>,
    bytes_max: u64,
) -> Result<Fetched, HttpError> {
    let url = format!("http://{}/{name}", rest.trim_end_matches('/'));
    let (authority, base) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let exchange = || -> Result<Fetched, String> {
        let mut stream = connect(authority)?;
        stream
            .write_all(request_head(authority, base, name, validators).as_bytes())
            .map_err(|error| error.to_string())?;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader)?;
        if head.status == 304 {
            return Ok(Fetched::NotModified);
        }
        if head.status != 200 {
            return Err(format!("HTTP status {}", head.status));
        }
        let body = read_body(reader, &head, bytes_max)?;
        Ok(Fetched::Body(body, head.validators))
    };
    exchange().map_err(|message| HttpError { url, message })
}

/// A TCP connection to `authority` (`host[:port]`, port 80 by default), with the feed
/// timeouts set.
fn connect(authority: &str) -> Result<TcpStream, String> {
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .map_err(|error| error.to_string())?
        .collect();
    let addr = addrs.first().ok_or("the host has no address")?;
    let stream = TcpStream::connect_timeout(addr, Duration::from_secs(CONNECT_TIMEOUT_S))
        .map_err(|error| error.to_string())?;
    let timeout = Some(Duration::from_secs(IO_TIMEOUT_S));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|error| error.to_string())?;
    Ok(stream)
}

/// The request head of a GET of `<base>/<name>` from `authority`, with the validators as
/// conditions.
fn request_head(
    authority: &str,
    base: &str,
    name: &str,
    validators: Option<&Validators>,
) -> String {
    let mut head = format!(
        "GET {base}/{name} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Accept: application/json\r\nUser-Agent: threatlog\r\n"
    );
    if let Some(validators) = validators {
        if let Some(etag) = &validators.etag {
            head.push_str(&format!("If-None-Match: {etag}\r\n"));
        }
        if let Some(modified) = &validators.last_modified {
            head.push_str(&format!("If-Modified-Since: {modified}\r\n"));
        }
    }
    head.push_str("\r\n");
    head
}

/// Reads one line into `line`, refusing it once it passes `bytes_max` bytes: a server that
/// never ends a line cannot make this node buffer without bound.
fn read_line_within(
    reader: &mut impl BufRead,
    line: &mut String,
    bytes_max: usize,
) -> Result<usize, String> {
    let read = reader
        .by_ref()
        .take(bytes_max as u64 + 1)
        .read_line(line)
        .map_err(|error| error.to_string())?;
    match read > bytes_max {
        true => Err(format!("response head longer than {HEAD_BYTES_MAX} bytes")),
        false => Ok(read),
    }
}

/// Reads the status line and the header fields, at most [`HEAD_BYTES_MAX`] bytes.
fn read_head(reader: &mut impl BufRead) -> Result<ResponseHead, String> {
    let mut status_line = String::new();
    read_line_within(reader, &mut status_line, HEAD_BYTES_MAX)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {}", status_line.trim()))?;
    let mut head = ResponseHead {
        status,
        validators: Validators::default(),
        length: None,
        chunked: false,
    };
    let mut head_bytes = status_line.len();
    loop {
        let mut line = String::new();
        let read = read_line_within(reader, &mut line, HEAD_BYTES_MAX - head_bytes)?;
        head_bytes += read;
        let line = line.trim_end();
        if read == 0 || line.is_empty() {
            return Ok(head);
        }
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match field.trim().to_ascii_lowercase().as_str() {
            "etag" => head.validators.etag = Some(value),
            "last-modified" => head.validators.last_modified = Some(value),
            "content-length" => head.length = value.parse().ok(),
            "transfer-encoding" => head.chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
}

/// Reads the body `head` announces until the connection closes, refusing more than
/// `bytes_max` bytes; a chunked body is decoded.
fn read_body(reader: impl Read, head: &ResponseHead, bytes_max: u64) -> Result<Vec<u8>, String> {
    let too_large = || format!("body over the import limit of {bytes_max} bytes");
    if head.length.is_some_and(|length| length > bytes_max) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    reader
        .take(bytes_max + 1)
        .read_to_end(&mut body)
        .map_err(|error| error.to_string())?;
    if body.len() as u64 > bytes_max {
        return Err(too_large());
    }
    if head.chunked {
        body = dechunk(&body).ok_or("malformed chunked body")?;
    }
    Ok(body)
}

/// The payload of a chunked body.
pub(crate) fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|pair| pair == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_head_line_that_never_ends_is_refused_at_the_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Endless: ");
            let endless = vec![b'a'; 16 * 1024];
            // Sends until the client hangs up: 64 MiB at most.
            for _ in 0..4096 {
                if stream.write_all(&endless).is_err() {
                    break;
                }
            }
        });
        let Err(error) = get(&addr, "manifest.json", None, 1_000_000) else {
            panic!("an endless head line is refused");
        };
        assert_eq!(error.message, "response head longer than 65536 bytes");
        server.join().unwrap();
    }
}
