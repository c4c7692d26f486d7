//! Parser tests: BuildKit's positive and negative fixtures, then heredocs, directives, spans.

use super::*;
use crate::test_fixtures::fixture_path;

fn case_dirs(group: &str) -> Vec<std::path::PathBuf> {
    let dir = fixture_path(group);
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// Every `testfiles/<case>/Dockerfile` parses and dumps exactly as BuildKit's `result`.
#[test]
fn buildkit_testfiles_parse_and_dump_like_buildkit() {
    let cases = case_dirs("testfiles");
    let mut failures = Vec::new();
    for case in &cases {
        let input = std::fs::read(case.join("Dockerfile")).unwrap();
        let want = std::fs::read_to_string(case.join("result")).unwrap();
        match parse_bytes(&input) {
            Ok(df) if df.dump() == want => {}
            Ok(df) => failures.push(format!(
                "{}: dump differs\n--- got\n{}--- want\n{}",
                case.display(),
                df.dump(),
                want
            )),
            Err(e) => failures.push(format!("{}: {e}", case.display())),
        }
    }
    println!(
        "testfiles: {} of {} cases pass",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 30, "only {} cases found", cases.len());
}

/// Every `testfiles-negative/<case>/Dockerfile` is rejected, by the parser or by the typed
/// instructions.
#[test]
fn buildkit_negative_testfiles_are_rejected() {
    let cases = case_dirs("testfiles-negative");
    let mut failures = Vec::new();
    for case in &cases {
        let input = std::fs::read(case.join("Dockerfile")).unwrap();
        let rejected = match parse_bytes(&input) {
            Err(_) => true,
            Ok(df) => crate::instructions::parse_stages(&df).is_err(),
        };
        if !rejected {
            failures.push(case.display().to_string());
        }
    }
    println!(
        "testfiles-negative: {} of {} cases rejected",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "accepted: {}", failures.join(", "));
    assert!(!cases.is_empty());
}

#[test]
fn empty_file_has_no_instructions() {
    for input in ["", "\n\n", "# only a comment\n", "# escape=`\n"] {
        let err = parse(input).unwrap_err();
        assert_eq!(
            err.to_string(),
            "file with no instructions",
            "input {input:?}"
        );
    }
}

#[test]
fn instructions_carry_line_spans() {
    let df =
        parse("# c\nFROM a\n\nRUN a \\\n  b \\\n  c\nCOPY <<EOF /x\nhello\nEOF\nCMD x\n").unwrap();
    let spans: Vec<_> = df
        .children
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(spans, [(2, 2), (4, 6), (7, 9), (10, 10)]);
    assert_eq!(df.children[0].comments, ["c"]);
}

#[test]
fn escape_directive_switches_continuation_token() {
    let df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  /b\n").unwrap();
    assert_eq!(df.escape_token, '`');
    assert_eq!(df.children[1].args, ["dir c:\\   /b"]);
    assert_eq!(df.directives[0].name, "escape");
    assert_eq!(df.directive("escape"), Some("`"));
    assert_eq!(df.directive("syntax"), None);
}

#[test]
fn directive_after_instruction_is_a_comment() {
    let df = parse("FROM a\n# escape=`\nRUN a \\\n b\n").unwrap();
    assert_eq!(df.escape_token, '\\');
    assert_eq!(df.children[1].args, ["a  b"]);
}

#[test]
fn invalid_and_duplicate_directives_fail() {
    let err = parse("# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid escape token 'x' does not match ` or \\"
    );
    assert_eq!(err.start_line, 1);
    let err = parse("# syntax=a\n# syntax=b\nFROM a\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "only one syntax parser directive can be used"
    );
    assert_eq!(err.start_line, 2);
}

#[test]
fn empty_continuation_line_warns() {
    let df = parse("FROM a\nRUN a \\\n\n  b\n").unwrap();
    assert_eq!(df.children[1].args, ["a   b"]);
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(
        df.warnings[0].short,
        "Empty continuation line found in: RUN a   b"
    );
    assert_eq!(df.warnings[0].line, 4);
}

#[test]
fn heredocs_are_collected_with_their_options() {
    let input = "FROM a\nRUN <<EOF cat - <<-'END' 3<<\"X\"\necho $HOME\nEOF\n\tline\n\tEND\nx\nX\nCOPY <<EOF /dst\nbody\nEOF\n";
    let df = parse(input).unwrap();
    let run = &df.children[1];
    let names: Vec<_> = run.heredocs.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["EOF", "END", "X"]);
    assert!(run.heredocs[0].expand && !run.heredocs[1].expand && !run.heredocs[2].expand);
    assert!(run.heredocs[1].chomp);
    assert_eq!(run.heredocs[2].file_descriptor, 3);
    assert_eq!(run.heredocs[0].content, "echo $HOME\n");
    assert_eq!(chomp_heredoc_content(&run.heredocs[1].content), "line\n");
    assert_eq!((run.start_line, run.end_line), (2, 8));
    assert_eq!(df.children[2].heredocs[0].content, "body\n");
}

#[test]
fn heredoc_in_json_form_or_other_instruction_is_plain_text() {
    let df = parse("FROM a\nRUN [\"<<EOF\"]\nENV a=<<EOF\n").unwrap();
    assert!(df.children.iter().all(|n| n.heredocs.is_empty()));
}

#[test]
fn onbuild_heredoc_is_read() {
    let df = parse("FROM a\nONBUILD RUN <<EOF\nx\nEOF\n").unwrap();
    assert_eq!(df.children[1].heredocs[0].content, "x\n");
}

#[test]
fn unterminated_heredoc_fails_with_its_span() {
    let err = parse("FROM a\nRUN <<EOF\nx\n").unwrap_err();
    assert_eq!(err.to_string(), "unterminated heredoc");
    assert_eq!((err.start_line, err.end_line), (2, 3));
}

#[test]
fn parse_heredoc_matches_buildkit_regexp() {
    assert_eq!(parse_heredoc("<<EOF").unwrap().unwrap().name, "EOF");
    assert_eq!(parse_heredoc("<< EOF").unwrap().unwrap().name, "EOF");
    assert!(!parse_heredoc("<<E\"O\"F").unwrap().unwrap().expand);
    assert_eq!(parse_heredoc("<<").unwrap(), None);
    assert_eq!(parse_heredoc("a<<EOF").unwrap(), None);
    assert_eq!(parse_heredoc("<<a<b").unwrap(), None);
}

#[test]
fn unknown_instruction_parses_with_empty_argument() {
    let df = parse("FROM a\nFOO bar\n").unwrap();
    assert_eq!(df.children[1].dump(), "foo \"\"");
}

#[test]
fn env_errors_name_the_problem() {
    let err = parse("FROM a\nENV a\n").unwrap_err();
    assert_eq!(err.to_string(), "ENV must have two arguments");
    assert_eq!(err.start_line, 2);
    let err = parse("FROM a\nLABEL a=b c\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
}

#[test]
fn overlong_line_is_refused() {
    let input = format!("FROM a\nRUN {}\n", "x".repeat(MAX_LINE));
    let err = parse(&input).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dockerfile line greater than max allowed size of 65535"
    );
}

#[test]
fn byte_order_mark_and_crlf_are_ignored() {
    let df = parse("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
    assert_eq!(df.dump(), "(from \"a\")\n(run \"b  c\")\n");
}

/// Delimiter quoting decides the name and whether the body expands, as BuildKit's lexer does.
#[test]
fn heredoc_delimiters_follow_buildkit_quoting() {
    let cases: [(&str, &str, bool, bool); 11] = [
        ("<<A", "A", true, false),
        ("<<-A", "A", true, true),
        ("<<'A'", "A", false, false),
        ("<<\"A\"", "A", false, false),
        ("<<A\"B\"", "AB", false, false),
        ("<<a\\'b", "a'b", true, false),
        ("<<'a'b\\'c", "ab'c", false, false),
        ("<<'x y'", "x y", false, false),
        ("<<$V", "$V", true, false),
        ("<<- A", "A", true, true),
        ("<<  A", "A", true, false),
    ];
    for (word, name, expand, chomp) in cases {
        let doc = parse_heredoc(word)
            .unwrap()
            .unwrap_or_else(|| panic!("{word}: not a heredoc"));
        assert_eq!(
            (doc.name.as_str(), doc.expand, doc.chomp),
            (name, expand, chomp),
            "{word}"
        );
    }
    for not_heredoc in ["", "A", "<<", "<<-", "<A", "<<<A", "<<A sh"] {
        assert_eq!(parse_heredoc(not_heredoc).unwrap(), None, "{not_heredoc:?}");
    }
    for invalid in ["<<'A", "<<\"A", "<<A'", "<<A\""] {
        assert!(parse_heredoc(invalid).is_err(), "{invalid:?}");
    }
}

#[test]
fn heredoc_names_found_on_a_line() {
    let cases: [(&str, &[&str]); 5] = [
        ("RUN << -A", &["-A"]),
        ("RUN <<A <<B cat", &["A", "B"]),
        ("RUN \"<<A\"", &[]),
        ("RUN <<A > out", &["A"]),
        ("RUN --mount=type=cache,target=/x <<A", &["A"]),
    ];
    for (line, names) in cases {
        let mut text = format!("FROM a\n{line}\n");
        for name in names {
            text.push_str(&format!("{name}\n"));
        }
        let df = parse(&text).unwrap();
        let got: Vec<_> = df.children[1]
            .heredocs
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(got, *names, "{line}");
    }
}

#[test]
fn heredoc_bodies_are_raw_lines() {
    let df =
        parse("FROM a\nCOPY <<X <<Y /d\nY\nX\nX\nY\nRUN <<C\n# not a comment\n  $keep \\\nC\n")
            .unwrap();
    let copy = &df.children[1].heredocs;
    assert_eq!(
        (copy[0].content.as_str(), copy[1].content.as_str()),
        ("Y\n", "X\n")
    );
    assert_eq!(
        df.children[2].heredocs[0].content,
        "# not a comment\n  $keep \\\n"
    );
}

#[test]
fn spans_cover_blank_and_comment_lines_inside_continuations() {
    let input = "# top\n\n\nFROM x\n\nENV A \\\n/b\n\nRUN one \\\n\t&& two \\\n\n# inside\n    && three \\\n\n\t&& four\n\n";
    let df = parse(input).unwrap();
    let spans: Vec<_> = df
        .children
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(spans, [(4, 4), (6, 7), (9, 15)]);
    assert_eq!(df.children[2].args, ["one \t&& two     && three \t&& four"]);
    assert_eq!(df.warnings.len(), 1);
    let warned: Vec<_> = df.warnings.iter().map(|w| w.line).collect();
    assert_eq!(warned, [15]);
}

#[test]
fn comment_inside_continuation_is_not_an_empty_line() {
    let df = parse("FROM x\nRUN a \\\n# c\n  b \\\n    # indented\n  c\n").unwrap();
    assert!(df.warnings.is_empty());
    assert_eq!(df.children[1].args, ["a   b   c"]);
}

#[test]
fn instructions_are_case_insensitive_and_keep_their_spelling() {
    let df = parse("from a\nRun echo\nrUN [\"x\"]\nonbuild copy --from=b . /\n").unwrap();
    assert_eq!(
        df.dump(),
        "(from \"a\")\n(run \"echo\")\n(run \"x\")\n(onbuild (copy [\"--from=b\"] \".\" \"/\"))\n"
    );
    assert_eq!(df.children[1].value, "Run");
    assert!(df.children[2].json);
}
