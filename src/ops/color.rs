//! Colours in parameters: `#RGB`, `#RGBA`, `#RRGGBB` or `#RRGGBBAA`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The JSON Schema `pattern` of a colour: the forms [`Color::parse`] reads,
/// 3, 4, 6 or 8 hex digits after `#`.
pub(crate) const PATTERN: &str = "^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$";

/// An RGBA colour, straight alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Color(pub [u8; 4]);

impl Color {
    /// Transparent black, the default background.
    pub(crate) const TRANSPARENT: Color = Color([0, 0, 0, 0]);

    /// Parse a hex colour.
    pub fn parse(s: &str) -> Option<Color> {
        let hex = s.strip_prefix('#')?;
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let nib = |i: usize| u8::from_str_radix(&hex[i..=i], 16).ok().map(|v| v * 17);
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        let c = match hex.len() {
            3 => [nib(0)?, nib(1)?, nib(2)?, 255],
            4 => [nib(0)?, nib(1)?, nib(2)?, nib(3)?],
            6 => [byte(0)?, byte(2)?, byte(4)?, 255],
            8 => [byte(0)?, byte(2)?, byte(4)?, byte(6)?],
            _ => return None,
        };
        Some(Color(c))
    }

    /// As one RGBA8 pixel packed in a `u32`, red in the low byte (the
    /// shaders' pixel format).
    pub(crate) fn packed(self) -> u32 {
        u32::from_le_bytes(self.0)
    }

    /// As an `image` pixel.
    pub(crate) fn rgba(self) -> image::Rgba<u8> {
        image::Rgba(self.0)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b, a] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}{a:02x}")
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Color::parse(&s).ok_or_else(|| {
            serde::de::Error::custom("colour must be #RGB, #RGBA, #RRGGBB or #RRGGBBAA")
        })
    }
}

impl JsonSchema for Color {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Color".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "not": crate::keys::line_break_refusal(),
            "description": "RGBA colour: #RGB, #RGBA, #RRGGBB or #RRGGBBAA"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_forms() {
        assert_eq!(Color::parse("#fff"), Some(Color([255, 255, 255, 255])));
        assert_eq!(Color::parse("#1234"), Some(Color([0x11, 0x22, 0x33, 0x44])));
        assert_eq!(Color::parse("#0a0B0c"), Some(Color([10, 11, 12, 255])));
        assert_eq!(Color::parse("#01020304"), Some(Color([1, 2, 3, 4])));
        for bad in ["fff", "#ff", "#fffff", "#gggggg", "#+1+2+3", ""] {
            assert_eq!(Color::parse(bad), None, "{bad}");
        }
    }
}
