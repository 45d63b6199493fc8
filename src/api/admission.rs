//! Request budgets, so that a flood of requests from one key or one address cannot crowd out
//! everyone else's:
//!
//! - at most `api.requests_per_key_max` requests in flight with one API key, and
//!   `api.requests_per_address_max` from one IP address; a request past either gets 429
//!   with `Retry-After` before anything is read or looked up (the key counts as presented,
//!   so made-up keys are held to their address's budget), and so does a request declaring a
//!   body over `api.body_bytes_max` (413);
//! - the node work of admitted requests then takes fair [`turns`](crate::turns) (the node's,
//!   shared with its peers' sync exchanges).

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::api_key;
use super::connections::Remote;
use super::error::ApiError;
use super::request::declared_too_large;
use super::ApiState;
use crate::config::ApiConfig;
use crate::slots::Slots;

/// Seconds a client turned away with 429 is asked to wait (`Retry-After`).
pub const RETRY_AFTER_S: u64 = 1;

/// The address of `request`; the unspecified address when the listener did not say.
pub fn remote(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<Remote>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |remote| remote.0.ip())
}

/// The budgets of one API: requests in flight per key and per address.
pub struct Admission {
    /// Requests in flight per presented key (by a keyed hash: keys are not kept).
    keys: Slots<u64>,
    /// Requests in flight per address.
    addresses: Slots<IpAddr>,
    /// Hashes presented keys, with a key of its own so collisions cannot be aimed at.
    hasher: RandomState,
}

impl Admission {
    /// The budgets `config` sets.
    pub fn new(config: &ApiConfig) -> Self {
        Admission {
            keys: Slots::new(config.requests_per_key_max),
            addresses: Slots::new(config.requests_per_address_max),
            hasher: RandomState::new(),
        }
    }
}

/// 429 for a request past a budget, naming the setting.
fn too_many(what: &str, setting: &str, max: usize) -> Response {
    let message = format!(
        "Too many requests in flight {what} (at most {max}, api.{setting}); retry once one is answered."
    );
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    response
}

/// Admits a request within its address's and its key's budgets, holding its places until
/// its response is ready.
pub async fn admit(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let admission: &Arc<Admission> = &state.admission;
    let address = remote(&request);
    let Some(_address) = admission.addresses.take(address) else {
        tracing::debug!("429 for {address}: requests_per_address_max");
        return too_many(
            "from this address",
            "requests_per_address_max",
            admission.addresses.max(),
        );
    };
    // A body declared too large is refused before the key is even looked up.
    if let Some(error) = declared_too_large(request.headers(), state.body_bytes_max) {
        return error.into_response();
    }
    let key = api_key(request.headers()).map(|key| admission.hasher.hash_one(key));
    let _key = match key {
        Some(key) => match admission.keys.take(key) {
            Some(slot) => Some(slot),
            None => {
                tracing::debug!("429 for a key from {address}: requests_per_key_max");
                return too_many(
                    "with this API key",
                    "requests_per_key_max",
                    admission.keys.max(),
                );
            }
        },
        None => None,
    };
    next.run(request).await
}
