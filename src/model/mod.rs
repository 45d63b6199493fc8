//! The MISP data model: pure types, no IO.
//!
//! - [`types`]: the attribute type registry, equal to MISP's `describeTypes.json` (embedded at
//!   build time). Only the registry can hand out an [`AttributeType`], so holding one proves the
//!   type name is valid.
//! - [`value`]: validation and normalisation of attribute values per type, the way MISP does it
//!   (lower-case hashes and domains, canonical IPs, both halves of composite values), plus the
//!   values the index and the correlation engine use.
//! - [`misp`]: MISP's core objects (events, attributes, objects, tags, sightings, sharing
//!   groups) parsed leniently from MISP JSON and written back in MISP's output shape.
//! - `lenient` (private): MISP's lenient scalar input (numbers as strings, 0/1 as booleans).
//!
//! Everything a client or a peer sends is parsed here first, so every failure is a
//! [`ModelError`] value and never a panic.

pub mod date;
pub mod misp;
pub mod types;
pub mod value;

mod lenient;

#[cfg(test)]
mod tests;

pub use misp::*;
pub use types::{registry, AttributeType, TypeRegistry};
pub use value::*;

/// Longest value quoted in an error message, in characters: a multi-megabyte `text` value must
/// not end up verbatim in a log line or an HTTP error body.
const ERROR_VALUE_CHARS_MAX: usize = 120;

/// Quotes `value` for an error message, shortened to [`ERROR_VALUE_CHARS_MAX`] characters.
fn shorten(value: &str) -> String {
    if value.chars().count() <= ERROR_VALUE_CHARS_MAX {
        value.to_string()
    } else {
        let head: String = value.chars().take(ERROR_VALUE_CHARS_MAX).collect();
        format!("{head}…")
    }
}

/// Why MISP input was refused. Every variant names what was wrong so that the message can be
/// shown to the user who sent the data as is.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    /// The attribute type is not one of MISP's `describeTypes` types.
    #[error("unknown attribute type '{type_name}'")]
    UnknownType {
        /// The type name as sent.
        type_name: String,
    },
    /// The category is not one of MISP's 16 categories.
    #[error("unknown category '{category}'")]
    UnknownCategory {
        /// The category as sent.
        category: String,
    },
    /// The category exists but MISP does not allow it for this type.
    #[error("category '{category}' is not allowed for type '{type_name}'")]
    CategoryMismatch {
        /// The attribute type.
        type_name: String,
        /// The category as sent.
        category: String,
    },
    /// The value does not have the shape its type requires.
    #[error("invalid value '{}' for type '{type_name}': {reason}", shorten(.value))]
    InvalidValue {
        /// The attribute type (or, for one half of a composite, that half's type).
        type_name: String,
        /// The value as sent (trimmed).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A required field is absent, null or empty.
    #[error("{object}: missing required field '{field}'")]
    MissingField {
        /// The kind of object, e.g. "event", "attribute".
        object: String,
        /// The MISP field name.
        field: String,
    },
    /// A field is present but its value cannot be used.
    #[error("{object}: invalid field '{field}': {reason}")]
    InvalidField {
        /// The kind of object, e.g. "event", "object reference".
        object: String,
        /// The MISP field name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The JSON holds something other than an object where an object was expected.
    #[error("{object}: expected a JSON object")]
    NotAnObject {
        /// The kind of object expected.
        object: String,
    },
    /// The document holds no event: neither an `Event` wrapper nor a top-level `info`.
    #[error("the document holds no MISP event (no 'Event' wrapper and no 'info' field)")]
    NotAnEvent,
    /// An attachment or malware sample is larger than [`misp::ATTACHMENT_BYTES_MAX`].
    #[error("attachment of {bytes} bytes exceeds the limit of {max_bytes} bytes")]
    AttachmentTooLarge {
        /// Decoded size of the attachment (estimated from the base64 length when too large to
        /// be worth decoding).
        bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// An error inside one item of a larger document, e.g. one attribute of an event. The item
    /// is named by kind and uuid (or by position when it has no uuid).
    #[error("{item}: {error}")]
    Item {
        /// The item, e.g. "attribute 5b64c8f0-…" or "event 5758ebf5-…, object #2".
        item: String,
        /// What went wrong in it.
        error: Box<ModelError>,
    },
}

impl ModelError {
    /// The innermost error, without the [`ModelError::Item`] wrappers that say where it
    /// happened. Match on this to find out what went wrong.
    pub fn root(&self) -> &ModelError {
        match self {
            ModelError::Item { error, .. } => error.root(),
            other => other,
        }
    }

    /// Wraps `self` as an error inside `item`.
    pub(crate) fn in_item(self, item: impl Into<String>) -> ModelError {
        ModelError::Item {
            item: item.into(),
            error: Box::new(self),
        }
    }

    /// An [`ModelError::InvalidValue`] for a value of `type_name`.
    pub(crate) fn invalid_value(type_name: &str, value: &str, reason: impl Into<String>) -> Self {
        ModelError::InvalidValue {
            type_name: type_name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An [`ModelError::MissingField`].
    pub(crate) fn missing(object: &str, field: &str) -> Self {
        ModelError::MissingField {
            object: object.to_string(),
            field: field.to_string(),
        }
    }

    /// An [`ModelError::InvalidField`].
    pub(crate) fn invalid_field(object: &str, field: &str, reason: impl Into<String>) -> Self {
        ModelError::InvalidField {
            object: object.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
