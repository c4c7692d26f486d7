//! `docker import --change` / `docker commit --change`: the Dockerfile instructions that
//! only change an image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR,
//! VOLUME, STOPSIGNAL, ONBUILD), applied as Docker's `BuildFromConfig` applies them.

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use crate::config::ContainerConfig;

/// Why a `--change` was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("dockerfile parse error on line 1: unknown instruction: {instruction}")]
    Unknown { instruction: String },
    #[error("{instruction} is not a valid change command")]
    NotAllowed { instruction: String },
    #[error("{instruction} requires at least one argument")]
    MissingArgument { instruction: String },
    #[error("{instruction} requires exactly one argument")]
    ExactlyOne { instruction: String },
    #[error("{instruction}: invalid json array {value:?}")]
    BadJson { instruction: String, value: String },
    #[error("{instruction}: invalid key=value pair {pair:?}")]
    BadPair { instruction: String, pair: String },
}

const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];
const KNOWN: &[&str] = &["ADD", "ARG", "COPY", "FROM", "MAINTAINER", "RUN", "SHELL"];

/// Applies each change to `config`, in order.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), ChangeError> {
    for change in changes {
        apply_one(config, change.trim())?;
    }
    Ok(())
}

fn apply_one(config: &mut ContainerConfig, change: &str) -> Result<(), ChangeError> {
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let instruction = word.to_uppercase();
    let rest = rest.trim();
    if !ALLOWED.contains(&instruction.as_str()) {
        if KNOWN.contains(&instruction.as_str()) {
            return Err(ChangeError::NotAllowed { instruction });
        }
        return Err(ChangeError::Unknown {
            instruction: word.to_lowercase(),
        });
    }
    let missing = || ChangeError::MissingArgument {
        instruction: instruction.clone(),
    };
    match instruction.as_str() {
        "CMD" => {
            config.cmd = Some(command(&instruction, rest, config)?);
            config.args_escaped = None;
        }
        "ENTRYPOINT" => {
            config.entrypoint = if rest.is_empty() {
                None
            } else {
                Some(command(&instruction, rest, config)?)
            };
            // Docker: a new ENTRYPOINT resets a CMD inherited from the base.
            config.cmd = None;
        }
        "ENV" | "LABEL" => {
            let pairs = key_values(&instruction, rest)?;
            if pairs.is_empty() {
                return Err(missing());
            }
            if instruction == "ENV" {
                let env = config.env.get_or_insert_with(Vec::new);
                for (k, v) in pairs {
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.starts_with(&prefix));
                    env.push(format!("{k}={v}"));
                }
            } else {
                let labels = config.labels.get_or_insert_with(BTreeMap::new);
                labels.extend(pairs);
            }
        }
        "EXPOSE" => {
            let ports: Vec<&str> = rest.split_whitespace().collect();
            if ports.is_empty() {
                return Err(missing());
            }
            let exposed = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for port in ports {
                let port = if port.contains('/') {
                    port.to_lowercase()
                } else {
                    format!("{port}/tcp")
                };
                exposed.insert(port, Value::Object(Default::default()));
            }
        }
        "USER" | "STOPSIGNAL" => {
            if rest.is_empty() || rest.split_whitespace().count() != 1 {
                return Err(ChangeError::ExactlyOne { instruction });
            }
            let value = Some(rest.to_owned());
            if instruction == "USER" {
                config.user = value;
            } else {
                config.stop_signal = value;
            }
        }
        "WORKDIR" => {
            if rest.is_empty() {
                return Err(ChangeError::ExactlyOne { instruction });
            }
            let current = config.working_dir.clone().unwrap_or_default();
            config.working_dir = Some(if rest.starts_with('/') || current.is_empty() {
                if rest.starts_with('/') {
                    rest.to_owned()
                } else {
                    format!("/{rest}")
                }
            } else {
                format!("{}/{rest}", current.trim_end_matches('/'))
            });
        }
        "VOLUME" => {
            let list = if rest.starts_with('[') {
                json_array(&instruction, rest)?
            } else {
                rest.split_whitespace().map(str::to_owned).collect()
            };
            if list.is_empty() {
                return Err(missing());
            }
            let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in list {
                volumes.insert(v, Value::Object(Default::default()));
            }
        }
        "ONBUILD" => {
            if rest.is_empty() {
                return Err(missing());
            }
            config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(rest.to_owned());
        }
        _ => {
            // HEALTHCHECK NONE is the only form without flags and durations.
            if rest.eq_ignore_ascii_case("none") {
                config.healthcheck = Some(crate::config::Healthcheck {
                    test: Some(vec!["NONE".to_owned()]),
                    ..Default::default()
                });
            } else {
                let test = command(
                    &instruction,
                    rest.strip_prefix("CMD").unwrap_or(rest).trim(),
                    config,
                )?;
                let mut full = vec![if rest.trim_start().starts_with("CMD [") {
                    "CMD"
                } else {
                    "CMD-SHELL"
                }
                .to_owned()];
                if full[0] == "CMD-SHELL" {
                    full.push(test.last().cloned().unwrap_or_default());
                } else {
                    full.extend(test);
                }
                config.healthcheck = Some(crate::config::Healthcheck {
                    test: Some(full),
                    ..Default::default()
                });
            }
        }
    }
    Ok(())
}

/// Exec form (a JSON array) or shell form (run through the image's SHELL, default
/// `/bin/sh -c`).
fn command(
    instruction: &str,
    rest: &str,
    config: &ContainerConfig,
) -> Result<Vec<String>, ChangeError> {
    if rest.starts_with('[') {
        if let Ok(list) = json_array(instruction, rest) {
            return Ok(list);
        }
    }
    if rest.is_empty() {
        return Err(ChangeError::MissingArgument {
            instruction: instruction.to_owned(),
        });
    }
    let mut shell = config
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()]);
    shell.push(rest.to_owned());
    Ok(shell)
}

fn json_array(instruction: &str, rest: &str) -> Result<Vec<String>, ChangeError> {
    serde_json::from_str(rest).map_err(|_| ChangeError::BadJson {
        instruction: instruction.to_owned(),
        value: rest.to_owned(),
    })
}

/// `k=v k2="v 2"` pairs, or the legacy `k v with spaces` form.
fn key_values(instruction: &str, rest: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let words = split_words(rest);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains('=') {
        let (key, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(key.to_owned(), value.trim().to_owned())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(ChangeError::BadPair {
                instruction: instruction.to_owned(),
                pair: w,
            }),
        })
        .collect()
}

/// Splits on whitespace outside quotes, removing the quotes and backslash escapes.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                in_word = true;
            }
            (_, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> Result<ContainerConfig, ChangeError> {
        let mut config = ContainerConfig::default();
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut config, &changes)?;
        Ok(config)
    }

    #[test]
    fn cmd_takes_exec_and_shell_forms() {
        let c = changed(&[r#"CMD ["sh", "-c", "echo hi"]"#]).expect("cmd");
        assert_eq!(
            c.cmd,
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        let c = changed(&["CMD echo hi"]).expect("cmd");
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
    }

    #[test]
    fn env_label_expose_volume_user_workdir_stopsignal_apply() {
        let c = changed(&[
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL com.example=x",
            "EXPOSE 80 53/UDP",
            "VOLUME /data",
            "USER nobody",
            "WORKDIR /srv",
            "WORKDIR app",
            "STOPSIGNAL SIGINT",
            "ENTRYPOINT [\"/bin/app\"]",
        ])
        .expect("changes");
        assert_eq!(c.env, Some(vec!["B=two words".into(), "A=3".into()]));
        assert_eq!(
            c.labels
                .expect("labels")
                .get("com.example")
                .map(String::as_str),
            Some("x")
        );
        let ports: Vec<String> = c.exposed_ports.expect("ports").into_keys().collect();
        assert_eq!(ports, vec!["53/udp".to_string(), "80/tcp".to_string()]);
        assert!(c.volumes.expect("volumes").contains_key("/data"));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.entrypoint, Some(vec!["/bin/app".into()]));
    }

    #[test]
    fn build_only_and_unknown_instructions_are_refused_with_docker_texts() {
        assert_eq!(
            changed(&["RUN true"]).map(|_| ()).unwrap_err().to_string(),
            "RUN is not a valid change command"
        );
        assert_eq!(
            changed(&["BOGUS x"]).map(|_| ()).unwrap_err().to_string(),
            "dockerfile parse error on line 1: unknown instruction: bogus"
        );
        assert_eq!(
            changed(&["USER a b"]).map(|_| ()).unwrap_err(),
            ChangeError::ExactlyOne {
                instruction: "USER".into()
            }
        );
    }
}
