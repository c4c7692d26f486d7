//! A whole build: parse, expand FROM lines with the global ARGs, plan the stages the target
//! needs, run independent stages on their own threads (output kept in Dockerfile order),
//! append `--label`s, tag the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use berth_dockerfile::instructions::{parse_stages, scope, Command, Instruction, KeyValue};
use berth_dockerfile::shell::Lexer;

use crate::config::{RunConfig, DEFAULT_PATH};
use crate::context::SourceRoot;
use crate::dispatch::{Env, StageState};
use crate::graph::{self, Base, PlannedStage};
use crate::output::{Ordered, Output};
use crate::worker::Worker;
use crate::BuildError;

/// What `POST /build` and `berth build` ask for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Its path inside the context (kept by .dockerignore).
    pub dockerfile_name: String,
    /// The context directory: extracted, or empty when `context_tar` holds the context.
    pub context: PathBuf,
    /// The context as an indexed tar, extracted into `context` only when a step copies
    /// from it (a fully cached build never writes it to disk).
    pub context_tar: Option<std::sync::Arc<crate::context_tar::ContextTar>>,
    /// The uploaded headers of a context extracted into `context` (COPY digests).
    pub context_headers: Option<std::sync::Arc<crate::context_tar::ContextHeaders>>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: String,
    pub no_cache: bool,
    pub pull: bool,
    pub platform: String,
    /// Build secrets by id (`RUN --mount=type=secret`); empty through the classic POST
    /// /build, which has no session to carry them.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// `--cache-from` images: their history offers cached steps (as the classic builder's
    /// image cache does).
    pub cache_from: Vec<String>,
    /// `--squash`: the target's layers above its base image become one layer (moby's
    /// `SquashImage` after the build, which dockerd allows only in experimental mode).
    pub squash: bool,
}

/// The built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// `sha256:...`.
    pub image: String,
    /// The tags applied, in Docker's familiar form.
    pub tags: Vec<String>,
}

/// The final state of a finished stage.
#[derive(Debug, Clone)]
struct StageResult {
    image: String,
    config: RunConfig,
    /// The image the stage started from (empty for scratch): what `--squash` merges onto.
    base: String,
}

fn predefined_args() -> Vec<(String, String)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let platform = format!("linux/{arch}");
    [
        ("BUILDPLATFORM", platform.as_str()),
        ("BUILDOS", "linux"),
        ("BUILDARCH", arch),
        ("TARGETPLATFORM", platform.as_str()),
        ("TARGETOS", "linux"),
        ("TARGETARCH", arch),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// `name` with `:latest` when it has neither tag nor digest.
fn with_default_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Runs the build; the stream text goes to `out`.
pub fn build(
    worker: &dyn Worker,
    options: &BuildOptions,
    out: &dyn Output,
) -> Result<BuildResult, BuildError> {
    let df = berth_dockerfile::parse(&options.dockerfile).map_err(|e| BuildError::Parse {
        line: e.start_line,
        message: e.kind.to_string(),
    })?;
    let (mut stages, meta_args) = parse_stages(&df)?;
    if stages.is_empty() {
        return Err(BuildError::NoImage);
    }
    let global = scope::global_args(
        &meta_args,
        &options.build_args,
        &predefined_args(),
        df.escape_token,
    )
    .map_err(|e| BuildError::Expand(e.to_string()))?;
    let lexer = Lexer::new(df.escape_token);
    let mut from_names = Vec::new();
    for stage in &stages {
        let name = lexer
            .process_word(&stage.from.base_name, &global)
            .map_err(|e| BuildError::Expand(e.to_string()))?;
        from_names.push(name);
    }
    let target = graph::target_index(&stages, &options.target)?;
    if !options.labels.is_empty() {
        let kvs: Vec<KeyValue> = options
            .labels
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
                no_delim: false,
            })
            .collect();
        let text: Vec<String> = options
            .labels
            .iter()
            .map(|(k, v)| format!("{}='{v}'", crate::config::go_quote(k)))
            .collect();
        stages[target].commands.push(Command {
            instruction: Instruction::Label(kvs),
            start_line: 0,
            end_line: 0,
            original: format!("LABEL {}", text.join(" ")),
        });
    }
    let planned = graph::plan(&stages, &from_names);
    let needed = graph::needed(&planned, target);
    let total: usize = meta_args.len()
        + needed
            .iter()
            .map(|i| 1 + stages[*i].commands.len())
            .sum::<usize>();
    let mut step = 0;
    for (arg, original) in meta_args
        .iter()
        .zip(df.children.iter().filter(|n| n.keyword() == "arg"))
    {
        let _ = arg;
        step += 1;
        out.stream(&format!(
            "Step {step}/{total} : {}\n",
            original.original.trim()
        ));
    }
    let mut first_step = BTreeMap::new();
    for i in &needed {
        first_step.insert(*i, step + 1);
        step += 1 + stages[*i].commands.len();
    }
    let context = match &options.context_tar {
        Some(tar) => {
            SourceRoot::context_tar(&options.context, &options.dockerfile_name, tar.clone())?
        }
        None => match &options.context_headers {
            Some(headers) => SourceRoot::context_extracted(
                &options.context,
                &options.dockerfile_name,
                headers.clone(),
            )?,
            None => SourceRoot::context(&options.context, &options.dockerfile_name)?,
        },
    };
    let used_args = Mutex::new(BTreeSet::new());
    let results: Mutex<BTreeMap<usize, StageResult>> = Mutex::new(BTreeMap::new());
    let ordered = Ordered::new(out, needed.len());
    let run = Runner {
        worker,
        options,
        stages: &stages,
        planned: &planned,
        from_names: &from_names,
        global: &global,
        escape: df.escape_token,
        context: &context,
        used_args: &used_args,
        results: &results,
        stage_done: &Condvar::new(),
        failed: &AtomicBool::new(false),
        ordered: &ordered,
        needed: &needed,
        first_step: &first_step,
        total,
    };
    run.all()?;
    let (mut image, base) = results
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&target)
        .map(|r| (r.image.clone(), r.base.clone()))
        .unwrap_or_default();
    let used = used_args.into_inner().unwrap_or_else(|p| p.into_inner());
    let unused: Vec<&String> = options
        .build_args
        .keys()
        .filter(|k| !used.contains(*k) && !scope::PROXY_ARGS.contains(&k.as_str()))
        .filter(|k| {
            !meta_args
                .iter()
                .any(|m| m.args.iter().any(|a| &a.key == *k))
        })
        .collect();
    if !unused.is_empty() {
        let names: Vec<String> = unused.iter().map(|s| s.to_string()).collect();
        out.stream(&format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            names.join(" ")
        ));
    }
    if image.is_empty() {
        return Err(BuildError::NoImage);
    }
    if options.squash {
        // As moby's build backend: the finished image is squashed onto the target stage's
        // FROM image (nothing for scratch), then tagged.
        image = worker
            .squash(&image, &base)
            .map_err(|e| BuildError::Squash(e.to_string()))?;
    }
    let mut tags = Vec::new();
    for tag in &options.tags {
        worker.tag(&image, tag)?;
        tags.push(with_default_tag(tag));
    }
    Ok(BuildResult { image, tags })
}

struct Runner<'a> {
    worker: &'a dyn Worker,
    options: &'a BuildOptions,
    stages: &'a [berth_dockerfile::instructions::Stage],
    planned: &'a [PlannedStage],
    from_names: &'a [String],
    global: &'a [(String, String)],
    escape: char,
    context: &'a SourceRoot,
    used_args: &'a Mutex<BTreeSet<String>>,
    results: &'a Mutex<BTreeMap<usize, StageResult>>,
    /// Signalled (with `results`) whenever a stage finishes or fails.
    stage_done: &'a Condvar,
    /// A stage failed: steps waiting for other stages give up.
    failed: &'a AtomicBool,
    ordered: &'a Ordered<'a>,
    needed: &'a [usize],
    first_step: &'a BTreeMap<usize, usize>,
    total: usize,
}

impl Runner<'_> {
    fn result(&self, stage: usize) -> Option<StageResult> {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&stage)
            .cloned()
    }

    /// Waits until every stage in `refs` has finished; false when a stage failed first
    /// (the build is failing: the step does not run).
    fn wait_for(&self, refs: &[usize]) -> bool {
        let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if refs.iter().all(|i| results.contains_key(i)) {
                return true;
            }
            if self.failed.load(Ordering::SeqCst) {
                return false;
            }
            results = self
                .stage_done
                .wait(results)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Marks a failure and wakes the steps waiting for stages.
    fn fail(&self) {
        let _results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        self.failed.store(true, Ordering::SeqCst);
        self.stage_done.notify_all();
    }

    /// Runs the needed stages, each as soon as the stage it builds on (its FROM) is done; a
    /// step that reads another stage (`COPY --from`, `RUN --mount=from=`) waits for that
    /// stage alone, so a stage's first steps run while the stages it copies from still do.
    fn all(&self) -> Result<(), BuildError> {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<(), BuildError>)>();
        let mut started = BTreeSet::new();
        let mut finished = BTreeSet::new();
        let mut failure = None;
        let mut failed = 0;
        std::thread::scope(|scope| loop {
            if failure.is_none() {
                for (section, &i) in self.needed.iter().enumerate() {
                    let ready = match self.planned[i].base {
                        Base::Stage(b) => finished.contains(&b),
                        _ => true,
                    };
                    if ready && started.insert(i) {
                        let tx = tx.clone();
                        scope.spawn(move || {
                            let result = self.stage(section, i);
                            if result.is_err() {
                                self.fail();
                            }
                            self.ordered.finish(section);
                            let _ = tx.send((i, result));
                        });
                    }
                }
            }
            if started.len() == finished.len() + failed {
                break;
            }
            let Ok((i, result)) = rx.recv() else { break };
            match result {
                Ok(()) => {
                    finished.insert(i);
                }
                Err(e) => {
                    failed += 1;
                    failure.get_or_insert(e);
                }
            }
        });
        self.ordered.flush_all();
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stage(&self, section: usize, index: usize) -> Result<(), BuildError> {
        let say = |text: &str| self.ordered.write(section, text);
        let stage = &self.stages[index];
        let mut step = self.first_step.get(&index).copied().unwrap_or(1);
        say(&format!(
            "Step {step}/{} : {}\n",
            self.total, stage.original
        ));
        let mut state = StageState::default();
        let base_config = match &self.planned[index].base {
            Base::Scratch => None,
            Base::Stage(i) => {
                let r = self
                    .result(*i)
                    .ok_or_else(|| BuildError::Expand(format!("stage {i} did not finish")))?;
                state.image = r.image;
                Some(r.config)
            }
            Base::Image(name) => {
                let base = self
                    .worker
                    .resolve_image_logged(name, self.options.pull, &say)?;
                state.image = base.id;
                base.config
            }
        };
        let base = state.image.clone();
        state.config = base_config.unwrap_or_default();
        state.config.image = state.image.clone();
        state.config.open_stdin = false;
        state.config.stdin_once = false;
        if state.config.env_value("PATH").is_none() {
            let (k, v) = DEFAULT_PATH.split_once('=').unwrap_or(("PATH", ""));
            state.config.set_env(k, v);
        }
        let stage_images = |name: &str| {
            graph::stage_ref(self.stages, index, name).and_then(|i| self.result(i).map(|r| r.image))
        };
        let env = Env {
            worker: self.worker,
            escape: self.escape,
            build_args: &self.options.build_args,
            global_args: self.global,
            no_cache: self.options.no_cache,
            cache_from: &self.options.cache_from,
            context: self.context,
            stage_images: &stage_images,
            secrets: &self.options.secrets,
            used_args: self.used_args,
        };
        let triggers = state.config.on_build.clone().unwrap_or_default();
        if !triggers.is_empty() {
            say(&format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() > 1 { "s" } else { "" }
            ));
            state.config.on_build = Some(Vec::new());
            for trigger in &triggers {
                let df = berth_dockerfile::parse(trigger).map_err(|e| BuildError::Parse {
                    line: e.start_line,
                    message: e.kind.to_string(),
                })?;
                for node in &df.children {
                    let command = berth_dockerfile::instructions::parse_instruction(node)
                        .map_err(|e| BuildError::Expand(e.to_string()))?;
                    state.dispatch(&env, &say, &command.instruction)?;
                }
            }
        }
        say(&format!(" ---> {}\n", short(&state.image)));
        for command in &stage.commands {
            let refs = graph::command_stage_refs(self.stages, index, &command.instruction);
            if !self.wait_for(&refs) {
                // Another stage failed; its error is the build's (this stage ends quietly).
                return Ok(());
            }
            step += 1;
            say(&format!(
                "Step {step}/{} : {}\n",
                self.total,
                command.original.trim()
            ));
            state.dispatch(&env, &say, &command.instruction)?;
            state.config.image = state.image.clone();
            say(&format!(" ---> {}\n", short(&state.image)));
        }
        let _ = self.from_names;
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                index,
                StageResult {
                    image: state.image,
                    config: state.config,
                    base,
                },
            );
        self.stage_done.notify_all();
        Ok(())
    }
}
