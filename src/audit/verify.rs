//! `threatlog audit verify`: every signature, chain link, stub, checkpoint and cosignature of a
//! bundle or a data directory, recomputing each origin's Merkle tree as the chain streams by.
//! Signatures are checked in chunks on worker threads while the reading thread checks chains
//! and trees; memory stays bounded by the chunks in flight. The first failure in log order is
//! reported.
//!
//! Each signature is checked strictly, one by one, by the same function ingest uses
//! ([`verify_entries`]): an auditor accepts exactly the entries every node accepts. Batch
//! verification, faster but cofactorless, would accept signatures with a torsion component
//! that nodes refuse.

use prost::bytes::Bytes;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::bundle::{self, Reader, Record};
use super::AuditError;
use crate::log::checkpoint::{self, Checkpoint};
use crate::log::merkle::{self, Frontier, Hash};
use crate::log::{verify_entries, EntryId, Head, LogError, OriginKey, Stub, UnverifiedEntry};
use crate::store::Store;

/// Entries per unit of work handed to a signature thread: large enough that handing it over
/// costs nothing beside its signatures, small enough that a chunk in flight stays a few
/// hundred KiB.
pub const CHUNK_ENTRIES: usize = 256;
/// Chunks queued per worker before the reader waits: the bound on memory in flight.
const CHUNKS_QUEUED_PER_WORKER: usize = 2;
/// Most signature workers.
const WORKERS_MAX: usize = 16;

/// What verification found for one origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OriginSummary {
    /// The origin key, hex.
    pub origin: String,
    /// Entries verified.
    pub entries: u64,
    /// Stubs linked.
    pub stubs: u64,
    /// Tree size (entries and stubs).
    pub tree_size: u64,
    /// Base64 Merkle root recomputed over the chain.
    pub root: String,
    /// Checkpoints verified (signature, root at their size, so consistent with each other).
    pub checkpoints: u64,
    /// Size of the latest checkpoint verified.
    pub latest_checkpoint: Option<u64>,
    /// Cosignatures verified.
    pub cosignatures: u64,
}

/// A successful verification.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Per origin, in key order.
    pub origins: Vec<OriginSummary>,
    /// Entries verified in all.
    pub entries: u64,
    /// For a data directory: the digest of the stored views, equal to a fresh replay's.
    pub views_digest: Option<String>,
    /// Peak resident memory of the verifying process, in KiB, when the caller measured it.
    pub peak_rss_kib: Option<u64>,
}

/// Peak resident memory of this process so far, in KiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One origin's chain so far.
struct Chain {
    /// The last link.
    head: Head,
    /// The recomputed tree.
    tree: Frontier,
    /// The last checkpoint verified, for its cosignatures.
    checkpoint: Option<Checkpoint>,
    /// Counts for the report.
    summary: OriginSummary,
}

/// A numbered chunk of entries whose signatures are to be checked.
type Chunk = (u64, Vec<(EntryId, UnverifiedEntry)>);

/// Results of signature chunks: (chunk number, first failure in it).
type ChunkResult = (u64, Result<(), (EntryId, LogError)>);

/// The signature workers.
struct Pool {
    /// Chunks to check; dropping it stops the workers.
    jobs: Option<mpsc::SyncSender<Chunk>>,
    /// Their results.
    results: mpsc::Receiver<ChunkResult>,
    /// The threads.
    workers: Vec<JoinHandle<()>>,
    /// Chunks sent.
    sent: u64,
    /// The earliest failure received so far: (chunk, failure).
    failure: Option<(u64, EntryId, LogError)>,
}

fn check_chunk(chunk: Vec<(EntryId, UnverifiedEntry)>) -> Result<(), (EntryId, LogError)> {
    let ids: Vec<EntryId> = chunk.iter().map(|(id, _)| *id).collect();
    let entries = chunk.into_iter().map(|(_, entry)| entry).collect();
    verify_entries(entries)
        .map(|_| ())
        .map_err(|(index, error)| (ids[index], error))
}

impl Pool {
    fn new(workers: usize) -> Pool {
        let workers = workers.clamp(1, WORKERS_MAX);
        let (jobs, queue) = mpsc::sync_channel(workers * CHUNKS_QUEUED_PER_WORKER);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let (done, results) = mpsc::channel();
        let workers = (0..workers)
            .map(|_| {
                let queue = std::sync::Arc::clone(&queue);
                let done = done.clone();
                std::thread::spawn(move || loop {
                    // A poisoned queue means another worker panicked; stop too.
                    let job = match queue.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok((number, chunk)) = job else { return };
                    if done.send((number, check_chunk(chunk))).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            results,
            workers,
            sent: 0,
            failure: None,
        }
    }

    fn send(&mut self, chunk: Vec<(EntryId, UnverifiedEntry)>) {
        let number = self.sent;
        self.sent += 1;
        let sent = self.jobs.as_ref().map(|jobs| jobs.send((number, chunk)));
        if let Some(Err(mpsc::SendError((number, chunk)))) = sent {
            // Workers are gone (a panic): check on this thread.
            self.record((number, check_chunk(chunk)));
        }
        while let Ok(result) = self.results.try_recv() {
            self.record(result);
        }
    }

    fn record(&mut self, (number, result): ChunkResult) {
        if let Err((id, error)) = result {
            if self
                .failure
                .as_ref()
                .is_none_or(|(first, _, _)| number < *first)
            {
                self.failure = Some((number, id, error));
            }
        }
    }

    /// Waits for every chunk; returns the earliest signature failure.
    fn finish(mut self) -> Option<(EntryId, LogError)> {
        self.jobs = None;
        for worker in std::mem::take(&mut self.workers) {
            let _ = worker.join();
        }
        while let Ok(result) = self.results.try_recv() {
            self.record(result);
        }
        self.failure.map(|(_, id, error)| (id, error))
    }
}

/// The streaming verifier: feed it records in bundle order.
pub struct Verifier {
    /// Chains by origin; an origin is known once its key is declared.
    chains: BTreeMap<OriginKey, Chain>,
    /// Entries not yet sent to the pool.
    pending: Vec<(EntryId, UnverifiedEntry)>,
    /// Signature workers.
    pool: Pool,
    /// Entries fed.
    entries: u64,
}

fn failure(what: impl Into<String>) -> AuditError {
    AuditError::Failed(what.into())
}

impl Verifier {
    /// A verifier checking signatures on `workers` threads.
    pub fn new(workers: usize) -> Verifier {
        Verifier {
            chains: BTreeMap::new(),
            pending: Vec::with_capacity(CHUNK_ENTRIES),
            pool: Pool::new(workers),
            entries: 0,
        }
    }

    /// Entries fed so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Declares an origin's key.
    pub fn declare(&mut self, origin: OriginKey) {
        self.chains.entry(origin).or_insert_with(|| Chain {
            head: Head::EMPTY,
            tree: Frontier::default(),
            checkpoint: None,
            summary: OriginSummary {
                origin: origin.to_string(),
                ..OriginSummary::default()
            },
        });
    }

    fn chain(&mut self, origin: &OriginKey) -> Result<&mut Chain, AuditError> {
        self.chains
            .get_mut(origin)
            .ok_or_else(|| failure(format!("origin {origin} has no key record")))
    }

    /// Checks the next link of a chain (entry or stub at `sequence` with `prev`).
    fn link(chain: &Chain, id: EntryId, prev: &[u8]) -> Result<(), AuditError> {
        if id.sequence != chain.head.sequence + 1 {
            return Err(failure(format!(
                "entry {id}: out of sequence: expected sequence {} after {} (a gap, or \
                 entries out of order)",
                chain.head.sequence + 1,
                chain.head.sequence
            )));
        }
        if prev != chain.head.hash {
            return Err(failure(format!(
                "entry {id}: chain link broken: its previous-entry hash is not the hash of \
                 sequence {}",
                chain.head.sequence
            )));
        }
        Ok(())
    }

    /// Feeds one stored entry claimed to be `origin`'s `sequence`.
    pub fn entry(
        &mut self,
        origin: OriginKey,
        sequence: u64,
        stored: Bytes,
    ) -> Result<(), AuditError> {
        let id = EntryId { origin, sequence };
        let entry = UnverifiedEntry::decode(stored)
            .map_err(|error| failure(format!("entry {id}: {error}")))?;
        let hash = entry.hash();
        if entry.origin() != origin || entry.entry().sequence != sequence {
            return Err(failure(format!(
                "entry {id}: the bytes are entry {}:{}",
                entry.origin(),
                entry.entry().sequence
            )));
        }
        let chain = self.chain(&origin)?;
        Self::link(chain, id, &entry.entry().prev_hash)?;
        chain.head = Head { sequence, hash };
        chain.tree.push(merkle::leaf_hash(&hash), &mut |_| {});
        chain.summary.entries += 1;
        self.entries += 1;
        self.pending.push((id, entry));
        if self.pending.len() >= CHUNK_ENTRIES {
            let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_ENTRIES));
            self.pool.send(chunk);
        }
        Ok(())
    }

    /// Feeds a stub.
    pub fn stub(&mut self, stub: Stub) -> Result<(), AuditError> {
        let chain = self.chain(&stub.id.origin)?;
        Self::link(chain, stub.id, &stub.prev_hash)?;
        chain.head = stub.head();
        chain.tree.push(merkle::leaf_hash(&stub.hash), &mut |_| {});
        chain.summary.stubs += 1;
        Ok(())
    }

    /// Feeds a checkpoint note of `origin` stating `size`, placed after that origin's
    /// `size`th link.
    pub fn checkpoint(
        &mut self,
        origin: OriginKey,
        size: u64,
        note: &str,
    ) -> Result<(), AuditError> {
        let chain = self.chain(&origin)?;
        let what = format!("checkpoint of size {size} of origin {origin}");
        let checkpoint = checkpoint::verify_origin_note(note, &origin)
            .map_err(|error| failure(format!("{what}: {error}")))?;
        if checkpoint.size != size || size != chain.tree.size() {
            return Err(failure(format!(
                "{what}: it states size {} and follows {} entries",
                checkpoint.size,
                chain.tree.size()
            )));
        }
        if checkpoint.root != chain.tree.root() {
            return Err(failure(format!(
                "{what}: its root is not the Merkle root of the entries (the log was altered, \
                 or the origin signed another history)"
            )));
        }
        chain.summary.checkpoints += 1;
        chain.summary.latest_checkpoint = Some(size);
        chain.checkpoint = Some(checkpoint);
        Ok(())
    }

    /// Feeds a cosignature over the checkpoint just fed.
    pub fn cosignature(
        &mut self,
        origin: OriginKey,
        size: u64,
        cosigner: OriginKey,
        line: &str,
    ) -> Result<(), AuditError> {
        let chain = self.chain(&origin)?;
        let what = format!("cosignature by {cosigner} over checkpoint {size} of origin {origin}");
        let Some(checkpoint) = chain.checkpoint.as_ref().filter(|c| c.size == size) else {
            return Err(failure(format!("{what}: no such checkpoint precedes it")));
        };
        checkpoint
            .verify_cosignature(line, &cosigner)
            .map_err(|error| failure(format!("{what}: {error}")))?;
        chain.summary.cosignatures += 1;
        Ok(())
    }

    /// Finishes: waits for the signature chunks and reports. `failed` is a failure found by
    /// the caller at the current position; an earlier signature failure takes precedence.
    pub fn finish(mut self, failed: Option<AuditError>) -> Result<Report, AuditError> {
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            self.pool.send(pending);
        }
        if let Some((id, error)) = self.pool.finish() {
            return Err(failure(format!("entry {id}: {error}")));
        }
        if let Some(error) = failed {
            return Err(error);
        }
        let mut report = Report::default();
        for chain in self.chains.into_values() {
            let mut summary = chain.summary;
            summary.tree_size = chain.tree.size();
            summary.root = base64_hash(&chain.tree.root());
            report.entries += summary.entries;
            report.origins.push(summary);
        }
        Ok(report)
    }

    /// The recomputed root and size of `origin`'s tree.
    pub fn tree(&self, origin: &OriginKey) -> Option<(u64, Hash)> {
        let chain = self.chains.get(origin)?;
        Some((chain.tree.size(), chain.tree.root()))
    }
}

fn base64_hash(hash: &Hash) -> String {
    bundle::encode_data(hash)
}

fn parse_key(hex: &str, line: u64) -> Result<OriginKey, AuditError> {
    bundle::parse_origin(hex).ok_or_else(|| failure(format!("line {line}: '{hex}' is not a key")))
}

/// Feeds one bundle record.
fn feed(verifier: &mut Verifier, record: Record, line: u64) -> Result<(), AuditError> {
    match record {
        Record::Key { origin, .. } => verifier.declare(parse_key(&origin, line)?),
        Record::Entry { origin, seq, data } => {
            let origin = parse_key(&origin, line)?;
            let bytes = bundle::decode_data(&data)
                .ok_or_else(|| failure(format!("entry {origin}:{seq}: data is not base64")))?;
            verifier.entry(origin, seq, Bytes::from(bytes))?;
        }
        Record::Stub {
            origin,
            seq,
            prev,
            hash,
        } => {
            let origin = parse_key(&origin, line)?;
            let (Some(prev_hash), Some(hash)) =
                (bundle::parse_hash(&prev), bundle::parse_hash(&hash))
            else {
                return Err(failure(format!("stub {origin}:{seq}: malformed hashes")));
            };
            verifier.stub(Stub {
                id: EntryId {
                    origin,
                    sequence: seq,
                },
                prev_hash,
                hash,
            })?;
        }
        Record::Checkpoint { origin, size, note } => {
            verifier.checkpoint(parse_key(&origin, line)?, size, &note)?
        }
        Record::Cosignature {
            origin,
            size,
            cosigner,
            line: text,
        } => verifier.cosignature(
            parse_key(&origin, line)?,
            size,
            parse_key(&cosigner, line)?,
            &text,
        )?,
        Record::End { .. } => {}
    }
    Ok(())
}

/// Verifies a bundle read from `input`. `progress(entries)` is called as entries stream.
pub fn verify_bundle(
    input: impl BufRead,
    workers: usize,
    progress: &dyn Fn(u64),
) -> Result<Report, AuditError> {
    let mut reader = Reader::new(input)?;
    let mut verifier = Verifier::new(workers);
    let failed = loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                if let Err(error) = feed(&mut verifier, record, reader.line()) {
                    break Some(error);
                }
                if verifier.entries().is_multiple_of(CHUNK_ENTRIES as u64) {
                    progress(verifier.entries());
                }
            }
            Ok(None) => break None,
            Err(error) => break Some(error.into()),
        }
    };
    progress(verifier.entries());
    verifier.finish(failed)
}

/// Verifies a data directory: every origin's chain, stored checkpoints and cosignatures as in
/// a bundle; that the stored Merkle tree equals the recomputed one; and, with
/// [`Store::verify`], that the stored views equal a fresh replay.
pub fn verify_store(
    store: &Store,
    workers: usize,
    progress: &dyn Fn(u64),
) -> Result<Report, AuditError> {
    let mut verifier = Verifier::new(workers);
    let heads = {
        let mut heads = store.heads();
        heads.sort();
        heads
    };
    for (origin, _) in &heads {
        verifier.declare(*origin);
    }
    let mut failed = None;
    for (origin, _) in &heads {
        if let Err(error) = verify_origin(store, &mut verifier, origin, progress) {
            failed = Some(error);
            break;
        }
    }
    let mut report = verifier.finish(failed)?;
    let summary = store
        .verify(progress)
        .map_err(|error| failure(error.to_string()))?;
    report.views_digest = Some(summary.digest.to_string());
    Ok(report)
}

fn verify_origin(
    store: &Store,
    verifier: &mut Verifier,
    origin: &OriginKey,
    progress: &dyn Fn(u64),
) -> Result<(), AuditError> {
    let mut checkpoints: BTreeMap<u64, String> = store.checkpoints(origin)?.into_iter().collect();
    let mut cosignatures: BTreeMap<u64, Vec<(OriginKey, String)>> = BTreeMap::new();
    for (size, cosigner, line) in store.cosignatures(origin)? {
        cosignatures.entry(size).or_default().push((cosigner, line));
    }
    let mut result = Ok(());
    store.for_each_stored(Some(origin), &mut |found, sequence, bytes| {
        let step = verifier
            .entry(found, sequence, Bytes::copy_from_slice(bytes))
            .and_then(|()| {
                if let Some(note) = checkpoints.remove(&sequence) {
                    verifier.checkpoint(found, sequence, &note)?;
                    for (cosigner, line) in cosignatures.remove(&sequence).unwrap_or_default() {
                        verifier.cosignature(found, sequence, cosigner, &line)?;
                    }
                }
                Ok(())
            });
        if verifier.entries().is_multiple_of(CHUNK_ENTRIES as u64) {
            progress(verifier.entries());
        }
        match step {
            Ok(()) => Ok(true),
            Err(error) => {
                result = Err(error);
                Ok(false)
            }
        }
    })?;
    result?;
    let (size, root) = verifier.tree(origin).unwrap_or((0, merkle::empty_root()));
    if size != store.tree_size(origin) || (size > 0 && store.tree_root(origin, size)? != root) {
        return Err(failure(format!(
            "origin {origin}: the stored Merkle tree differs from the tree of the stored entries"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::bundle::{Header, Writer};
    use crate::log::checkpoint::origin_name;
    use crate::log::merkle::MemoryTree;
    use crate::log::{seal, Draft, NodeKey, VerifiedEntry};

    fn entries(key: &NodeKey, count: u32) -> Vec<VerifiedEntry> {
        let mut head = Head::EMPTY;
        (0..count)
            .map(|index| {
                let draft = Draft {
                    acting_user: "auditor-test".into(),
                    ..Draft::default()
                };
                let entry = seal(
                    key,
                    uuid::Uuid::nil(),
                    &head,
                    draft,
                    1000,
                    [index as u8; 16],
                )
                .unwrap();
                head = Head::after(&entry);
                entry
            })
            .collect()
    }

    /// A bundle of `key`'s entries where `withheld` are stubs, with a checkpoint at the end
    /// signed by `key` over `root` (the true root when `None`).
    fn bundle(
        key: &NodeKey,
        entries: &[VerifiedEntry],
        withheld: &[u64],
        stub_hash: Option<[u8; 32]>,
    ) -> Vec<u8> {
        let origin = key.origin();
        let header = Header {
            format: bundle::FORMAT.into(),
            version: bundle::VERSION,
            exported_by: origin.to_string(),
            created_ms: 0,
            until_ms: None,
        };
        let mut writer = Writer::new(Vec::new(), &header).unwrap();
        writer
            .record(&Record::Key {
                origin: origin.to_string(),
                name: origin_name(&origin),
            })
            .unwrap();
        let mut tree = MemoryTree::new();
        for entry in entries {
            tree.push(merkle::leaf_hash(&entry.hash()));
            let record = if withheld.contains(&entry.sequence()) {
                let stub = Stub::of(entry);
                Record::Stub {
                    origin: origin.to_string(),
                    seq: entry.sequence(),
                    prev: hex::encode(stub.prev_hash),
                    hash: hex::encode(stub_hash.unwrap_or(stub.hash)),
                }
            } else {
                Record::Entry {
                    origin: origin.to_string(),
                    seq: entry.sequence(),
                    data: bundle::encode_data(entry.stored()),
                }
            };
            writer.record(&record).unwrap();
        }
        let name = origin_name(&origin);
        let note = Checkpoint {
            origin: name.clone(),
            size: tree.size(),
            root: tree.root(),
        }
        .sign(&name, key);
        writer
            .record(&Record::Checkpoint {
                origin: origin.to_string(),
                size: tree.size(),
                note,
            })
            .unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn entries_held_beside_stubs_verify_against_the_origins_checkpoint() {
        let key = NodeKey::generate();
        let log = entries(&key, 600);
        let bytes = bundle(&key, &log, &[2, 300, 599], None);
        let report = verify_bundle(bytes.as_slice(), 2, &|_| {}).unwrap();
        assert_eq!(report.entries, 597);
        assert_eq!(report.origins[0].stubs, 3);
        assert_eq!(report.origins[0].checkpoints, 1);
        assert_eq!(report.origins[0].tree_size, 600);
        // A stub that lies about the withheld entry's hash breaks the next link.
        let bytes = bundle(&key, &log, &[300], Some([1; 32]));
        let error = verify_bundle(bytes.as_slice(), 2, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(error.contains(":301: chain link broken"), "{error}");
        // A stub for the last entry that lies is caught by the checkpoint root.
        let bytes = bundle(&key, &log, &[600], Some([1; 32]));
        let error = verify_bundle(bytes.as_slice(), 2, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("checkpoint of size 600") && error.contains("root"),
            "{error}"
        );
    }

    #[test]
    fn the_first_bad_signature_in_log_order_is_reported() {
        let key = NodeKey::generate();
        let other = NodeKey::generate();
        let mut log = entries(&key, 700);
        // Entry 100 carries another key's signature over the same bytes.
        let forged_at = 100;
        let entry = &log[forged_at - 1];
        let forged = crate::proto::SignedEntry {
            entry: entry.signed_bytes().clone(),
            signature: Bytes::copy_from_slice(&other.sign(entry.signed_bytes())),
        };
        let bytes = Bytes::from(prost::Message::encode_to_vec(&forged));
        let mut verifier = Verifier::new(2);
        verifier.declare(key.origin());
        for entry in log.drain(..) {
            let stored = if entry.sequence() == forged_at as u64 {
                bytes.clone()
            } else {
                entry.stored().clone()
            };
            // The chain after the forged entry breaks (its hash changed): the signature
            // failure comes first in log order and is the one reported.
            if let Err(error) = verifier.entry(key.origin(), entry.sequence(), stored) {
                let report = verifier.finish(Some(error)).unwrap_err().to_string();
                assert!(
                    report.contains(":100: signature does not verify"),
                    "{report}"
                );
                return;
            }
        }
        panic!("the broken chain after entry 100 was not noticed");
    }
}
