//! berth's Dockerfile language: parser directives, a line parser with spans producing BuildKit's
//! AST (`parser`), typed instructions with BuildKit's checks and errors (`instructions`), word
//! expansion (`shell`) and `.dockerignore` matching (`dockerignore`).
//!
//! Pure logic: no file, network or process I/O. Building images belongs to `berth-build`.
//!
//! ```
//! use berth_dockerfile::instructions::{expand_instruction, parse_stages, Expander, Instruction};
//! use berth_dockerfile::shell::env_from_pairs;
//!
//! let df = berth_dockerfile::parse("ARG BASE=alpine\nFROM $BASE AS app\nWORKDIR /srv/$NAME\n")?;
//! assert_eq!(df.dump(), "(arg \"BASE=alpine\")\n(from \"$BASE\" \"AS\" \"app\")\n(workdir \"/srv/$NAME\")\n");
//! let (stages, meta_args) = parse_stages(&df)?;
//! assert_eq!((stages[0].from.name.as_str(), meta_args.len()), ("app", 1));
//! let env = env_from_pairs(["NAME=web"]);
//! let mut workdir = stages[0].commands[0].instruction.clone();
//! expand_instruction(&mut workdir, &Expander::new(df.escape_token, &env))?;
//! assert_eq!(workdir, Instruction::Workdir("/srv/web".to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod directives;
pub mod dockerignore;
pub mod instructions;
mod line_parsers;
pub mod parser;
pub mod quote;
pub mod shell;

pub use parser::{parse, parse_bytes, Dockerfile, Heredoc, Node, ParseError, ParseErrorKind};

#[cfg(test)]
mod test_fixtures;

#[cfg(test)]
mod no_panic_tests;
