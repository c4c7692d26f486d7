//! The typed instructions and build stages produced from the AST.

use super::mount::{Device, Mount, NetworkMode, Security};

/// A build stage: its FROM and the commands after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: FromCommand,
    pub commands: Vec<Command>,
    pub start_line: usize,
    pub end_line: usize,
    /// The FROM line as written, trimmed.
    pub original: String,
    pub comments: Vec<String>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub instruction: Instruction,
    pub start_line: usize,
    pub end_line: usize,
    /// The logical line as written (used for history and ONBUILD).
    pub original: String,
}

/// Every Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Add(AddCommand),
    Arg(ArgCommand),
    Cmd(CommandLine),
    Copy(CopyCommand),
    Entrypoint(CommandLine),
    Env(Vec<KeyValue>),
    /// Ports as written, sorted as BuildKit sorts them.
    Expose(Vec<String>),
    From(FromCommand),
    Healthcheck(HealthcheckCommand),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Onbuild(OnbuildCommand),
    Run(RunCommand),
    Shell(Vec<String>),
    StopSignal(String),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
}

impl Instruction {
    /// The lowercase keyword.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::Add(_) => "add",
            Instruction::Arg(_) => "arg",
            Instruction::Cmd(_) => "cmd",
            Instruction::Copy(_) => "copy",
            Instruction::Entrypoint(_) => "entrypoint",
            Instruction::Env(_) => "env",
            Instruction::Expose(_) => "expose",
            Instruction::From(_) => "from",
            Instruction::Healthcheck(_) => "healthcheck",
            Instruction::Label(_) => "label",
            Instruction::Maintainer(_) => "maintainer",
            Instruction::Onbuild(_) => "onbuild",
            Instruction::Run(_) => "run",
            Instruction::Shell(_) => "shell",
            Instruction::StopSignal(_) => "stopsignal",
            Instruction::User(_) => "user",
            Instruction::Volume(_) => "volume",
            Instruction::Workdir(_) => "workdir",
        }
    }
}

/// `KEY=value` of ENV and LABEL; `no_delim` for the legacy `ENV KEY value` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub no_delim: bool,
}

/// One ARG name with its optional default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgPair {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgCommand {
    pub args: Vec<ArgPair>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromCommand {
    /// The image or stage reference, not yet expanded.
    pub base_name: String,
    /// The `AS` name, lowercased; empty when unnamed.
    pub name: String,
    pub platform: String,
    /// The keyword as written (`FROM`, `from`).
    pub keyword: String,
}

/// A heredoc body used as a COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    pub path: String,
    pub data: String,
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcesAndDest {
    pub dest: String,
    pub sources: Vec<String>,
    pub contents: Vec<SourceContent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCommand {
    pub files: SourcesAndDest,
    pub chown: String,
    pub chmod: String,
    pub link: bool,
    pub keep_git_dir: Option<bool>,
    pub checksum: String,
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCommand {
    pub files: SourcesAndDest,
    pub from: String,
    pub chown: String,
    pub chmod: String,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

/// A heredoc body used as a RUN (or CMD/ENTRYPOINT) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    pub chomp: bool,
}

/// A command in exec form (`prepend_shell` false) or shell form (one string run by SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub args: Vec<String>,
    pub files: Vec<InlineFile>,
    pub prepend_shell: bool,
    /// `ENTRYPOINT []` (or no arguments): the image's entrypoint becomes null.
    pub is_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommand {
    pub cmd: CommandLine,
    /// Parsed mounts; complete when `mounts_resolved`, otherwise call `expand_instruction`.
    pub mounts: Vec<Mount>,
    pub mounts_resolved: bool,
    /// The `--mount` values as written.
    pub mount_specs: Vec<String>,
    /// `--device` CDI devices.
    pub devices: Vec<Device>,
    pub network: NetworkMode,
    pub security: Security,
    /// Names of the flags given, sorted.
    pub flags_used: Vec<String>,
}

/// HEALTHCHECK as the image config stores it; durations in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthcheckCommand {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// ONBUILD: the trigger stored in the image, run when a child image builds FROM it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnbuildCommand {
    pub expression: String,
}
