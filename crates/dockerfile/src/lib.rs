//! berth's Dockerfile language: parser directives, a line parser with spans producing BuildKit's
//! AST (`parser`), typed instructions with BuildKit's checks and errors (`instructions`), word
//! expansion (`shell`) and `.dockerignore` matching (`dockerignore`).
//!
//! Pure logic: no file, network or process I/O. Building images belongs to `berth-build`.

pub mod quote;
pub mod shell;

#[cfg(test)]
mod test_fixtures;
