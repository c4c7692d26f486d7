//! Template functions: docker's (`json`, `join`, `split`, `title`, `lower`, `upper`,
//! `pad`, `truncate`) and Go's builtins (`printf`, `print`, `println`, `index`, `len`,
//! `not`, `and`, `or`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`).

use std::cmp::Ordering;

use super::TemplateError;
use crate::format::value::Value;

/// docker's `HeaderFunctions`: in a table header these return their first argument.
pub const HEADER_IDENTITY: [&str; 8] = [
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

fn error(text: String) -> TemplateError {
    TemplateError::Execute(text)
}

fn want(name: &str, args: &[Value], count: usize) -> Result<(), TemplateError> {
    if args.len() == count {
        Ok(())
    } else {
        Err(error(format!(
            "wrong number of args for {name}: want {count} got {}",
            args.len()
        )))
    }
}

fn text(value: &Value) -> String {
    value.to_string()
}

fn integer(name: &str, value: &Value) -> Result<i64, TemplateError> {
    value
        .as_i64()
        .ok_or_else(|| error(format!("{name}: expected an integer, got {value}")))
}

/// Calls the function `name` on already evaluated arguments.
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    let value = match name {
        "json" => {
            want(name, &args, 1)?;
            Value::Str(args[0].to_json())
        }
        "join" => {
            want(name, &args, 2)?;
            let items: Vec<String> = match &args[0] {
                Value::Array(items) => items.iter().map(text).collect(),
                Value::Null => Vec::new(),
                other => return Err(error(format!("join: expected a list, got {other}"))),
            };
            Value::Str(items.join(&text(&args[1])))
        }
        "split" => {
            want(name, &args, 2)?;
            let source = text(&args[0]);
            let separator = text(&args[1]);
            let parts: Vec<Value> = if separator.is_empty() {
                source.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                source.split(separator.as_str()).map(Value::str).collect()
            };
            Value::Array(parts)
        }
        "lower" => {
            want(name, &args, 1)?;
            Value::Str(text(&args[0]).to_lowercase())
        }
        "upper" => {
            want(name, &args, 1)?;
            Value::Str(text(&args[0]).to_uppercase())
        }
        "title" => {
            want(name, &args, 1)?;
            Value::Str(title(&text(&args[0])))
        }
        "pad" => {
            want(name, &args, 3)?;
            let left = integer(name, &args[1])?.max(0) as usize;
            let right = integer(name, &args[2])?.max(0) as usize;
            Value::Str(format!(
                "{}{}{}",
                " ".repeat(left),
                text(&args[0]),
                " ".repeat(right)
            ))
        }
        "truncate" => {
            want(name, &args, 2)?;
            let source = text(&args[0]);
            let length = integer(name, &args[1])?.max(0) as usize;
            if source.len() < length {
                Value::Str(source)
            } else {
                // docker slices bytes; stay on a character boundary.
                let mut end = length;
                while !source.is_char_boundary(end) {
                    end -= 1;
                }
                Value::Str(source[..end].to_string())
            }
        }
        "len" => {
            want(name, &args, 1)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len() as i64,
                Value::Array(items) => items.len() as i64,
                Value::Object(fields) => fields.len() as i64,
                Value::Null => 0,
                other => return Err(error(format!("len of type {other}"))),
            })
        }
        "index" => {
            let mut iter = args.into_iter();
            let mut current = iter.next().ok_or_else(|| {
                error("wrong number of args for index: want at least 1 got 0".into())
            })?;
            for key in iter {
                current = match (&current, &key) {
                    (Value::Array(items), key) => {
                        let i = integer("index", key)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| items.get(i))
                            .cloned()
                            .ok_or_else(|| {
                                error(format!("error calling index: index out of range: {i}"))
                            })?
                    }
                    (Value::Object(_), key) => {
                        current.field(&text(key)).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Null, _) => Value::Null,
                    (other, _) => return Err(error(format!("can't index item of type {other}"))),
                };
            }
            current
        }
        "printf" => {
            let (format, rest) = args.split_first().ok_or_else(|| {
                error("wrong number of args for printf: want at least 1 got 0".into())
            })?;
            Value::Str(sprintf(&text(format), rest))
        }
        "print" => Value::Str(sprint(&args)),
        "println" => {
            let items: Vec<String> = args.iter().map(text).collect();
            Value::Str(format!("{}\n", items.join(" ")))
        }
        "not" => {
            want(name, &args, 1)?;
            Value::Bool(!args[0].truthy())
        }
        "and" => args
            .iter()
            .find(|v| !v.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|v| v.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or_else(|| error("missing argument for comparison".into()))?;
            Value::Bool(
                rest.iter()
                    .any(|other| compare(first, other) == Some(Ordering::Equal)),
            )
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2)?;
            let order = compare(&args[0], &args[1])
                .ok_or_else(|| error(format!("incompatible types for comparison: {name}")))?;
            Value::Bool(match name {
                "ne" => order != Ordering::Equal,
                "lt" => order == Ordering::Less,
                "le" => order != Ordering::Greater,
                "gt" => order == Ordering::Greater,
                _ => order != Ordering::Less,
            })
        }
        other => {
            return Err(TemplateError::Parse(format!(
                "function \"{other}\" not defined"
            )))
        }
    };
    Ok(value)
}

fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Go's `strings.Title`: upper-cases the first letter of every word.
fn title(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut at_start = true;
    for c in source.chars() {
        if at_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// Go's `fmt.Sprint`: spaces only between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::Str(_));
        if i > 0 && !is_string && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&text(arg));
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %q %f %t %x %%` with flags,
/// width and precision.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        let mut plus = false;
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            precision = Some(digits.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let body = match verb {
            'd' => match arg.as_i64() {
                Some(n) if plus && n >= 0 => format!("+{n}"),
                Some(n) => n.to_string(),
                None => format!("%!d({arg})"),
            },
            'f' | 'F' => match arg.as_f64() {
                Some(f) => format!("{f:.*}", precision.unwrap_or(6)),
                None => format!("%!f({arg})"),
            },
            'q' => crate::format::go_quote(&text(arg)),
            'x' => match arg {
                Value::Str(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                other => other.as_i64().map(|n| format!("{n:x}")).unwrap_or_default(),
            },
            _ => {
                let shown = text(arg);
                match precision {
                    Some(p) if verb == 's' => shown.chars().take(p).collect(),
                    _ => shown,
                }
            }
        };
        let width: usize = width.parse().unwrap_or(0);
        let used = body.chars().count();
        if used >= width {
            out.push_str(&body);
        } else if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(width - used));
        } else {
            let fill = if zero && verb != 's' { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(fill, width - used));
            out.push_str(&body);
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Value::Str(s) => format!("string={s}"),
                other => format!("int={other}"),
            })
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
