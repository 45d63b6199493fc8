//! MISP taxonomies (the misp-taxonomies `<namespace>/machinetag.json` layout) and the
//! exclusivity rules they carry. Pure: the directory reader is
//! [`crate::interop::io::catalog_dir::taxonomies`].
//!
//! A taxonomy has a namespace, predicates and optionally values per predicate; its tags are
//! `namespace:predicate` or `namespace:predicate="value"`. A taxonomy marked `exclusive`
//! allows one of its tags per item (event, attribute, object); a predicate marked `exclusive`
//! allows one value of that predicate per item. TLP is exclusive even when no taxonomy is
//! loaded ([`builtin_rules`]): one of `tlp:clear`, `tlp:white`, `tlp:green`, `tlp:amber`,
//! `tlp:amber+strict`, `tlp:red` per item, except that `clear` and `white` (the same level
//! under two names) may coexist, and `tlp:ex:chr` does not count.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// Largest `machinetag.json` read, in bytes (the largest published one is about 1 MiB).
pub const TAXONOMY_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Most taxonomies loaded from one directory.
pub const TAXONOMIES_MAX: usize = 2_000;
/// Most tags (predicates and values) in one taxonomy.
pub const TAXONOMY_TAGS_MAX: usize = 100_000;

/// Why a taxonomy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is over [`TAXONOMY_FILE_BYTES_MAX`].
    #[error("{path}: {bytes} bytes is over the taxonomy file limit of {max_bytes} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// A file is not a taxonomy.
    #[error("{path}: not a MISP taxonomy: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds more than [`TAXONOMIES_MAX`] taxonomies.
    #[error("{0}: more than {TAXONOMIES_MAX} taxonomies")]
    TooMany(PathBuf),
    /// The directory holds no taxonomy at all.
    #[error("{0}: no <namespace>/machinetag.json found (expected the misp-taxonomies layout)")]
    Empty(PathBuf),
}

/// One predicate of a taxonomy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Predicate {
    /// The predicate, e.g. `amber`.
    pub value: String,
    /// Human-readable form.
    pub expanded: Option<String>,
    /// Longer description.
    pub description: Option<String>,
    /// Tag colour (`#rrggbb`).
    pub colour: Option<String>,
    /// Whether one value of this predicate per item is allowed.
    pub exclusive: bool,
}

/// One value of a predicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The predicate it belongs to.
    pub predicate: String,
    /// The value.
    pub value: String,
    /// Human-readable form.
    pub expanded: Option<String>,
    /// Longer description.
    pub description: Option<String>,
    /// Tag colour.
    pub colour: Option<String>,
}

/// A MISP taxonomy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    /// The namespace, e.g. `tlp`.
    pub namespace: String,
    /// Description.
    pub description: String,
    /// Version number.
    pub version: u64,
    /// Whether one tag of the namespace per item is allowed.
    pub exclusive: bool,
    /// The taxonomy's uuid, when it has one.
    pub uuid: Option<String>,
    /// Human-readable name.
    pub expanded: Option<String>,
    /// Predicates.
    pub predicates: Vec<Predicate>,
    /// Values of predicates.
    pub entries: Vec<Entry>,
}

/// One tag a taxonomy defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxonomyTag {
    /// The tag name.
    pub tag: String,
    /// Human-readable form.
    pub expanded: String,
    /// Description.
    pub description: String,
    /// Colour.
    pub colour: Option<String>,
    /// Whether its predicate is exclusive.
    pub exclusive_predicate: bool,
}

fn string(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_string)
}

fn flag(value: &Value, field: &str) -> bool {
    value.get(field).and_then(Value::as_bool).unwrap_or(false)
}

impl Taxonomy {
    /// Parses a `machinetag.json`.
    pub fn from_json(value: &Value) -> Result<Taxonomy, String> {
        let namespace = string(value, "namespace")
            .filter(|ns| !ns.trim().is_empty() && !ns.contains([':', '"']))
            .ok_or("no valid \"namespace\"")?;
        let predicates: Vec<Predicate> = value
            .get("predicates")
            .and_then(Value::as_array)
            .ok_or("no \"predicates\" list")?
            .iter()
            .filter_map(|p| {
                Some(Predicate {
                    value: string(p, "value")?,
                    expanded: string(p, "expanded"),
                    description: string(p, "description"),
                    colour: string(p, "colour"),
                    exclusive: flag(p, "exclusive"),
                })
            })
            .collect();
        let mut entries = Vec::new();
        for group in value
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(predicate) = string(group, "predicate") else {
                continue;
            };
            for entry in group
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(value) = string(entry, "value") {
                    entries.push(Entry {
                        predicate: predicate.clone(),
                        value,
                        expanded: string(entry, "expanded"),
                        description: string(entry, "description"),
                        colour: string(entry, "colour"),
                    });
                }
            }
        }
        if predicates.len() + entries.len() > TAXONOMY_TAGS_MAX {
            return Err(format!("more than {TAXONOMY_TAGS_MAX} tags"));
        }
        Ok(Taxonomy {
            namespace,
            description: string(value, "description").unwrap_or_default(),
            version: value.get("version").and_then(Value::as_u64).unwrap_or(1),
            exclusive: flag(value, "exclusive"),
            uuid: string(value, "uuid"),
            expanded: string(value, "expanded"),
            predicates,
            entries,
        })
    }

    /// Every tag the taxonomy defines: a predicate without values is a tag itself; a
    /// predicate with values gives one tag per value.
    pub fn tags(&self) -> Vec<TaxonomyTag> {
        let mut out = Vec::new();
        for predicate in &self.predicates {
            let values: Vec<&Entry> = self
                .entries
                .iter()
                .filter(|e| e.predicate == predicate.value)
                .collect();
            if values.is_empty() {
                out.push(TaxonomyTag {
                    tag: format!("{}:{}", self.namespace, predicate.value),
                    expanded: predicate
                        .expanded
                        .clone()
                        .unwrap_or_else(|| predicate.value.clone()),
                    description: predicate.description.clone().unwrap_or_default(),
                    colour: predicate.colour.clone(),
                    exclusive_predicate: predicate.exclusive,
                });
            }
            for entry in values {
                out.push(TaxonomyTag {
                    tag: format!("{}:{}=\"{}\"", self.namespace, predicate.value, entry.value),
                    expanded: entry
                        .expanded
                        .clone()
                        .unwrap_or_else(|| entry.value.clone()),
                    description: entry.description.clone().unwrap_or_default(),
                    colour: entry.colour.clone(),
                    exclusive_predicate: predicate.exclusive,
                });
            }
        }
        out
    }

    /// The exclusivity rule the taxonomy carries, if any.
    pub fn rule(&self) -> Option<ExclusiveRule> {
        let predicates: Vec<String> = self
            .predicates
            .iter()
            .filter(|p| p.exclusive)
            .map(|p| p.value.to_lowercase())
            .collect();
        (self.exclusive || !predicates.is_empty()).then(|| ExclusiveRule {
            namespace: self.namespace.to_lowercase(),
            whole: self.exclusive,
            predicates,
        })
    }
}

/// An exclusivity rule: one tag of `namespace` per item (`whole`), or one value per listed
/// predicate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExclusiveRule {
    /// The namespace, lower-case.
    pub namespace: String,
    /// One tag of the namespace per item.
    pub whole: bool,
    /// Predicates (lower-case) with one value per item.
    pub predicates: Vec<String>,
}

/// The rules that hold with no taxonomy loaded: TLP is exclusive.
pub fn builtin_rules() -> Vec<ExclusiveRule> {
    vec![ExclusiveRule {
        namespace: "tlp".into(),
        whole: true,
        predicates: Vec::new(),
    }]
}

/// A tag split into namespace, predicate and value (`ns:predicate="value"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineTag {
    /// Namespace, lower-case.
    pub namespace: String,
    /// Predicate, lower-case.
    pub predicate: String,
    /// Value, when the tag has one.
    pub value: Option<String>,
}

/// Splits a machine tag; `None` for a tag without a namespace.
pub fn parse_tag(name: &str) -> Option<MachineTag> {
    let (namespace, rest) = name.trim().split_once(':')?;
    let (predicate, value) = match rest.split_once('=') {
        Some((predicate, value)) => (predicate, Some(value.trim_matches('"').to_string())),
        None => (rest, None),
    };
    Some(MachineTag {
        namespace: namespace.to_lowercase(),
        predicate: predicate.to_lowercase(),
        value,
    })
}

/// TLP predicates that name the same level and may coexist.
fn same_tlp_level(a: &str, b: &str) -> bool {
    matches!((a, b), ("clear", "white") | ("white", "clear"))
}

/// The first of `existing` that `new` may not join under `rules`, with the reason, e.g.
/// `tlp:amber` for `tlp:red`.
pub fn conflict(rules: &[ExclusiveRule], existing: &[String], new: &str) -> Option<String> {
    let tag = parse_tag(new)?;
    if tag.namespace == "tlp" && tag.predicate == "ex:chr" {
        return None;
    }
    for rule in rules.iter().filter(|rule| rule.namespace == tag.namespace) {
        for other_name in existing {
            if other_name.eq_ignore_ascii_case(new) {
                continue;
            }
            let Some(other) = parse_tag(other_name) else {
                continue;
            };
            if other.namespace != tag.namespace {
                continue;
            }
            if tag.namespace == "tlp"
                && (other.predicate == "ex:chr" || same_tlp_level(&tag.predicate, &other.predicate))
            {
                continue;
            }
            if rule.whole {
                return Some(format!(
                    "The tag {new} cannot be attached: the taxonomy {} is exclusive and {other_name} is already attached.",
                    rule.namespace
                ));
            }
            if other.predicate == tag.predicate
                && rule.predicates.contains(&tag.predicate)
                && other.value != tag.value
            {
                return Some(format!(
                    "The tag {new} cannot be attached: the predicate {}:{} is exclusive and {other_name} is already attached.",
                    rule.namespace, tag.predicate
                ));
            }
        }
    }
    None
}

/// The first conflict inside one list of tags (as attached together), in list order.
pub fn list_conflict(rules: &[ExclusiveRule], tags: &[String]) -> Option<String> {
    tags.iter()
        .enumerate()
        .find_map(|(index, tag)| conflict(rules, &tags[..index], tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tlp_is_exclusive_without_any_taxonomy() {
        let rules = builtin_rules();
        let amber = names(&["tlp:amber"]);
        let message = conflict(&rules, &amber, "tlp:red").expect("refused");
        assert!(
            message.contains("tlp:amber is already attached"),
            "{message}"
        );
        assert!(conflict(&rules, &amber, "TLP:GREEN").is_some());
        assert!(
            conflict(&rules, &amber, "tlp:amber").is_none(),
            "same tag again"
        );
        assert!(conflict(&rules, &amber, "tlp:ex:chr").is_none());
        assert!(conflict(&rules, &names(&["tlp:ex:chr"]), "tlp:red").is_none());
        assert!(conflict(&rules, &names(&["tlp:clear"]), "tlp:white").is_none());
        assert!(conflict(&rules, &names(&["tlp:white"]), "tlp:clear").is_none());
        assert!(conflict(&rules, &names(&["tlp:clear"]), "tlp:amber+strict").is_some());
        assert!(conflict(&rules, &amber, "pap:red").is_none());
        assert!(list_conflict(&rules, &names(&["tlp:green", "x", "tlp:red"])).is_some());
        assert!(list_conflict(&rules, &names(&["tlp:green", "tlp:ex:chr"])).is_none());
    }

    #[test]
    fn exclusive_predicates_allow_one_value_each() {
        let taxonomy = Taxonomy::from_json(&serde_json::json!({
            "namespace": "admiralty-scale",
            "predicates": [
                {"value": "source-reliability", "exclusive": true},
                {"value": "information-credibility", "exclusive": true}
            ],
            "values": [
                {"predicate": "source-reliability", "entry": [{"value": "a"}, {"value": "b"}]},
                {"predicate": "information-credibility", "entry": [{"value": "1"}]}
            ]
        }))
        .unwrap();
        assert_eq!(taxonomy.tags().len(), 3);
        assert_eq!(
            taxonomy.tags()[0].tag,
            "admiralty-scale:source-reliability=\"a\""
        );
        let rules = vec![taxonomy.rule().unwrap()];
        let existing = names(&["admiralty-scale:source-reliability=\"a\""]);
        assert!(conflict(
            &rules,
            &existing,
            "admiralty-scale:source-reliability=\"b\""
        )
        .is_some());
        assert!(conflict(
            &rules,
            &existing,
            "admiralty-scale:information-credibility=\"1\""
        )
        .is_none());
    }
}
