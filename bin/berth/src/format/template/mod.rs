//! The Go template subset of docker's `--format` and `inspect -f`: parsing lives in
//! [`parse`], execution against an order-preserving JSON [`Value`] here, with docker's
//! template functions (`json`, `join`, `split`, `title`, `lower`, `upper`, `pad`,
//! `truncate`) and Go's builtins (`printf`, `print`, `println`, `index`, `len`, `eq`...).

mod functions;
mod parse;

use crate::format::value::Value;
use parse::{Node, Operand, Pipeline};

/// Template errors: parse errors (docker: "template parsing error") and execution errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {0}")]
    Parse(String),
    #[error("template: {0}")]
    Execute(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    /// Missing fields are errors (docker's typed formatter contexts) instead of `<no value>`.
    strict: bool,
    /// Executing for a table header: docker's functions return their argument unchanged.
    header: bool,
}

struct Scope {
    variables: Vec<(String, Value)>,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            nodes: parse::parse(source)?,
            strict: false,
            header: false,
        })
    }

    /// Missing fields fail, as fields of docker's formatter contexts do.
    pub fn strict(mut self) -> Template {
        self.strict = true;
        self
    }

    /// Executes for a table header row: `json`, `join`, `upper`... leave headers as they are.
    pub fn execute_header(&self, dot: &Value) -> Result<String, TemplateError> {
        let header = Template {
            nodes: self.nodes.clone(),
            strict: false,
            header: true,
        };
        header.execute(dot)
    }

    pub fn execute(&self, dot: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut scope = Scope {
            variables: vec![("$".to_string(), dot.clone())],
        };
        self.run(&self.nodes, dot, &mut scope, &mut out)?;
        Ok(out)
    }

    fn run(
        &self,
        nodes: &[Node],
        dot: &Value,
        scope: &mut Scope,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(pipeline) => {
                    let value = self.pipeline(pipeline, dot, scope)?;
                    if pipeline.declare.is_empty() {
                        out.push_str(&print(&value));
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut done = false;
                    for (condition, body) in branches {
                        if self.pipeline(condition, dot, scope)?.truthy() {
                            self.scoped(body, dot, scope, out)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.scoped(otherwise, dot, scope, out)?;
                    }
                }
                Node::With {
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let value = self.pipeline(pipeline, dot, scope)?;
                    if value.truthy() {
                        self.scoped(body, &value, scope, out)?;
                    } else {
                        self.scoped(otherwise, dot, scope, out)?;
                    }
                }
                Node::Range {
                    pipeline,
                    body,
                    otherwise,
                } => {
                    let mut plain = pipeline.clone();
                    plain.declare.clear();
                    let value = self.pipeline(&plain, dot, scope)?;
                    let items: Vec<(Value, Value)> = match value {
                        Value::Array(items) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64), v))
                            .collect(),
                        Value::Object(mut fields) => {
                            fields.sort_by(|a, b| a.0.cmp(&b.0));
                            fields
                                .into_iter()
                                .map(|(k, v)| (Value::Str(k), v))
                                .collect()
                        }
                        Value::Int(n) => (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Null => Vec::new(),
                        other => {
                            return Err(TemplateError::Execute(format!(
                                "range can't iterate over {other}"
                            )))
                        }
                    };
                    if items.is_empty() {
                        self.scoped(otherwise, dot, scope, out)?;
                    }
                    for (key, item) in items {
                        let mark = scope.variables.len();
                        match pipeline.declare.as_slice() {
                            [value_name] => {
                                scope.variables.push((value_name.clone(), item.clone()))
                            }
                            [key_name, value_name] => {
                                scope.variables.push((key_name.clone(), key));
                                scope.variables.push((value_name.clone(), item.clone()));
                            }
                            _ => {}
                        }
                        self.run(body, &item, scope, out)?;
                        scope.variables.truncate(mark);
                    }
                }
            }
        }
        Ok(())
    }

    fn scoped(
        &self,
        nodes: &[Node],
        dot: &Value,
        scope: &mut Scope,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        let mark = scope.variables.len();
        let result = self.run(nodes, dot, scope, out);
        scope.variables.truncate(mark);
        result
    }

    fn pipeline(
        &self,
        pipeline: &Pipeline,
        dot: &Value,
        scope: &mut Scope,
    ) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for command in &pipeline.commands {
            piped = Some(self.command(command, dot, scope, piped)?);
        }
        let value = piped.unwrap_or(Value::Null);
        for name in &pipeline.declare {
            scope.variables.push((name.clone(), value.clone()));
        }
        Ok(value)
    }

    fn command(
        &self,
        command: &[Operand],
        dot: &Value,
        scope: &mut Scope,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let Some((first, rest)) = command.split_first() else {
            return Err(TemplateError::Execute("empty command".into()));
        };
        if let Operand::Function(name) = first {
            let mut args = Vec::with_capacity(rest.len() + 1);
            // `and`/`or` still evaluate all their operands here; none of ours have effects.
            for operand in rest {
                args.push(self.operand(operand, dot, scope)?);
            }
            if let Some(value) = piped {
                args.push(value);
            }
            if self.header && functions::HEADER_IDENTITY.contains(&name.as_str()) {
                return Ok(args.into_iter().next().unwrap_or(Value::Null));
            }
            return functions::call(name, args);
        }
        if !rest.is_empty() || piped.is_some() {
            return Err(TemplateError::Execute(format!(
                "can't give argument to non-function {}",
                describe(first)
            )));
        }
        self.operand(first, dot, scope)
    }

    fn operand(
        &self,
        operand: &Operand,
        dot: &Value,
        scope: &mut Scope,
    ) -> Result<Value, TemplateError> {
        match operand {
            Operand::Field(fields) => self.fields(dot, fields),
            Operand::Variable(name, fields) => {
                let value = scope
                    .variables
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        TemplateError::Parse(format!("undefined variable \"{name}\""))
                    })?;
                self.fields(&value, fields)
            }
            Operand::Function(name) => functions::call(name, Vec::new()),
            Operand::Str(text) => Ok(Value::Str(text.clone())),
            Operand::Int(n) => Ok(Value::Int(*n)),
            Operand::Float(f) => Ok(Value::Float(*f)),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Nil => Ok(Value::Null),
            Operand::Group(pipeline, fields) => {
                let value = self.pipeline(pipeline, dot, scope)?;
                self.fields(&value, fields)
            }
        }
    }

    fn fields(&self, value: &Value, fields: &[String]) -> Result<Value, TemplateError> {
        let mut current = value.clone();
        for name in fields {
            current = match &current {
                Value::Object(_) => match current.field(name) {
                    Some(found) => found.clone(),
                    None if self.strict => {
                        return Err(TemplateError::Execute(format!(
                            "can't evaluate field {name}"
                        )))
                    }
                    None => Value::Null,
                },
                Value::Null => Value::Null,
                other => {
                    return Err(TemplateError::Execute(format!(
                        "can't evaluate field {name} in type {}",
                        type_name(other)
                    )))
                }
            };
        }
        Ok(current)
    }
}

fn describe(operand: &Operand) -> String {
    match operand {
        Operand::Field(fields) => format!(".{}", fields.join(".")),
        Operand::Variable(name, _) => name.clone(),
        other => format!("{other:?}"),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Uint(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// How an action prints its value: Go's `fmt.Fprint`, a nil pointer or absent field of
/// docker's typed inspect structs as `<nil>`.
fn print(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
