//! The node configuration, `DIR/threatlog.toml`: a serde struct with every field documented
//! and defaulted, checked by [`Config::validate`].

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The commented configuration `threatlog init` writes; the same text as
/// `deploy/threatlog.example.toml`.
pub const TEMPLATE: &str = include_str!("../deploy/threatlog.example.toml");

/// File name of the configuration inside the data directory.
pub const FILE_NAME: &str = "threatlog.toml";

/// TLP levels a node may assume by default, from least to most restrictive.
pub const TLP_LEVELS: [&str; 5] = ["clear", "green", "amber", "amber+strict", "red"];

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, as `section.name`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Node identity and policy defaults.
    pub node: NodeConfig,
    /// REST API.
    pub api: ApiConfig,
    /// gRPC sync service.
    pub sync: SyncConfig,
    /// Size limits.
    pub limits: LimitsConfig,
    /// View behaviour.
    pub views: ViewsConfig,
    /// MISP feeds.
    pub feeds: FeedsConfig,
    /// Taxonomy and galaxy directories loaded when the node starts.
    pub catalog: CatalogConfig,
    /// Checkpoints for auditors.
    pub audit: AuditConfig,
    /// `[[webhook]]`: HTTP endpoints told of each publish and sighting.
    pub webhook: Vec<WebhookConfig>,
}

/// One `[[webhook]]`: an HTTP(S) endpoint that `serve` POSTs a JSON body to for each event
/// published and each sighting added (here or received from a peer), signed with HMAC-SHA256.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where the bodies are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// A file holding the HMAC key (at least [`WEBHOOK_SECRET_BYTES_MIN`] bytes; relative to
    /// the data directory); the body's HMAC-SHA256 goes in `X-Threatlog-Signature`.
    pub secret_file: PathBuf,
    /// The email of the user whose view the bodies show: an event or a sighting this user may
    /// not see is not sent.
    pub user: String,
    /// What is sent: `publish`, `sighting`, or both (the default).
    #[serde(default = "webhook_kinds")]
    pub events: Vec<String>,
}

/// Fewest bytes of a webhook's HMAC key.
pub const WEBHOOK_SECRET_BYTES_MIN: u64 = 16;
/// What a webhook may be told of.
pub const WEBHOOK_KINDS: [&str; 2] = ["publish", "sighting"];

fn webhook_kinds() -> Vec<String> {
    WEBHOOK_KINDS.map(String::from).to_vec()
}

/// `[node]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Organisation name used when `serve` initialises an empty directory.
    pub org_name: Option<String>,
    /// TLP assumed for events without a TLP tag.
    pub default_tlp: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            org_name: None,
            default_tlp: "green".into(),
        }
    }
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address of the REST API.
    pub listen: String,
    /// Largest request body the REST API reads, in bytes; larger requests get 413.
    pub body_bytes_max: u64,
    /// PEM certificate chain for HTTPS; with `tls_key`, the API serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Most connections open at once; further clients wait until one closes.
    pub connections_max: usize,
    /// Most connections open at once from one IP address; further ones are closed at once.
    pub connections_per_address_max: usize,
    /// Longest a client's TLS handshake may take, in seconds.
    pub handshake_timeout_s: u64,
    /// Longest a request head may take to arrive, in seconds, counted from the connection's
    /// start or the previous response: a kept-alive connection idle for as long is closed.
    pub header_timeout_s: u64,
    /// Longest a request body may take to arrive after its head, in seconds.
    pub body_timeout_s: u64,
    /// Longest a response may wait for the client to read it, in seconds.
    pub send_stall_timeout_s: u64,
    /// Most filter terms (values, types, tags, uuids, …, all counted) in one search.
    pub search_terms_max: usize,
    /// Most index entries and events one search may examine.
    pub search_examined_max: u64,
    /// Longest one search may run, in seconds.
    pub search_time_max_s: u64,
    /// Most attributes one search answer may hold (a page of it, when paged).
    pub search_rows_max: usize,
    /// Node work running at once, requests' (reads, writes, searches) and peers' (segments
    /// sent and received); 0 means one per CPU. Further work waits, and a freed place goes
    /// to the user or peer waiting who holds fewest, then who used the least lately. Users
    /// and peers over [`crate::turns::HEAVY_SHARE`] of a worker lately run their work at lower
    /// CPU priority, in as many places again.
    pub workers_max: usize,
    /// Requests in flight at once with one API key; further ones get 429.
    pub requests_per_key_max: usize,
    /// Requests in flight at once from one IP address; further ones get 429.
    pub requests_per_address_max: usize,
}

/// Default of [`ApiConfig::body_bytes_max`]: 50 MiB, the same bound as an import file, since a
/// request body is an event document too.
pub const API_BODY_BYTES_MAX: u64 = 50 * 1024 * 1024;

/// Default of [`ApiConfig::connections_max`]. Each connection is an open file: `serve` raises
/// its open-file limit to the hard limit, and `deploy/threatlog.service` sets that to 65536.
pub const API_CONNECTIONS_MAX: usize = 1024;

/// Default of [`ApiConfig::connections_per_address_max`].
pub const API_CONNECTIONS_PER_ADDRESS_MAX: usize = 64;

/// Default of [`ApiConfig::requests_per_key_max`]: well above what a script or PyMISP client
/// keeps in flight, well below what lets one key crowd out the others.
pub const API_REQUESTS_PER_KEY_MAX: usize = 16;

/// Default of [`ApiConfig::requests_per_address_max`].
pub const API_REQUESTS_PER_ADDRESS_MAX: usize = 32;

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_bytes_max: API_BODY_BYTES_MAX,
            tls_cert: None,
            tls_key: None,
            connections_max: API_CONNECTIONS_MAX,
            connections_per_address_max: API_CONNECTIONS_PER_ADDRESS_MAX,
            handshake_timeout_s: 10,
            header_timeout_s: 15,
            body_timeout_s: 120,
            send_stall_timeout_s: 30,
            search_terms_max: 10_000,
            search_examined_max: 20_000_000,
            search_time_max_s: 60,
            search_rows_max: 100_000,
            workers_max: 0,
            requests_per_key_max: API_REQUESTS_PER_KEY_MAX,
            requests_per_address_max: API_REQUESTS_PER_ADDRESS_MAX,
        }
    }
}

/// `[sync]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Listen address of the gRPC sync service.
    pub listen: String,
    /// How far ahead of this node's clock an entry's origin time may be, in seconds; an entry
    /// further ahead is refused for now and retried later (SPEC §4.2), so that last-writer-
    /// wins cannot be won from the future.
    pub clock_skew_max_s: u64,
    /// Most origins (node keys) new to this node that one peer may introduce, by entries or
    /// stubs of them; its own origin is not counted. Items of further new origins from that
    /// peer are refused with a recorded reason.
    pub origins_per_peer_max: u64,
}

/// Default of [`SyncConfig::clock_skew_max_s`]: ten minutes covers clocks that NTP keeps
/// roughly right, and bounds how far ahead a writer can date its changes.
pub const CLOCK_SKEW_MAX_S: u64 = 600;

/// Largest [`SyncConfig::clock_skew_max_s`] accepted: a day. Beyond it an origin could date
/// its writes far enough ahead to win every later conflict for a day.
pub const CLOCK_SKEW_MAX_S_LIMIT: u64 = 86_400;

/// Default of [`SyncConfig::origins_per_peer_max`]: a relay of a large sharing community
/// passes on a few hundred nodes' logs, while a peer inventing origins (each a chain this node
/// would keep forever) is stopped after this many.
pub const ORIGINS_PER_PEER_MAX: u64 = 1000;

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7443".into(),
            clock_skew_max_s: CLOCK_SKEW_MAX_S,
            origins_per_peer_max: ORIGINS_PER_PEER_MAX,
        }
    }
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest import file, in bytes.
    pub import_file_bytes_max: u64,
}

/// Default of [`LimitsConfig::import_file_bytes_max`]: 50 MiB holds the largest MISP event
/// exports seen in practice while bounding what one import holds in memory.
pub const IMPORT_FILE_BYTES_MAX: u64 = 50 * 1024 * 1024;

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            import_file_bytes_max: IMPORT_FILE_BYTES_MAX,
        }
    }
}

/// `[views]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ViewsConfig {
    /// Over-correlation threshold.
    pub correlation_max: usize,
}

impl Default for ViewsConfig {
    fn default() -> Self {
        Self {
            correlation_max: 100,
        }
    }
}

/// `[feeds]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// Seconds between fetches of every configured feed while `serve` runs (0: never).
    pub fetch_interval_s: u64,
}

/// Default of [`FeedsConfig::fetch_interval_s`]: hourly, as MISP's default feed fetch job.
pub const FEED_FETCH_INTERVAL_S: u64 = 3600;

impl Default for FeedsConfig {
    fn default() -> Self {
        Self {
            fetch_interval_s: FEED_FETCH_INTERVAL_S,
        }
    }
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Sign a checkpoint of the node's own log after this many new entries.
    pub checkpoint_entries: u64,
    /// Sign a checkpoint at least this often while the log grows, in seconds (`serve` only).
    pub checkpoint_interval_s: u64,
}

/// Default of [`AuditConfig::checkpoint_entries`]: one signature per thousand entries costs
/// nothing next to the appends, and bounds what an unsigned tail can hold.
pub const CHECKPOINT_ENTRIES: u64 = 1000;
/// Default of [`AuditConfig::checkpoint_interval_s`]: a quiet node still states its size
/// every minute.
pub const CHECKPOINT_INTERVAL_S: u64 = 60;

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_entries: CHECKPOINT_ENTRIES,
            checkpoint_interval_s: CHECKPOINT_INTERVAL_S,
        }
    }
}

/// `[catalog]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// A misp-taxonomies directory (`<namespace>/machinetag.json`) that `serve` loads on
    /// start; relative to the data directory. None: only `threatlog taxonomy load`.
    pub taxonomies_dir: Option<PathBuf>,
    /// A misp-galaxy directory (`galaxies/`, `clusters/`) that `serve` loads on start;
    /// relative to the data directory.
    pub galaxies_dir: Option<PathBuf>,
}

impl Config {
    /// Reads `DIR/threatlog.toml`, or the defaults when the file does not exist.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text, &path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parses and validates configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks value ranges.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            reason,
        };
        if !TLP_LEVELS.contains(&self.node.default_tlp.as_str()) {
            return Err(invalid(
                "node.default_tlp",
                format!(
                    "'{}' is not one of {}",
                    self.node.default_tlp,
                    TLP_LEVELS.join(", ")
                ),
            ));
        }
        for (field, listen) in [
            ("api.listen", &self.api.listen),
            ("sync.listen", &self.sync.listen),
        ] {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    field,
                    format!("'{listen}' is not an address like 127.0.0.1:8080"),
                ));
            }
        }
        if self.api.tls_cert.is_some() != self.api.tls_key.is_some() {
            return Err(invalid(
                "api.tls_cert",
                "set both api.tls_cert and api.tls_key for HTTPS, or neither".into(),
            ));
        }
        if self.sync.clock_skew_max_s > CLOCK_SKEW_MAX_S_LIMIT {
            return Err(invalid(
                "sync.clock_skew_max_s",
                format!("must be at most {CLOCK_SKEW_MAX_S_LIMIT} (a day)"),
            ));
        }
        if self.api.body_bytes_max == 0 {
            return Err(invalid("api.body_bytes_max", "must be above 0".into()));
        }
        if self.audit.checkpoint_entries == 0 {
            return Err(invalid(
                "audit.checkpoint_entries",
                "must be above 0".into(),
            ));
        }
        if self.audit.checkpoint_interval_s == 0 {
            return Err(invalid(
                "audit.checkpoint_interval_s",
                "must be above 0".into(),
            ));
        }
        for hook in &self.webhook {
            let field = "webhook.url";
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://"))
                || hook.url.parse::<hyper::Uri>().is_err()
            {
                let reason = format!("'{}' is not an http:// or https:// URL", hook.url);
                return Err(invalid(field, reason));
            }
            if let Some(kind) =
                (hook.events.iter()).find(|kind| !WEBHOOK_KINDS.contains(&kind.as_str()))
            {
                let reason = format!("'{kind}' is not one of {}", WEBHOOK_KINDS.join(", "));
                return Err(invalid("webhook.events", reason));
            }
        }
        if self.limits.import_file_bytes_max == 0 {
            return Err(invalid(
                "limits.import_file_bytes_max",
                "must be above 0".into(),
            ));
        }
        Ok(())
    }

    /// The template with `org_name` filled in.
    pub fn template(org_name: &str) -> String {
        let quoted = toml::Value::String(org_name.to_string()).to_string();
        TEMPLATE.replacen(
            "# org_name = \"Example Org\"",
            &format!("org_name = {quoted}"),
            1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_the_defaults() {
        let config = Config::parse(TEMPLATE, Path::new("t.toml")).unwrap();
        assert_eq!(config, Config::default());
        let named = Config::parse(&Config::template("ACME \"CERT\""), Path::new("t.toml")).unwrap();
        assert_eq!(named.node.org_name.as_deref(), Some("ACME \"CERT\""));
    }

    #[test]
    fn bad_values_name_the_field() {
        let error = Config::parse("[node]\ndefault_tlp = \"purple\"\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(error, "t.toml: node.default_tlp: 'purple' is not one of clear, green, amber, amber+strict, red");
        let error = Config::parse("[api]\nlisten = \"nowhere\"\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("api.listen"), "{error}");
        let error = Config::parse("[api]\ntls_cert = \"a.crt\"\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "t.toml: api.tls_cert: set both api.tls_cert and api.tls_key for HTTPS, or neither"
        );
        let error = Config::parse("[sync]\nclock_skew_max_s = 86401\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "t.toml: sync.clock_skew_max_s: must be at most 86400 (a day)"
        );
        let error = Config::parse("[bogus]\n", Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field"), "{error}");
    }
}
