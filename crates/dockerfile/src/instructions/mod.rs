//! Typed instructions from AST nodes, with BuildKit's checks and error texts
//! (`frontend/dockerfile/instructions/parse.go`), and the split into build stages.

mod expand;
mod flags;
pub mod mount;
pub mod scope;
mod suggest;
mod types;
pub mod values;

pub use expand::{expand_instruction, expands_variables, ExpandError, Expander};
pub use flags::FlagError;
pub use mount::{CacheSharing, Device, Mount, MountError, MountType, NetworkMode, Security};
pub use types::*;
pub use values::ValueError;

use flags::{FlagKind, Flags};

use crate::parser::{chomp_heredoc_content, parse_heredoc, Dockerfile, Node};
use crate::quote::go_quote;

/// Why an instruction was refused; texts are BuildKit's (capitalised where BuildKit's are, as
/// users and tests compare them with Docker's output).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    #[error("unknown instruction: {instruction}{}", suggest::did_you_mean(.suggestion))]
    Unknown {
        instruction: String,
        suggestion: Option<String>,
    },
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error("{0} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination(&'static str),
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("Bad input to {0}, too many arguments")]
    TooManyArguments(&'static str),
    #[error("invalid name for build stage: {}, name can't start with a number or contain symbols", go_quote(.0))]
    StageName(String),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    #[error("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(.0))]
    HealthcheckType(String),
    #[error("Interval {} cannot be less than 1ms", go_quote(.0))]
    IntervalTooShort(&'static str),
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    #[error("no build stage in current context")]
    NoStage,
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// A refused instruction with its line, printed as BuildKit prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {source}")]
pub struct DockerfileError {
    pub line: usize,
    pub end_line: usize,
    #[source]
    pub source: InstructionError,
}

/// Every instruction keyword BuildKit knows.
pub const INSTRUCTIONS: [&str; 18] = [
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Parses the whole file into stages; ARGs before the first FROM are returned separately.
pub fn parse_stages(
    dockerfile: &Dockerfile,
) -> Result<(Vec<Stage>, Vec<ArgCommand>), DockerfileError> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut meta_args = Vec::new();
    for node in &dockerfile.children {
        let wrap = |source| DockerfileError {
            line: node.start_line,
            end_line: node.end_line,
            source,
        };
        let command = parse_instruction(node).map_err(wrap)?;
        match command.instruction {
            Instruction::From(from) => stages.push(Stage {
                from,
                commands: Vec::new(),
                start_line: node.start_line,
                end_line: node.end_line,
                original: node.original.trim().to_string(),
                comments: node.comments.clone(),
            }),
            Instruction::Arg(arg) if stages.is_empty() => meta_args.push(arg),
            instruction => match stages.last_mut() {
                Some(stage) => stage.commands.push(Command {
                    instruction,
                    ..command
                }),
                None => return Err(wrap(InstructionError::NoStage)),
            },
        }
    }
    Ok((stages, meta_args))
}

/// The arguments BuildKit's `nodeArgs` gives: ONBUILD's nested instruction flattened.
fn node_args(node: &Node) -> Vec<String> {
    let mut args = node.args.clone();
    if let Some(sub) = &node.sub {
        args.push(sub.value.clone());
        args.extend(node_args(sub));
    }
    args
}

/// Parses one AST node into a typed instruction.
pub fn parse_instruction(node: &Node) -> Result<Command, InstructionError> {
    let args = node_args(node);
    let req = Request { node, args: &args };
    let instruction = match node.keyword().as_str() {
        "env" => Instruction::Env(req.key_values("ENV")?),
        "maintainer" => {
            let m = req.one_argument("MAINTAINER")?;
            req.flags(&[])?;
            Instruction::Maintainer(m)
        }
        "label" => Instruction::Label(req.key_values("LABEL")?),
        "add" => Instruction::Add(req.add()?),
        "copy" => Instruction::Copy(req.copy()?),
        "from" => Instruction::From(req.from()?),
        "onbuild" => Instruction::Onbuild(req.onbuild()?),
        "workdir" => {
            let p = req.one_argument("WORKDIR")?;
            req.flags(&[])?;
            Instruction::Workdir(p)
        }
        "run" => Instruction::Run(req.run()?),
        "cmd" => {
            req.flags(&[])?;
            Instruction::Cmd(req.command_line(false))
        }
        "entrypoint" => {
            req.flags(&[])?;
            Instruction::Entrypoint(req.command_line(true))
        }
        "healthcheck" => Instruction::Healthcheck(req.healthcheck()?),
        "expose" => {
            if args.is_empty() {
                return Err(InstructionError::AtLeastOneArgument("EXPOSE"));
            }
            req.flags(&[])?;
            let mut ports = args.clone();
            ports.sort();
            Instruction::Expose(ports)
        }
        "user" => {
            let u = req.one_argument("USER")?;
            req.flags(&[])?;
            Instruction::User(u)
        }
        "volume" => Instruction::Volume(req.volume()?),
        // BuildKit parses no flags for STOPSIGNAL: they are ignored.
        "stopsignal" => Instruction::StopSignal(req.one_argument("STOPSIGNAL")?),
        "arg" => Instruction::Arg(req.arg()?),
        "shell" => {
            req.flags(&[])?;
            let cmd = req.command_line(false);
            if cmd.args.is_empty() {
                return Err(InstructionError::AtLeastOneArgument("SHELL"));
            }
            if !node.json {
                return Err(InstructionError::ShellNotJson);
            }
            Instruction::Shell(cmd.args)
        }
        _ => {
            return Err(InstructionError::Unknown {
                instruction: node.value.clone(),
                suggestion: suggest::search(&node.value, &INSTRUCTIONS, false),
            })
        }
    };
    Ok(Command {
        instruction,
        start_line: node.start_line,
        end_line: node.end_line,
        original: node.original.clone(),
    })
}

struct Request<'a> {
    node: &'a Node,
    args: &'a [String],
}

const HEALTH_FLAGS: [(&str, FlagKind); 5] = [
    ("interval", FlagKind::String),
    ("timeout", FlagKind::String),
    ("start-period", FlagKind::String),
    ("start-interval", FlagKind::String),
    ("retries", FlagKind::String),
];

impl Request<'_> {
    fn flags(&self, declared: &[(&str, FlagKind)]) -> Result<Flags, FlagError> {
        Flags::parse(&self.node.flags, declared)
    }

    fn one_argument(&self, name: &'static str) -> Result<String, InstructionError> {
        match self.args {
            [one] => Ok(one.clone()),
            _ => Err(InstructionError::ExactlyOneArgument(name)),
        }
    }

    fn key_values(&self, name: &'static str) -> Result<Vec<KeyValue>, InstructionError> {
        self.flags(&[])?;
        if self.args.is_empty() {
            return Err(InstructionError::AtLeastOneArgument(name));
        }
        if self.args.len() % 3 != 0 {
            return Err(InstructionError::TooManyArguments(name));
        }
        self.args
            .chunks(3)
            .map(|c| {
                if c[0].is_empty() {
                    return Err(InstructionError::BlankName(name));
                }
                Ok(KeyValue {
                    key: c[0].clone(),
                    value: c[1].clone(),
                    no_delim: c[2].is_empty(),
                })
            })
            .collect()
    }

    fn sources_and_dest(&self, name: &'static str) -> Result<SourcesAndDest, InstructionError> {
        let (dest, sources) = match self.args.split_last() {
            Some((dest, sources)) if !sources.is_empty() => (dest, sources),
            _ => return Err(InstructionError::NoDestination(name)),
        };
        if matches!(parse_heredoc(dest), Ok(Some(_))) {
            return Err(InstructionError::HeredocDestination(name));
        }
        let mut out = SourcesAndDest {
            dest: dest.clone(),
            ..SourcesAndDest::default()
        };
        for src in sources {
            match parse_heredoc(src) {
                Ok(Some(doc)) => {
                    let body = self.node.heredocs.iter().find(|h| h.name == doc.name);
                    let mut data = body.map(|h| h.content.clone()).unwrap_or_default();
                    if doc.chomp {
                        data = chomp_heredoc_content(&data);
                    }
                    out.contents.push(SourceContent {
                        path: doc.name,
                        data,
                        expand: doc.expand,
                    });
                }
                _ => out.sources.push(src.clone()),
            }
        }
        Ok(out)
    }

    fn add(&self) -> Result<AddCommand, InstructionError> {
        if self.args.len() < 2 {
            return Err(InstructionError::NoDestination("ADD"));
        }
        let f = self.flags(&[
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::String),
            ("unpack", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ])?;
        Ok(AddCommand {
            files: self.sources_and_dest("ADD")?,
            chown: f.string("chown"),
            chmod: f.string("chmod"),
            link: f.bool("link").unwrap_or(false),
            keep_git_dir: f.bool("keep-git-dir"),
            checksum: f.string("checksum"),
            unpack: f.bool("unpack"),
            exclude: f.strings("exclude"),
        })
    }

    fn copy(&self) -> Result<CopyCommand, InstructionError> {
        if self.args.len() < 2 {
            return Err(InstructionError::NoDestination("COPY"));
        }
        let f = self.flags(&[
            ("chown", FlagKind::String),
            ("from", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
            ("parents", FlagKind::Bool),
        ])?;
        Ok(CopyCommand {
            files: self.sources_and_dest("COPY")?,
            from: f.string("from"),
            chown: f.string("chown"),
            chmod: f.string("chmod"),
            link: f.bool("link").unwrap_or(false),
            parents: f.bool("parents").unwrap_or(false),
            exclude: f.strings("exclude"),
        })
    }

    fn from(&self) -> Result<FromCommand, InstructionError> {
        let name = match self.args {
            [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                let lower = name.to_lowercase();
                if !is_valid_stage_name(&lower) {
                    return Err(InstructionError::StageName(name.clone()));
                }
                lower
            }
            [_] => String::new(),
            _ => return Err(InstructionError::FromArguments),
        };
        let f = self.flags(&[("platform", FlagKind::String)])?;
        Ok(FromCommand {
            base_name: self.args[0].clone(),
            name,
            platform: f.string("platform"),
            keyword: self.node.value.clone(),
        })
    }

    fn onbuild(&self) -> Result<OnbuildCommand, InstructionError> {
        let Some(first) = self.args.first() else {
            return Err(InstructionError::AtLeastOneArgument("ONBUILD"));
        };
        self.flags(&[])?;
        let trigger = first.trim().to_uppercase();
        match trigger.as_str() {
            "ONBUILD" => return Err(InstructionError::OnbuildChain),
            "MAINTAINER" | "FROM" => return Err(InstructionError::OnbuildTrigger(trigger)),
            _ => {}
        }
        let mut expression = strip_onbuild_keyword(&self.node.original).to_string();
        for doc in &self.node.heredocs {
            expression.push('\n');
            expression.push_str(&doc.content);
            expression.push_str(&doc.name);
        }
        Ok(OnbuildCommand { expression })
    }

    fn command_line(&self, empty_as_none: bool) -> CommandLine {
        let args = if self.args.is_empty() || self.node.json {
            self.args.to_vec()
        } else {
            vec![self.args.join(" ")]
        };
        CommandLine {
            args,
            files: self
                .node
                .heredocs
                .iter()
                .map(|h| InlineFile {
                    name: h.name.clone(),
                    data: h.content.clone(),
                    chomp: h.chomp,
                })
                .collect(),
            prepend_shell: !self.node.json,
            is_null: empty_as_none && self.args.is_empty(),
        }
    }

    fn run(&self) -> Result<RunCommand, InstructionError> {
        let f = self.flags(&[
            ("mount", FlagKind::Strings),
            ("network", FlagKind::String),
            ("security", FlagKind::String),
            ("device", FlagKind::Strings),
        ])?;
        let mount_specs = f.strings("mount");
        for spec in &mount_specs {
            mount::check_mount_from(spec)?;
        }
        // Without variables the mounts are final now; with them they are parsed on expansion.
        let mut mounts = Vec::new();
        for spec in mount_specs.iter().filter(|s| !s.contains('$')) {
            mounts.push(mount::parse_mount(spec)?);
        }
        Ok(RunCommand {
            cmd: self.command_line(false),
            mounts_resolved: mounts.len() == mount_specs.len(),
            mounts,
            mount_specs,
            devices: f
                .strings("device")
                .iter()
                .map(|d| mount::parse_device(d))
                .collect::<Result<_, _>>()?,
            network: mount::parse_network(&f.string("network"))?,
            security: mount::parse_security(&f.string("security"))?,
            flags_used: f.used_names(),
        })
    }

    fn healthcheck(&self) -> Result<HealthcheckCommand, InstructionError> {
        let Some(first) = self.args.first() else {
            return Err(InstructionError::AtLeastOneArgument("HEALTHCHECK"));
        };
        let typ = first.to_uppercase();
        let rest = &self.args[1..];
        if typ == "NONE" {
            if !rest.is_empty() {
                return Err(InstructionError::HealthcheckNoneArguments);
            }
            return Ok(HealthcheckCommand {
                test: vec![typ],
                ..HealthcheckCommand::default()
            });
        }
        let f = self.flags(&HEALTH_FLAGS)?;
        if typ != "CMD" {
            return Err(InstructionError::HealthcheckType(typ));
        }
        let cmd = if rest.is_empty() || self.node.json {
            rest.to_vec()
        } else {
            vec![rest.join(" ")]
        };
        if cmd.is_empty() {
            return Err(InstructionError::HealthcheckMissingCommand);
        }
        let kind = if self.node.json { "CMD" } else { "CMD-SHELL" };
        let mut test = vec![kind.to_string()];
        test.extend(cmd);
        let retries = match f.string("retries").as_str() {
            "" => 0,
            r => {
                let n = values::parse_go_int(r, 32)?;
                if n < 0 {
                    return Err(InstructionError::NegativeRetries(n));
                }
                n
            }
        };
        Ok(HealthcheckCommand {
            test,
            interval: interval(&f, "interval")?,
            timeout: interval(&f, "timeout")?,
            start_period: interval(&f, "start-period")?,
            start_interval: interval(&f, "start-interval")?,
            retries,
        })
    }

    fn volume(&self) -> Result<Vec<String>, InstructionError> {
        if self.args.is_empty() {
            return Err(InstructionError::AtLeastOneArgument("VOLUME"));
        }
        self.flags(&[])?;
        self.args
            .iter()
            .map(|v| {
                let v = v.trim();
                if v.is_empty() {
                    Err(InstructionError::EmptyVolume)
                } else {
                    Ok(v.to_string())
                }
            })
            .collect()
    }

    fn arg(&self) -> Result<ArgCommand, InstructionError> {
        if self.args.is_empty() {
            return Err(InstructionError::AtLeastOneArgument("ARG"));
        }
        let args = self
            .args
            .iter()
            .map(|a| match a.split_once('=') {
                Some(("", _)) => Err(InstructionError::BlankName("ARG")),
                Some((k, v)) => Ok(ArgPair {
                    key: k.to_string(),
                    value: Some(v.to_string()),
                }),
                None => Ok(ArgPair {
                    key: a.clone(),
                    value: None,
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(ArgCommand { args })
    }
}

/// A HEALTHCHECK duration flag: empty or zero is 0, otherwise at least 1ms.
fn interval(flags: &Flags, name: &'static str) -> Result<i64, InstructionError> {
    let value = flags.string(name);
    if value.is_empty() {
        return Ok(0);
    }
    let d = values::parse_go_duration(&value)?;
    if d != 0 && d < 1_000_000 {
        return Err(InstructionError::IntervalTooShort(name));
    }
    Ok(d)
}

/// `^[a-z][a-z0-9-_.]*$`
fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Removes `(?i)^\s*ONBUILD\s*` from the original line.
fn strip_onbuild_keyword(original: &str) -> &str {
    let trimmed = original.trim_start();
    match trimmed.get(..7) {
        Some(word) if word.eq_ignore_ascii_case("onbuild") => trimmed[7..].trim_start(),
        _ => original,
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
