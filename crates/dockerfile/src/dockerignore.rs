//! `.dockerignore` reading and matching with moby/patternmatcher's rules: `*`, `?`, `**`,
//! character classes, `!` exceptions where the last matching pattern wins, `/` and `./`
//! cleaned away, `#` comments; and the docker CLI's rule that the Dockerfile and the
//! `.dockerignore` itself are always sent.

/// A pattern that cannot be used; texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    #[error("syntax error in pattern")]
    BadPattern { pattern: String },
}

/// Reads `.dockerignore` text into patterns, as moby's `ignorefile.ReadAll`: a leading BOM
/// dropped, lines starting with `#` skipped, blanks trimmed, `!` kept, paths cleaned and a
/// leading `/` removed.
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    out
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: `[^/]*`
    Star,
    /// `?`: `[^/]`
    One,
    /// `**/` not at the end: `(.*/)?`
    DirStar,
    /// `**` at the end after other wildcards: `.*`
    AnyTail,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MatchKind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Token>),
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    cleaned: String,
    dirs: usize,
    exclusion: bool,
    kind: MatchKind,
}

impl Pattern {
    /// The pattern as cleaned, without its `!`.
    pub fn text(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` exception.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.cleaned,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            MatchKind::Tokens(tokens) => {
                let chars: Vec<char> = path.chars().collect();
                tokens_match(tokens, &chars)
            }
        }
    }
}

/// Compiles a cleaned pattern, deciding its match type exactly as patternmatcher's `compile`
/// does (exact, prefix for a trailing `**`, suffix for a leading `**`, otherwise a regexp,
/// here a token list).
fn compile(pattern: &str) -> MatchKind {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut i = 0;
    let mut iteration = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::AnyTail);
                        detected = Detected::Regexp;
                    }
                } else {
                    tokens.push(Token::DirStar);
                    detected = Detected::Regexp;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Regexp;
            }
            '?' => {
                tokens.push(Token::One);
                detected = Detected::Regexp;
            }
            '\\' => match chars.get(i) {
                Some(&c) => {
                    i += 1;
                    tokens.push(Token::Literal(c));
                    detected = Detected::Regexp;
                }
                None => tokens.push(Token::Literal('\\')),
            },
            '[' => {
                let (token, used) = parse_class(&chars[i..]);
                i += used;
                tokens.push(token);
                detected = Detected::Regexp;
            }
            ']' => {
                tokens.push(Token::Literal(']'));
                detected = Detected::Regexp;
            }
            c => tokens.push(Token::Literal(c)),
        }
        iteration += 1;
    }
    match detected {
        Detected::Exact => MatchKind::Exact,
        Detected::Prefix => MatchKind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => MatchKind::Suffix(pattern.get(2..).unwrap_or_default().to_string()),
        Detected::Regexp => MatchKind::Tokens(tokens),
    }
}

/// Parses a character class body after `[` (validated beforehand by `validate`).
fn parse_class(chars: &[char]) -> (Token, usize) {
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let take = |i: &mut usize| -> Option<char> {
        let mut c = *chars.get(*i)?;
        *i += 1;
        if c == '\\' {
            c = *chars.get(*i)?;
            *i += 1;
        }
        Some(c)
    };
    while i < chars.len() && (chars[i] != ']' || ranges.is_empty()) {
        let Some(lo) = take(&mut i) else { break };
        let mut hi = lo;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            hi = take(&mut i).unwrap_or(lo);
        }
        ranges.push((lo, hi));
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    (Token::Class { negated, ranges }, i)
}

/// Go's `filepath.Match` syntax check (`[` classes closed and non-empty, no trailing `\`).
fn validate(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let esc = |i: &mut usize| -> bool {
        match chars.get(*i) {
            None | Some('-' | ']') => return false,
            Some('\\') => {
                *i += 1;
                if *i >= chars.len() {
                    return false;
                }
            }
            Some(_) => {}
        }
        *i += 1;
        *i < chars.len()
    };
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                i += 2;
                if i > chars.len() {
                    return false;
                }
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    if !esc(&mut i) {
                        return false;
                    }
                    if chars[i] == '-' {
                        i += 1;
                        if !esc(&mut i) {
                            return false;
                        }
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// Whole-path match of `tokens` against `path`, right to left in O(tokens * path).
fn tokens_match(tokens: &[Token], path: &[char]) -> bool {
    let n = path.len();
    let mut next = vec![false; n + 1];
    next[n] = true;
    for token in tokens.iter().rev() {
        let mut cur = vec![false; n + 1];
        for j in (0..=n).rev() {
            let c = path.get(j).copied();
            cur[j] = match token {
                Token::Literal(l) => c == Some(*l) && next[j + 1],
                Token::One => c.is_some_and(|c| c != '/') && next[j + 1],
                Token::Class { negated, ranges } => {
                    c.is_some_and(|c| {
                        ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
                    }) && next[j + 1]
                }
                Token::Star => next[j] || (c.is_some_and(|c| c != '/') && cur[j + 1]),
                Token::AnyTail => next[j] || (c.is_some_and(|c| c != '\n') && cur[j + 1]),
                // `(.*/)?`: `cur[j + 1]` here means "some later '/' is reachable".
                Token::DirStar => next[j] || reach_slash(path, &next, j),
            };
        }
        next = cur;
    }
    next[0]
}

/// Whether `.*/` can match from `j` to some `k + 1` where `next[k + 1]` holds.
fn reach_slash(path: &[char], next: &[bool], j: usize) -> bool {
    for (k, c) in path.iter().enumerate().skip(j) {
        if *c == '/' && next[k + 1] {
            return true;
        }
        if *c == '\n' {
            return false;
        }
    }
    false
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
}

impl PatternMatcher {
    /// Compiles patterns as patternmatcher's `New`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, IgnoreError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean_path(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => return Err(IgnoreError::IllegalExclusion),
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            if !validate(&body) {
                return Err(IgnoreError::BadPattern { pattern: body });
            }
            out.push(Pattern {
                dirs: body.split('/').count(),
                kind: compile(&body),
                cleaned: body,
                exclusion,
            });
        }
        Ok(PatternMatcher { patterns: out })
    }

    /// Reads `.dockerignore` text and adds the docker CLI's exceptions so the Dockerfile
    /// (unless read from stdin) and `.dockerignore` itself are always sent.
    pub fn from_dockerignore(text: &str, dockerfile: Option<&str>) -> Result<Self, IgnoreError> {
        let mut patterns = read_patterns(text);
        let first = PatternMatcher::new(&patterns)?;
        if first.matches(".dockerignore") {
            patterns.push("!.dockerignore".to_string());
        }
        if let Some(dockerfile) = dockerfile {
            if first.matches(&clean_path(dockerfile)) {
                patterns.push(format!("!{dockerfile}"));
            }
        }
        PatternMatcher::new(&patterns)
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception (walkers must then descend into excluded dirs).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// patternmatcher's `Matches`: the path, or its parent cut to the pattern's depth.
    pub fn matches(&self, file: &str) -> bool {
        let parent = parent_dirs(file);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(file);
            if !hit {
                if let Some(dirs) = &parent {
                    if pattern.dirs <= dirs.len() {
                        hit = pattern.matches(&dirs[..pattern.dirs].join("/"));
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// patternmatcher's `MatchesOrParentMatches`: the path or any of its parent directories;
    /// what the docker CLI uses to leave files out of the build context.
    pub fn matches_or_parent_matches(&self, file: &str) -> bool {
        let parent = parent_dirs(file);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(file);
            if !hit {
                if let Some(dirs) = &parent {
                    hit = (1..=dirs.len()).any(|i| pattern.matches(&dirs[..i].join("/")));
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether a context path (relative, `/`-separated) is left out of the build context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        let path = path.strip_prefix('/').unwrap_or(&path);
        path != "." && !path.is_empty() && self.matches_or_parent_matches(path)
    }
}

/// The components of `filepath.Dir(file)` (cleaned), or `None` when that is `.`.
fn parent_dirs(file: &str) -> Option<Vec<String>> {
    let cut = file.rfind('/')?;
    let dir = if cut == 0 {
        "/".to_string()
    } else {
        clean_path(&file[..cut])
    };
    if dir == "." {
        return None;
    }
    Some(dir.split('/').map(str::to_string).collect())
}

#[cfg(test)]
#[path = "dockerignore_tests.rs"]
mod tests;
