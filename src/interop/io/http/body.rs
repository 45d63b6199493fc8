//! The body of a feed response read as it streams: refused by `Content-Length` up front, and
//! once more than the limit has come or been decoded (gzip), so that no more than the limit
//! and a decoder buffer is ever held.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzDecoder;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header;
use hyper::Response;

use super::{describe, IO_TIMEOUT_S};

/// Reads the body of `response`, refusing it by `Content-Length` up front, and while it
/// streams once more than `bytes_max` bytes have come or been decoded; gzip is decoded.
pub(super) async fn read_body(
    response: Response<Incoming>,
    bytes_max: u64,
) -> Result<Vec<u8>, String> {
    let over = || format!("body over the limit of {bytes_max} bytes");
    let headers = response.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|length| length > bytes_max) {
        return Err(over());
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?").to_ascii_lowercase());
    let mut sink = match encoding.as_deref() {
        None | Some("identity") => Sink::Plain(Bounded::new(bytes_max)),
        Some("gzip" | "x-gzip") => Sink::Gzip(Box::new(GzDecoder::new(Bounded::new(bytes_max)))),
        Some(other) => return Err(format!("unsupported Content-Encoding '{other}'")),
    };
    let mut body = response.into_body();
    let mut received: u64 = 0;
    let io_timeout = Duration::from_secs(IO_TIMEOUT_S);
    loop {
        let frame = match tokio::time::timeout(io_timeout, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(error))) => return Err(describe(&error, false)),
            Ok(None) => return sink.finish(),
            Err(_) => return Err(format!("timed out after {IO_TIMEOUT_S} s")),
        };
        // Trailers carry nothing a feed needs.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > bytes_max {
            return Err(over());
        }
        sink.write(&data)?;
    }
}

/// Where a body goes as it streams: kept as it comes, or gunzipped.
enum Sink {
    /// Kept as received.
    Plain(Bounded),
    /// Decoded; the decoder holds at most its own 32 KiB buffer besides the output.
    Gzip(Box<GzDecoder<Bounded>>),
}

impl Sink {
    /// Takes the next piece of the body.
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            Sink::Plain(bounded) => bounded.write_all(data).map_err(|_| bounded.refusal()),
            Sink::Gzip(decoder) => {
                let written = decoder.write_all(data);
                gzip_outcome(decoder, written)
            }
        }
    }

    /// The whole body, once the last piece came.
    fn finish(self) -> Result<Vec<u8>, String> {
        match self {
            Sink::Plain(bounded) => Ok(bounded.bytes),
            Sink::Gzip(mut decoder) => {
                // Flushes the decoder's buffer into the output, which may pass the limit.
                let finished = decoder.try_finish();
                gzip_outcome(&decoder, finished)?;
                Ok(std::mem::take(&mut decoder.get_mut().bytes))
            }
        }
    }
}

/// What a step of the gzip decoder came to, in words when it failed.
fn gzip_outcome(decoder: &GzDecoder<Bounded>, step: std::io::Result<()>) -> Result<(), String> {
    match step {
        Ok(()) => Ok(()),
        Err(_) if decoder.get_ref().over => Err(format!("decoded {}", decoder.get_ref().refusal())),
        Err(error) => Err(format!("malformed gzip body: {error}")),
    }
}

/// Bytes that refuse to grow past a limit.
struct Bounded {
    /// What was written so far.
    bytes: Vec<u8>,
    /// The limit, in bytes.
    bytes_max: u64,
    /// Whether a write was refused for passing the limit.
    over: bool,
}

impl Bounded {
    fn new(bytes_max: u64) -> Bounded {
        Bounded {
            bytes: Vec::new(),
            bytes_max,
            over: false,
        }
    }

    /// The refusal of a body over the limit, in words.
    fn refusal(&self) -> String {
        format!("body over the limit of {} bytes", self.bytes_max)
    }
}

impl Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if (self.bytes.len() + data.len()) as u64 > self.bytes_max {
            self.over = true;
            return Err(std::io::Error::other(self.refusal()));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
