//! Webhooks (`[[webhook]]` in the configuration): while `serve` runs, each endpoint is POSTed
//! a JSON body for every event published and every sighting added that reaches the log —
//! made here or received from a peer — and that the webhook's user may see, as REST shows it
//! to that user:
//!
//! - `{"kind": "publish", "Event": {…}}`: the event as `events/view` shows it;
//! - `{"kind": "sighting", "Sighting": {…, "attribute_uuid", "event_uuid"}}`.
//!
//! Each body carries `X-Threatlog-Signature: sha256=<hex HMAC-SHA256 of the body>` under the
//! webhook's key, `X-Threatlog-Event` (the kind) and `X-Threatlog-Delivery` (a uuid the
//! retries of one body share). Bodies go in the order entries arrived; one that fails (no
//! answer, or not 2xx) is tried again after 0.5, 1, 2, 4 and 8 s, then dropped with a warning.
//! How far each webhook got is kept in the node's local state, so a restart resumes there;
//! a new webhook starts at the end of the log.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::access::{attribute_visible, event_access};
use super::auth::{caller_by_email, Caller};
use super::error::ApiError;
use super::events::render::event_json;
use crate::config::{WebhookConfig, WEBHOOK_SECRET_BYTES_MIN};
use crate::interop::io::http::Client;
use crate::log::VerifiedEntry;
use crate::node::Node;
use crate::proto::{op::Op, RecordKind};
use crate::store::Held;
use crate::view::read;

/// Most attempts at one body: the first and four retries.
pub const ATTEMPTS_MAX: u32 = 5;
/// Wait before the first retry, doubled before each next one.
pub const RETRY_FIRST_MS: u64 = 500;
/// How often a webhook looks for new entries when it has caught up.
pub const POLL_MS: u64 = 500;
/// Entries read from the log at once.
const ARRIVALS_PER_READ: usize = 256;
/// Largest webhook key file read.
const SECRET_BYTES_MAX: u64 = 4096;

/// A configured webhook, ready to deliver.
struct Webhook {
    /// Its configuration.
    config: WebhookConfig,
    /// The HMAC key.
    secret: Vec<u8>,
    /// The HTTP client its POSTs go through.
    client: Client,
    /// Where in the node's local state its position is kept.
    cursor_key: Vec<u8>,
}

/// Starts a delivery task for each configured webhook, stopping when `stopped` says so; an
/// error names the webhook whose key file or user is wrong, before any task starts.
pub fn start(
    node: &Arc<Node>,
    stopped: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let mut hooks = Vec::new();
    for config in &node.config.webhook {
        hooks.push(prepare(node, config).map_err(|why| format!("webhook {}: {why}", config.url))?);
    }
    Ok(hooks
        .into_iter()
        .map(|hook| {
            let (node, stopped) = (Arc::clone(node), stopped.clone());
            tokio::task::spawn_blocking(move || deliver_all(&node, &hook, &stopped))
        })
        .collect())
}

/// Reads the webhook's key and finds its user.
fn prepare(node: &Node, config: &WebhookConfig) -> Result<Webhook, String> {
    let path = node.store.dir().join(&config.secret_file);
    let mut secret = Vec::new();
    std::fs::File::open(&path)
        .and_then(|file| file.take(SECRET_BYTES_MAX + 1).read_to_end(&mut secret))
        .map_err(|error| format!("cannot read its key file {}: {error}", path.display()))?;
    let size = secret.len() as u64;
    if !(WEBHOOK_SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&size) {
        return Err(format!(
            "its key file {} holds {size} bytes; give {WEBHOOK_SECRET_BYTES_MIN} to \
             {SECRET_BYTES_MAX} random bytes",
            path.display()
        ));
    }
    caller_by_email(node, &config.user)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("no enabled user {} on this node", config.user))?;
    let client = Client::new(Vec::new(), HeaderMap::new())?;
    let cursor_key = format!(
        "webhook-cursor:{}",
        hex::encode(Sha256::digest(&config.url))
    );
    Ok(Webhook {
        config: config.clone(),
        secret,
        client,
        cursor_key: cursor_key.into_bytes(),
    })
}

/// Delivers `hook`'s bodies until `stopped` says stop.
fn deliver_all(node: &Node, hook: &Webhook, stopped: &watch::Receiver<bool>) {
    let mut cursor = match node.store.local(&hook.cursor_key) {
        Ok(Some(bytes)) => <[u8; 8]>::try_from(bytes.as_slice()).map_or(0, u64::from_be_bytes),
        _ => node.store.last_arrival(),
    };
    while !*stopped.borrow() {
        let arrivals = match node.store.arrivals_after(cursor, ARRIVALS_PER_READ) {
            Ok(arrivals) => arrivals,
            Err(error) => {
                tracing::warn!(
                    url = hook.config.url,
                    "webhook: cannot read the log: {error}"
                );
                Vec::new()
            }
        };
        if arrivals.is_empty() {
            pause(Duration::from_millis(POLL_MS), stopped);
            continue;
        }
        // The user is looked up for each batch: one deleted, disabled or moved to another
        // organisation sees no more than that from then on.
        let caller = match caller_by_email(node, &hook.config.user) {
            Ok(Some(caller)) => caller,
            Ok(None) => {
                tracing::warn!(
                    url = hook.config.url,
                    "webhook stopped: user {} is gone or disabled",
                    hook.config.user
                );
                return;
            }
            Err(error) => {
                tracing::warn!(
                    url = hook.config.url,
                    "webhook: cannot read its user: {error}"
                );
                pause(Duration::from_millis(POLL_MS), stopped);
                continue;
            }
        };
        for (arrival, id) in arrivals {
            let bodies = match node.store.held(&id) {
                Ok(Some(Held::Entry(entry))) => bodies(node, hook, &caller, &entry),
                Ok(_) => Ok(Vec::new()),
                Err(error) => Err(error.into()),
            };
            let bodies = bodies.unwrap_or_else(|error| {
                tracing::warn!(url = hook.config.url, entry = %id, "webhook: {}", error.message);
                Vec::new()
            });
            for (kind, body) in bodies {
                if !deliver(hook, kind, &body, stopped) {
                    return;
                }
            }
            cursor = arrival;
            let saved = node
                .store
                .put_local(&[(hook.cursor_key.clone(), cursor.to_be_bytes().to_vec())]);
            if let Err(error) = saved {
                tracing::warn!(
                    url = hook.config.url,
                    "webhook: cannot keep its position: {error}"
                );
            }
        }
    }
}

/// The bodies `entry` makes for `hook`: (kind, JSON) of each publish and sighting in it that
/// the hook's user may see.
fn bodies(
    node: &Node,
    hook: &Webhook,
    caller: &Caller,
    entry: &VerifiedEntry,
) -> Result<Vec<(&'static str, Value)>, ApiError> {
    let wants = |kind: &str| hook.config.events.iter().any(|wanted| wanted == kind);
    let Some(event) = entry.event() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for op in &entry.entry().ops {
        match &op.op {
            Some(Op::Set(set)) if set.kind == RecordKind::Event as i32 && wants("publish") => {
                let fields: Map<String, Value> =
                    serde_json::from_slice(&set.fields_json).unwrap_or_default();
                if fields.get("published") != Some(&json!(true)) {
                    continue;
                }
                if let Some(access) = event_access(node, caller, &event)? {
                    let shown = event_json(node, caller, &access, false, false)?;
                    out.push((
                        "publish",
                        json!({"kind": "publish", "Event": shown["Event"]}),
                    ));
                }
            }
            Some(Op::Sighting(sighting)) if wants("sighting") => {
                let (Ok(uuid), Ok(attribute)) = (
                    Uuid::from_slice(&sighting.uuid),
                    Uuid::from_slice(&sighting.attribute),
                ) else {
                    continue;
                };
                let Some(access) = event_access(node, caller, &event)? else {
                    continue;
                };
                let views = node.store.views();
                let record = read::record(&views, RecordKind::Attribute, attribute.as_bytes())?;
                if !record.is_some_and(|record| {
                    attribute_visible(node, caller, &access, &record).unwrap_or(false)
                }) {
                    continue;
                }
                let mut fields: Map<String, Value> =
                    serde_json::from_slice(&sighting.fields_json).unwrap_or_default();
                fields.insert("uuid".into(), json!(uuid.to_string()));
                fields.insert("attribute_uuid".into(), json!(attribute.to_string()));
                fields.insert("event_uuid".into(), json!(event.to_string()));
                out.push(("sighting", json!({"kind": "sighting", "Sighting": fields})));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Sleeps for `duration`, or less once `stopped` says stop.
fn pause(duration: Duration, stopped: &watch::Receiver<bool>) {
    let until = Instant::now() + duration;
    while !*stopped.borrow() && Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The `X-Threatlog-Signature` of `body` under `secret`: `sha256=` and the hex HMAC-SHA256.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs one body until it is accepted (2xx) or [`ATTEMPTS_MAX`] attempts failed; false when
/// the node is stopping (the body is then sent again after the restart).
fn deliver(hook: &Webhook, kind: &str, body: &Value, stopped: &watch::Receiver<bool>) -> bool {
    let body = body.to_string().into_bytes();
    let delivery = Uuid::new_v4().to_string();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-threatlog-signature", &signature(&hook.secret, &body));
    set("x-threatlog-event", kind);
    set("x-threatlog-delivery", &delivery);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut wait = Duration::from_millis(RETRY_FIRST_MS);
    for attempt in 1..=ATTEMPTS_MAX {
        if *stopped.borrow() {
            return false;
        }
        let why = match hook
            .client
            .post(&hook.config.url, headers.clone(), body.clone())
        {
            Ok(status) if (200..300).contains(&status) => return true,
            Ok(status) => format!("HTTP status {status}"),
            Err(error) => error.message,
        };
        tracing::warn!(
            url = hook.config.url,
            delivery,
            attempt,
            "webhook refused: {why}"
        );
        if attempt < ATTEMPTS_MAX {
            pause(wait, stopped);
            wait *= 2;
        }
    }
    tracing::warn!(
        url = hook.config.url,
        delivery,
        "webhook body dropped after {ATTEMPTS_MAX} attempts"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
