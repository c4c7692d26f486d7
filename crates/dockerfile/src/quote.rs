//! Go's `strconv.Quote`, used where BuildKit prints `%q` (AST dumps, error texts).

use std::fmt::Write;

/// Quotes `s` as Go's `strconv.Quote` does: printable characters kept, `"` and `\` escaped,
/// C escapes for control characters, `\xHH`, `\uHHHH` or `\UHHHHHHHH` otherwise.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_printable(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint` (letters, marks, numbers, punctuation, symbols and
/// ASCII space): control, format, private-use and non-ASCII space characters are not printable.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(
        u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
            | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
    );
    let private_or_nonchar = matches!(
        u,
        0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFDD0..=0xFDEF
    ) || (u & 0xFFFE) == 0xFFFE;
    !format && !private_or_nonchar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        let cases = [
            ("", r#""""#),
            ("a b", r#""a b""#),
            (
                "\" \\ / \u{8} \u{c} \n \r \t \0",
                r#""\" \\ / \b \f \n \r \t \x00""#,
            ),
            ("♥☃", "\"♥☃\""),
            ("\u{7f}\u{a0}", r#""\x7f\u00a0""#),
            ("\u{feff}", r#""\ufeff""#),
            ("\u{10ffff}", r#""\U0010ffff""#),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "input {input:?}");
        }
    }
}
