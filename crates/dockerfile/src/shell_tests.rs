//! Tests for word expansion: tables, then BuildKit's envVarTest and wordsTest fixtures.

use super::*;
use crate::test_fixtures::fixture_path;

fn buildkit_env() -> Vec<(String, String)> {
    env_from_pairs(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="])
}

#[test]
fn expands_modifiers_like_buildkit() {
    let env = env_from_pairs(["A=apple", "E=", "P=/usr/local/bin/tool.tar.gz"]);
    let lex = Lexer::new('\\');
    let cases = [
        ("${A:-x}", "apple"),
        ("${E:-x}", "x"),
        ("${E-x}", ""),
        ("${U-x}", "x"),
        ("${A:+x}", "x"),
        ("${E:+x}", ""),
        ("${E+x}", "x"),
        ("${U+x}", ""),
        ("${A?}", "apple"),
        ("${P#*/}", "usr/local/bin/tool.tar.gz"),
        ("${P##*/}", "tool.tar.gz"),
        ("${P%.*}", "/usr/local/bin/tool.tar"),
        ("${P%%.*}", "/usr/local/bin/tool"),
        ("${P/o/0}", "/usr/l0cal/bin/tool.tar.gz"),
        ("${P//o/0}", "/usr/l0cal/bin/t00l.tar.gz"),
        ("${A//p*/x}", "ax"),
        ("${A/#/x}", "apple"),
        ("'$A'", "$A"),
        ("\"$A\"", "apple"),
        ("\\$A", "$A"),
    ];
    for (input, want) in cases {
        assert_eq!(
            lex.process_word(input, &env).unwrap(),
            want,
            "input {input:?}"
        );
    }
}

#[test]
fn mandatory_variables_report_their_message() {
    let lex = Lexer::new('\\');
    let set = env_from_pairs(["VAR=plain", "ARG=x"]);
    let empty = env_from_pairs(["VAR=", "ARG=x"]);
    let unset = env_from_pairs(["ARG=x"]);
    assert_eq!(
        lex.process_word("${VAR:?message here$ARG}", &set).unwrap(),
        "plain"
    );
    let err = lex
        .process_word("${VAR:?message here$ARG}", &empty)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"failed to process "${VAR:?message here$ARG}": VAR: message herex"#
    );
    assert!(lex
        .process_word("${VAR:?message here$ARG}", &unset)
        .is_err());
    assert_eq!(
        lex.process_word("${VAR?message here$ARG}", &empty).unwrap(),
        ""
    );
    let err = lex.process_word("${VAR?}", &unset).unwrap_err();
    assert!(
        err.to_string().ends_with("VAR: is not allowed to be unset"),
        "{err}"
    );
}

#[test]
fn backtick_escape_token_escapes() {
    let lex = Lexer::new('`');
    let env = env_from_pairs(["A=1"]);
    assert_eq!(lex.process_word("`$A \\x", &env).unwrap(), "$A \\x");
}

#[test]
fn skip_unset_env_keeps_unset_references() {
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let env = env_from_pairs(["A=1"]);
    assert_eq!(
        lex.process_word("$A $B ${C} ${D:-x}", &env).unwrap(),
        "1 $B ${C} ${D:-x}"
    );
}

#[test]
fn process_reports_matched_and_unmatched_names() {
    let lex = Lexer::new('\\');
    let env = env_from_pairs(["A=1"]);
    let got = lex.process("$A ${B:-$A}", &env).unwrap();
    assert_eq!(got.matched.into_iter().collect::<Vec<_>>(), ["A"]);
    assert_eq!(got.unmatched.into_iter().collect::<Vec<_>>(), ["B"]);
}

#[test]
fn hostile_patterns_finish() {
    let lex = Lexer::new('\\');
    let value = "a".repeat(2000);
    let env = vec![("V".to_string(), value)];
    let pattern = "*a".repeat(500) + "b";
    let word = format!("${{V//{pattern}/x}}");
    assert_eq!(lex.process_word(&word, &env).unwrap().len(), 2000);
}

/// BuildKit's `shell/envVarTest`: `PLATFORM|input|expected`, A and U rows on unix.
#[test]
fn buildkit_env_var_fixture_passes() {
    let text = std::fs::read_to_string(fixture_path("shell/envVarTest")).unwrap();
    let lex = Lexer::new('\\');
    let env = buildkit_env();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(parts.len(), 3, "line {}", n + 1);
        let (platform, source, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        checked += 1;
        let got = lex.process_word(source, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(w), e) => w == e,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {source:?} => {got:?}, want {expected:?}",
                n + 1
            ));
        }
    }
    println!(
        "envVarTest: {} of {checked} cases pass",
        checked - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 100, "only {checked} cases found");
}

/// BuildKit's `shell/wordsTest`: `input | word,word` rows with `ENV` lines in between.
#[test]
fn buildkit_words_fixture_passes() {
    let text = std::fs::read_to_string(fixture_path("shell/wordsTest")).unwrap();
    let lex = Lexer::new('\\');
    let mut envs: Vec<String> = Vec::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            envs.push(rest.trim_start_matches(' ').to_string());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 2, "line {}", n + 1);
        let input = parts[0].trim();
        let expected: Vec<&str> = parts[1].trim_start_matches(' ').split(',').collect();
        let env = env_from_pairs(&envs);
        let got = lex
            .process_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        checked += 1;
        if got != expected {
            failures.push(format!(
                "line {}: {input:?} => {got:?}, want {expected:?}",
                n + 1
            ));
        }
    }
    println!(
        "wordsTest: {} of {checked} cases pass",
        checked - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 20, "only {checked} cases found");
}
