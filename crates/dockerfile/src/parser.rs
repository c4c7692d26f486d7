//! The Dockerfile line parser: logical lines (continuations with the escape token, comments,
//! empty continuation lines), directives, heredocs, producing BuildKit's AST with line spans
//! (`frontend/dockerfile/parser/parser.go`) and its `Dump` format.

use crate::directives::{Directive, DirectiveError, DirectiveParser};
use crate::line_parsers::{parse_arguments, split_command};
use crate::quote::go_quote;
use crate::shell::{Lexer, NoEnv, ShellError};

/// The longest line BuildKit's scanner accepts (Go's `bufio.MaxScanTokenSize`), newline included.
const MAX_LINE: usize = 64 * 1024;

/// One instruction of the AST.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The instruction word as written (`from`, `RUN`, ...).
    pub value: String,
    /// `--flag` words before the arguments, quotes removed.
    pub flags: Vec<String>,
    /// Arguments: for ENV and LABEL key, value, separator triples; for HEALTHCHECK the type
    /// word first.
    pub args: Vec<String>,
    /// ONBUILD's nested instruction.
    pub sub: Option<Box<Node>>,
    /// The arguments were in JSON (exec) form.
    pub json: bool,
    /// The logical line (continuations joined, comments dropped).
    pub original: String,
    /// Heredoc bodies, in the order their `<<` words appear.
    pub heredocs: Vec<Heredoc>,
    /// 1-based first and last physical line, heredoc bodies included.
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

/// A heredoc attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// `3<<EOF` gives 3; 0 when not given.
    pub file_descriptor: u32,
    /// False when any part of the delimiter was quoted: the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body.
    pub chomp: bool,
    /// The body, lines with their newlines, tabs not yet stripped.
    pub content: String,
}

/// A non-fatal finding, as BuildKit reports empty continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub short: String,
    pub detail: String,
    pub url: String,
    pub line: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub children: Vec<Node>,
    pub directives: Vec<Directive>,
    pub escape_token: char,
    pub warnings: Vec<Warning>,
}

/// What went wrong; texts are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error(transparent)]
    Directive(#[from] DirectiveError),
    #[error("file with no instructions")]
    NoInstructions,
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("dockerfile line greater than max allowed size of {}", MAX_LINE - 1)]
    LineTooLong,
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("{instruction} must have two arguments")]
    NameValueArguments { instruction: String },
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(.word))]
    MissingEquals { word: String },
    #[error("internal lexing of heredoc produced inconsistent results: {word}")]
    InconsistentHeredoc { word: String },
    #[error(transparent)]
    Heredoc(#[from] ShellError),
}

/// A parse failure with the 1-based lines it covers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    #[source]
    pub kind: ParseErrorKind,
    pub start_line: usize,
    pub end_line: usize,
}

impl ParseErrorKind {
    fn at(self, start_line: usize, end_line: usize) -> ParseError {
        ParseError {
            kind: self,
            start_line,
            end_line: end_line.max(start_line),
        }
    }
}

/// Physical lines with their endings, as BuildKit's `scanLines` (split after `\n`).
struct Lines<'a> {
    rest: &'a str,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Result<Option<&'a str>, ParseErrorKind> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        if end > MAX_LINE {
            return Err(ParseErrorKind::LineTooLong);
        }
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        Ok(Some(line))
    }
}

struct State {
    escape: char,
    directives: DirectiveParser,
    found: Vec<Directive>,
}

impl State {
    /// BuildKit's `processLine`: newline trimmed, maybe leading space, directive detection,
    /// comment lines emptied.
    fn process_line<'l>(
        &mut self,
        line: &'l str,
        strip_left: bool,
    ) -> Result<(&'l str, bool), ParseErrorKind> {
        let mut token = trim_newline(line);
        if strip_left {
            token = token.trim_start();
        }
        let directive = self.directives.parse_line(token)?;
        let is_directive = directive.is_some();
        if let Some(d) = directive {
            if d.name == "escape" {
                self.escape = match d.value.as_str() {
                    "`" => '`',
                    "\\" => '\\',
                    _ => return Err(DirectiveError::InvalidEscape { value: d.value }.into()),
                };
            }
            self.found.push(d);
        }
        Ok((if is_comment(token) { "" } else { token }, is_directive))
    }

    /// A trailing escape token (optionally followed by blanks) continues the line, unless the
    /// escape token itself is escaped.
    fn trim_continuation<'l>(&self, line: &'l str) -> (&'l str, bool) {
        let body = line.trim_end_matches([' ', '\t']);
        let Some(before) = body.strip_suffix(self.escape) else {
            return (line, true);
        };
        if before.ends_with(self.escape) {
            return (line, true);
        }
        (before, false)
    }
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Parses a Dockerfile given as bytes; invalid UTF-8 is replaced, as it would be unprintable.
pub fn parse_bytes(input: &[u8]) -> Result<Dockerfile, ParseError> {
    parse(&String::from_utf8_lossy(input))
}

/// Parses a Dockerfile into its instructions.
pub fn parse(input: &str) -> Result<Dockerfile, ParseError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut lines = Lines { rest: input };
    let mut state = State {
        escape: '\\',
        directives: DirectiveParser::default(),
        found: Vec::new(),
    };
    let mut current = 0usize;
    let mut children = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    loop {
        let raw = match lines.next_line() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) => return Err(too_long_or_empty(e, &children, current)),
        };
        if is_comment(raw) {
            let comment = String::from_utf8_lossy(&raw.as_bytes()[1..])
                .trim()
                .to_string();
            if comment.is_empty() {
                comments.clear();
            } else {
                comments.push(comment);
            }
        }
        let (first, is_directive) = state
            .process_line(raw, true)
            .map_err(|e| e.at(current + 1, 0))?;
        if is_directive {
            comments.pop();
        }
        current += 1;
        let start = current;
        let (first, mut end_of_line) = state.trim_continuation(first);
        if end_of_line && first.is_empty() {
            continue;
        }
        let mut line = first.to_string();
        let mut empty_continuation = false;
        while !end_of_line {
            let next = match lines.next_line() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => return Err(too_long_or_empty(e, &children, current)),
            };
            let (processed, _) = state
                .process_line(next, false)
                .map_err(|e| e.at(current + 1, 0))?;
            current += 1;
            if is_comment(next) {
                continue;
            }
            if processed.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (processed, eol) = state.trim_continuation(processed);
            end_of_line = eol;
            line.push_str(processed);
        }
        if empty_continuation {
            warnings.push(Warning {
                short: format!("Empty continuation line found in: {line}"),
                detail: "Empty continuation lines will become errors in a future release"
                    .to_string(),
                url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
                    .to_string(),
                line: current,
            });
        }
        let mut child = node_from_line(&line, state.escape, std::mem::take(&mut comments))
            .map_err(|e| e.at(start, current))?;
        if child.can_contain_heredoc() && line.contains("<<") {
            let docs = heredocs_from_line(&line).map_err(|e| e.at(start, current))?;
            for mut doc in docs {
                let mut terminated = false;
                loop {
                    let body_line = match lines.next_line() {
                        Ok(Some(l)) => l,
                        Ok(None) => break,
                        Err(e) => return Err(e.at(current, 0)),
                    };
                    current += 1;
                    let mut candidate = trim_newline(body_line);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(body_line);
                }
                if !terminated {
                    return Err(ParseErrorKind::UnterminatedHeredoc.at(start, current));
                }
                child.heredocs.push(doc);
            }
        }
        child.start_line = start;
        child.end_line = current;
        children.push(child);
    }
    if children.is_empty() {
        return Err(ParseErrorKind::NoInstructions.at(current, 0));
    }
    Ok(Dockerfile {
        children,
        directives: state.found,
        escape_token: state.escape,
        warnings,
    })
}

/// BuildKit checks for "no instructions" before reporting the scanner's too-long error.
fn too_long_or_empty(err: ParseErrorKind, children: &[Node], current: usize) -> ParseError {
    if children.is_empty() {
        ParseErrorKind::NoInstructions.at(current, 0)
    } else {
        err.at(current, 0)
    }
}

/// Builds one node from a logical line (BuildKit's `newNodeFromLine`).
pub(crate) fn node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
) -> Result<Node, ParseErrorKind> {
    let (cmd, flags, rest) = split_command(line, escape);
    let parsed = parse_arguments(&cmd, &rest, escape)?;
    Ok(Node {
        value: cmd,
        flags,
        args: parsed.args,
        sub: parsed.sub,
        json: parsed.json,
        original: line.to_string(),
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
        comments,
    })
}

impl Node {
    /// The instruction word, lowercased.
    pub fn keyword(&self) -> String {
        self.value.to_ascii_lowercase()
    }

    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.keyword().as_str()) {
            (Some(sub), "onbuild") => sub,
            _ => self,
        };
        matches!(node.keyword().as_str(), "add" | "copy" | "run") && !node.json
    }

    /// BuildKit's `Node.Dump`: the lowercased keyword, flags as `["--a" "--b"]`, then each
    /// argument Go-quoted; ONBUILD's nested instruction in parentheses.
    pub fn dump(&self) -> String {
        let mut out = self.keyword();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(&format!(" [{}]", flags.join(" ")));
        }
        if let Some(sub) = &self.sub {
            out.push_str(&format!(" ({})", sub.dump()));
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        out.trim().to_string()
    }
}

impl Dockerfile {
    /// The value of a parser directive (`syntax`, `escape`, `check`), if given.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    /// Every instruction dumped as `(keyword args...)`, one per line, as BuildKit's tests print.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            out.push('(');
            out.push_str(&child.dump());
            out.push_str(")\n");
        }
        out
    }
}

/// Finds heredoc words (`<<EOF`, `<<-"EOF"`, `3<<EOF`) in a logical line.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
    let mut lexer = Lexer::new('\\');
    lexer.raw_quotes = true;
    lexer.raw_escapes = true;
    lexer.skip_unset_env = true;
    let words = lexer.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Parses one heredoc word, matching BuildKit's `^(\d*)<<(-?)\s*([^<]*)$`; `None` when the
/// word is not a heredoc.
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, ParseErrorKind> {
    let digits = src.len() - src.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = src[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches([' ', '\t', '\n', '\u{c}', '\r']);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let file_descriptor = src[..digits].parse().unwrap_or(0);
    let mut lexer = Lexer::new('\\');
    lexer.skip_unset_env = true;
    let words = lexer.process_words(rest, &NoEnv)?;
    let [word] = words.as_slice() else {
        return Ok(None);
    };
    lexer.raw_quotes = true;
    let raw = lexer.process_words(rest, &NoEnv)?;
    let [raw_word] = raw.as_slice() else {
        return Err(ParseErrorKind::InconsistentHeredoc {
            word: rest.to_string(),
        });
    };
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        name: word.clone(),
        file_descriptor,
        expand: quotes(word) == quotes(raw_word),
        chomp,
        content: String::new(),
    }))
}

/// Strips leading tabs from every line of a `<<-` heredoc body.
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
