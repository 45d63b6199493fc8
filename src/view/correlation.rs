//! Correlation (SPEC §5): events sharing an attribute value, answered from the value index at
//! read time. There is no pairwise table; each correlating value costs one prefix scan.

use std::collections::BTreeMap;
use uuid::Uuid;

use super::index::value_prefix;
use super::{KvError, Table, ViewRead};

/// What the value index says about one event's correlating values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Correlations {
    /// Other events sharing a correlating value, with the shared values, in uuid order.
    pub related: BTreeMap<Uuid, Vec<String>>,
    /// Values matching more than the configured number of attributes: reported instead of
    /// listed.
    pub over_correlating: Vec<String>,
}

/// The (attribute, event) pairs whose correlating value is `value`; `None` when there are
/// more than `limit`.
pub fn value_matches(
    kv: &dyn ViewRead,
    value: &str,
    limit: usize,
) -> Result<Option<Vec<(Uuid, Uuid)>>, KvError> {
    let prefix = value_prefix(value);
    let mut out = Vec::new();
    for (key, entry) in kv.scan(Table::Index, &prefix)? {
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
            return Ok(None);
        }
    }
    Ok(Some(out))
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
    for value in values {
        match value_matches(kv, value, limit)? {
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
