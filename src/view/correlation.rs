//! Correlation (SPEC §5): events sharing an attribute value, answered from the value index at
//! read time. There is no pairwise table; each correlating value costs one prefix scan.

use std::collections::BTreeMap;
use uuid::Uuid;

use super::index::value_prefix;
use super::{KeyValue, KvError, Table, ViewRead};

/// What the value index says about one event's correlating values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Correlations {
    /// Other events sharing a correlating value, with the shared values, in uuid order.
    pub related: BTreeMap<Uuid, Vec<String>>,
    /// Values matching more than the configured number of attributes: reported instead of
    /// listed.
    pub over_correlating: Vec<String>,
}

/// (attribute, event) pairs sharing a correlating value; `None` when there are more than the
/// limit asked for.
pub type Matches = Option<Vec<(Uuid, Uuid)>>;

/// The (attribute, event) pairs whose correlating value is `value`; `None` when there are
/// more than `limit`.
pub fn value_matches(kv: &dyn ViewRead, value: &str, limit: usize) -> Result<Matches, KvError> {
    let mut found = values_matches(kv, std::slice::from_ref(&value.to_string()), limit)?;
    Ok(found.pop().flatten())
}

/// [`value_matches`] of each of `values`, with one index cursor.
pub fn values_matches(
    kv: &dyn ViewRead,
    values: &[String],
    limit: usize,
) -> Result<Vec<Matches>, KvError> {
    let prefixes: Vec<Vec<u8>> = values.iter().map(|value| value_prefix(value)).collect();
    let cap = limit.saturating_add(1);
    let scanned = kv.scan_each(Table::Index, &prefixes, cap)?;
    prefixes
        .iter()
        .zip(scanned)
        .map(|(prefix, pairs)| {
            let capped = pairs.len() >= cap;
            match correlating(prefix, pairs, limit) {
                // The cap cut the scan short, but some pairs did not correlate: the whole
                // value decides.
                Some(_) if capped => Ok(correlating(prefix, kv.scan(Table::Index, prefix)?, limit)),
                found => Ok(found),
            }
        })
        .collect()
}

/// The (attribute, event) pairs among value-index `pairs` under `prefix` that correlate;
/// `None` when there are more than `limit`.
fn correlating(prefix: &[u8], pairs: Vec<KeyValue>, limit: usize) -> Matches {
    let mut out = Vec::new();
    for (key, entry) in pairs {
        // Index values are the event uuid followed by the correlation flag.
        if entry.len() != 17 || entry[16] != 1 {
            continue;
        }
        let (Ok(attribute), Ok(event)) = (
            Uuid::from_slice(&key[prefix.len()..]),
            Uuid::from_slice(&entry[..16]),
        ) else {
            continue;
        };
        out.push((attribute, event));
        if out.len() > limit {
            return None;
        }
    }
    Some(out)
}

/// The correlations of `event` whose correlating values are `values` (from
/// [`crate::model::correlation_values`] of its live attributes).
pub fn correlations(
    kv: &dyn ViewRead,
    event: &Uuid,
    values: &[String],
    limit: usize,
) -> Result<Correlations, KvError> {
    let mut result = Correlations::default();
    for (value, matches) in values.iter().zip(values_matches(kv, values, limit)?) {
        match matches {
            None => result.over_correlating.push(value.clone()),
            Some(matches) => {
                for (_, other) in matches.into_iter().filter(|(_, other)| other != event) {
                    let shared = result.related.entry(other).or_default();
                    if !shared.contains(value) {
                        shared.push(value.clone());
                    }
                }
            }
        }
    }
    Ok(result)
}
