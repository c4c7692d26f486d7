//! Parser directives (`# syntax=`, `# escape=`, `# check=`): only at the very top of the file,
//! each at most once, as BuildKit's `parser/directives.go`.

/// A directive found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lowercased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// A directive that BuildKit refuses; the texts are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    #[error("only one {name} parser directive can be used")]
    Duplicate { name: String },
    #[error("invalid escape token '{value}' does not match ` or \\")]
    InvalidEscape { value: String },
    #[error("invalid check option {}", crate::quote::go_quote(.0))]
    InvalidCheckOption(String),
    #[error("failed to parse check option {}: strconv.ParseBool: parsing {}: invalid syntax", crate::quote::go_quote(.option), crate::quote::go_quote(.value))]
    CheckBool { option: String, value: String },
}

/// The `# check=` directive: which lint rules to skip or enable and whether warnings fail the
/// build, as BuildKit's `linter.ParseLintOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    pub skip_all: bool,
    pub skip_rules: Vec<String>,
    pub experimental_all: bool,
    pub experimental_rules: Vec<String>,
    pub error_on_warn: bool,
}

/// Parses `skip=A,B;error=true;experimental=all`.
pub fn parse_check_options(value: &str) -> Result<CheckOptions, DirectiveError> {
    let mut out = CheckOptions::default();
    let value = value.trim();
    if value.is_empty() {
        return Ok(out);
    }
    let rules = |v: &str| -> (bool, Vec<String>) {
        let v = v.trim();
        if v == "all" {
            (true, Vec::new())
        } else {
            (false, v.split(',').map(|r| r.trim().to_string()).collect())
        }
    };
    for part in value.splitn(3, ';') {
        let Some((key, v)) = part.split_once('=') else {
            return Err(DirectiveError::InvalidCheckOption(part.to_string()));
        };
        match key.trim() {
            "skip" => (out.skip_all, out.skip_rules) = rules(v),
            "experimental" => (out.experimental_all, out.experimental_rules) = rules(v),
            "error" => {
                out.error_on_warn = match v.trim() {
                    "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                    "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                    other => {
                        return Err(DirectiveError::CheckBool {
                            option: part.to_string(),
                            value: other.to_string(),
                        })
                    }
                }
            }
            other => return Err(DirectiveError::InvalidCheckOption(other.to_string())),
        }
    }
    Ok(out)
}

const VALID: [&str; 3] = ["syntax", "escape", "check"];

/// Reads directives line by line until the first line that is not one.
#[derive(Debug, Default, Clone)]
pub struct DirectiveParser {
    line: usize,
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// Looks at the next line; returns the directive it holds, if directives are still allowed.
    pub fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, DirectiveError> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(body) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let Some((name, value)) = split_directive(body.trim_start()) else {
            self.done = true;
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        if !VALID.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&name) {
            return Err(DirectiveError::Duplicate { name });
        }
        self.seen.push(name.clone());
        Ok(Some(Directive {
            name,
            value: value.to_string(),
            line: self.line,
        }))
    }
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (RE2's ASCII `\s`, `.` not matching `\n`).
fn split_directive(text: &str) -> Option<(&str, &str)> {
    let is_re_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
    let name_len = text
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = text.split_at(name_len);
    let rest = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    if rest.contains('\n') {
        return None;
    }
    let value = rest
        .trim_start_matches(is_re_space)
        .trim_end_matches(is_re_space);
    if value.is_empty() {
        // `(.+?)` needs one character: the regexp backtracks into the spaces and takes the last.
        let last = rest.char_indices().last()?.0;
        return Some((name, &rest[last..]));
    }
    Some((name, value))
}

/// Finds the `# syntax=` directive's image (first word) and full value, as BuildKit's
/// `DetectSyntax` with the `#` form (a leading BOM and `#!` shebang line are skipped).
pub fn detect_syntax(dockerfile: &str) -> Option<(String, String)> {
    let text = dockerfile.strip_prefix('\u{feff}').unwrap_or(dockerfile);
    let text = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => rest,
        None if text.starts_with("#!") => "",
        _ => text,
    };
    let mut parser = DirectiveParser::default();
    for line in text.lines() {
        match parser.parse_line(line) {
            Ok(Some(d)) if d.name == "syntax" => {
                let image = d.value.split(' ').next().unwrap_or_default().to_string();
                return Some((image, d.value));
            }
            Ok(_) if parser.done => return None,
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_read_until_the_first_other_line() {
        let mut p = DirectiveParser::default();
        let d = p.parse_line("# Escape = `").unwrap().unwrap();
        assert_eq!(
            (d.name.as_str(), d.value.as_str(), d.line),
            ("escape", "`", 1)
        );
        assert!(p
            .parse_line("# syntax=docker/dockerfile:1  ")
            .unwrap()
            .is_some());
        assert!(p.parse_line("# a comment").unwrap().is_none());
        assert!(p.parse_line("# check=skip=all").unwrap().is_none());
    }

    #[test]
    fn duplicate_directive_is_refused() {
        let mut p = DirectiveParser::default();
        p.parse_line("#escape=\\").unwrap();
        let err = p.parse_line("#escape=`").unwrap_err();
        assert_eq!(
            err.to_string(),
            "only one escape parser directive can be used"
        );
    }

    #[test]
    fn unknown_directive_ends_directives() {
        let mut p = DirectiveParser::default();
        assert!(p.parse_line("# foo=bar").unwrap().is_none());
        assert!(p.parse_line("# escape=`").unwrap().is_none());
    }

    #[test]
    fn check_directive_options_parse_like_buildkit() {
        let c =
            parse_check_options("skip=JSONArgsRecommended, StageNameCasing;error=true").unwrap();
        assert_eq!(c.skip_rules, ["JSONArgsRecommended", "StageNameCasing"]);
        assert!(c.error_on_warn && !c.skip_all);
        assert!(parse_check_options("skip=all").unwrap().skip_all);
        assert_eq!(parse_check_options("").unwrap(), CheckOptions::default());
        assert_eq!(
            parse_check_options("nope").unwrap_err().to_string(),
            "invalid check option \"nope\""
        );
        assert_eq!(
            parse_check_options("error=maybe").unwrap_err().to_string(),
            "failed to parse check option \"error=maybe\": strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
    }

    #[test]
    fn detect_syntax_skips_bom_and_shebang() {
        let got =
            detect_syntax("\u{feff}#!/usr/bin/env x\n# syntax=docker/dockerfile:1.7 a=b\nFROM a");
        assert_eq!(
            got,
            Some((
                "docker/dockerfile:1.7".to_string(),
                "docker/dockerfile:1.7 a=b".to_string()
            ))
        );
        assert_eq!(detect_syntax("FROM a\n# syntax=x"), None);
    }
}
