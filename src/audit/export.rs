//! `threatlog audit export`: writes a bundle (see [`super::bundle`]) from a store.

use std::collections::BTreeMap;
use std::io::Write;

use super::bundle::{self, Header, Record, Writer};
use super::AuditError;
use crate::log::checkpoint;
use crate::log::{OriginKey, UnverifiedEntry};
use crate::store::Store;

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Only this origin (default: every origin held).
    pub origin: Option<OriginKey>,
    /// Only entries up to this time (ms since the Unix epoch); each origin's chain stops at
    /// its first entry after it.
    pub until_ms: Option<i64>,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Origins.
    pub origins: usize,
    /// Entries.
    pub entries: u64,
    /// Checkpoints.
    pub checkpoints: u64,
    /// Cosignatures.
    pub cosignatures: u64,
}

/// Writes a bundle of `store`'s log to `out`. `exporter` names the exporting node.
pub fn export(
    store: &Store,
    exporter: &OriginKey,
    out: impl Write,
    options: &ExportOptions,
    progress: &dyn Fn(u64),
) -> Result<ExportSummary, AuditError> {
    let mut origins: Vec<OriginKey> = store.heads().into_iter().map(|(o, _)| o).collect();
    origins.sort();
    if let Some(only) = &options.origin {
        if !origins.contains(only) {
            return Err(AuditError::Usage(format!(
                "no entries of origin {only} held"
            )));
        }
        origins = vec![*only];
    }
    let header = Header {
        format: bundle::FORMAT.into(),
        version: bundle::VERSION,
        exported_by: exporter.to_string(),
        created_ms: store.now_ms(),
        until_ms: options.until_ms,
    };
    let mut writer = Writer::new(out, &header)?;
    let mut summary = ExportSummary {
        origins: origins.len(),
        ..ExportSummary::default()
    };
    for origin in &origins {
        writer.record(&Record::Key {
            origin: origin.to_string(),
            name: checkpoint::origin_name(origin),
        })?;
    }
    for origin in &origins {
        export_origin(store, origin, &mut writer, options, &mut summary, progress)?;
    }
    writer.finish()?;
    Ok(summary)
}

/// An origin's checkpoints and cosignatures not yet written, by tree size.
struct Signed {
    origin: OriginKey,
    checkpoints: BTreeMap<u64, String>,
    cosignatures: BTreeMap<u64, Vec<(OriginKey, String)>>,
}

impl Signed {
    /// Writes the checkpoint of size `sequence` and its cosignatures, if any, after the
    /// entry (or stub) at `sequence`.
    fn after<W: Write>(
        &mut self,
        sequence: u64,
        writer: &mut Writer<W>,
        summary: &mut ExportSummary,
    ) -> std::io::Result<()> {
        let origin = self.origin.to_string();
        if let Some(note) = self.checkpoints.remove(&sequence) {
            writer.record(&Record::Checkpoint {
                origin: origin.clone(),
                size: sequence,
                note,
            })?;
            summary.checkpoints += 1;
            for (cosigner, line) in self.cosignatures.remove(&sequence).unwrap_or_default() {
                writer.record(&Record::Cosignature {
                    origin: origin.clone(),
                    size: sequence,
                    cosigner: cosigner.to_string(),
                    line,
                })?;
                summary.cosignatures += 1;
            }
        }
        Ok(())
    }
}

/// Writes the stubs held from position `next` up to (not including) `until`.
fn stubs_until<W: Write>(
    store: &Store,
    signed: &mut Signed,
    until: u64,
    writer: &mut Writer<W>,
    next: &mut u64,
    summary: &mut ExportSummary,
) -> Result<(), AuditError> {
    while *next < until {
        let id = crate::log::EntryId {
            origin: signed.origin,
            sequence: *next,
        };
        let Some(stub) = store.stub(&id)? else {
            return Ok(());
        };
        writer.record(&Record::Stub {
            origin: signed.origin.to_string(),
            seq: *next,
            prev: hex::encode(stub.prev_hash),
            hash: hex::encode(stub.hash),
        })?;
        signed.after(*next, writer, summary)?;
        *next += 1;
    }
    Ok(())
}

fn export_origin<W: Write>(
    store: &Store,
    origin: &OriginKey,
    writer: &mut Writer<W>,
    options: &ExportOptions,
    summary: &mut ExportSummary,
    progress: &dyn Fn(u64),
) -> Result<(), AuditError> {
    let checkpoints: BTreeMap<u64, String> = store.checkpoints(origin)?.into_iter().collect();
    let mut cosignatures: BTreeMap<u64, Vec<(OriginKey, String)>> = BTreeMap::new();
    for (size, cosigner, line) in store.cosignatures(origin)? {
        cosignatures.entry(size).or_default().push((cosigner, line));
    }
    let mut failure = None;
    // The position after the last one written: stubs fill the gaps between stored entries.
    let mut next = 1u64;
    let mut signed = Signed {
        origin: *origin,
        checkpoints,
        cosignatures,
    };
    store.for_each_stored(Some(origin), &mut |found, sequence, bytes| {
        if let Some(until) = options.until_ms {
            let time = UnverifiedEntry::decode(prost::bytes::Bytes::copy_from_slice(bytes))
                .map(|entry| entry.entry().time_ms)
                .unwrap_or(i64::MIN);
            if time > until {
                return Ok(false);
            }
        }
        if let Err(error) = stubs_until(store, &mut signed, sequence, writer, &mut next, summary) {
            failure = Some(error);
            return Ok(false);
        }
        let mut write = || -> std::io::Result<()> {
            writer.record(&Record::Entry {
                origin: found.to_string(),
                seq: sequence,
                data: bundle::encode_data(bytes),
            })?;
            signed.after(sequence, writer, summary)
        };
        match write() {
            Ok(()) => {
                next = sequence + 1;
                summary.entries += 1;
                if summary.entries.is_multiple_of(1024) {
                    progress(summary.entries);
                }
                Ok(true)
            }
            Err(error) => {
                failure = Some(error.into());
                Ok(false)
            }
        }
    })?;
    if failure.is_none() && options.until_ms.is_none() {
        stubs_until(store, &mut signed, u64::MAX, writer, &mut next, summary)?;
    }
    if let Some(error) = failure {
        return Err(error);
    }
    progress(summary.entries);
    Ok(())
}
