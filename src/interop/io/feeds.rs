//! MISP feeds in and out, the IO side: feed settings (node-local state under `feed/`),
//! fetching a feed from a directory or an http(s) URL ([`super::http`], with the feed's own CA
//! file and request headers) with conditional requests, and importing its events as this node's signed entries: new events added, events
//! whose manifest timestamp is newer than the stored one updated, the others skipped. A broken
//! event file is reported and the rest go on. Also writing a feed to a directory. The feed
//! format itself (manifest, feed event JSON, hashes) is pure, in [`crate::interop::feed`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::http::{self, Fetched, HttpError, Validators};
use crate::change;
use crate::interop::feed::{feed_files, parse_manifest, ManifestError};
use crate::model::{self, Tag};
use crate::node::{Node, NodeError};
use crate::proto::RecordKind;
use crate::view::read;

/// Local-state key prefix of feed settings.
const SETTINGS_PREFIX: &str = "feed/";
/// Local-state key prefix of a feed's HTTP validators (ETag, Last-Modified).
const VALIDATORS_PREFIX: &str = "feedcache/";
/// Longest feed name, in bytes.
pub const FEED_NAME_BYTES_MAX: usize = 64;
/// Namespace of the tag marking events by the feed they came from: `threatlog:feed="NAME"`.
pub const SOURCE_TAG_PREFIX: &str = "threatlog:feed=";

/// Feed failures.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// No feed of that name.
    #[error("no feed named '{0}'; add it with `threatlog feed add NAME URL|DIR`")]
    Unknown(String),
    /// The name is empty, too long or uses characters other than letters, digits, `-`, `_`, `.`.
    #[error("feed name '{0}' must be 1-64 letters, digits, '-', '_' or '.'")]
    Name(String),
    /// The source is neither an `http://` or `https://` URL nor a directory.
    #[error("feed source '{0}' is neither an http:// or https:// URL nor an existing directory")]
    Source(String),
    /// A setting of http(s) feeds was given for a directory.
    #[error("the {0} setting is for http:// and https:// feeds only")]
    WebOnly(&'static str),
    /// The feed's CA file cannot be read or holds no CA certificate.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The feed's `headers` setting is malformed.
    #[error("feed headers: {0}")]
    Headers(String),
    /// The distribution level is out of range.
    #[error("--distribution must be 0-3 (a feed names no sharing group), not {0}")]
    Distribution(u8),
    /// The manifest could not be fetched.
    #[error("{url}: {message}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Writing an exported feed failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest is malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// A feed's settings (node-local, never replicated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSettings {
    /// The feed's name on this node.
    pub name: String,
    /// `http://…` or `https://…` URL or directory path of the feed (the folder holding
    /// `manifest.json`).
    pub source: String,
    /// Distribution level given to imported events (`None`: as in the feed).
    pub distribution: Option<u8>,
    /// Tags added to every imported event, besides the feed-source tag.
    pub tags: Vec<String>,
    /// A PEM file of CA certificates trusted for the feed's https server besides the system's
    /// roots (a feed behind a private CA), stored absolute; read at each fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Request headers sent with every GET of the feed, MISP's feed `headers`: `Name: value`
    /// lines separated by newlines (an API key, say); empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub headers: String,
}

/// What one fetch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Events not held before, added.
    pub added: usize,
    /// Events with a newer manifest timestamp, updated.
    pub updated: usize,
    /// Events already up to date.
    pub skipped: usize,
    /// Event files that could not be fetched or imported: (uuid, reason).
    pub failed: Vec<(String, String)>,
    /// Whether the HTTP server said the manifest is unchanged (304).
    pub not_modified: bool,
}

/// Whether a feed source is fetched over HTTP (or else read from a directory).
fn is_web(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

fn check_name(name: &str) -> Result<(), FeedError> {
    let ok = !name.is_empty()
        && name.len() <= FEED_NAME_BYTES_MAX
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
    if ok {
        Ok(())
    } else {
        Err(FeedError::Name(name.to_string()))
    }
}

/// Adds (or replaces) a feed, its settings checked first (see [`checked_source`]).
pub fn add(node: &Node, settings: &FeedSettings) -> Result<(), FeedError> {
    check_name(&settings.name)?;
    if let Some(level) = settings.distribution.filter(|level| *level > 3) {
        return Err(FeedError::Distribution(level));
    }
    let settings = checked_source(settings)?;
    let encoded = serde_json::to_vec(&settings).unwrap_or_default();
    node.store
        .put_local(&[
            (
                format!("{SETTINGS_PREFIX}{}", settings.name).into_bytes(),
                encoded,
            ),
            (
                format!("{VALIDATORS_PREFIX}{}", settings.name).into_bytes(),
                Vec::new(),
            ),
        ])
        .map_err(NodeError::from)?;
    Ok(())
}

/// `settings` with the source checked: a URL with a host, its headers well-formed and its CA
/// file readable, or a directory without either; paths made absolute, so that fetches from
/// any working directory find them.
fn checked_source(settings: &FeedSettings) -> Result<FeedSettings, FeedError> {
    let source = settings.source.trim();
    let mut settings = settings.clone();
    if !is_web(source) {
        if !Path::new(source).is_dir() {
            return Err(FeedError::Source(source.to_string()));
        }
        if settings.ca_file.is_some() {
            return Err(FeedError::WebOnly("ca_file"));
        }
        if !settings.headers.trim().is_empty() {
            return Err(FeedError::WebOnly("headers"));
        }
        settings.source = absolute(Path::new(source)).display().to_string();
        return Ok(settings);
    }
    let uri = source.parse::<hyper::Uri>();
    if !uri.is_ok_and(|uri| uri.host().is_some()) {
        return Err(FeedError::Source(source.to_string()));
    }
    settings.source = source.to_string();
    http::parse_headers(&settings.headers).map_err(FeedError::Headers)?;
    if let Some(path) = &settings.ca_file {
        http::load_ca_file(path).map_err(|message| FeedError::CaFile {
            path: path.clone(),
            message,
        })?;
        settings.ca_file = Some(absolute(path));
    }
    Ok(settings)
}

/// Every configured feed, by name.
pub fn list(node: &Node) -> Result<Vec<FeedSettings>, FeedError> {
    let pairs = node
        .store
        .scan_local(SETTINGS_PREFIX.as_bytes())
        .map_err(NodeError::from)?;
    Ok(pairs
        .iter()
        .filter_map(|(_, value)| serde_json::from_slice(value).ok())
        .collect())
}

/// `path` made absolute (as it is if that fails: the fetch will say why).
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Where a feed's files come from.
enum Source<'a> {
    /// The directory holding `manifest.json` and the event files.
    Directory(&'a str),
    /// The URL of that folder, and a client set up with the feed's CA file and headers.
    Web(&'a str, Box<http::Client>),
}

impl<'a> Source<'a> {
    /// The source the feed's `settings` name, a URL with a client set up for it.
    fn open(settings: &'a FeedSettings) -> Result<Source<'a>, FeedError> {
        let source = settings.source.as_str();
        if !is_web(source) {
            return Ok(Source::Directory(source));
        }
        let roots = match &settings.ca_file {
            Some(path) => http::load_ca_file(path).map_err(|message| FeedError::CaFile {
                path: path.clone(),
                message,
            })?,
            None => Vec::new(),
        };
        let headers = http::parse_headers(&settings.headers).map_err(FeedError::Headers)?;
        let client = http::Client::new(roots, headers).map_err(|message| FeedError::Fetch {
            url: source.to_string(),
            message,
        })?;
        Ok(Source::Web(source, Box::new(client)))
    }

    /// Reads `name` of the feed (a file in the directory, or a GET of `<url>/<name>`).
    fn fetch(
        &self,
        name: &str,
        validators: Option<&Validators>,
        bytes_max: u64,
    ) -> Result<Fetched, FeedError> {
        match self {
            Source::Directory(dir) => read_file(dir, name, bytes_max),
            Source::Web(url, client) => {
                let url = format!("{}/{name}", url.trim_end_matches('/'));
                client
                    .get(&url, validators, bytes_max)
                    .map_err(|HttpError { url, message }| FeedError::Fetch { url, message })
            }
        }
    }
}

/// Reads file `name` of the feed in directory `source`, refusing it over `bytes_max` bytes.
fn read_file(source: &str, name: &str, bytes_max: u64) -> Result<Fetched, FeedError> {
    let path = PathBuf::from(source).join(name);
    let fail = |message: String| FeedError::Fetch {
        url: path.display().to_string(),
        message,
    };
    let size = std::fs::metadata(&path)
        .map_err(|error| fail(error.to_string()))?
        .len();
    if size > bytes_max {
        return Err(fail(format!(
            "{size} bytes is over the import limit of {bytes_max} bytes"
        )));
    }
    let bytes = std::fs::read(&path).map_err(|error| fail(error.to_string()))?;
    Ok(Fetched::Body(bytes, Validators::default()))
}

/// The stored timestamp of an event, if the node holds it live.
fn stored_timestamp(node: &Node, uuid: &uuid::Uuid) -> Result<Option<i64>, FeedError> {
    let record = read::record(&node.store.views(), RecordKind::Event, uuid.as_bytes())
        .map_err(|error| NodeError::Store(error.into()))?;
    Ok(record
        .filter(|record| record.is_live())
        .map(|record| match record.field("timestamp") {
            Some(Value::String(text)) => text.parse().unwrap_or(0),
            Some(Value::Number(number)) => number.as_i64().unwrap_or(0),
            _ => 0,
        }))
}

/// Imports the feed file of event `uuid` with the feed's tags and distribution, as this node's
/// entries: parsed and drafted as [`Node::import_document`] does, all or nothing. The file
/// must hold exactly that one event, so a feed cannot slip other events in under a manifest
/// entry.
fn import_event(
    node: &Node,
    settings: &FeedSettings,
    uuid: &uuid::Uuid,
    bytes: &[u8],
) -> Result<(), String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("malformed JSON: {error}"))?;
    let events = model::parse_events_document(&value).map_err(|error| error.to_string())?;
    let uuids: Vec<String> = events.iter().map(|event| event.uuid.to_string()).collect();
    if uuids != [uuid.to_string()] {
        return Err(format!(
            "the file holds event(s) [{}], not the manifest's {uuid}",
            uuids.join(", ")
        ));
    }
    let actor = node.system_actor();
    let mut drafts = Vec::new();
    let mut names: Vec<String> = vec![format!("{SOURCE_TAG_PREFIX}\"{}\"", settings.name)];
    names.extend(settings.tags.iter().cloned());
    for mut event in events {
        if event.orgc.is_none() {
            event.orgc = Some(node.org.clone());
        }
        if let Some(level) = settings.distribution {
            event.distribution = level;
        }
        for name in &names {
            if !event.tags.iter().any(|tag| &tag.name == name) {
                event.tags.push(Tag {
                    name: name.clone(),
                    colour: None,
                    exportable: true,
                    local: false,
                });
            }
        }
        drafts.extend(change::event_drafts(&event, &actor));
    }
    node.append(drafts).map_err(|error| error.to_string())?;
    Ok(())
}

/// Fetches feed `name` and imports what is new or newer; `progress(done, total)` is called
/// after each event of the manifest.
pub fn fetch_feed(
    node: &Node,
    name: &str,
    progress: &dyn Fn(u64, u64),
) -> Result<FetchReport, FeedError> {
    let settings = list(node)?
        .into_iter()
        .find(|feed| feed.name == name)
        .ok_or_else(|| FeedError::Unknown(name.to_string()))?;
    let bytes_max = node.config.limits.import_file_bytes_max;
    let key = format!("{VALIDATORS_PREFIX}{name}").into_bytes();
    let validators: Option<Validators> = node
        .store
        .local(&key)
        .map_err(NodeError::from)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let mut report = FetchReport::default();
    let source = Source::open(&settings)?;
    let (manifest, found) = match source.fetch("manifest.json", validators.as_ref(), bytes_max)? {
        Fetched::NotModified => {
            report.not_modified = true;
            return Ok(report);
        }
        Fetched::Body(bytes, found) => (parse_manifest(&bytes)?, found),
    };
    let total = manifest.len() as u64;
    for (done, item) in manifest.iter().enumerate() {
        let stored = stored_timestamp(node, &item.uuid)?;
        if stored.is_some_and(|stored| stored >= item.timestamp) {
            report.skipped += 1;
        } else {
            let file = format!("{}.json", item.uuid);
            let result = source
                .fetch(&file, None, bytes_max)
                .map_err(|error| error.to_string())
                .and_then(|fetched| match fetched {
                    Fetched::Body(bytes, _) => import_event(node, &settings, &item.uuid, &bytes),
                    Fetched::NotModified => Err("unexpected 304".into()),
                });
            match (result, stored) {
                (Ok(()), None) => report.added += 1,
                (Ok(()), Some(_)) => report.updated += 1,
                (Err(reason), _) => report.failed.push((item.uuid.to_string(), reason)),
            }
        }
        progress(done as u64 + 1, total);
    }
    // Validators are kept only when every event made it in, so a retry fetches the rest.
    if report.failed.is_empty() && (found.etag.is_some() || found.last_modified.is_some()) {
        let encoded = serde_json::to_vec(&found).unwrap_or_default();
        node.store
            .put_local(&[(key, encoded)])
            .map_err(NodeError::from)?;
    }
    Ok(report)
}

/// Writes the MISP feed of `events` into `dir` (created if missing): `manifest.json`,
/// `<uuid>.json` per event and `hashes.csv`. Returns the number of events written.
pub fn write_feed(dir: &std::path::Path, events: &[Value]) -> Result<usize, FeedError> {
    let fail = |path: &std::path::Path, source: std::io::Error| FeedError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|error| fail(dir, error))?;
    for (name, contents) in feed_files(events) {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(|error| fail(&path, error))?;
    }
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("circl-osint_1.0").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
    }
}
