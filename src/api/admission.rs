//! Request budgets, so that a flood of requests from one key or one address cannot crowd out
//! everyone else's:
//!
//! - at most `api.requests_per_key_max` requests in flight with one API key, and
//!   `api.requests_per_address_max` from one IP address; a request past either gets 429
//!   with `Retry-After` before anything is read or looked up (the key counts as presented,
//!   so made-up keys are held to their address's budget), and so does a request declaring a
//!   body over `api.body_bytes_max` (413);
//! - an address refused more than [`REFUSALS_FREE`] times lately (a wrong key, 413 or 429, half
//!   of them forgotten each [`REFUSALS_HALF_LIFE`]) gets its further refusals only after
//!   [`REFUSAL_PAUSE`], so that a client hammering the node with requests it refuses (bodies
//!   too large, wrong keys, requests past a budget) cannot keep its workers busy with them;
//!   IPv6 addresses count by their /64, which one host usually holds whole;
//! - the node work of admitted requests then takes fair [`turns`](crate::turns) (the node's,
//!   shared with its peers' sync exchanges).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
use crate::turns::Decaying;

/// Seconds a client turned away with 429 is asked to wait (`Retry-After`).
pub const RETRY_AFTER_S: u64 = 1;

/// Refusals an address may get lately and each at once; further ones wait [`REFUSAL_PAUSE`].
pub const REFUSALS_FREE: f64 = 8.0;

/// How fast past refusals are forgotten: one counts half after this long.
pub const REFUSALS_HALF_LIFE: Duration = Duration::from_secs(1);

/// How long a refusal waits before it is sent, once its address has had [`REFUSALS_FREE`].
pub const REFUSAL_PAUSE: Duration = Duration::from_secs(1);

/// Addresses whose recent refusals are remembered; past it, ones with next to none are
/// forgotten, and while all still count, new addresses are not paced.
const REFUSALS_REMEMBERED: usize = 4096;

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
    /// Refusals lately, per address (IPv6 by /64).
    refusals: Mutex<HashMap<IpAddr, Decaying>>,
}

impl Admission {
    /// The budgets `config` sets.
    pub fn new(config: &ApiConfig) -> Self {
        Admission {
            keys: Slots::new(config.requests_per_key_max),
            addresses: Slots::new(config.requests_per_address_max),
            hasher: RandomState::new(),
            refusals: Mutex::default(),
        }
    }

    /// Counts a refusal of a request from `address`; true when the address has had more
    /// than [`REFUSALS_FREE`] lately, so that this one waits.
    fn refused(&self, address: IpAddr) -> bool {
        // An IPv4 client of a dual-stack listener arrives as `::ffff:a.b.c.d`: counted as
        // its IPv4 address, not by the /64 every IPv4 client shares.
        let address = match address.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
            v4 => v4,
        };
        let now = Instant::now();
        let mut refusals = self
            .refusals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if refusals.len() >= REFUSALS_REMEMBERED && !refusals.contains_key(&address) {
            refusals.retain(|_, count| count.at(now, REFUSALS_HALF_LIFE) >= 1.0);
            if refusals.len() >= REFUSALS_REMEMBERED {
                return false;
            }
        }
        let count = refusals.entry(address).or_insert(Decaying::new(0.0, now));
        *count = count.add(now, REFUSALS_HALF_LIFE, 1.0);
        count.at(now, REFUSALS_HALF_LIFE) > REFUSALS_FREE
    }
}

/// Whether `response` refuses a request that a client flooding the node sends over and over:
/// a missing or wrong key (MISP's 403), a body too large (413), a request past a budget
/// (429). Other refusals are not counted: scripts trying filters or probing what a user may
/// do send runs of them.
fn is_refusal(response: &Response) -> bool {
    let status = response.status();
    status == StatusCode::PAYLOAD_TOO_LARGE
        || status == StatusCode::TOO_MANY_REQUESTS
        || response
            .extensions()
            .get::<ApiError>()
            .is_some_and(|error| *error == ApiError::auth_failed())
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
/// its response is ready; a refusal to an address refused often lately waits
/// [`REFUSAL_PAUSE`] first.
pub async fn admit(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let address = remote(&request);
    let admission = Arc::clone(&state.admission);
    let response = answer(state, address, request, next).await;
    if is_refusal(&response) && admission.refused(address) {
        tracing::debug!("{} for {address}, paced", response.status());
        tokio::time::sleep(REFUSAL_PAUSE).await;
    }
    response
}

/// The answer to `request` from `address` within its budgets.
async fn answer(state: ApiState, address: IpAddr, request: Request, next: Next) -> Response {
    let admission: &Arc<Admission> = &state.admission;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_count_per_address_and_per_ipv6_64_past_the_free_ones() {
        let admission = Admission::new(&ApiConfig::default());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let paced: Vec<bool> = (0..10).map(|_| admission.refused(one)).collect();
        // Over REFUSALS_FREE (8) refusals lately: the ninth and after wait.
        assert_eq!(
            paced,
            [false; 8].into_iter().chain([true; 2]).collect::<Vec<_>>()
        );
        assert!(!admission.refused("192.0.2.2".parse().unwrap()));
        // Two addresses of one /64 count together, another /64 apart.
        for n in 0..8 {
            let address: IpAddr = format!("2001:db8:0:1::{n:x}").parse().unwrap();
            assert!(!admission.refused(address));
        }
        assert!(admission.refused("2001:db8:0:1:ffff::1".parse().unwrap()));
        assert!(!admission.refused("2001:db8:0:2::1".parse().unwrap()));
        // IPv4 clients of a dual-stack listener count by their own address.
        for _ in 0..8 {
            assert!(!admission.refused("::ffff:192.0.2.7".parse().unwrap()));
        }
        assert!(admission.refused("192.0.2.7".parse().unwrap()));
        assert!(!admission.refused("::ffff:192.0.2.8".parse().unwrap()));
    }
}
