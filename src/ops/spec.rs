//! An op as a job carries it: `"op"`, the op's own parameters, and the
//! `"mask"` any op may carry, in one JSON object.
//!
//! Serde cannot flatten the op's parameters (which refuse unknown fields)
//! beside `mask` and keep that refusal, so [`OpSpec`] reads the object
//! itself: it takes `mask` out, turns an alias of an op's name into the name
//! (`overlay` into `composite`), and reads the rest as [`OpParams`]. Its
//! JSON Schema is [`OpParams`]'s with `mask` added to every op.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::mask::{Mask, MaskSpec, Masked};
use super::{Op, OpParams, OPS};
use crate::config::Limits;
use crate::error::ParamError;

/// An op as a job carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpSpec {
    /// The op's name and parameters.
    pub(crate) params: OpParams,
    /// The region it is limited to, when masked.
    pub mask: Option<MaskSpec>,
}

impl From<OpParams> for OpSpec {
    fn from(params: OpParams) -> Self {
        Self { params, mask: None }
    }
}

/// The op a job's `"op"` names, by its name or one of its aliases.
pub(crate) fn canonical_name(name: &str) -> Option<&'static str> {
    OPS.iter()
        .find(|op| op.name == name || op.aliases.contains(&name))
        .map(|op| op.name)
}

impl OpSpec {
    /// The op's name.
    pub fn name(&self) -> &'static str {
        self.params.name()
    }

    /// The C2PA action a version's Content Credentials record it as
    /// (masked or not).
    pub fn c2pa_action(&self) -> &'static str {
        self.params.c2pa_action()
    }

    /// Validate into a runnable op (wrapped in its mask, when it has one).
    pub fn validate(&self, lim: &Limits) -> Result<Op, ParamError> {
        let op = self.params.validate(lim)?;
        match &self.mask {
            None => Ok(op),
            Some(m) => Ok(Op::Masked(Box::new(Masked::new(op, Mask::validate(m)?)?))),
        }
    }
}

impl Serialize for OpSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Flat<'a> {
            #[serde(flatten)]
            params: &'a OpParams,
            #[serde(skip_serializing_if = "Option::is_none")]
            mask: &'a Option<MaskSpec>,
        }
        Flat {
            params: &self.params,
            mask: &self.mask,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for OpSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(d)?;
        let mask = match map.remove("mask") {
            None => None,
            Some(m) => Some(serde_json::from_value::<MaskSpec>(m).map_err(|e| {
                let e = e.to_string();
                // "unknown field" leads, as the job's parser classifies by it.
                if e.starts_with("unknown field") {
                    D::Error::custom(format!("{e} in mask"))
                } else {
                    D::Error::custom(format!("mask: {e}"))
                }
            })?),
        };
        if let Some(Value::String(name)) = map.get_mut("op") {
            if let Some(canonical) = canonical_name(name) {
                *name = canonical.to_string();
            }
        }
        let params = serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Self { params, mask })
    }
}

impl JsonSchema for OpSpec {
    fn schema_name() -> Cow<'static, str> {
        "OpSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = OpParams::json_schema(generator);
        let mask =
            serde_json::to_value(generator.subschema_for::<MaskSpec>()).expect("a schema is JSON");
        if let Some(Value::Array(variants)) = schema.get_mut("oneOf") {
            for variant in variants {
                let Some(props) = variant.get_mut("properties").and_then(Value::as_object_mut)
                else {
                    continue;
                };
                let mut m = mask.clone();
                if let Value::Object(o) = &mut m {
                    o.insert(
                        "description".into(),
                        "Limit the op to a region: its result is blended with its input through this mask. Only on ops that keep the image size (not expressed in the schema).".into(),
                    );
                }
                props.insert("mask".into(), m);
                let name = props
                    .get("op")
                    .and_then(|op| op.get("const"))
                    .and_then(Value::as_str)
                    .and_then(|n| OPS.iter().find(|op| op.name == n));
                if let Some(info) = name.filter(|info| !info.aliases.is_empty()) {
                    let mut names = vec![Value::from(info.name)];
                    names.extend(info.aliases.iter().map(|&a| Value::from(a)));
                    props.insert(
                        "op".into(),
                        serde_json::json!({ "type": "string", "enum": names }),
                    );
                }
            }
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_and_alias_round_trip() {
        let v = serde_json::json!({"op": "overlay", "source": "p.png", "mask": {"object": "m.png", "feather": 2.0}});
        let spec: OpSpec = serde_json::from_value(v).unwrap();
        assert_eq!(spec.name(), "composite");
        assert_eq!(spec.mask.as_ref().unwrap().object, "m.png");
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["op"], "composite");
        assert_eq!(back["mask"]["feather"], 2.0);
        assert_eq!(serde_json::from_value::<OpSpec>(back).unwrap(), spec);
    }

    #[test]
    fn unknown_fields_are_still_refused() {
        for v in [
            serde_json::json!({"op": "invert", "bogus": 1}),
            serde_json::json!({"op": "invert", "mask": {"object": "m.png", "bogus": 1}}),
        ] {
            let e = serde_json::from_value::<OpSpec>(v).unwrap_err().to_string();
            assert!(e.starts_with("unknown field"), "{e}");
        }
    }
}
