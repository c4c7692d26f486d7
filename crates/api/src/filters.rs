//! The `filters` query parameter: a JSON object of name → `{"value": true}` (current
//! format) or name → `["value"]` (legacy format), both accepted as Docker's
//! `filters.FromJSON` does, with Docker's `invalid filter` error texts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;

/// Parsed filters: each name holds a set of values. Serialises in the current format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

/// Filter errors, worded as Docker's `invalidFilter`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FiltersError {
    /// The parameter is not a JSON object in either accepted format.
    #[error("invalid filter")]
    Malformed,
    /// A filter name the endpoint does not accept.
    #[error("invalid filter '{name}'")]
    UnknownName { name: String },
    /// A value the filter does not accept (e.g. a non-boolean `dangling`).
    #[error("invalid filter '{name}={}'", values.join(","))]
    InvalidValue { name: String, values: Vec<String> },
}

impl FiltersError {
    /// Every filter error is a bad request (400).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

impl Filters {
    pub fn new() -> Self {
        Filters::default()
    }

    /// Parses the `filters` query value; an empty string means no filters.
    pub fn parse(text: &str) -> Result<Self, FiltersError> {
        if text.is_empty() {
            return Ok(Filters::default());
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Values {
            Set(BTreeMap<String, bool>),
            List(Vec<String>),
        }
        let raw: Option<BTreeMap<String, Option<Values>>> =
            serde_json::from_str(text).map_err(|_| FiltersError::Malformed)?;
        let raw = raw.unwrap_or_default();
        // Docker decodes the whole object in one format or the other, never a mix.
        let has_set = raw.values().any(|v| matches!(v, Some(Values::Set(_))));
        let has_list = raw.values().any(|v| matches!(v, Some(Values::List(_))));
        if has_set && has_list {
            return Err(FiltersError::Malformed);
        }
        let mut filters = Filters::default();
        for (name, values) in raw {
            let set = match values {
                // Docker keeps every key of the set, whatever its boolean says.
                Some(Values::Set(set)) => set.into_keys().collect(),
                Some(Values::List(list)) => list.into_iter().collect(),
                None => BTreeSet::new(),
            };
            filters.fields.insert(name, set);
        }
        Ok(filters)
    }

    /// Adds one value under a name.
    pub fn add(&mut self, name: &str, value: &str) {
        self.fields
            .entry(name.to_string())
            .or_default()
            .insert(value.to_string());
    }

    /// Number of filter names.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// The values of a name, sorted; empty when the name is absent.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.fields
            .get(name)
            .map(|set| set.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Names present, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Refuses any name outside `accepted` (Docker's `Args.Validate`).
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FiltersError> {
        match self
            .fields
            .keys()
            .find(|name| !accepted.contains(&name.as_str()))
        {
            Some(name) => Err(FiltersError::UnknownName { name: name.clone() }),
            None => Ok(()),
        }
    }

    /// True when the name is absent or `value` is one of its values
    /// (Docker's `Args.ExactMatch`).
    pub fn exact_match(&self, name: &str, value: &str) -> bool {
        match self.fields.get(name) {
            None => true,
            Some(set) if set.is_empty() => true,
            Some(set) => set.contains(value),
        }
    }

    /// True when the name is absent or every `key` / `key=value` among its values is
    /// present in `labels` (Docker's `Args.MatchKVList`, used by `label=` filters).
    pub fn match_key_values(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(set) = self.fields.get(name).filter(|set| !set.is_empty()) else {
            return true;
        };
        set.iter().all(|wanted| match wanted.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|have| have == value),
            None => labels.contains_key(wanted),
        })
    }

    /// A boolean filter such as `dangling=true`, with Docker's rules: absent gives the
    /// default, `1`/`true` or `0`/`false` decide, anything else or both is an error.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, FiltersError> {
        let Some(set) = self.fields.get(name) else {
            return Ok(default);
        };
        let is_true = set.contains("1") || set.contains("true");
        let is_false = set.contains("0") || set.contains("false");
        if is_true == is_false {
            return Err(FiltersError::InvalidValue {
                name: name.to_string(),
                values: set.iter().cloned().collect(),
            });
        }
        Ok(is_true)
    }
}

impl Serialize for Filters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .fields
            .iter()
            .map(|(name, set)| {
                (
                    name.as_str(),
                    set.iter().map(|value| (value.as_str(), true)).collect(),
                )
            })
            .collect();
        map.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_legacy_formats_parse_to_the_same_filters() {
        let current = Filters::parse(r#"{"status":{"running":true,"exited":true}}"#).expect("set");
        let legacy = Filters::parse(r#"{"status":["running","exited"]}"#).expect("list");
        assert_eq!(current, legacy);
        assert_eq!(current.values("status"), vec!["exited", "running"]);
    }

    #[test]
    fn empty_text_and_null_mean_no_filters() {
        assert!(Filters::parse("").expect("empty").is_empty());
        assert!(Filters::parse("null").expect("null").is_empty());
        assert!(Filters::parse("{}").expect("object").is_empty());
    }

    #[test]
    fn malformed_filters_get_dockers_text() {
        for text in [
            "{",
            "[]",
            r#"{"a":{"x":true},"b":["y"]}"#,
            r#"{"a":"b"}"#,
            r#"{"a":{"b":"yes"}}"#,
            "3",
            r#"{"a":[1]}"#,
        ] {
            let err = Filters::parse(text).expect_err(text);
            assert_eq!(err.to_string(), "invalid filter", "{text}");
            assert_eq!(err.kind().status(), 400);
        }
    }

    #[test]
    fn unknown_names_are_refused_by_validate() {
        let filters = Filters::parse(r#"{"foo":{"bar":true}}"#).expect("parse");
        let err = filters.validate(&["label", "name"]).expect_err("foo");
        assert_eq!(err.to_string(), "invalid filter 'foo'");
        assert!(Filters::parse(r#"{"name":["x"]}"#)
            .expect("parse")
            .validate(&["name"])
            .is_ok());
    }

    #[test]
    fn false_set_members_still_count_as_values() {
        let filters = Filters::parse(r#"{"name":{"web":false}}"#).expect("parse");
        assert_eq!(filters.values("name"), vec!["web"]);
    }

    #[test]
    fn boolean_filters_follow_dockers_rules() {
        let parse = |text| Filters::parse(text).expect("parse");
        assert_eq!(parse("{}").bool_or("dangling", false), Ok(false));
        assert_eq!(
            parse(r#"{"dangling":["true"]}"#).bool_or("dangling", false),
            Ok(true)
        );
        assert_eq!(
            parse(r#"{"dangling":["0"]}"#).bool_or("dangling", true),
            Ok(false)
        );
        let err = parse(r#"{"dangling":["maybe"]}"#)
            .bool_or("dangling", false)
            .expect_err("maybe");
        assert_eq!(err.to_string(), "invalid filter 'dangling=maybe'");
        assert!(parse(r#"{"dangling":["true","false"]}"#)
            .bool_or("dangling", false)
            .is_err());
    }

    #[test]
    fn label_filters_match_keys_and_key_values() {
        let labels: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "".into())]
            .into_iter()
            .collect();
        let parse = |text| Filters::parse(text).expect("parse");
        assert!(parse("{}").match_key_values("label", &labels));
        assert!(parse(r#"{"label":["a"]}"#).match_key_values("label", &labels));
        assert!(parse(r#"{"label":["a=1","b"]}"#).match_key_values("label", &labels));
        assert!(!parse(r#"{"label":["a=2"]}"#).match_key_values("label", &labels));
        assert!(!parse(r#"{"label":["c"]}"#).match_key_values("label", &labels));
    }

    #[test]
    fn filters_serialise_in_the_current_format() {
        let mut filters = Filters::new();
        filters.add("label", "b");
        filters.add("label", "a");
        assert_eq!(
            serde_json::to_string(&filters).expect("encode"),
            r#"{"label":{"a":true,"b":true}}"#
        );
        assert!(filters.exact_match("label", "a"));
        assert!(!filters.exact_match("label", "c"));
        assert!(filters.exact_match("name", "anything"));
    }
}
