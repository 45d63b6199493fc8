//! The audit bundle: a self-contained, versioned copy of one or more origins' logs.
//!
//! # Format (version 1)
//!
//! UTF-8 JSON lines, one JSON object per line, each line ending in `\n`:
//!
//! 1. Header: `{"format":"threatlog-audit-bundle","version":1,"exported_by":"<key hex>",
//!    "created_ms":<ms>,"until_ms":<ms or null>}`.
//! 2. One `{"type":"key","origin":"<key hex>","name":"threatlog/<key hex>"}` per origin: the
//!    Ed25519 public keys that sign the entries and checkpoints that follow.
//! 3. Per origin (in key order), its chain in sequence order from 1 without gaps, each link one
//!    of
//!    - `{"type":"entry","origin":"<hex>","seq":<n>,"data":"<base64 of the stored entry
//!      bytes>"}` — the signed bytes exactly as stored (a protobuf `SignedEntry`);
//!    - `{"type":"stub","origin":"<hex>","seq":<n>,"prev":"<hex>","hash":"<hex>"}` — an entry
//!      the exporting node may not see: its previous hash and its hash.
//!
//!    Right after the link that makes an origin's tree `N` entries long come that origin's
//!    checkpoints of size `N`, `{"type":"checkpoint","origin":"<hex>","size":N,"note":"<C2SP
//!    signed note>"}`, each followed by its cosignatures, `{"type":"cosignature",
//!    "origin":"<hex>","size":N,"cosigner":"<hex>","line":"<C2SP cosignature line>"}`.
//! 4. Trailer: `{"type":"end","records":<lines between header and trailer>,"sha256":"<hex of
//!    SHA-256 over every byte before the trailer>"}`. A bundle without it is truncated.
//!
//! Readers refuse other `format` values and versions above theirs. Lines are at most
//! [`LINE_BYTES_MAX`] bytes.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};

use crate::log::{EntryHash, OriginKey, ENTRY_BYTES_MAX};

/// The `format` value of the header.
pub const FORMAT: &str = "threatlog-audit-bundle";
/// The bundle format version this build writes and the highest it reads.
pub const VERSION: u32 = 1;
/// Longest line read: the largest entry in base64 plus its JSON frame.
pub const LINE_BYTES_MAX: usize = ENTRY_BYTES_MAX / 3 * 4 + 4096;

/// The first line of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Key of the node that wrote the bundle.
    pub exported_by: String,
    /// When the bundle was written, ms since the Unix epoch.
    pub created_ms: i64,
    /// The `--until` bound, if any: no entry after it is included.
    pub until_ms: Option<i64>,
}

/// One record after the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// An origin's public key.
    Key {
        /// Key hex.
        origin: String,
        /// The C2SP key name, `threatlog/<hex>`.
        name: String,
    },
    /// A stored entry, verbatim.
    Entry {
        /// Origin key hex.
        origin: String,
        /// Sequence number.
        seq: u64,
        /// Base64 of the stored bytes.
        data: String,
    },
    /// A withheld entry's place in the chain.
    Stub {
        /// Origin key hex.
        origin: String,
        /// Sequence number.
        seq: u64,
        /// Hex of the previous entry's hash.
        prev: String,
        /// Hex of the entry's hash.
        hash: String,
    },
    /// A signed checkpoint note.
    Checkpoint {
        /// Origin key hex.
        origin: String,
        /// Tree size the note states.
        size: u64,
        /// The C2SP signed note.
        note: String,
    },
    /// A cosignature over a checkpoint.
    Cosignature {
        /// Origin key hex.
        origin: String,
        /// Size of the cosigned checkpoint.
        size: u64,
        /// Cosigner key hex.
        cosigner: String,
        /// The C2SP cosignature line.
        line: String,
    },
    /// The trailer.
    End {
        /// Records between header and trailer.
        records: u64,
        /// Hex SHA-256 of every byte before the trailer.
        sha256: String,
    },
}

/// Bundle reading failures.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading failed.
    #[error("reading the bundle: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not a record.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The bundle ends before its trailer.
    #[error("truncated bundle: it ends after line {0} without its end record")]
    Truncated(u64),
    /// The trailer does not match what was read.
    #[error("bundle trailer mismatch: {0}")]
    Trailer(String),
}

/// Writes a bundle, hashing as it goes.
pub struct Writer<W: Write> {
    /// The destination.
    out: W,
    /// SHA-256 over every byte written.
    hasher: Sha256,
    /// Records written after the header.
    records: u64,
}

impl<W: Write> Writer<W> {
    /// Starts a bundle with its header.
    pub fn new(out: W, header: &Header) -> std::io::Result<Self> {
        let mut writer = Self {
            out,
            hasher: Sha256::new(),
            records: 0,
        };
        writer.line(&serde_json::to_vec(header).map_err(std::io::Error::other)?)?;
        Ok(writer)
    }

    fn line(&mut self, json: &[u8]) -> std::io::Result<()> {
        self.hasher.update(json);
        self.hasher.update(b"\n");
        self.out.write_all(json)?;
        self.out.write_all(b"\n")
    }

    /// Writes one record.
    pub fn record(&mut self, record: &Record) -> std::io::Result<()> {
        self.records += 1;
        self.line(&serde_json::to_vec(record).map_err(std::io::Error::other)?)
    }

    /// Writes the trailer and returns the destination.
    pub fn finish(mut self) -> std::io::Result<W> {
        let trailer = Record::End {
            records: self.records,
            sha256: hex::encode(self.hasher.clone().finalize()),
        };
        let json = serde_json::to_vec(&trailer).map_err(std::io::Error::other)?;
        self.out.write_all(&json)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a bundle record by record, checking the header first and the trailer last.
pub struct Reader<R: BufRead> {
    /// The source.
    input: R,
    /// SHA-256 over every byte before the current line.
    hasher: Sha256,
    /// Lines read.
    line: u64,
    /// The trailer was read.
    ended: bool,
    /// Reused line buffer.
    buffer: Vec<u8>,
    /// The header.
    pub header: Header,
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Self, BundleError> {
        let mut reader = Self {
            input,
            hasher: Sha256::new(),
            line: 0,
            ended: false,
            buffer: Vec::new(),
            header: Header {
                format: String::new(),
                version: 0,
                exported_by: String::new(),
                created_ms: 0,
                until_ms: None,
            },
        };
        if !reader.read_line()? {
            return Err(BundleError::Truncated(0));
        }
        let header: Header =
            serde_json::from_slice(&reader.buffer).map_err(|error| BundleError::Malformed {
                line: 1,
                reason: format!("not a bundle header: {error}"),
            })?;
        if header.format != FORMAT {
            return Err(BundleError::Malformed {
                line: 1,
                reason: format!("format '{}' is not {FORMAT}", header.format),
            });
        }
        if header.version == 0 || header.version > VERSION {
            return Err(BundleError::Malformed {
                line: 1,
                reason: format!(
                    "bundle version {} is not supported (this build reads version {VERSION})",
                    header.version
                ),
            });
        }
        reader.hasher.update(&reader.buffer);
        reader.hasher.update(b"\n");
        reader.header = header;
        Ok(reader)
    }

    /// Reads one line into the buffer (without its newline); `false` at the end of input.
    fn read_line(&mut self) -> Result<bool, BundleError> {
        self.buffer.clear();
        let mut limited =
            <&mut R as std::io::Read>::take(&mut self.input, LINE_BYTES_MAX as u64 + 1);
        let read = limited.read_until(b'\n', &mut self.buffer)?;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buffer.last() != Some(&b'\n') {
            if self.buffer.len() > LINE_BYTES_MAX {
                return Err(BundleError::Malformed {
                    line: self.line,
                    reason: format!("line is over {LINE_BYTES_MAX} bytes"),
                });
            }
            return Err(BundleError::Truncated(self.line - 1));
        }
        self.buffer.pop();
        Ok(true)
    }

    /// The 1-based number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next record, `None` after the trailer (which is checked here).
    pub fn next_record(&mut self) -> Result<Option<Record>, BundleError> {
        if self.ended {
            return Ok(None);
        }
        if !self.read_line()? {
            return Err(BundleError::Truncated(self.line));
        }
        let record: Record =
            serde_json::from_slice(&self.buffer).map_err(|error| BundleError::Malformed {
                line: self.line,
                reason: error.to_string(),
            })?;
        if let Record::End { records, sha256 } = &record {
            let expected = hex::encode(self.hasher.clone().finalize());
            if *sha256 != expected {
                return Err(BundleError::Trailer(format!(
                    "content hash {expected} differs from the recorded {sha256}"
                )));
            }
            if *records != self.line - 2 {
                return Err(BundleError::Trailer(format!(
                    "{} records read, the trailer says {records}",
                    self.line - 2
                )));
            }
            let mut rest = [0u8; 1];
            if std::io::Read::read(&mut self.input, &mut rest)? != 0 {
                return Err(BundleError::Trailer("data after the end record".into()));
            }
            self.ended = true;
            return Ok(None);
        }
        self.hasher.update(&self.buffer);
        self.hasher.update(b"\n");
        Ok(Some(record))
    }
}

/// Base64 of stored entry bytes, as in `entry` records.
pub fn encode_data(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Stored bytes from an `entry` record's `data`.
pub fn decode_data(data: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(data).ok()
}

/// An origin key from a record's hex.
pub fn parse_origin(hex: &str) -> Option<OriginKey> {
    OriginKey::from_hex(hex)
}

/// A 32-byte hash from hex.
pub fn parse_hash(text: &str) -> Option<EntryHash> {
    hex::decode(text).ok()?.try_into().ok()
}
