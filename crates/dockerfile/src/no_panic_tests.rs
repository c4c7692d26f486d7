//! Hermetic robustness tests: mutated BuildKit fixtures and generated inputs go through the
//! whole pipeline (parse, dump, typed instructions, expansion, shell words, .dockerignore)
//! without panicking; the fuzz target `dockerfile_parse` does the same with libFuzzer.

use proptest::prelude::*;

use crate::dockerignore::{read_patterns, PatternMatcher};
use crate::instructions::{expand_instruction, parse_stages, Expander};
use crate::shell::{env_from_pairs, Lexer};
use crate::test_fixtures::fixture_path;

/// Runs every consumer of untrusted Dockerfile bytes; returns whether the file parsed.
fn exercise(data: &[u8]) -> bool {
    let env = env_from_pairs(["A=1", "P=/usr/local/bin", "E="]);
    let parsed = crate::parse_bytes(data);
    if let Ok(dockerfile) = &parsed {
        assert_eq!(dockerfile.dump(), dockerfile.dump());
        if let Ok((stages, _)) = parse_stages(dockerfile) {
            let expander = Expander::new(dockerfile.escape_token, &env);
            for stage in stages {
                for command in stage.commands {
                    let mut instruction = command.instruction;
                    let _ = expand_instruction(&mut instruction, &expander);
                }
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    for escape in ['\\', '`'] {
        let mut lexer = Lexer::new(escape);
        let _ = lexer.process(&text, &env);
        lexer.raw_quotes = true;
        lexer.raw_escapes = true;
        lexer.skip_unset_env = true;
        let _ = lexer.process_words(&text, &env);
    }
    if let Ok(matcher) = PatternMatcher::new(&read_patterns(&text)) {
        for line in text.lines().take(16) {
            let _ = matcher.is_excluded(line);
        }
    }
    parsed.is_ok()
}

const SNIPPETS: [&[u8]; 16] = [
    b"\\\n",
    b"`\n",
    b"\n",
    b"<<EOF",
    b"<<-'X'\n",
    b"[",
    b"]",
    b"\"",
    b"'",
    b"${",
    b"}",
    b":-",
    b"#",
    b"--mount=type=",
    b"\xff",
    b"ONBUILD ",
];

/// Deterministic xorshift so the mutations are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.next() % 4 {
        let pos = if out.is_empty() {
            0
        } else {
            rng.next() % (out.len() + 1)
        };
        match rng.next() % 4 {
            0 => out.truncate(pos),
            1 if pos < out.len() => {
                out.remove(pos);
            }
            2 => {
                let snippet = SNIPPETS[rng.next() % SNIPPETS.len()];
                out.splice(pos..pos, snippet.iter().copied());
            }
            _ => {
                let end = (pos + rng.next() % 40).min(out.len());
                let copy = out[pos..end].to_vec();
                out.splice(pos..pos, copy);
            }
        }
    }
    out
}

#[test]
fn mutated_buildkit_fixtures_never_panic() {
    let mut inputs = Vec::new();
    for group in ["testfiles", "testfiles-negative"] {
        for entry in std::fs::read_dir(fixture_path(group)).unwrap() {
            inputs.push(std::fs::read(entry.unwrap().path().join("Dockerfile")).unwrap());
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    let mut total = 0;
    for input in &inputs {
        for _ in 0..60 {
            total += 1;
            if exercise(&mutate(input, &mut rng)) {
                parsed += 1;
            }
        }
    }
    println!("mutated fixtures: {total} inputs, {parsed} parsed");
    assert!(
        parsed > 0 && parsed < total,
        "mutations should both parse and fail"
    );
}

proptest! {
    #[test]
    fn generated_dockerfiles_never_panic(text in "([A-Za-z]{2,6}|[ \\t\\n\\\\`'\"$@{}()\\[\\]:#<=+?%/*!-]|\u{e9}|<<EOF\n){0,80}") {
        exercise(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&data);
    }
}
