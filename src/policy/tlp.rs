//! Traffic Light Protocol levels (SPEC §6.3), strictest last.

use serde::{Deserialize, Serialize};

/// A TLP level; the order is from least to most restrictive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tlp {
    /// `tlp:clear` (legacy `tlp:white`).
    #[serde(rename = "clear")]
    Clear,
    /// `tlp:green`.
    #[serde(rename = "green")]
    Green,
    /// `tlp:amber`.
    #[serde(rename = "amber")]
    Amber,
    /// `tlp:amber+strict`.
    #[serde(rename = "amber+strict")]
    AmberStrict,
    /// `tlp:red`.
    #[serde(rename = "red")]
    Red,
}

impl Tlp {
    /// The level a tag names, if it is a TLP tag that limits sharing (`tlp:ex:chr` does not).
    /// Machine tags match in any case (SPEC §6.2): `TLP:RED` is `tlp:red`.
    pub fn of_tag(name: &str) -> Option<Tlp> {
        let prefix = name.get(..4)?;
        if !prefix.eq_ignore_ascii_case("tlp:") {
            return None;
        }
        name[4..].trim_matches('"').parse().ok()
    }

    /// The strictest TLP among `tags`.
    pub fn strictest<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<Tlp> {
        tags.into_iter().filter_map(Tlp::of_tag).max()
    }

    /// The level's name without the `tlp:` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }
}

impl std::str::FromStr for Tlp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "clear" | "white" => Ok(Tlp::Clear),
            "green" => Ok(Tlp::Green),
            "amber" => Ok(Tlp::Amber),
            "amber+strict" => Ok(Tlp::AmberStrict),
            "red" => Ok(Tlp::Red),
            other => Err(format!(
                "unknown TLP level {other:?}; expected clear, green, amber, amber+strict or red"
            )),
        }
    }
}

impl std::fmt::Display for Tlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
