//! Variable expansion of typed instructions at build time, as BuildKit's dispatcher does:
//! which fields each instruction expands, with which lexer settings.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::mount::{self, MountError};
use super::types::{Instruction, KeyValue, SourcesAndDest};
use crate::shell::{EnvLookup, Lexer, NoEnv, ShellError};

/// Why expanding an instruction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")]
    CopyFrom,
}

/// Expands words against an environment with the Dockerfile's escape token, remembering
/// which variables were referenced (build-arg use for cache keys and "not consumed" warnings).
pub struct Expander<'a> {
    lexer: Lexer,
    env: &'a dyn EnvLookup,
    matched: RefCell<BTreeSet<String>>,
    unmatched: RefCell<BTreeSet<String>>,
}

impl<'a> Expander<'a> {
    pub fn new(escape: char, env: &'a dyn EnvLookup) -> Self {
        Expander {
            lexer: Lexer::new(escape),
            env,
            matched: RefCell::default(),
            unmatched: RefCell::default(),
        }
    }

    fn run(&self, lexer: &Lexer, word: &str) -> Result<crate::shell::Expansion, ShellError> {
        let expansion = lexer.process(word, self.env)?;
        self.matched
            .borrow_mut()
            .extend(expansion.matched.iter().cloned());
        self.unmatched
            .borrow_mut()
            .extend(expansion.unmatched.iter().cloned());
        Ok(expansion)
    }

    /// One word (`ProcessWord`).
    pub fn word(&self, word: &str) -> Result<String, ShellError> {
        self.run(&self.lexer, word).map(|e| e.word)
    }

    /// Split words (`ProcessWords`), for EXPOSE.
    pub fn words(&self, word: &str) -> Result<Vec<String>, ShellError> {
        self.run(&self.lexer, word).map(|e| e.words)
    }

    /// Heredoc bodies: `\` escapes, quotes kept as text (`SkipProcessQuotes`).
    pub fn raw(&self, word: &str) -> Result<String, ShellError> {
        let mut lexer = Lexer::new('\\');
        lexer.skip_process_quotes = true;
        self.run(&lexer, word).map(|e| e.word)
    }

    /// Variables referenced so far that were set.
    pub fn matched(&self) -> BTreeSet<String> {
        self.matched.borrow().clone()
    }

    /// Variables referenced so far that were unset.
    pub fn unmatched(&self) -> BTreeSet<String> {
        self.unmatched.borrow().clone()
    }
}

/// Whether BuildKit expands variables in this instruction (RUN only in its `--mount` values).
pub fn expands_variables(keyword: &str) -> bool {
    matches!(
        keyword.to_ascii_lowercase().as_str(),
        "add"
            | "arg"
            | "copy"
            | "env"
            | "expose"
            | "from"
            | "label"
            | "run"
            | "stopsignal"
            | "user"
            | "volume"
            | "workdir"
    )
}

fn key_values(kvs: &mut [KeyValue], ex: &Expander) -> Result<(), ShellError> {
    for kv in kvs {
        kv.key = ex.word(&kv.key)?;
        kv.value = ex.word(&kv.value)?;
    }
    Ok(())
}

fn files(f: &mut SourcesAndDest, ex: &Expander) -> Result<(), ShellError> {
    for src in &mut f.sources {
        *src = ex.word(src)?;
    }
    f.dest = ex.word(&f.dest)?;
    for content in f.contents.iter_mut().filter(|c| c.expand) {
        content.data = ex.raw(&content.data)?;
    }
    Ok(())
}

/// Quotes a CSV field when needed so a re-joined `--mount` value splits the same way.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Expands the fields BuildKit expands, in place. FROM's base name and platform take the
/// global (pre-FROM) ARGs as `ex`'s environment; everything else the stage's ARG and ENV.
pub fn expand_instruction(instruction: &mut Instruction, ex: &Expander) -> Result<(), ExpandError> {
    match instruction {
        Instruction::Env(kvs) | Instruction::Label(kvs) => key_values(kvs, ex)?,
        Instruction::Add(add) => {
            add.chown = ex.word(&add.chown)?;
            add.chmod = ex.word(&add.chmod)?;
            add.checksum = ex.word(&add.checksum)?;
            files(&mut add.files, ex)?;
        }
        Instruction::Copy(copy) => {
            if !copy.from.is_empty() && ex.lexer.process_word(&copy.from, &NoEnv)? != copy.from {
                return Err(ExpandError::CopyFrom);
            }
            copy.chown = ex.word(&copy.chown)?;
            copy.chmod = ex.word(&copy.chmod)?;
            files(&mut copy.files, ex)?;
        }
        Instruction::Workdir(s) | Instruction::User(s) | Instruction::StopSignal(s) => {
            *s = ex.word(s)?;
        }
        Instruction::Volume(volumes) => {
            for v in volumes {
                *v = ex.word(v)?;
            }
        }
        Instruction::Arg(arg) => {
            for pair in &mut arg.args {
                pair.key = ex.word(&pair.key)?;
                if let Some(v) = &pair.value {
                    pair.value = Some(ex.word(v)?);
                }
            }
        }
        Instruction::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports.iter() {
                out.extend(ex.words(p)?);
            }
            *ports = out;
        }
        Instruction::From(from) => {
            from.base_name = ex.word(&from.base_name)?;
            from.platform = ex.word(&from.platform)?;
        }
        Instruction::Run(run) => {
            let mut mounts = Vec::new();
            for spec in &run.mount_specs {
                let mut fields = Vec::new();
                for field in mount::csv_split(spec)? {
                    fields.push(csv_field(&match field.split_once('=') {
                        Some((k, v)) => format!("{k}={}", ex.word(v)?),
                        None => field,
                    }));
                }
                mounts.push(mount::parse_mount(&fields.join(","))?);
            }
            run.mounts = mounts;
            run.mounts_resolved = true;
        }
        Instruction::Cmd(_)
        | Instruction::Entrypoint(_)
        | Instruction::Healthcheck(_)
        | Instruction::Maintainer(_)
        | Instruction::Onbuild(_)
        | Instruction::Shell(_) => {}
    }
    Ok(())
}
