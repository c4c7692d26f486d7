//! Fuzz target: parsing arbitrary bytes as a Dockerfile, typing and expanding its
//! instructions, expanding it as a shell word and reading it as a `.dockerignore` never panic.
#![no_main]

use berth_dockerfile::dockerignore::{read_patterns, PatternMatcher};
use berth_dockerfile::instructions::{expand_instruction, parse_stages, Expander};
use berth_dockerfile::shell::{env_from_pairs, Lexer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env = env_from_pairs(["A=1", "P=/usr/local/bin", "E="]);
    if let Ok(dockerfile) = berth_dockerfile::parse_bytes(data) {
        assert_eq!(dockerfile.dump(), dockerfile.dump());
        if let Ok((stages, _meta)) = parse_stages(&dockerfile) {
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
            let _ = matcher.matches(line);
        }
    }
});
