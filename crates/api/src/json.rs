//! Serde helpers that reproduce Go's `encoding/json` rules: `null` decodes to the zero
//! value, `omitempty` skips zero values, `strslice.StrSlice` accepts a string or a list,
//! and `struct{}` map values serialise as `{}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Decodes `null` (or a missing field, with `#[serde(default)]`) as the type's zero value,
/// as Go does for every non-pointer field.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `omitempty` for a bool.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// `omitempty` for any integer or other `Default + PartialEq` value.
pub(crate) fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// `omitempty` for a Go slice or map held as `Option`: omitted when nil or empty.
pub(crate) fn is_empty_vec<T>(value: &Option<Vec<T>>) -> bool {
    value.as_ref().is_none_or(Vec::is_empty)
}

/// `omitempty` for a Go map held as `Option`: omitted when nil or empty.
pub(crate) fn is_empty_map<K, V>(value: &Option<std::collections::BTreeMap<K, V>>) -> bool {
    value
        .as_ref()
        .is_none_or(std::collections::BTreeMap::is_empty)
}

/// Go's `struct{}`: the value of `ExposedPorts` and `Volumes` sets, always `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's `strslice.StrSlice`: decodes from a JSON string (one element) or a list of
/// strings, encodes as a list. `null` stays distinct from `[]` through `Option`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrSlice(pub Vec<String>);

impl Serialize for StrSlice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StrSlice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Shape::deserialize(deserializer)? {
            Shape::One(value) => StrSlice(vec![value]),
            Shape::Many(values) => StrSlice(values),
        })
    }
}

impl From<Vec<String>> for StrSlice {
    fn from(values: Vec<String>) -> Self {
        StrSlice(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strslice_decodes_a_string_as_one_element() {
        let value: StrSlice = serde_json::from_str(r#""echo hi""#).expect("string");
        assert_eq!(value.0, vec!["echo hi".to_string()]);
        let value: StrSlice = serde_json::from_str(r#"["a","b"]"#).expect("list");
        assert_eq!(
            serde_json::to_string(&value).expect("encode"),
            r#"["a","b"]"#
        );
    }

    #[test]
    fn strslice_rejects_numbers() {
        assert!(serde_json::from_str::<StrSlice>("1").is_err());
    }

    #[test]
    fn empty_struct_encodes_as_empty_object_and_ignores_fields() {
        let value: Empty = serde_json::from_str(r#"{"x":1}"#).expect("object");
        assert_eq!(serde_json::to_string(&value).expect("encode"), "{}");
    }
}
