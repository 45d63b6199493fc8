//! The auditor's toolkit (SPEC §8): export a self-contained bundle of a log ([`export`], format
//! in [`bundle`]), verify a bundle or a data directory offline ([`verify`]), replay the state at
//! any instant and list the history of an event or attribute ([`replay`]), prove an entry's
//! inclusion in the latest checkpoint ([`prove`]); and the timer that has `serve` sign
//! checkpoints. Every command reads a data directory through [`Store::open_read_only`], so it
//! works on a stopped node and on a running one.

pub mod bundle;
pub mod export;
pub mod replay;
pub mod verify;

use prost::bytes::Bytes;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::log::merkle::Hash;
use crate::log::{checkpoint, EntryId, OriginKey, VerifiedEntry};
use crate::model::date::{civil_from_days, days_from_civil};
use crate::node::Node;
use crate::store::{Store, StoreError};

/// Audit failures: a verification finding, or a problem running the command.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// What verification found wrong (the first problem in log order).
    #[error("{0}")]
    Failed(String),
    /// The bundle could not be read.
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The request cannot be answered (unknown origin, no checkpoint yet, bad time).
    #[error("{0}")]
    Usage(String),
}

/// Where an audit command reads the log from.
pub enum Source {
    /// A bundle file.
    Bundle(PathBuf),
    /// A data directory's store (opened read-only).
    Store(Box<Store>),
}

impl Source {
    /// Visits every entry, each strictly verified, grouped by origin in chain order.
    pub fn for_each_entry(
        &self,
        visit: &mut dyn FnMut(VerifiedEntry) -> Result<bool, AuditError>,
    ) -> Result<(), AuditError> {
        match self {
            Source::Bundle(path) => {
                let file = std::fs::File::open(path)?;
                let mut reader = bundle::Reader::new(BufReader::new(file))?;
                while let Some(record) = reader.next_record()? {
                    if let bundle::Record::Entry { origin, seq, data } = record {
                        let bytes = bundle::decode_data(&data).ok_or_else(|| {
                            AuditError::Failed(format!("entry {origin}:{seq}: data is not base64"))
                        })?;
                        let entry = VerifiedEntry::verify(Bytes::from(bytes)).map_err(|error| {
                            AuditError::Failed(format!("entry {origin}:{seq}: {error}"))
                        })?;
                        if !visit(entry)? {
                            break;
                        }
                    }
                }
                Ok(())
            }
            Source::Store(store) => {
                let mut failure = None;
                store.for_each_stored(None, &mut |origin, sequence, bytes| {
                    let result = VerifiedEntry::verify(Bytes::copy_from_slice(bytes))
                        .map_err(|error| {
                            AuditError::Failed(format!("entry {origin}:{sequence}: {error}"))
                        })
                        .and_then(&mut *visit);
                    match result {
                        Ok(more) => Ok(more),
                        Err(error) => {
                            failure = Some(error);
                            Ok(false)
                        }
                    }
                })?;
                failure.map_or(Ok(()), Err)
            }
        }
    }
}

/// RFC 3339 UTC text of a time in ms since the Unix epoch, e.g. `2026-01-02T03:04:05.678Z`.
pub fn format_time_ms(time_ms: i64) -> String {
    let rest = time_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(time_ms.div_euclid(86_400_000));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Parses a time: milliseconds since the Unix epoch, or RFC 3339 UTC
/// (`YYYY-MM-DDTHH:MM:SS[.fff]Z`, or a bare `YYYY-MM-DD` for its midnight).
pub fn parse_time_ms(text: &str) -> Result<i64, AuditError> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        AuditError::Usage(format!(
            "'{text}' is not a time: give milliseconds since the epoch or 2026-01-31T12:00:00Z"
        ))
    };
    let number = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00:00Z"));
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))
        .ok_or_else(bad)?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock = clock.split(':');
    let (Some(h), Some(min), Some(s), None) =
        (clock.next(), clock.next(), clock.next(), clock.next())
    else {
        return Err(bad());
    };
    let (month, day) = (number(m)?, number(d)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let millis = format!("{fraction:0<3}");
    let millis = number(millis.get(..3).ok_or_else(bad)?)?;
    let days = days_from_civil(number(y)?, month, day);
    Ok(((days * 24 + number(h)?) * 60 + number(min)?) * 60_000 + number(s)? * 1000 + millis)
}

/// An inclusion proof of one entry in its origin's latest checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InclusionProof {
    /// Origin key hex.
    pub origin: String,
    /// The entry's sequence (leaf index + 1).
    pub sequence: u64,
    /// Base64 leaf hash: SHA-256(0x00 ‖ entry hash).
    pub leaf_hash: String,
    /// Tree size of the checkpoint.
    pub tree_size: u64,
    /// Base64 root of the checkpoint.
    pub root: String,
    /// Base64 proof hashes, leaf to root.
    pub proof: Vec<String>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

fn b64(hash: &Hash) -> String {
    bundle::encode_data(hash)
}

/// Proves `id` in its origin's latest stored checkpoint, checking the proof before returning.
pub fn prove(store: &Store, id: &EntryId) -> Result<InclusionProof, AuditError> {
    let Some((size, note)) = store.latest_checkpoint(&id.origin)? else {
        return Err(AuditError::Usage(format!(
            "origin {} has no checkpoint yet",
            id.origin
        )));
    };
    if id.sequence == 0 || id.sequence > size {
        return Err(AuditError::Usage(format!(
            "entry {id} is not covered by the latest checkpoint of its origin (size {size}); \
             it will be once the node signs the next one"
        )));
    }
    let signed = checkpoint::verify_origin_note(&note, &id.origin)
        .map_err(|error| AuditError::Failed(format!("checkpoint of size {size}: {error}")))?;
    let leaf = store.tree_leaf(&id.origin, id.sequence)?;
    let proof = store.inclusion_proof(&id.origin, id.sequence, size)?;
    crate::log::merkle::verify_inclusion(id.sequence - 1, size, &leaf, &proof, &signed.root)
        .map_err(|error| AuditError::Failed(format!("entry {id}: {error}")))?;
    Ok(InclusionProof {
        origin: id.origin.to_string(),
        sequence: id.sequence,
        leaf_hash: b64(&leaf),
        tree_size: size,
        root: b64(&signed.root),
        proof: proof.iter().map(b64).collect(),
        checkpoint: note,
    })
}

/// The entries that touched event or attribute `subject`, from the store.
pub fn entries_touching(store: &Store, subject: &Uuid) -> Result<Vec<EntryId>, AuditError> {
    let source = Source::Store(Box::new(Store::open_read_only(store.dir())?));
    let changes = replay::history(&source, subject)?;
    let mut ids = Vec::new();
    for change in changes {
        let origin = OriginKey::from_hex(&change.origin)
            .ok_or_else(|| AuditError::Failed(format!("bad origin {}", change.origin)))?;
        ids.push(EntryId {
            origin,
            sequence: change.sequence,
        });
    }
    Ok(ids)
}

/// Signs a checkpoint of `node`'s own log every `audit.checkpoint_interval_s` seconds when
/// the log has grown, until `stop` turns true.
pub async fn checkpoint_timer(node: Arc<Node>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let period = Duration::from_secs(node.config.audit.checkpoint_interval_s.max(1));
    let mut ticker = tokio::time::interval(period);
    // The first tick fires at once: a restarted node states its size without waiting.
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let node = Arc::clone(&node);
        let signed = tokio::task::spawn_blocking(move || node.checkpoint(true)).await;
        match signed {
            Ok(Ok(Some((size, _)))) => tracing::debug!("signed checkpoint of size {size}"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::error!("cannot sign a checkpoint: {error}"),
            Err(error) => tracing::error!("checkpoint task failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        let ms = parse_time_ms("2026-11-27T20:51:52.123Z").unwrap();
        assert_eq!(format_time_ms(ms), "2026-11-27T20:51:52.123Z");
        assert_eq!(parse_time_ms("2024-02-29").unwrap(), 1_709_164_800_000);
        assert_eq!(parse_time_ms("1709164800000").unwrap(), 1_709_164_800_000);
        assert!(parse_time_ms("yesterday").is_err());
    }
}
