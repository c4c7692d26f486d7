//! Parsing the Go `text/template` subset docker's `--format` uses: text, `{{ }}` actions
//! with `{{-`/`-}}` trimming, pipelines, variables, `if`/`else if`/`else`, `range`,
//! `with`, parenthesised pipelines and literals.

use super::TemplateError;

/// A parsed template node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// `$a, $b := cmd | cmd ...`
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub declare: Vec<String>,
    pub commands: Vec<Vec<Operand>>,
}

/// One argument of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `.A.B` (empty for `.` itself).
    Field(Vec<String>),
    /// `$x.A.B`; `$` is the name "$".
    Variable(String, Vec<String>),
    /// A function name.
    Function(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).A.B`
    Group(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Field(Vec<String>),
    Variable(String, Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Open,
    Close(Vec<String>),
    Pipe,
    Declare,
    Comma,
}

/// Splits `source` into text and action sources, applying trim markers.
fn segments(source: &str) -> Result<Vec<(bool, String)>, TemplateError> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = source;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let text = if trim_next_text {
                rest.trim_start()
            } else {
                rest
            };
            out.push((false, text.to_string()));
            break;
        };
        let mut text = &rest[..start];
        if trim_next_text {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let trim_left =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end();
        }
        out.push((false, text.to_string()));
        let body_start = if trim_left { 1 } else { 0 };
        let end = find_action_end(after)
            .ok_or_else(|| TemplateError::Parse("unclosed action".to_string()))?;
        let mut body = &after[body_start..end];
        trim_next_text = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = &body[..body.len() - 1];
            trim_next_text = true;
        }
        let body = body.trim();
        if !(body.starts_with("/*") && body.ends_with("*/")) {
            out.push((true, body.to_string()));
        }
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Position of the `}}` closing an action, skipping quoted strings.
fn find_action_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn field_chain(chars: &[char], i: &mut usize) -> Vec<String> {
    let mut fields = Vec::new();
    while *i < chars.len() && chars[*i] == '.' {
        *i += 1;
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        if start == *i {
            break;
        }
        fields.push(chars[start..*i].iter().collect());
    }
    fields
}

fn tokenize(action: &str) -> Result<Vec<Token>, TemplateError> {
    let chars: Vec<char> = action.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let bad = |what: &str| TemplateError::Parse(format!("{what} in action: {action}"));
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                i += 1;
                tokens.push(Token::Close(field_chain(&chars, &mut i)));
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Declare);
                i += 1;
            }
            '.' => {
                if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                    return Err(bad("number without leading digit"));
                }
                let fields = field_chain(&chars, &mut i);
                if fields.is_empty() {
                    i += 1;
                }
                tokens.push(Token::Field(fields));
            }
            '$' => {
                i += 1;
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = std::iter::once('$')
                    .chain(chars[start..i].iter().copied())
                    .collect();
                tokens.push(Token::Variable(name, field_chain(&chars, &mut i)));
            }
            '"' => {
                i += 1;
                let mut text = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(bad("unterminated quoted string"));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let escaped = chars.get(i).copied().ok_or_else(|| bad("bad escape"))?;
                            i += 1;
                            text.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        other => text.push(other),
                    }
                }
                tokens.push(Token::Str(text));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                tokens.push(Token::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if let Ok(n) = text.parse::<i64>() {
                    tokens.push(Token::Int(n));
                } else if let Ok(f) = text.parse::<f64>() {
                    tokens.push(Token::Float(f));
                } else {
                    return Err(bad(&format!("bad number syntax: {text:?}")));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(bad(&format!("unexpected {other:?}"))),
        }
    }
    Ok(tokens)
}

fn parse_pipeline(
    tokens: &[Token],
    pos: &mut usize,
    in_group: bool,
) -> Result<Pipeline, TemplateError> {
    let mut pipeline = Pipeline::default();
    // Declarations: `$x :=` or `$i, $v :=`.
    let mut lookahead = *pos;
    let mut names = Vec::new();
    while let Some(Token::Variable(name, fields)) = tokens.get(lookahead) {
        if !fields.is_empty() {
            break;
        }
        names.push(name.clone());
        lookahead += 1;
        match tokens.get(lookahead) {
            Some(Token::Comma) => lookahead += 1,
            Some(Token::Declare) => {
                pipeline.declare = std::mem::take(&mut names);
                *pos = lookahead + 1;
                break;
            }
            _ => break,
        }
    }
    let mut command = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        *pos += 1;
        let operand = match token {
            Token::Pipe => {
                if command.is_empty() {
                    return Err(TemplateError::Parse("missing command before |".into()));
                }
                pipeline.commands.push(std::mem::take(&mut command));
                continue;
            }
            Token::Close(_) if in_group => {
                *pos -= 1;
                break;
            }
            Token::Close(_) => return Err(TemplateError::Parse("unexpected )".into())),
            Token::Open => {
                let inner = parse_pipeline(tokens, pos, true)?;
                let Some(Token::Close(fields)) = tokens.get(*pos) else {
                    return Err(TemplateError::Parse("unclosed left paren".into()));
                };
                *pos += 1;
                Operand::Group(Box::new(inner), fields.clone())
            }
            Token::Field(fields) => Operand::Field(fields.clone()),
            Token::Variable(name, fields) => Operand::Variable(name.clone(), fields.clone()),
            Token::Str(text) => Operand::Str(text.clone()),
            Token::Int(n) => Operand::Int(*n),
            Token::Float(f) => Operand::Float(*f),
            Token::Ident(name) => match name.as_str() {
                "true" => Operand::Bool(true),
                "false" => Operand::Bool(false),
                "nil" => Operand::Nil,
                _ => Operand::Function(name.clone()),
            },
            Token::Comma | Token::Declare => {
                return Err(TemplateError::Parse("unexpected token in command".into()))
            }
        };
        command.push(operand);
    }
    if command.is_empty() {
        return Err(TemplateError::Parse("missing value for command".into()));
    }
    pipeline.commands.push(command);
    Ok(pipeline)
}

fn pipeline_of(action: &str) -> Result<Pipeline, TemplateError> {
    let tokens = tokenize(action)?;
    let mut pos = 0;
    let pipeline = parse_pipeline(&tokens, &mut pos, false)?;
    if pos != tokens.len() {
        return Err(TemplateError::Parse(format!(
            "unexpected tokens in {action}"
        )));
    }
    Ok(pipeline)
}

/// What ended a list of nodes.
enum End {
    Eof,
    Closed,
    Else(Option<String>),
}

fn keyword<'a>(action: &'a str, word: &str) -> Option<&'a str> {
    let rest = action.strip_prefix(word)?;
    if rest.is_empty() || rest.starts_with(char::is_whitespace) {
        Some(rest.trim())
    } else {
        None
    }
}

fn parse_list(
    items: &[(bool, String)],
    pos: &mut usize,
) -> Result<(Vec<Node>, End), TemplateError> {
    let mut nodes = Vec::new();
    while let Some((is_action, text)) = items.get(*pos) {
        *pos += 1;
        if !is_action {
            if !text.is_empty() {
                nodes.push(Node::Text(text.clone()));
            }
            continue;
        }
        if text == "end" {
            return Ok((nodes, End::Closed));
        }
        if let Some(rest) = keyword(text, "else") {
            let rest = (!rest.is_empty()).then(|| rest.to_string());
            return Ok((nodes, End::Else(rest)));
        }
        if let Some(rest) = keyword(text, "if") {
            nodes.push(parse_if(rest, items, pos)?);
        } else if let Some(rest) = keyword(text, "range") {
            let pipeline = pipeline_of(rest)?;
            let (body, otherwise) = parse_body(items, pos, "range")?;
            nodes.push(Node::Range {
                pipeline,
                body,
                otherwise,
            });
        } else if let Some(rest) = keyword(text, "with") {
            let pipeline = pipeline_of(rest)?;
            let (body, otherwise) = parse_body(items, pos, "with")?;
            nodes.push(Node::With {
                pipeline,
                body,
                otherwise,
            });
        } else {
            nodes.push(Node::Action(pipeline_of(text)?));
        }
    }
    Ok((nodes, End::Eof))
}

fn parse_body(
    items: &[(bool, String)],
    pos: &mut usize,
    what: &str,
) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
    let (body, end) = parse_list(items, pos)?;
    match end {
        End::Closed => Ok((body, Vec::new())),
        End::Else(None) => {
            let (otherwise, end) = parse_list(items, pos)?;
            match end {
                End::Closed => Ok((body, otherwise)),
                _ => Err(TemplateError::Parse(format!(
                    "expected end after else in {what}"
                ))),
            }
        }
        _ => Err(TemplateError::Parse(format!("unexpected EOF in {what}"))),
    }
}

fn parse_if(
    condition: &str,
    items: &[(bool, String)],
    pos: &mut usize,
) -> Result<Node, TemplateError> {
    let mut branches = vec![(pipeline_of(condition)?, Vec::new())];
    loop {
        let (body, end) = parse_list(items, pos)?;
        if let Some(last) = branches.last_mut() {
            last.1 = body;
        }
        match end {
            End::Closed => {
                return Ok(Node::If {
                    branches,
                    otherwise: Vec::new(),
                })
            }
            End::Else(Some(rest)) => {
                let condition = keyword(&rest, "if")
                    .ok_or_else(|| TemplateError::Parse(format!("unexpected else {rest}")))?;
                branches.push((pipeline_of(condition)?, Vec::new()));
            }
            End::Else(None) => {
                let (otherwise, end) = parse_list(items, pos)?;
                return match end {
                    End::Closed => Ok(Node::If {
                        branches,
                        otherwise,
                    }),
                    _ => Err(TemplateError::Parse("expected end after else".into())),
                };
            }
            End::Eof => return Err(TemplateError::Parse("unexpected EOF".into())),
        }
    }
}

/// Parses a whole template.
pub fn parse(source: &str) -> Result<Vec<Node>, TemplateError> {
    let items = segments(source)?;
    let mut pos = 0;
    let (nodes, end) = parse_list(&items, &mut pos)?;
    match end {
        End::Eof => Ok(nodes),
        End::Closed => Err(TemplateError::Parse("unexpected {{end}}".into())),
        End::Else(_) => Err(TemplateError::Parse("unexpected {{else}}".into())),
    }
}
