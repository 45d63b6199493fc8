//! The attribute type registry: MISP's `describeTypes.json`, embedded at build time.
//!
//! The registry is parsed once, on first use, into [`TypeRegistry`]. An [`AttributeType`] can only
//! be obtained from it ([`TypeRegistry::lookup`]), so code that holds one never re-checks the
//! name (parse, don't validate).

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::ModelError;

/// MISP's `describeTypes.json` (the `result` of `GET /attributes/describeTypes.json`), embedded
/// so that the product never reads the reference data at run time.
const DESCRIBE_TYPES_JSON: &str = include_str!("describe_types.json");

/// The registry built from [`DESCRIBE_TYPES_JSON`] on first use.
static REGISTRY: LazyLock<TypeRegistry> = LazyLock::new(|| {
    TypeRegistry::from_describe_types(DESCRIBE_TYPES_JSON)
        .expect("the embedded describeTypes.json is fixed at build time and checked by tests")
});

/// MISP's non-correlating types. MISP's own `Attribute::NON_CORRELATING_TYPES` is comment,
/// http-method, aba-rtn, gender, counter, integer, float, port, nationality, cortex, boolean and
/// anonymised. SPEC §5 adds the text-like types, whose values are prose or arbitrary data where an
/// equal value says nothing about a shared threat: text, other, hex; and the measurement types
/// datetime and size-in-bytes, where equal values are coincidences.
const NON_CORRELATING_TYPES: &[&str] = &[
    "comment",
    "http-method",
    "aba-rtn",
    "gender",
    "counter",
    "integer",
    "float",
    "port",
    "nationality",
    "cortex",
    "boolean",
    "anonymised",
    "text",
    "other",
    "hex",
    "datetime",
    "size-in-bytes",
];

/// The registry: every MISP attribute type and category and which categories each type allows.
pub fn registry() -> &'static TypeRegistry {
    &REGISTRY
}

/// What the registry knows about one type. Private: only the registry creates these.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeInfo {
    /// The MISP type name, e.g. "ip-dst".
    name: String,
    /// The category MISP picks when none is given.
    default_category: String,
    /// Whether new attributes of this type are IDS signatures unless told otherwise.
    to_ids: bool,
    /// The categories that allow this type, in registry category order.
    categories: Vec<String>,
    /// Whether equal values of this type correlate (see [`NON_CORRELATING_TYPES`]).
    correlates: bool,
}

/// A valid MISP attribute type. Only the registry can make one ([`TypeRegistry::lookup`], or
/// `str::parse` and serde, which look the name up). Serializes as its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeType(&'static TypeInfo);

impl AttributeType {
    /// The MISP type name, e.g. "ip-dst|port".
    pub fn name(&self) -> &'static str {
        &self.0.name
    }

    /// The category MISP uses when an attribute of this type comes without one.
    pub fn default_category(&self) -> &'static str {
        &self.0.default_category
    }

    /// Whether attributes of this type are IDS signatures unless the input says otherwise.
    pub fn to_ids_default(&self) -> bool {
        self.0.to_ids
    }

    /// Whether MISP allows `category` for this type.
    pub fn allows_category(&self, category: &str) -> bool {
        self.0.categories.iter().any(|allowed| allowed == category)
    }

    /// Whether every value of this type has two halves joined by `|` (the name contains `|`,
    /// e.g. "filename|sha256"). `malware-sample` values may also be `filename|md5`; see
    /// [`crate::model::value::split_composite`].
    pub fn is_composite(&self) -> bool {
        self.0.name.contains('|')
    }

    /// Whether equal values of this type correlate across events. False for MISP's
    /// non-correlating types and the text-like and measurement types listed in SPEC §5:
    /// comment, http-method, aba-rtn, gender, counter, integer, float, port, nationality, cortex,
    /// boolean, anonymised, text, other, hex, datetime, size-in-bytes.
    pub fn correlates(&self) -> bool {
        self.0.correlates
    }
}

impl fmt::Debug for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AttributeType").field(&self.name()).finish()
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for AttributeType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for AttributeType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for AttributeType {
    type Err = ModelError;

    /// The registry type called `name`, or [`ModelError::UnknownType`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        registry()
            .lookup(name)
            .ok_or_else(|| ModelError::UnknownType {
                type_name: name.to_string(),
            })
    }
}

/// The raw shape of `describeTypes.json`.
#[derive(Deserialize)]
struct DescribeTypesFile {
    result: DescribeTypes,
}

/// The `result` object of `describeTypes.json`.
#[derive(Deserialize)]
struct DescribeTypes {
    sane_defaults: HashMap<String, SaneDefault>,
    types: Vec<String>,
    categories: Vec<String>,
    category_type_mappings: HashMap<String, Vec<String>>,
}

/// One entry of `sane_defaults`.
#[derive(Deserialize)]
struct SaneDefault {
    default_category: String,
    /// 0 or 1 in the file.
    to_ids: u8,
}

/// MISP's attribute types and categories, in `describeTypes.json` order.
pub struct TypeRegistry {
    /// Type names in file order.
    types: Vec<String>,
    /// Category names in file order.
    categories: Vec<String>,
    /// Per category, its types in file order; indexed like `categories`.
    category_types: Vec<Vec<String>>,
    /// Per type name, its info. Leaked so that [`AttributeType`] can be `Copy` and `'static`:
    /// the registry is built once per process (a `LazyLock`), and by tests.
    infos: HashMap<String, &'static TypeInfo>,
}

impl TypeRegistry {
    /// Parses and cross-checks a `describeTypes.json` document.
    pub(crate) fn from_describe_types(text: &str) -> Result<TypeRegistry, String> {
        let file: DescribeTypesFile =
            serde_json::from_str(text).map_err(|e| format!("describeTypes.json: {e}"))?;
        let raw = file.result;
        let mut category_types = Vec::with_capacity(raw.categories.len());
        for category in &raw.categories {
            let types = raw
                .category_type_mappings
                .get(category)
                .ok_or_else(|| format!("category '{category}' has no type mapping"))?;
            category_types.push(types.clone());
        }
        let mut infos = HashMap::with_capacity(raw.types.len());
        for name in &raw.types {
            let defaults = raw
                .sane_defaults
                .get(name)
                .ok_or_else(|| format!("type '{name}' has no sane defaults"))?;
            let categories: Vec<String> = raw
                .categories
                .iter()
                .zip(&category_types)
                .filter(|(_, types)| types.contains(name))
                .map(|(category, _)| category.clone())
                .collect();
            if !categories.contains(&defaults.default_category) {
                return Err(format!("default category of '{name}' does not allow it"));
            }
            let info = TypeInfo {
                name: name.clone(),
                default_category: defaults.default_category.clone(),
                to_ids: defaults.to_ids != 0,
                categories,
                correlates: !NON_CORRELATING_TYPES.contains(&name.as_str()),
            };
            infos.insert(name.clone(), &*Box::leak(Box::new(info)));
        }
        Ok(TypeRegistry {
            types: raw.types,
            categories: raw.categories,
            category_types,
            infos,
        })
    }

    /// All type names, in `describeTypes.json` order.
    pub fn types(&self) -> &[String] {
        &self.types
    }

    /// All category names, in `describeTypes.json` order.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// The type called `name` (exact, case-sensitive, as MISP), if there is one.
    pub fn lookup(&self, name: &str) -> Option<AttributeType> {
        self.infos.get(name).map(|info| AttributeType(info))
    }

    /// The types allowed in `category`, in file order; `None` for an unknown category.
    pub fn category_types(&self, category: &str) -> Option<&[String]> {
        let position = self.categories.iter().position(|c| c == category)?;
        self.category_types.get(position).map(Vec::as_slice)
    }

    /// Whether `category` is one of MISP's categories (exact, case-sensitive).
    pub fn is_category(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }

    /// The `describeTypes.json` document that `GET /attributes/describeTypes.json` serves,
    /// rebuilt from the registry: `{"result": {"sane_defaults", "types", "categories",
    /// "category_type_mappings"}}`, with `to_ids` as 0/1 as MISP sends it.
    pub fn describe_types_json(&self) -> Value {
        let mut sane_defaults = Map::new();
        for name in &self.types {
            if let Some(info) = self.infos.get(name) {
                sane_defaults.insert(
                    name.clone(),
                    json!({"default_category": info.default_category, "to_ids": u8::from(info.to_ids)}),
                );
            }
        }
        let mut mappings = Map::new();
        for (category, types) in self.categories.iter().zip(&self.category_types) {
            mappings.insert(category.clone(), json!(types));
        }
        json!({"result": {
            "sane_defaults": sane_defaults,
            "types": self.types,
            "categories": self.categories,
            "category_type_mappings": mappings,
        }})
    }
}

impl fmt::Debug for TypeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeRegistry")
            .field("types", &self.types.len())
            .field("categories", &self.categories.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_counts_and_lookups() {
        let registry = registry();
        assert_eq!(registry.types().len(), 194);
        assert_eq!(registry.categories().len(), 16);
        let ip = registry.lookup("ip-dst").expect("ip-dst is a MISP type");
        assert_eq!(ip.name(), "ip-dst");
        assert_eq!(ip.default_category(), "Network activity");
        assert!(ip.to_ids_default());
        assert!(ip.allows_category("Network activity"));
        assert!(!ip.allows_category("Person"));
        assert!(!ip.allows_category("network activity"));
        assert!(registry.lookup("IP-DST").is_none());
        assert!(registry.lookup("bar").is_none());
        assert!(registry.is_category("Payload delivery"));
        assert!(!registry.is_category("Payload"));
        assert!(registry.category_types("Nope").is_none());
        let payload_type = registry.category_types("Payload type").expect("a category");
        assert_eq!(payload_type.len(), 4);
    }

    #[test]
    fn composite_and_correlation_flags() {
        let registry = registry();
        let flags = |name: &str| {
            let ty = registry.lookup(name).expect("type in registry");
            (ty.is_composite(), ty.correlates())
        };
        assert_eq!(flags("ip-dst|port"), (true, true));
        assert_eq!(flags("filename|sha256"), (true, true));
        assert_eq!(flags("md5"), (false, true));
        assert_eq!(flags("comment"), (false, false));
        assert_eq!(flags("text"), (false, false));
        assert_eq!(flags("port"), (false, false));
        assert_eq!(flags("size-in-bytes"), (false, false));
        for name in NON_CORRELATING_TYPES {
            assert!(registry.lookup(name).is_some(), "{name} is a MISP type");
        }
    }

    #[test]
    fn attribute_type_serializes_as_name() {
        let ty = registry().lookup("domain|ip").expect("a MISP type");
        assert_eq!(
            serde_json::to_value(ty).expect("a string"),
            json!("domain|ip")
        );
        assert_eq!(format!("{ty:?}"), "AttributeType(\"domain|ip\")");
        let back: AttributeType = serde_json::from_value(json!("domain|ip")).expect("a type");
        assert_eq!(back, ty);
        assert!(serde_json::from_value::<AttributeType>(json!("bar")).is_err());
        assert_eq!(
            "bar".parse::<AttributeType>(),
            Err(ModelError::UnknownType {
                type_name: "bar".to_string()
            })
        );
        assert_eq!(ty.to_string(), "domain|ip");
    }

    #[test]
    fn inconsistent_files_are_refused() {
        let no_mapping = r#"{"result": {"sane_defaults": {}, "types": [], "categories": ["A"],
            "category_type_mappings": {}}}"#;
        assert!(TypeRegistry::from_describe_types(no_mapping).is_err());
        let bad_default = r#"{"result": {"sane_defaults": {"t": {"default_category": "B",
            "to_ids": 0}}, "types": ["t"], "categories": ["A"],
            "category_type_mappings": {"A": ["t"]}}}"#;
        assert!(TypeRegistry::from_describe_types(bad_default).is_err());
    }
}
