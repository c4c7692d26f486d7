//! One stage's instructions with the classic builder's semantics (moby's
//! `builder/dockerfile/dispatchers.go`): how each one changes the run config, which commit
//! and history text it makes, and the cache probe before any work.

use std::collections::{BTreeMap, BTreeSet};

use berth_dockerfile::instructions::{
    expand_instruction, scope, CommandLine, Expander, Instruction, KeyValue, RunCommand,
};
use sha2::{Digest as _, Sha256};

use crate::config::{go_list, go_quote_list, healthcheck_comment, HealthConfig, RunConfig};
use crate::context::SourceRoot;
use crate::copy;
use crate::worker::{LayerGuard, StepCommit, Worker};
use crate::BuildError;

/// The state of one stage while its instructions run.
#[derive(Debug, Clone, Default)]
pub struct StageState {
    /// The current image (empty before the first commit of a scratch stage).
    pub image: String,
    pub config: RunConfig,
    pub author: String,
    /// ARGs declared in the stage with their values (None: declared without a value).
    pub args: Vec<(String, Option<String>)>,
    pub cmd_set: bool,
}

/// What dispatch needs from the build.
pub struct Env<'a> {
    pub worker: &'a dyn Worker,
    pub escape: char,
    pub build_args: &'a BTreeMap<String, String>,
    pub global_args: &'a [(String, String)],
    pub no_cache: bool,
    /// `--cache-from` images, probed after the build cache misses.
    pub cache_from: &'a [String],
    pub context: &'a SourceRoot,
    /// Result image of each finished stage (COPY --from), by stage index.
    pub stage_images: &'a dyn Fn(&str) -> Option<String>,
    /// Build secrets by id (`RUN --mount=type=secret`).
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    /// Build args a stage consumed (for the "not consumed" warning).
    pub used_args: &'a std::sync::Mutex<BTreeSet<String>>,
}

/// A step's text sink.
pub type Say<'a> = &'a dyn Fn(&str);

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

impl StageState {
    /// The values visible to word expansion: Env, then declared ARGs Env does not shadow.
    fn expansion_env(&self) -> Vec<(String, String)> {
        let mut env = self.config.env_pairs();
        for (key, value) in self.allowed_args() {
            if !env.iter().any(|(k, _)| *k == key) {
                env.push((key, value));
            }
        }
        env
    }

    /// Declared ARGs with a value (`GetAllAllowed`).
    fn allowed_args(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    /// Build args a RUN sees as environment (`FilterAllowed`): not shadowed by Env.
    fn run_args(&self, env: &Env) -> Vec<String> {
        let mut out: Vec<String> = self
            .allowed_args()
            .into_iter()
            .filter(|(k, _)| self.config.env_value(k).is_none())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for key in scope::PROXY_ARGS {
            if let Some(v) = env.build_args.get(key) {
                if self.config.env_value(key).is_none() && !self.args.iter().any(|(k, _)| k == key)
                {
                    out.push(format!("{key}={v}"));
                }
            }
        }
        out
    }
}

/// The cache key of a step: parent image, the step's container config (which holds the
/// instruction text, the build args RUN uses and COPY's content hash) and the author.
pub fn cache_key(
    parent: &str,
    container_config: &RunConfig,
    config: &RunConfig,
    author: &str,
    extra: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(parent.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(container_config).unwrap_or_default());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(config).unwrap_or_default());
    hasher.update([0]);
    hasher.update(author.as_bytes());
    if !extra.is_empty() {
        hasher.update([0]);
        hasher.update(extra.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// Resolves CMD/ENTRYPOINT/RUN arguments: shell form runs through SHELL.
fn resolve_cmd_line(cmd: &CommandLine, config: &RunConfig) -> Vec<String> {
    if cmd.prepend_shell {
        let mut out = config.shell_or_default();
        out.push(cmd.args.join(" "));
        out
    } else {
        cmd.args.clone()
    }
}

/// Normalises a WORKDIR against the current one (`filepath.Join`, absolute).
pub fn normalize_workdir(current: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!(
            "{}/{}",
            if current.is_empty() { "/" } else { current },
            path
        )
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

impl StageState {
    /// Commits a step: probes the cache, else runs `work` (which may return a layer key)
    /// and commits; prints ` ---> Using cache` on a hit.
    pub(crate) fn commit(
        &mut self,
        env: &Env,
        say: Say,
        container_config: RunConfig,
        work: impl FnOnce(&mut Self) -> Result<Option<(String, String)>, BuildError>,
    ) -> Result<(), BuildError> {
        self.commit_keyed(env, say, container_config, "", work)
    }

    /// [`Self::commit`] with `extra` in the cache key: what the step reads that its
    /// container config does not show (heredoc scripts, mounts).
    pub(crate) fn commit_keyed(
        &mut self,
        env: &Env,
        say: Say,
        container_config: RunConfig,
        extra: &str,
        work: impl FnOnce(&mut Self) -> Result<Option<(String, String)>, BuildError>,
    ) -> Result<(), BuildError> {
        let mut config = self.config.clone();
        config.image = self.image.clone();
        let mut container_config = container_config;
        container_config.image = self.image.clone();
        let key = cache_key(&self.image, &container_config, &config, &self.author, extra);
        if !env.no_cache {
            if let Some(hit) = env.worker.cache_get(&key) {
                say(" ---> Using cache\n");
                self.image = hit;
                return Ok(());
            }
            if !env.cache_from.is_empty() {
                let created_by = container_config
                    .cmd
                    .as_deref()
                    .unwrap_or_default()
                    .join(" ");
                let hit = env
                    .worker
                    .cache_from(env.cache_from, &self.image, &created_by, &config);
                if let Some(hit) = hit {
                    say(" ---> Using cache\n");
                    env.worker.cache_put(&key, &hit);
                    self.image = hit;
                    return Ok(());
                }
            }
        }
        let layer = work(self)?;
        let guard = layer.as_ref().map(|(key, _)| LayerGuard {
            worker: env.worker,
            key: key.clone(),
        });
        let commit = StepCommit {
            parent: self.image.clone(),
            config,
            container_config,
            author: self.author.clone(),
            container: layer.as_ref().map(|(_, c)| c.clone()).unwrap_or_default(),
        };
        let image = env
            .worker
            .commit(guard.as_ref().map(|g| g.key.as_str()), &commit)?;
        drop(guard);
        if let Some((_, container)) = layer.filter(|(_, c)| !c.is_empty()) {
            say(&format!(
                "Removing intermediate container {}\n",
                short(&container)
            ));
        }
        env.worker.cache_put(&key, &image);
        self.image = image;
        Ok(())
    }

    /// A metadata-only step (`d.builder.commit`): history `/bin/sh -c #(nop)  <comment>`.
    fn commit_nop(&mut self, env: &Env, say: Say, comment: &str) -> Result<(), BuildError> {
        let cc = self.config.with_comment(comment);
        self.commit(env, say, cc, |_| Ok(None))
    }

    /// Runs one instruction (already parsed, not yet expanded).
    pub fn dispatch(
        &mut self,
        env: &Env,
        say: Say,
        instruction: &Instruction,
    ) -> Result<(), BuildError> {
        let mut instruction = instruction.clone();
        let vars = self.expansion_env();
        {
            let expander = Expander::new(env.escape, &vars);
            expand_instruction(&mut instruction, &expander)
                .map_err(|e| BuildError::Expand(e.to_string()))?;
            let mut used = env.used_args.lock().unwrap_or_else(|p| p.into_inner());
            used.extend(expander.matched());
        }
        match instruction {
            Instruction::Env(kvs) => {
                let mut comment = String::from("ENV");
                for KeyValue { key, value, .. } in &kvs {
                    comment.push_str(&format!(" {key}={value}"));
                    self.config.set_env(key, value);
                }
                self.commit_nop(env, say, &comment)
            }
            Instruction::Label(kvs) => {
                let mut comment = String::from("LABEL");
                let labels = self.config.labels.get_or_insert_with(BTreeMap::new);
                for KeyValue { key, value, .. } in &kvs {
                    comment.push_str(&format!(" {key}={value}"));
                    labels.insert(key.clone(), value.clone());
                }
                self.commit_nop(env, say, &comment)
            }
            Instruction::Maintainer(m) => {
                self.author = m.clone();
                self.commit_nop(env, say, &format!("MAINTAINER {m}"))
            }
            Instruction::Expose(ports) => {
                let set = self.config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for port in &ports {
                    let key = if port.contains('/') {
                        port.to_ascii_lowercase()
                    } else {
                        format!("{port}/tcp")
                    };
                    set.insert(key, serde_json::json!({}));
                }
                self.commit_nop(env, say, &format!("EXPOSE {}", ports.join(" ")))
            }
            Instruction::User(user) => {
                self.config.user = user.clone();
                self.commit_nop(env, say, &format!("USER {user}"))
            }
            Instruction::Volume(volumes) => {
                let set = self.config.volumes.get_or_insert_with(BTreeMap::new);
                for v in &volumes {
                    if v.trim().is_empty() {
                        return Err(BuildError::Expand(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    set.insert(v.clone(), serde_json::json!({}));
                }
                self.commit_nop(env, say, &format!("VOLUME {}", go_list(&volumes)))
            }
            Instruction::StopSignal(signal) => {
                self.config.stop_signal = signal.clone();
                self.commit_nop(env, say, &format!("STOPSIGNAL {signal}"))
            }
            Instruction::Shell(shell) => {
                self.config.shell = Some(shell.clone());
                self.commit_nop(env, say, &format!("SHELL {}", go_list(&shell)))
            }
            Instruction::Cmd(cmd) => {
                let resolved = resolve_cmd_line(&cmd, &self.config);
                self.config.cmd = Some(resolved.clone());
                self.config.args_escaped = false;
                if !cmd.args.is_empty() {
                    self.cmd_set = true;
                }
                self.commit_nop(env, say, &format!("CMD {}", go_quote_list(&resolved)))
            }
            Instruction::Entrypoint(cmd) => {
                let resolved = if cmd.is_null && !cmd.prepend_shell {
                    None
                } else {
                    Some(resolve_cmd_line(&cmd, &self.config))
                };
                self.config.entrypoint = resolved.clone();
                if !self.cmd_set {
                    self.config.cmd = None;
                }
                let text = go_quote_list(&resolved.unwrap_or_default());
                self.commit_nop(env, say, &format!("ENTRYPOINT {text}"))
            }
            Instruction::Healthcheck(h) => {
                let health = HealthConfig {
                    test: h.test.clone(),
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    start_interval: h.start_interval,
                    retries: h.retries,
                };
                let comment = healthcheck_comment(&health);
                self.config.healthcheck = Some(health);
                self.commit_nop(env, say, &comment)
            }
            Instruction::Onbuild(o) => {
                let expression = o.expression.trim().to_string();
                self.config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(expression.clone());
                self.commit_nop(env, say, &format!("ONBUILD {expression}"))
            }
            Instruction::Arg(arg) => {
                let mut comment = String::from("ARG");
                for pair in &arg.args {
                    let value = scope::stage_arg_value(
                        pair,
                        env.build_args,
                        &env.global_args.to_vec(),
                        &vars,
                        env.escape,
                    )
                    .map_err(|e| BuildError::Expand(e.to_string()))?;
                    comment.push_str(&format!(" {}", pair.key));
                    if let Some(v) = &pair.value {
                        comment.push_str(&format!("={v}"));
                    }
                    env.used_args
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(pair.key.clone());
                    self.args.retain(|(k, _)| *k != pair.key);
                    self.args.push((pair.key.clone(), value));
                }
                self.commit_nop(env, say, &comment)
            }
            Instruction::Workdir(path) => {
                let dir = normalize_workdir(&self.config.working_dir, &path);
                self.config.working_dir = dir.clone();
                let cc = self.config.with_comment_string(&format!("WORKDIR {dir}"));
                self.commit(env, say, cc, |state| {
                    let key = env.worker.prepare(&state.image)?;
                    let guard = LayerGuard {
                        worker: env.worker,
                        key,
                    };
                    let root = env.worker.layer_root(&guard.key)?;
                    copy::mkdir_all(&root, &dir, 0, 0)?;
                    let key = guard.key.clone();
                    std::mem::forget(guard);
                    Ok(Some((key, String::new())))
                })
            }
            Instruction::Run(run) => self.run(env, say, &run),
            Instruction::Copy(c) => {
                let source_image = if c.from.is_empty() {
                    None
                } else {
                    Some(match (env.stage_images)(&c.from) {
                        Some(id) => id,
                        None => env.worker.resolve_image(&c.from, false)?.id,
                    })
                };
                let spec = crate::dispatch_copy::CopySpec {
                    name: "COPY",
                    sources: c.files.sources.clone(),
                    contents: c.files.contents.clone(),
                    checksum: String::new(),
                    dest: c.files.dest.clone(),
                    chown: c.chown.clone(),
                    chmod: c.chmod.clone(),
                    extract: false,
                    source_image,
                    keep_git_dir: false,
                };
                crate::dispatch_copy::copy(self, env, say, &spec)
                    .map_err(|e| BuildError::copy_failed("COPY", e))
            }
            Instruction::Add(a) => {
                let spec = crate::dispatch_copy::CopySpec {
                    name: "ADD",
                    sources: a.files.sources.clone(),
                    contents: a.files.contents.clone(),
                    checksum: a.checksum.clone(),
                    dest: a.files.dest.clone(),
                    chown: a.chown.clone(),
                    chmod: a.chmod.clone(),
                    extract: a.unpack.unwrap_or(true),
                    source_image: None,
                    keep_git_dir: a.keep_git_dir.unwrap_or(false),
                };
                crate::dispatch_copy::copy(self, env, say, &spec)
                    .map_err(|e| BuildError::copy_failed("ADD", e))
            }
            Instruction::From(_) => Err(BuildError::Expand("FROM inside a stage".into())),
        }
    }

    /// RUN: the command runs in a container with Env plus the build args; the history and
    /// cache probe carry `|N k=v...` before the command when build args are set. Heredocs
    /// and `--mount`s go into the cache key (their text, and a bind's content).
    fn run(&mut self, env: &Env, say: Say, run: &RunCommand) -> Result<(), BuildError> {
        let heredoc = crate::run_heredoc::rewrite(&run.cmd)?;
        let cmd = CommandLine {
            args: heredoc.args.clone(),
            files: Vec::new(),
            ..run.cmd.clone()
        };
        let command = resolve_cmd_line(&cmd, &self.config);
        let args = self.run_args(env);
        let mut save_cmd = command.clone();
        if !args.is_empty() {
            let mut shown: Vec<String> = args
                .iter()
                .filter(|a| {
                    let key = a.split('=').next().unwrap_or_default();
                    !scope::PROXY_ARGS.contains(&key)
                })
                .cloned()
                .collect();
            shown.sort();
            let mut prefixed = vec![format!("|{}", shown.len())];
            prefixed.extend(shown);
            prefixed.extend(command.clone());
            save_cmd = prefixed;
        }
        let mut probe = self.config.clone();
        probe.cmd = Some(save_cmd);
        probe.args_escaped = false;
        probe.entrypoint = None;
        let mut run_config = self.config.clone();
        run_config.cmd = Some(command.clone());
        run_config.entrypoint = None;
        run_config.healthcheck = None;
        let mut run_env = run_config.env.clone().unwrap_or_default();
        run_env.extend(args);
        run_config.env = Some(run_env);
        let mut extra = crate::run_mounts::cache_text(env, &self.config.working_dir, &run.mounts)?;
        if let Some(script) = &heredoc.script {
            extra.push_str(&format!("heredoc {}\0{}", script.name, script.data));
        }
        self.commit_keyed(env, say, probe, &extra, |state| {
            run_config.image = state.image.clone();
            let mut mounts =
                crate::run_mounts::resolve(env, &state.config.working_dir, &run.mounts)?;
            if !mounts.env.is_empty() {
                run_config
                    .env
                    .get_or_insert_with(Vec::new)
                    .extend(mounts.env.clone());
            }
            let _script_dir = match &heredoc.script {
                Some(script) => Some(mount_script(env, script, &mut mounts.mounts)?),
                None => None,
            };
            let container = env
                .worker
                .create(&state.image, &run_config, &mounts.mounts)?;
            let guard = LayerGuard {
                worker: env.worker,
                key: container.clone(),
            };
            say(&format!(" ---> Running in {}\n", short(&container)));
            let mut out = SayWriter(say);
            let code = env.worker.start(&container, &mut out)?;
            if code != 0 {
                return Err(BuildError::Run {
                    command: command.join(" "),
                    code,
                });
            }
            std::mem::forget(guard);
            Ok(Some((container.clone(), container)))
        })
    }
}

/// Writes a heredoc script (mode 0755) into a scratch directory bound read-only at
/// /dev/pipes, as BuildKit mounts its inline document.
fn mount_script(
    env: &Env,
    script: &crate::run_heredoc::Script,
    mounts: &mut Vec<crate::worker::RunMount>,
) -> Result<tempfile::TempDir, BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = env.worker.scratch_dir()?;
    let file = dir.path().join(&script.name);
    let io = |source| BuildError::Io {
        op: format!("writing the heredoc {}", script.name),
        source,
    };
    std::fs::write(&file, &script.data).map_err(io)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    mounts.push(crate::worker::RunMount {
        target: crate::run_heredoc::PIPES_DIR.to_string(),
        source: crate::worker::RunMountSource::Bind(dir.path().to_path_buf()),
        read_only: true,
    });
    Ok(dir)
}

/// Adapts `Say` to `io::Write` for container output.
struct SayWriter<'a>(Say<'a>);

impl std::io::Write for SayWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
