//! Instruction flags (`--from=x`, `--link`, repeated `--mount=`), parsed with BuildKit's
//! `BFlags` rules and error texts.

use std::collections::BTreeMap;

use super::suggest::did_you_mean;

/// Why an instruction's flags were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("arg should start with -- : {arg}")]
    NotAFlag { arg: String },
    #[error("unknown flag: {flag}{}", did_you_mean(.suggestion))]
    Unknown {
        flag: String,
        suggestion: Option<String>,
    },
    #[error("duplicate flag specified: {flag}")]
    Duplicate { flag: String },
    #[error("missing a value on flag: {flag}")]
    MissingValue { flag: String },
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    NotBoolean { flag: String, value: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    Bool,
    String,
    Strings,
}

/// Parsed flag values, by name without the leading `--`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    /// Parses `args` against the declared flags. A bare `--` ends flags.
    pub fn parse(args: &[String], declared: &[(&str, FlagKind)]) -> Result<Flags, FlagError> {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for arg in args {
            if arg == "--" {
                break;
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(FlagError::NotAFlag { arg: arg.clone() });
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag = format!("--{name}");
            let Some((_, kind)) = declared.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = declared.iter().map(|(n, _)| *n).collect();
                let suggestion = super::suggest::search(name, &names, true);
                return Err(FlagError::Unknown { flag, suggestion });
            };
            let entry = values.entry(name.to_string()).or_default();
            if !entry.is_empty() && *kind != FlagKind::Strings {
                return Err(FlagError::Duplicate { flag });
            }
            let parsed = match (kind, value) {
                (FlagKind::Bool, Some("")) => return Err(FlagError::MissingValue { flag }),
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".to_string(),
                    "false" => "false".to_string(),
                    _ => {
                        return Err(FlagError::NotBoolean {
                            flag,
                            value: v.to_string(),
                        })
                    }
                },
                (_, None) => return Err(FlagError::MissingValue { flag }),
                (_, Some(v)) => v.to_string(),
            };
            entry.push(parsed);
        }
        Ok(Flags { values })
    }

    /// The value of a string flag, or `""`.
    pub fn string(&self, name: &str) -> String {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .cloned()
            .unwrap_or_default()
    }

    /// Every value of a repeatable flag.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A boolean flag's value; `None` when not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|v| v == "true")
    }

    /// Names of the flags given, sorted.
    pub fn used_names(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const DECLARED: [(&str, FlagKind); 3] = [
        ("from", FlagKind::String),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::Strings),
    ];

    #[test]
    fn flags_parse_with_buildkit_rules() {
        let f = Flags::parse(
            &args(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            &DECLARED,
        )
        .unwrap();
        assert_eq!(f.string("from"), "a");
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        assert_eq!(
            Flags::parse(&args(&["--link=FALSE"]), &DECLARED)
                .unwrap()
                .bool("link"),
            Some(false)
        );
    }

    #[test]
    fn bad_flags_fail_with_buildkit_texts() {
        let cases: [(&[&str], &str); 6] = [
            (&["--form=a"], "unknown flag: --form (did you mean from?)"),
            (&["--zzzzzz"], "unknown flag: --zzzzzz"),
            (
                &["--from=a", "--from=b"],
                "duplicate flag specified: --from",
            ),
            (&["--from"], "missing a value on flag: --from"),
            (&["--link="], "missing a value on flag: --link"),
            (
                &["--link=yes"],
                "expecting boolean value for flag --link, not: yes",
            ),
        ];
        for (input, want) in cases {
            let err = Flags::parse(&args(input), &DECLARED).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }
}
