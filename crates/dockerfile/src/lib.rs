//! berth's Dockerfile language: parser directives, a line parser with spans producing BuildKit's
//! AST (`parser`), typed instructions with BuildKit's checks and errors (`instructions`), word
//! expansion (`shell`) and `.dockerignore` matching (`dockerignore`).
//!
//! Pure logic: no file, network or process I/O. Building images belongs to `berth-build`.

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
