//! ARG scoping as BuildKit applies it: ARGs before the first FROM form the global scope used
//! to expand FROM lines; inside a stage `ARG name` without a default re-imports the global
//! value; `--build-arg` values win over defaults and are never expanded.

use std::collections::BTreeMap;

use super::types::{ArgCommand, ArgPair};
use crate::shell::{EnvLookup, Lexer, ShellError};

/// Proxy args usable without an ARG line (and left out of image history), as Docker's
/// builder defines them.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Platform args BuildKit puts in the global scope automatically.
pub const PLATFORM_ARGS: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => env.push((key.to_string(), value)),
    }
}

/// The global scope: `predefined` (platform args), then each pre-FROM ARG in order, its
/// default expanded against what came before unless `--build-arg` gives the value.
pub fn global_args(
    meta_args: &[ArgCommand],
    build_args: &BTreeMap<String, String>,
    predefined: &[(String, String)],
    escape: char,
) -> Result<Vec<(String, String)>, ShellError> {
    let lexer = Lexer::new(escape);
    let mut env: Vec<(String, String)> = predefined.to_vec();
    for command in meta_args {
        for pair in &command.args {
            let value = match (build_args.get(&pair.key), &pair.value) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(lexer.process_word(default, &env)?),
                (None, None) => None,
            };
            if let Some(v) = value {
                set(&mut env, &pair.key, v);
            }
        }
    }
    Ok(env)
}

/// The value an `ARG` inside a stage takes: the build arg, else its default expanded in the
/// stage's environment, else (no default) the global value; `None` when it stays unset.
pub fn stage_arg_value(
    pair: &ArgPair,
    build_args: &BTreeMap<String, String>,
    global: &dyn EnvLookup,
    stage_env: &dyn EnvLookup,
    escape: char,
) -> Result<Option<String>, ShellError> {
    if let Some(v) = build_args.get(&pair.key) {
        return Ok(Some(v.clone()));
    }
    match &pair.value {
        Some(default) => Lexer::new(escape)
            .process_word(default, stage_env)
            .map(Some),
        None => Ok(global.lookup(&pair.key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::parse_stages;
    use crate::parser::parse;
    use crate::shell::NoEnv;

    #[test]
    fn global_args_expand_in_order_and_build_args_win() {
        let df = parse(
            "ARG BASE=alpine\nARG TAG=${BASE}-3\nARG UNSET\nARG V=$TARGETARCH\nFROM $BASE:$TAG\n",
        )
        .unwrap();
        let (_, meta) = parse_stages(&df).unwrap();
        let predefined = vec![("TARGETARCH".to_string(), "amd64".to_string())];
        let mut build_args = BTreeMap::new();
        let env = global_args(&meta, &build_args, &predefined, '\\').unwrap();
        assert_eq!(env.lookup("TAG").as_deref(), Some("alpine-3"));
        assert_eq!(env.lookup("V").as_deref(), Some("amd64"));
        assert_eq!(env.lookup("UNSET"), None);
        build_args.insert("BASE".to_string(), "$debian".to_string());
        let env = global_args(&meta, &build_args, &predefined, '\\').unwrap();
        assert_eq!(env.lookup("TAG").as_deref(), Some("$debian-3"));
    }

    #[test]
    fn stage_arg_reimports_global_only_without_default() {
        let global = vec![("V".to_string(), "g".to_string())];
        let stage = vec![("X".to_string(), "x".to_string())];
        let none = BTreeMap::new();
        let bare = ArgPair {
            key: "V".into(),
            value: None,
        };
        let with_default = ArgPair {
            key: "V".into(),
            value: Some("$X-d".into()),
        };
        assert_eq!(
            stage_arg_value(&bare, &none, &global, &stage, '\\')
                .unwrap()
                .as_deref(),
            Some("g")
        );
        assert_eq!(
            stage_arg_value(&with_default, &none, &global, &stage, '\\')
                .unwrap()
                .as_deref(),
            Some("x-d")
        );
        assert_eq!(
            stage_arg_value(&bare, &none, &NoEnv, &stage, '\\').unwrap(),
            None
        );
        let mut b = BTreeMap::new();
        b.insert("V".to_string(), "b".to_string());
        assert_eq!(
            stage_arg_value(&with_default, &b, &global, &stage, '\\')
                .unwrap()
                .as_deref(),
            Some("b")
        );
    }
}
