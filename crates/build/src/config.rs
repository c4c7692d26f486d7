//! The image run config as Docker's classic builder writes it (`container.Config` in Go's
//! field order, every non-omitempty field present) and the texts it derives from it: the
//! `#(nop)` comment commands of history entries, Go's `%q`/`%v` renderings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `HEALTHCHECK` as stored in an image config (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Docker's `container.Config` with Go's JSON shape: `null` for unset lists and maps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// The default shell of Linux images.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}

/// The PATH Docker's builder adds when the image has none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl RunConfig {
    /// SHELL, or `/bin/sh -c`.
    pub fn shell_or_default(&self) -> Vec<String> {
        self.shell.clone().unwrap_or_else(default_shell)
    }

    /// The value of `key` in Env.
    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .flatten()
            .rev()
            .find_map(|e| match e.split_once('=') {
                Some((k, v)) if k == key => Some(v.to_string()),
                None if e == key => Some(String::new()),
                _ => None,
            })
    }

    /// Sets `key=value` in Env, replacing an existing entry in place (Docker's order).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }

    /// Env as `(key, value)` pairs for word expansion.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .flatten()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    /// `#(nop) ` comment command of metadata steps (`withCmdComment`): the shell, the marker
    /// and the text as two words, so history reads `/bin/sh -c #(nop)  ENV A=b`.
    pub fn with_comment(&self, comment: &str) -> RunConfig {
        let mut out = self.clone();
        let mut cmd = self.shell_or_default();
        cmd.push("#(nop) ".to_string());
        cmd.push(comment.to_string());
        out.cmd = Some(cmd);
        out
    }

    /// `withCmdCommentString` of COPY/ADD/WORKDIR: one word, `/bin/sh -c #(nop) COPY ...`.
    pub fn with_comment_string(&self, comment: &str) -> RunConfig {
        let mut out = self.clone();
        let mut cmd = self.shell_or_default();
        cmd.push(format!("#(nop) {comment}"));
        out.cmd = Some(cmd);
        out
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `strconv.Quote` for the printable ASCII and common escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String()`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let negative = nanos < 0;
    let n = nanos.unsigned_abs();
    let text = if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", trim_fraction(n, 1_000))
    } else if n < 1_000_000_000 {
        format!("{}ms", trim_fraction(n, 1_000_000))
    } else {
        let hours = n / 3_600_000_000_000;
        let minutes = (n / 60_000_000_000) % 60;
        let seconds = trim_fraction(n % 60_000_000_000, 1_000_000_000);
        match (hours, minutes) {
            (0, 0) => format!("{seconds}s"),
            (0, m) => format!("{m}m{seconds}s"),
            (h, m) => format!("{h}h{m}m{seconds}s"),
        }
    };
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

fn trim_fraction(value: u64, unit: u64) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The classic builder's `HEALTHCHECK %q` of a `*HealthConfig` (Docker 20.10's five fields;
/// Go quotes the retries integer as a rune literal).
pub fn healthcheck_comment(h: &HealthConfig) -> String {
    format!(
        "HEALTHCHECK &{{{} {} {} {} '\\x{:02x}'}}",
        go_quote_list(&h.test),
        go_quote(&go_duration(h.interval)),
        go_quote(&go_duration(h.timeout)),
        go_quote(&go_duration(h.start_period)),
        h.retries
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_config_serialises_like_go_container_config() {
        let config = RunConfig {
            env: Some(vec!["A=b".into()]),
            cmd: Some(vec!["sh".into()]),
            ..RunConfig::default()
        };
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=b"],"Cmd":["sh"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#
        );
    }

    #[test]
    fn comments_are_the_classic_builders_nop_commands() {
        let config = RunConfig::default();
        assert_eq!(
            config.with_comment("ENV A=b").cmd.unwrap().join(" "),
            "/bin/sh -c #(nop)  ENV A=b"
        );
        assert_eq!(
            config
                .with_comment_string("WORKDIR /app")
                .cmd
                .unwrap()
                .join(" "),
            "/bin/sh -c #(nop) WORKDIR /app"
        );
    }

    #[test]
    fn set_env_replaces_in_place() {
        let mut config = RunConfig {
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            ..RunConfig::default()
        };
        config.set_env("PATH", "/usr/bin");
        config.set_env("B", "2");
        assert_eq!(
            config.env.clone().unwrap(),
            vec!["PATH=/usr/bin", "A=1", "B=2"]
        );
        assert_eq!(config.env_value("A").as_deref(), Some("1"));
    }

    #[test]
    fn go_durations_and_healthcheck_text() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(300_000_000_000), "5m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        let h = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 300_000_000_000,
            timeout: 3_000_000_000,
            retries: 3,
            ..HealthConfig::default()
        };
        assert_eq!(
            healthcheck_comment(&h),
            r#"HEALTHCHECK &{["CMD-SHELL" "true"] "5m0s" "3s" "0s" '\x03'}"#
        );
    }
}
