//! Word expansion with BuildKit's shell-lexer rules (`frontend/dockerfile/shell/lex.go`):
//! `$var`, `${var}`, `${var:-w}`, `${var-w}`, `${var:+w}`, `${var+w}`, `${var:?w}`,
//! `${var?w}`, `${var#p}`, `${var##p}`, `${var%p}`, `${var%%p}`, `${var/p/r}`, `${var//p/r}`,
//! quotes, the escape token, and word splitting (`ProcessWords`).

use std::collections::{BTreeMap, BTreeSet};

use crate::quote::go_quote;

/// Why a word could not be expanded; the text is BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// Wraps every failure with the source word, as BuildKit's `failed to process %q`.
    #[error("failed to process {}: {}", go_quote(.source_word), .reason)]
    Process { source_word: String, reason: String },
}

/// Where variables come from during expansion.
pub trait EnvLookup {
    /// The value of `name`, or `None` when it is unset.
    fn lookup(&self, name: &str) -> Option<String>;
}

impl EnvLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvLookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl EnvLookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

/// An environment with no variables at all.
pub struct NoEnv;

impl EnvLookup for NoEnv {
    fn lookup(&self, _name: &str) -> Option<String> {
        None
    }
}

/// Environment from `KEY=value` strings (later entries win), as BuildKit's `EnvsFromSlice`.
pub fn env_from_pairs<I, S>(pairs: I) -> Vec<(String, String)>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    pairs
        .into_iter()
        .map(|p| {
            let p = p.as_ref();
            match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            }
        })
        .collect()
}

/// The result of expanding one word, with the variable names it looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word (quotes removed, no splitting).
    pub word: String,
    /// The same input split into words as a shell would.
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced and unset.
    pub unmatched: BTreeSet<String>,
}

/// A shell-word lexer configured like BuildKit's `shell.Lex`.
#[derive(Debug, Clone)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``) as its escape token.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expands `word` into one string (BuildKit's `ProcessWord`).
    pub fn process_word(&self, word: &str, env: &dyn EnvLookup) -> Result<String, ShellError> {
        self.process(word, env).map(|e| e.word)
    }

    /// Expands `word` and splits it into words (BuildKit's `ProcessWords`).
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn EnvLookup,
    ) -> Result<Vec<String>, ShellError> {
        self.process(word, env).map(|e| e.words)
    }

    /// Expands `word`, reporting both forms and which variables were looked up.
    pub fn process(&self, word: &str, env: &dyn EnvLookup) -> Result<Expansion, ShellError> {
        let mut sw = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let raw = sw.raw_escapes;
        match sw.process_stop_on(None, raw) {
            Ok((word, words)) => Ok(Expansion {
                word,
                words,
                matched: sw.matched,
                unmatched: sw.unmatched,
            }),
            Err(reason) => Err(ShellError::Process {
                source_word: word.to_string(),
                reason,
            }),
        }
    }
}

struct ShellWord<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn EnvLookup,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

/// Accumulates split words the way BuildKit's `wordsStruct` does.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() && self.in_word {
            if !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else if !ch.is_whitespace() {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

/// Go's `string(rune)` of a scanner result, where EOF (-1) becomes U+FFFD.
fn rune_text(ch: Option<char>) -> String {
    ch.unwrap_or('\u{FFFD}').to_string()
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '<' => Some(self.process_possible_heredoc()),
                '\'' if !self.lex.skip_process_quotes => Some(self.process_single_quote()?),
                '"' if !self.lex.skip_process_quotes => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(text) = special {
                result.push_str(&text);
                if ch == '$' {
                    words.add_string(&text);
                } else {
                    words.add_raw_string(&text);
                }
                continue;
            }
            self.next();
            if ch == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(escaped) => {
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    }
                }
            } else {
                words.add_char(ch);
                result.push(ch);
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or('\u{FFFD}');
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v)
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let mut ch = self.next();
        let mut modifier = rune_text(ch);
        match ch {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    modifier.push_str(&rune_text(ch));
                }
                self.process_modifier(&name, ch, &modifier, null_is_unset)
            }
            Some('/') => self.process_replace(&name),
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    fn process_modifier(
        &mut self,
        name: &str,
        ch: Option<char>,
        modifier: &str,
        null_is_unset: bool,
    ) -> Result<String, String> {
        let raw_escapes = matches!(ch, Some('#' | '%'));
        if null_is_unset && raw_escapes {
            return Err(format!("unsupported modifier ({modifier}) in substitution"));
        }
        let word = match self.process_stop_on(Some('}'), raw_escapes) {
            Ok((word, _)) => word,
            Err(e) if self.peek().is_none() => {
                let _ = e;
                return Err("syntax error: missing '}'".to_string());
            }
            Err(e) => return Err(e),
        };
        let value = self.lookup(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty = |v: &Option<String>| v.as_deref().is_none_or(|v| null_is_unset && v.is_empty());
        match ch {
            Some('-') => Ok(if empty(&value) {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if empty(&value) { String::new() } else { word }),
            Some('?') => match value {
                None => {
                    let msg = if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    };
                    Err(format!("{name}: {msg}"))
                }
                Some(v) if null_is_unset && v.is_empty() => {
                    let msg = if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    };
                    Err(format!("{name}: {msg}"))
                }
                Some(v) => Ok(v),
            },
            Some(c @ ('#' | '%')) => {
                let (greedy, pattern) = match word.strip_prefix(c) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let value = value.unwrap_or_default();
                let invalid =
                    |e: String| format!("invalid pattern ({pattern}) in substitution: {e}");
                if c == '%' {
                    trim_suffix(&pattern, &value, greedy).map_err(invalid)
                } else {
                    trim_prefix(&pattern, &value, greedy).map_err(invalid)
                }
            }
            _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    fn process_replace(&mut self, name: &str) -> Result<String, String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => {
                return Err("syntax error: missing '/' in ${}".to_string())
            }
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".to_string()),
            Err(e) => return Err(e),
        };
        let value = self.lookup(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let tokens = compile_pattern(&pattern)
            .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
        let chars: Vec<char> = value.chars().collect();
        Ok(replace_matches(&tokens, &chars, &replacement, replace_all))
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_go_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_go_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_go_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut result = "<<".to_string();
        while let Some(ch) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            result.push(ch);
            self.next();
        }
        result
    }
}

/// Go's `unicode.IsDigit`: decimal digits of any script.
fn is_go_digit(ch: char) -> bool {
    ch.is_ascii_digit() || (!ch.is_ascii() && ch.is_numeric())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternToken {
    Star,
    One,
    Literal(char),
}

/// Compiles a shell pattern as BuildKit's `convertShellPatternToRegex` does (`*`, `?`, and
/// `\` escaping `*`, `?`, `\`; `\` before `}` or `/` is dropped).
fn compile_pattern(pattern: &str) -> Result<Vec<PatternToken>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let tok = chars[i];
        i += 1;
        match tok {
            '*' => out.push(PatternToken::Star),
            '?' => out.push(PatternToken::One),
            '\\' => {
                if matches!(chars.get(i), Some('}' | '/')) {
                    continue;
                }
                let escaped = chars.get(i).copied();
                i += 1;
                match escaped {
                    Some(c @ ('*' | '?' | '\\')) => out.push(PatternToken::Literal(c)),
                    other => return Err(format!("invalid escape '\\{}'", rune_text(other))),
                }
            }
            c => out.push(PatternToken::Literal(c)),
        }
    }
    Ok(out)
}

/// For every start position of `text`, the end of the first match of `tokens` in Go regexp
/// priority order: stars take the longest (`greedy`) or shortest span first; `*` and `?` never
/// match a newline, as Go's `.`. Computed right to left in O(tokens * text), no recursion, so
/// hostile patterns cannot blow the stack or take exponential time.
fn match_ends(tokens: &[PatternToken], text: &[char], greedy: bool) -> Vec<Option<usize>> {
    let n = text.len();
    let mut next: Vec<Option<usize>> = (0..=n).map(Some).collect();
    for token in tokens.iter().rev() {
        let mut cur = vec![None; n + 1];
        match token {
            PatternToken::Literal(c) => {
                for pos in 0..n {
                    if text[pos] == *c {
                        cur[pos] = next[pos + 1];
                    }
                }
            }
            PatternToken::One => {
                for pos in 0..n {
                    if text[pos] != '\n' {
                        cur[pos] = next[pos + 1];
                    }
                }
            }
            PatternToken::Star => {
                let mut best = None;
                for pos in (0..=n).rev() {
                    if pos < n && text[pos] == '\n' {
                        best = None;
                    }
                    if next[pos].is_some() && (!greedy || best.is_none()) {
                        best = next[pos];
                    }
                    cur[pos] = best;
                }
            }
        }
        next = cur;
    }
    next
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let tokens = compile_pattern(pattern)?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match match_ends(&tokens, &chars, greedy)[0] {
        Some(end) => chars[end..].iter().collect(),
        None => value.to_string(),
    })
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let mut tokens = compile_pattern(pattern)?;
    tokens.reverse();
    let mut chars: Vec<char> = value.chars().collect();
    chars.reverse();
    let kept = match match_ends(&tokens, &chars, greedy)[0] {
        Some(end) => &chars[end..],
        None => &chars[..],
    };
    Ok(kept.iter().rev().collect())
}

/// `${var/p/r}` and `${var//p/r}`: leftmost matches, greedy stars, as Go's regexp
/// `FindStringIndex` and `ReplaceAllString` (which also expands `$` templates and skips an
/// empty match right after a previous match).
fn replace_matches(tokens: &[PatternToken], text: &[char], replacement: &str, all: bool) -> String {
    let ends = match_ends(tokens, text, true);
    let find_from =
        |from: usize| (from..=text.len()).find_map(|start| ends[start].map(|end| (start, end)));
    if !all {
        return match find_from(0) {
            Some((start, end)) => {
                let mut out: String = text[..start].iter().collect();
                out.push_str(replacement);
                out.extend(&text[end..]);
                out
            }
            None => text.iter().collect(),
        };
    }
    let mut out = String::new();
    let mut last_match_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((start, end)) = find_from(search) else {
            break;
        };
        out.extend(&text[last_match_end..start]);
        if end > last_match_end || start == 0 {
            let matched: String = text[start..end].iter().collect();
            out.push_str(&expand_template(replacement, &matched));
        }
        last_match_end = end;
        search = if search + 1 > end { search + 1 } else { end };
    }
    out.extend(&text[last_match_end..]);
    out
}

/// Go's `Regexp.Expand` for a pattern without capture groups: `$$` is `$`, `$0`/`${0}` the
/// whole match, any other `$name`/`${name}` empty.
fn expand_template(template: &str, matched: &str) -> String {
    let chars: Vec<char> = template.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => match chars[i + 2..].iter().position(|c| *c == '}') {
                Some(len) if len > 0 && chars[i + 2..i + 2 + len].iter().all(|c| is_name(*c)) => {
                    let name: String = chars[i + 2..i + 2 + len].iter().collect();
                    if name.parse::<usize>() == Ok(0) {
                        out.push_str(matched);
                    }
                    i += 3 + len;
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            },
            Some(c) if is_name(*c) => {
                let len = chars[i + 1..].iter().take_while(|c| is_name(**c)).count();
                let name: String = chars[i + 1..i + 1 + len].iter().collect();
                if name.parse::<usize>() == Ok(0) {
                    out.push_str(matched);
                }
                i += 1 + len;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
