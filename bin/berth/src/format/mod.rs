//! Output formatting shared by the commands: docker's `--format` handling (`table`,
//! `json`, Go templates), Go's tabwriter, human units and order-preserving JSON.

pub mod tabwriter;
pub mod template;
pub mod time;
pub mod units;
pub mod value;

pub use template::{Template, TemplateError};
pub use value::Value;

/// How a list command prints: a format string as the user gave it, or the default.
pub struct ListFormat {
    /// The format after `table`/`json` shortcuts, with `\t` and `\n` escapes replaced.
    source: String,
    table: bool,
}

impl ListFormat {
    /// docker's formatter: `table ...` aligns columns under a header, `table` alone
    /// means `default_table`, `json` means `{{json .}}`, anything else is a raw template.
    pub fn new(format: Option<&str>, default_table: &str) -> ListFormat {
        let format = match format {
            None | Some("") | Some("table") => default_table,
            Some("json") => "{{json .}}",
            Some(other) => other,
        };
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, format),
        };
        let source = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        ListFormat { source, table }
    }

    /// Renders `rows` (each a context object) with `header` naming every field.
    pub fn render(&self, header: &Value, rows: &[Value]) -> Result<String, TemplateError> {
        let template = Template::parse(&self.source)?.strict();
        let mut body = String::new();
        for row in rows {
            body.push_str(&template.execute(row)?);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let mut text = template.execute_header(header)?;
        text.push('\n');
        text.push_str(&body);
        Ok(tabwriter::align(&text, 10, 3))
    }
}

/// Builds an object value from `(name, value)` pairs.
pub fn object<I, K>(fields: I) -> Value
where
    I: IntoIterator<Item = (K, Value)>,
    K: Into<String>,
{
    Value::Object(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// docker's `TruncateID`: the part after any `algo:` prefix, cut to 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, rest)| rest).unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker's `Ellipsis`: cut to `max` display columns, ending with `…` when cut.
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> (Value, Vec<Value>) {
        let header = object([
            ("ID", Value::str("CONTAINER ID")),
            ("Names", Value::str("NAMES")),
        ]);
        let rows = vec![
            object([
                ("ID", Value::str("0123456789ab")),
                ("Names", Value::str("web")),
            ]),
            object([
                ("ID", Value::str("ba9876543210")),
                ("Names", Value::str("db")),
            ]),
        ];
        (header, rows)
    }

    #[test]
    fn table_format_prints_aligned_header_and_rows() {
        let (header, rows) = rows();
        let format = ListFormat::new(Some("table {{.ID}}\\t{{.Names}}"), "");
        assert_eq!(
            format.render(&header, &rows).expect("render"),
            "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   db\n"
        );
        let header_functions = ListFormat::new(Some("table {{upper .Names}}\t{{json .ID}}"), "");
        assert!(header_functions
            .render(&header, &rows)
            .expect("render")
            .starts_with("NAMES     CONTAINER ID\nWEB       \"0123456789ab\"\n"));
    }

    #[test]
    fn raw_and_json_formats_print_one_line_per_row() {
        let (header, rows) = rows();
        let raw = ListFormat::new(Some("{{.Names}}"), "table {{.ID}}");
        assert_eq!(raw.render(&header, &rows).expect("render"), "web\ndb\n");
        let json = ListFormat::new(Some("json"), "table {{.ID}}");
        assert_eq!(
            json.render(&header, &rows[..1]).expect("render"),
            "{\"ID\":\"0123456789ab\",\"Names\":\"web\"}\n"
        );
        let empty = ListFormat::new(None, "table {{.ID}}\t{{.Names}}");
        assert_eq!(
            empty.render(&header, &[]).expect("render"),
            "CONTAINER ID   NAMES\n"
        );
    }

    #[test]
    fn ids_commands_and_quotes_shorten_like_docker() {
        assert_eq!(
            truncate_id("sha256:78f03d8d616348aeb5b600d2"),
            "78f03d8d6163"
        );
        assert_eq!(
            ellipsis("sh -c 'sleep 1000; echo done'", 20),
            "sh -c 'sleep 1000; …"
        );
        assert_eq!(go_quote("echo \"hi\"\n"), "\"echo \\\"hi\\\"\\n\"");
    }
}
