//! Per-instruction argument parsing of one logical line into AST arguments, as BuildKit's
//! `parser/line_parsers.go` and `split_command.go`: flags, words, JSON (exec) form, ENV/LABEL
//! pairs, HEALTHCHECK's type word and ONBUILD's nested instruction.

use crate::parser::{Node, ParseErrorKind};

/// Go's `unicode.IsSpace` is Rust's `char::is_whitespace` (both the Unicode White_Space set).
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]+` (no newline, no Unicode spaces).
fn is_re_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits `s` on runs of `reWhitespace`, at most `limit` parts (`None`: no limit), as Go's
/// `Regexp.Split`.
pub(crate) fn split_re_whitespace(s: &str, limit: Option<usize>) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        if limit.is_some_and(|l| parts.len() + 1 >= l) {
            parts.push(rest);
            return parts;
        }
        match rest.find(is_re_whitespace) {
            Some(start) => {
                parts.push(&rest[..start]);
                rest = rest[start..].trim_start_matches(is_re_whitespace);
            }
            None => {
                parts.push(rest);
                return parts;
            }
        }
    }
}

/// The parsed arguments of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub args: Vec<String>,
    pub sub: Option<Box<Node>>,
    pub json: bool,
}

impl Parsed {
    fn words(args: Vec<String>) -> Self {
        Parsed {
            args,
            ..Parsed::default()
        }
    }
}

/// Splits a line into the instruction word, its `--flags` and the rest (BuildKit's
/// `splitCommand`).
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_re_whitespace(line.trim(), Some(2));
    let cmd = parts.first().copied().unwrap_or_default().to_string();
    match parts.get(1) {
        Some(rest) => {
            let (args, flags) = extract_builder_flags(rest, escape);
            (cmd, flags, args.trim().to_string())
        }
        None => (cmd, Vec::new(), String::new()),
    }
}

/// Takes leading `--flag` words (quotes and the escape token removed) until the first word not
/// starting with `--`, or a bare `--`; returns the remaining text untouched and the flags.
fn extract_builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = chars.get(i).map(|(_, c)| *c).unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                i += 1;
                continue;
            }
            let next_is_dash = chars.get(i + 1).is_some_and(|(_, c)| *c == '-');
            if ch != '-' || !next_is_dash {
                return (&line[chars[i].0..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[chars[i].0..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
        } else if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        let mut ch = ch;
        if ch == escape {
            if i + 1 == chars.len() {
                if phase == Phase::Quote {
                    phase = Phase::Word;
                }
                i += 1;
                continue;
            }
            i += 1;
            ch = chars[i].1;
        }
        word.push(ch);
        i += 1;
    }
    ("", words)
}

/// Splits on whitespace keeping quotes and escapes (BuildKit's `parseWords`), for ENV, LABEL
/// and ARG whose values are expanded later.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let mut ch = chars.get(i).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                ch = chars[i];
            }
            word.push(ch);
            i += 1;
            continue;
        }
        // Inside quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            word.push(ch);
            ch = chars[i];
        }
        word.push(ch);
        i += 1;
    }
    words
}

/// Dispatches on the lowercased instruction word (BuildKit's dispatch table); unknown
/// instructions keep one empty argument, as BuildKit's `parseIgnore`.
pub(crate) fn parse_arguments(
    cmd: &str,
    rest: &str,
    escape: char,
) -> Result<Parsed, ParseErrorKind> {
    match cmd.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest),
        "arg" => Ok(Parsed::words(parse_words(rest, escape))),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest),
        "env" => parse_name_val(rest, "ENV", escape),
        "label" => parse_name_val(rest, "LABEL", escape),
        "expose" | "from" => Ok(Parsed::words(whitespace_delimited(rest))),
        "healthcheck" => parse_health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(Parsed::words(if rest.is_empty() {
            Vec::new()
        } else {
            vec![rest.to_string()]
        })),
        "onbuild" => {
            if rest.is_empty() {
                return Ok(Parsed::default());
            }
            let child = crate::parser::node_from_line(rest, escape, Vec::new())?;
            Ok(Parsed {
                sub: Some(Box::new(child)),
                ..Parsed::default()
            })
        }
        _ => Ok(Parsed::words(vec![String::new()])),
    }
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_re_whitespace(rest, None)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// `Ok(None)`: not a JSON array (fall back to shell form); `Err`: an array holding a
/// non-string, which BuildKit refuses.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, ParseErrorKind> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_maybe_json(rest: &str) -> Result<Parsed, ParseErrorKind> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    Ok(match parse_json(rest)? {
        Some(args) => Parsed {
            args,
            sub: None,
            json: true,
        },
        None => Parsed::words(vec![rest.to_string()]),
    })
}

fn parse_maybe_json_to_list(rest: &str) -> Result<Parsed, ParseErrorKind> {
    Ok(match parse_json(rest)? {
        Some(args) => Parsed {
            args,
            sub: None,
            json: true,
        },
        None => Parsed::words(whitespace_delimited(rest)),
    })
}

/// ENV and LABEL: `KEY value` (legacy, the rest of the line is the value) or `k=v k2=v2`;
/// each pair becomes three arguments: key, value and the separator (`""` or `"="`).
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Parsed, ParseErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Parsed::default());
    };
    if !first.contains('=') {
        let parts = split_re_whitespace(rest, Some(2));
        if parts.len() < 2 {
            return Err(ParseErrorKind::NameValueArguments {
                instruction: key.to_string(),
            });
        }
        return Ok(Parsed::words(vec![
            parts[0].to_string(),
            parts[1].to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals { word });
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(Parsed::words(args))
}

/// HEALTHCHECK: the first word is the type (`CMD`, `NONE`, ...), the rest is JSON or shell form.
fn parse_health_config(rest: &str) -> Result<Parsed, ParseErrorKind> {
    let sep = rest.find(is_space).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let typ = &rest[..sep];
    let cmd = parse_maybe_json(rest[sep..].trim_start_matches(is_space))?;
    let mut args = vec![typ.to_string()];
    args.extend(cmd.args);
    Ok(Parsed {
        args,
        sub: None,
        json: cmd.json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_plain_word_or_double_dash() {
        let (cmd, flags, args) = split_command("COPY --from=a --chown=\"x y\" src dst", '\\');
        assert_eq!((cmd.as_str(), args.as_str()), ("COPY", "src dst"));
        assert_eq!(flags, ["--from=a", "--chown=x y"]);
        let (_, flags, args) = split_command("COPY --a -- --b dst", '\\');
        assert_eq!((flags, args.as_str()), (vec!["--a".to_string()], "--b dst"));
    }

    #[test]
    fn parse_words_keeps_quotes_and_escapes() {
        assert_eq!(
            parse_words(r#"a="b c" d\ e 'f\'"#, '\\'),
            [r#"a="b c""#, r"d\ e", r"'f\'"]
        );
    }

    #[test]
    fn split_re_whitespace_ignores_unicode_spaces() {
        assert_eq!(
            split_re_whitespace("a\u{a0}b  c\td", None),
            ["a\u{a0}b", "c", "d"]
        );
        assert_eq!(split_re_whitespace("a b c", Some(2)), ["a", "b c"]);
    }

    #[test]
    fn non_string_json_array_is_refused() {
        let err = parse_maybe_json(r#"["a", 1]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "when using JSON array syntax, arrays must be comprised of strings only"
        );
        assert!(!parse_maybe_json("['a']").unwrap().json);
    }
}
