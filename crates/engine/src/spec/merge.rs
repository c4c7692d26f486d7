//! Docker's create-time merge of the image's config into the request's Config (moby's
//! daemon `merge`), and the container's process (`Path` and `Args`) from Entrypoint + Cmd.

use std::collections::BTreeMap;

use berth_api::container::{Config, HealthConfig};
use berth_api::{Empty, StrSlice};
use berth_image::ContainerConfig;

use super::SpecError;

/// Merges `image` into `config` as Docker does at create:
/// - User, WorkingDir, StopSignal: the image's when the request has none;
/// - ExposedPorts, Volumes: union; Labels: the request's win on conflicts;
/// - Env: the image's entries whose key the request does not set are appended;
/// - Entrypoint and Cmd: when the request has no Entrypoint, an empty Cmd takes the
///   image's Cmd (and ArgsEscaped) and a nil Entrypoint takes the image's; an Entrypoint of
///   `[""]` resets it (the API's "reset to the system default"), ignoring the image's;
/// - Healthcheck: field by field, the request's non-zero fields win.
pub fn merge_image_config(config: &mut Config, image: &ContainerConfig) {
    if config.user.is_empty() {
        config.user = image.user.clone().unwrap_or_default();
    }
    merge_set(&mut config.exposed_ports, image.exposed_ports.as_ref());
    merge_env(config, image.env.as_deref().unwrap_or_default());
    let labels = config.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in image.labels.iter().flatten() {
        labels.entry(key.clone()).or_insert_with(|| value.clone());
    }
    if config.entrypoint.as_ref().is_none_or(|e| e.0.is_empty()) {
        if config.cmd.as_ref().is_none_or(|c| c.0.is_empty()) {
            config.cmd = image.cmd.clone().map(StrSlice);
            config.args_escaped = image.args_escaped.unwrap_or(false);
        }
        if config.entrypoint.is_none() {
            config.entrypoint = image.entrypoint.clone().map(StrSlice);
        }
    } else if config
        .entrypoint
        .as_ref()
        .is_some_and(|e| e.0.len() == 1 && e.0[0].is_empty())
    {
        config.entrypoint = None;
    }
    if let Some(image_health) = &image.healthcheck {
        let health = config.healthcheck.get_or_insert_with(HealthConfig::default);
        if health.test.as_ref().is_none_or(Vec::is_empty) {
            health.test = image_health.test.clone();
        }
        let fill = |mine: &mut i64, theirs: Option<i64>| {
            if *mine == 0 {
                *mine = theirs.unwrap_or(0);
            }
        };
        fill(&mut health.interval, image_health.interval);
        fill(&mut health.timeout, image_health.timeout);
        fill(&mut health.start_period, image_health.start_period);
        fill(&mut health.start_interval, image_health.start_interval);
        fill(&mut health.retries, image_health.retries);
    }
    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone().unwrap_or_default();
    }
    merge_set(&mut config.volumes, image.volumes.as_ref());
    if config.stop_signal.is_empty() {
        config.stop_signal = image.stop_signal.clone().unwrap_or_default();
    }
}

fn merge_set<V>(mine: &mut Option<BTreeMap<String, Empty>>, image: Option<&BTreeMap<String, V>>) {
    let Some(image) = image.filter(|set| !set.is_empty()) else {
        return;
    };
    let set = mine.get_or_insert_with(BTreeMap::new);
    for key in image.keys() {
        set.entry(key.clone()).or_default();
    }
}

fn merge_env(config: &mut Config, image_env: &[String]) {
    let key = |entry: &str| entry.split('=').next().unwrap_or_default().to_string();
    match &mut config.env {
        Some(env) if !env.is_empty() => {
            for entry in image_env {
                let wanted = key(entry);
                if !env.iter().any(|mine| key(mine) == wanted) {
                    env.push(entry.clone());
                }
            }
        }
        _ => {
            if !image_env.is_empty() || config.env.is_none() {
                config.env = Some(image_env.to_vec()).filter(|env| !env.is_empty());
            }
        }
    }
}

/// Docker's `getEntrypointAndArgs`: the process is Entrypoint + Cmd; its first word is
/// `Path`, the rest `Args`. Fails as Docker when there is nothing to run.
pub fn entrypoint_and_args(config: &Config) -> Result<(String, Vec<String>), SpecError> {
    let mut words: Vec<String> = config.entrypoint.iter().flat_map(|e| e.0.clone()).collect();
    words.extend(config.cmd.iter().flat_map(|c| c.0.clone()));
    let mut words = words.into_iter();
    match words.next() {
        Some(path) => Ok((path, words.collect())),
        None => Err(SpecError::NoCommand),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(json: &str) -> ContainerConfig {
        serde_json::from_str(json).expect("image config")
    }

    fn config(json: &str) -> Config {
        serde_json::from_str(json).expect("config")
    }

    fn strs(words: &[&str]) -> Option<StrSlice> {
        Some(StrSlice(words.iter().map(|w| w.to_string()).collect()))
    }

    #[test]
    fn image_cmd_is_used_when_the_request_has_neither_cmd_nor_entrypoint() {
        let mut c = config(r#"{"Image":"x"}"#);
        merge_image_config(&mut c, &image(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#));
        assert_eq!(c.cmd, strs(&["sh"]));
        assert_eq!(c.entrypoint, strs(&["/init"]));
        assert_eq!(
            entrypoint_and_args(&c).expect("command"),
            ("/init".to_string(), vec!["sh".to_string()])
        );
    }

    #[test]
    fn request_cmd_keeps_the_image_entrypoint() {
        let mut c = config(r#"{"Cmd":["echo","hi"]}"#);
        merge_image_config(&mut c, &image(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#));
        assert_eq!(c.cmd, strs(&["echo", "hi"]));
        assert_eq!(c.entrypoint, strs(&["/init"]));
    }

    #[test]
    fn request_entrypoint_drops_the_image_cmd_and_entrypoint() {
        let mut c = config(r#"{"Entrypoint":["/bin/date"]}"#);
        merge_image_config(&mut c, &image(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#));
        assert_eq!(c.cmd, None);
        assert_eq!(c.entrypoint, strs(&["/bin/date"]));
    }

    #[test]
    fn empty_string_entrypoint_resets_to_no_entrypoint() {
        let mut c = config(r#"{"Entrypoint":[""],"Cmd":["ls"]}"#);
        merge_image_config(&mut c, &image(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#));
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.cmd, strs(&["ls"]));
        let mut c = config(r#"{"Entrypoint":[""]}"#);
        merge_image_config(&mut c, &image(r#"{"Cmd":["sh"],"Entrypoint":["/init"]}"#));
        assert_eq!(
            entrypoint_and_args(&c).map_err(|e| e.to_string()),
            Err("No command specified".to_string())
        );
    }

    #[test]
    fn env_merges_by_key_with_the_request_winning() {
        let mut c = config(r#"{"Env":["PATH=/mine","A=1"]}"#);
        merge_image_config(&mut c, &image(r#"{"Env":["PATH=/usr/bin","B=2","A=0"]}"#));
        assert_eq!(
            c.env,
            Some(vec!["PATH=/mine".into(), "A=1".into(), "B=2".into()])
        );
        let mut c = config("{}");
        merge_image_config(&mut c, &image(r#"{"Env":["B=2"]}"#));
        assert_eq!(c.env, Some(vec!["B=2".into()]));
    }

    #[test]
    fn labels_ports_volumes_are_unions_and_scalars_fill_gaps() {
        let mut c = config(
            r#"{"Labels":{"a":"mine"},"ExposedPorts":{"80/tcp":{}},"User":"","WorkingDir":"/w"}"#,
        );
        merge_image_config(
            &mut c,
            &image(
                r#"{"Labels":{"a":"img","b":"img"},"ExposedPorts":{"443/tcp":{}},
                    "Volumes":{"/data":{}},"User":"nobody","WorkingDir":"/img",
                    "StopSignal":"SIGQUIT"}"#,
            ),
        );
        let labels = c.labels.expect("labels");
        assert_eq!(labels["a"], "mine");
        assert_eq!(labels["b"], "img");
        let ports: Vec<_> = c.exposed_ports.expect("ports").into_keys().collect();
        assert_eq!(ports, vec!["443/tcp", "80/tcp"]);
        assert!(c.volumes.expect("volumes").contains_key("/data"));
        assert_eq!(c.user, "nobody");
        assert_eq!(c.working_dir, "/w");
        assert_eq!(c.stop_signal, "SIGQUIT");
    }

    #[test]
    fn labels_become_an_empty_map_as_docker() {
        let mut c = config("{}");
        merge_image_config(&mut c, &image("{}"));
        assert_eq!(c.labels, Some(BTreeMap::new()));
    }

    #[test]
    fn healthcheck_merges_field_by_field() {
        let mut c = config(r#"{"Healthcheck":{"Interval":5}}"#);
        merge_image_config(
            &mut c,
            &image(r#"{"Healthcheck":{"Test":["CMD","true"],"Interval":9,"Retries":3}}"#),
        );
        let health = c.healthcheck.expect("health");
        assert_eq!(health.test, Some(vec!["CMD".into(), "true".into()]));
        assert_eq!(health.interval, 5);
        assert_eq!(health.retries, 3);
    }
}
