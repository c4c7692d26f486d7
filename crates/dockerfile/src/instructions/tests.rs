//! Typed-instruction tests: every instruction, its flags, and BuildKit's error texts.

use super::*;
use crate::parser::parse;
use crate::shell::env_from_pairs;

fn one(line: &str) -> Instruction {
    let df = parse(&format!("FROM scratch\n{line}\n")).unwrap();
    parse_instruction(&df.children[1]).unwrap().instruction
}

fn stage_error(text: &str) -> String {
    let df = parse(text).unwrap();
    parse_stages(&df).unwrap_err().to_string()
}

#[test]
fn from_with_platform_and_stage_name() {
    let df =
        parse("ARG V=1\nFROM --platform=$BUILDPLATFORM golang:$V AS Build\nRUN x\nFROM build\n")
            .unwrap();
    let (stages, meta) = parse_stages(&df).unwrap();
    assert_eq!(
        meta[0].args[0],
        ArgPair {
            key: "V".into(),
            value: Some("1".into())
        }
    );
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].from.name, "build");
    assert_eq!(stages[0].from.platform, "$BUILDPLATFORM");
    assert_eq!(stages[0].from.base_name, "golang:$V");
    assert_eq!(stages[0].commands.len(), 1);
    assert_eq!(
        stages[0].original,
        "FROM --platform=$BUILDPLATFORM golang:$V AS Build"
    );
}

#[test]
fn errors_carry_buildkit_line_prefix() {
    let cases = [
        ("FROM a\n\nBOGUS bar\n", "dockerfile parse error on line 3: unknown instruction: BOGUS"),
        ("FROM a\nFOO bar\n", "dockerfile parse error on line 2: unknown instruction: FOO (did you mean FROM?)"),
        ("FROM a\nRUNN x\n", "dockerfile parse error on line 2: unknown instruction: RUNN (did you mean RUN?)"),
        ("RUN x\n", "dockerfile parse error on line 1: no build stage in current context"),
        ("FROM a b\n", "dockerfile parse error on line 1: FROM requires either one or three arguments"),
        (
            "FROM a AS 1x\n",
            "dockerfile parse error on line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols",
        ),
        ("FROM --platfrom=x a\n", "dockerfile parse error on line 1: unknown flag: --platfrom (did you mean platform?)"),
    ];
    for (input, want) in cases {
        assert_eq!(stage_error(input), want, "{input:?}");
    }
}

#[test]
fn instruction_errors_use_buildkit_texts() {
    let cases = [
        ("COPY a", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("ADD a", "ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("COPY a <<EOF\nEOF", "COPY cannot accept a heredoc as a destination"),
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ("VOLUME [\"\"]", "VOLUME specified can not be an empty string"),
        ("ARG", "ARG requires at least one argument"),
        ("ARG =x", "ARG names can not be blank"),
        ("ENV", "ENV requires at least one argument"),
        ("LABEL =x", "LABEL names can not be blank"),
        ("SHELL", "SHELL requires at least one argument"),
        ("SHELL []", "SHELL requires at least one argument"),
        ("SHELL bash -c", "SHELL requires the arguments to be in JSON form"),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD maintainer x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK CONNECT TCP 7000", "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"),
        ("HEALTHCHECK --interval=10us CMD x", "Interval \"interval\" cannot be less than 1ms"),
        ("HEALTHCHECK --timeout=5 CMD x", "time: missing unit in duration \"5\""),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD x", "strconv.ParseInt: parsing \"x\": invalid syntax"),
        ("ENV --x a=b", "unknown flag: --x"),
        ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
        ("RUN --network=bridge x", "invalid network mode \"bridge\""),
        ("RUN --security=x x", "security \"x\" is not valid"),
        ("RUN --mount=type=foo x", "unsupported mount type \"foo\""),
        ("RUN --mount=from=$X,target=/x x", "'from' doesn't support variable expansion, define alias stage instead"),
    ];
    let mut failures = Vec::new();
    for (line, want) in cases {
        let df = parse(&format!("FROM scratch\n{line}\n")).unwrap();
        match parse_instruction(&df.children[1]) {
            Ok(i) => failures.push(format!("{line}: accepted as {i:?}")),
            Err(e) if e.to_string() != want => failures.push(format!("{line}: {e} (want {want})")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn run_shell_and_exec_forms_with_mounts() {
    let Instruction::Run(run) =
        one("RUN --mount=type=cache,target=/c --network=none --security=insecure make all")
    else {
        panic!("not a RUN");
    };
    assert_eq!(run.cmd.args, ["make all"]);
    assert!(run.cmd.prepend_shell);
    assert_eq!(run.mounts[0].mount_type, MountType::Cache);
    assert!(run.mounts_resolved);
    assert_eq!(
        (run.network, run.security),
        (NetworkMode::None, Security::Insecure)
    );
    assert_eq!(run.flags_used, ["mount", "network", "security"]);
    let Instruction::Run(run) = one("RUN --device=vendor.com/gpu,required true") else {
        panic!()
    };
    assert_eq!(
        run.devices,
        [Device {
            name: "vendor.com/gpu".into(),
            required: true
        }]
    );
    let Instruction::Run(run) = one("RUN [\"echo\", \"a b\"]") else {
        panic!()
    };
    assert_eq!(run.cmd.args, ["echo", "a b"]);
    assert!(!run.cmd.prepend_shell);
}

#[test]
fn run_heredoc_becomes_inline_file() {
    let df = parse("FROM a\nRUN <<-EOF bash\n\techo hi\n\tEOF\n").unwrap();
    let Instruction::Run(run) = parse_instruction(&df.children[1]).unwrap().instruction else {
        panic!()
    };
    assert_eq!(
        run.cmd.files,
        [InlineFile {
            name: "EOF".into(),
            data: "\techo hi\n".into(),
            chomp: true
        }]
    );
    assert_eq!(run.cmd.args, ["<<-EOF bash"]);
}

#[test]
fn copy_and_add_flags_and_heredoc_sources() {
    let df = parse("FROM a\nCOPY --from=build --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=x <<'EOF' src/ /dst/\n$HOME\nEOF\n").unwrap();
    let Instruction::Copy(c) = parse_instruction(&df.children[1]).unwrap().instruction else {
        panic!()
    };
    assert_eq!(
        (c.from.as_str(), c.chown.as_str(), c.chmod.as_str()),
        ("build", "1:2", "755")
    );
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, ["*.md", "x"]);
    assert_eq!(c.files.sources, ["src/"]);
    assert_eq!(c.files.dest, "/dst/");
    assert_eq!(
        c.files.contents,
        [SourceContent {
            path: "EOF".into(),
            data: "$HOME\n".into(),
            expand: false
        }]
    );
    let Instruction::Add(a) =
        one("ADD --checksum=sha256:abc --keep-git-dir=true --chmod=644 https://x/y.tar /y")
    else {
        panic!()
    };
    assert_eq!(a.checksum, "sha256:abc");
    assert_eq!(a.keep_git_dir, Some(true));
    assert_eq!(a.unpack, None);
    let Instruction::Copy(c) = one("COPY [\"a b\", \"/c d/\"]") else {
        panic!()
    };
    assert_eq!(
        (c.files.sources.as_slice(), c.files.dest.as_str()),
        (&["a b".to_string()][..], "/c d/")
    );
}

#[test]
fn env_label_arg_forms() {
    let Instruction::Env(env) = one("ENV a b c") else {
        panic!()
    };
    assert_eq!(
        env,
        [KeyValue {
            key: "a".into(),
            value: "b c".into(),
            no_delim: true
        }]
    );
    let Instruction::Env(env) = one("ENV a=1 b=\"2 3\"") else {
        panic!()
    };
    assert_eq!(
        env[1],
        KeyValue {
            key: "b".into(),
            value: "\"2 3\"".into(),
            no_delim: false
        }
    );
    let Instruction::Label(l) = one("LABEL \"x y\"=z") else {
        panic!()
    };
    assert_eq!(l[0].key, "\"x y\"");
    let Instruction::Arg(arg) = one("ARG a b=2 c=") else {
        panic!()
    };
    let pairs: Vec<_> = arg
        .args
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_deref()))
        .collect();
    assert_eq!(pairs, [("a", None), ("b", Some("2")), ("c", Some(""))]);
}

#[test]
fn cmd_entrypoint_shell_volume_expose_user_workdir_stopsignal() {
    let Instruction::Cmd(c) = one("CMD echo hi") else {
        panic!()
    };
    assert_eq!(
        (c.args.as_slice(), c.prepend_shell),
        (&["echo hi".to_string()][..], true)
    );
    let Instruction::Entrypoint(e) = one("ENTRYPOINT []") else {
        panic!()
    };
    assert!(e.is_null && e.args.is_empty());
    let Instruction::Shell(s) = one("SHELL [\"/bin/bash\", \"-c\"]") else {
        panic!()
    };
    assert_eq!(s, ["/bin/bash", "-c"]);
    assert_eq!(
        one("VOLUME /a /b"),
        Instruction::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("VOLUME [\"/a\"]"),
        Instruction::Volume(vec!["/a".into()])
    );
    assert_eq!(
        one("EXPOSE 8080 80/udp 443"),
        Instruction::Expose(vec!["443".into(), "80/udp".into(), "8080".into()])
    );
    assert_eq!(one("USER app:app"), Instruction::User("app:app".into()));
    assert_eq!(one("WORKDIR /a b"), Instruction::Workdir("/a b".into()));
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Instruction::StopSignal("SIGKILL".into())
    );
    assert_eq!(
        one("MAINTAINER me <m@e>"),
        Instruction::Maintainer("me <m@e>".into())
    );
}

#[test]
fn healthcheck_durations_and_forms() {
    let Instruction::Healthcheck(h) = one("HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://x/") else { panic!() };
    assert_eq!(h.test, ["CMD-SHELL", "curl -f http://x/"]);
    assert_eq!(
        (
            h.interval,
            h.timeout,
            h.start_period,
            h.start_interval,
            h.retries
        ),
        (
            5_000_000_000,
            3_000_000_000,
            60_000_000_000,
            2_000_000_000,
            3
        )
    );
    let Instruction::Healthcheck(h) = one("HEALTHCHECK cmd [\"a\", \"b\"]") else {
        panic!()
    };
    assert_eq!(h.test, ["CMD", "a", "b"]);
    let Instruction::Healthcheck(h) = one("HEALTHCHECK --bogus NONE") else {
        panic!()
    };
    assert_eq!(h.test, ["NONE"]);
}

#[test]
fn onbuild_stores_trigger_expression() {
    let Instruction::Onbuild(o) = one("  onbuild   RUN echo hi") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN echo hi");
    let df = parse("FROM a\nONBUILD COPY <<EOF /x\nbody\nEOF\n").unwrap();
    let Instruction::Onbuild(o) = parse_instruction(&df.children[1]).unwrap().instruction else {
        panic!()
    };
    assert_eq!(o.expression, "COPY <<EOF /x\nbody\nEOF");
}

#[test]
fn expansion_follows_buildkit_per_instruction() {
    let env = env_from_pairs(["A=1", "P=80 443", "DIR=/srv", "T=cache"]);
    let ex = Expander::new('\\', &env);
    let cases = [
        (
            "ENV X=$A",
            Instruction::Env(vec![KeyValue {
                key: "X".into(),
                value: "1".into(),
                no_delim: false,
            }]),
        ),
        ("WORKDIR $DIR/app", Instruction::Workdir("/srv/app".into())),
        ("USER ${A}:${B:-2}", Instruction::User("1:2".into())),
        (
            "EXPOSE $P",
            Instruction::Expose(vec!["80".into(), "443".into()]),
        ),
        ("VOLUME $DIR", Instruction::Volume(vec!["/srv".into()])),
        ("STOPSIGNAL SIG$A", Instruction::StopSignal("SIG1".into())),
        ("CMD echo $A", one("CMD echo $A")),
        ("MAINTAINER $A", Instruction::Maintainer("$A".into())),
    ];
    for (line, want) in cases {
        let mut got = one(line);
        expand_instruction(&mut got, &ex).unwrap();
        assert_eq!(got, want, "{line}");
    }
    let mut run = one("RUN --mount=type=$T,target=$DIR x");
    let Instruction::Run(r) = &run else { panic!() };
    assert!(!r.mounts_resolved);
    expand_instruction(&mut run, &ex).unwrap();
    let Instruction::Run(r) = run else { panic!() };
    assert_eq!(
        (r.mounts[0].mount_type, r.mounts[0].target.as_str()),
        (MountType::Cache, "/srv")
    );
    let mut copy = one("COPY --from=${A} a b");
    assert_eq!(
        expand_instruction(&mut copy, &ex).unwrap_err(),
        ExpandError::CopyFrom
    );
    let df = parse("FROM a\nCOPY <<EOF <<'RAW' $DIR\n$A \"q\"\nEOF\n$A\nRAW\n").unwrap();
    let mut copy = parse_instruction(&df.children[1]).unwrap().instruction;
    expand_instruction(&mut copy, &ex).unwrap();
    let Instruction::Copy(c) = copy else { panic!() };
    assert_eq!(c.files.dest, "/srv");
    assert_eq!(c.files.contents[0].data, "1 \"q\"\n");
    assert_eq!(c.files.contents[1].data, "$A\n");
    assert!(expands_variables("WORKDIR") && !expands_variables("cmd"));
    assert!(ex.matched().contains("DIR") && ex.matched().contains("A"));
    assert!(ex.unmatched().contains("B"));
}

#[test]
fn every_buildkit_testfile_has_typed_instructions() {
    // The positive fixtures hold deliberately odd instructions (HEALTHCHECK CONNECT, a bare
    // HEALTHCHECK); count how many parse fully so regressions show.
    let root = crate::test_fixtures::fixture_path("testfiles");
    let mut total = 0;
    let mut typed = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let entry_path = entry.unwrap().path();
        let path = entry_path.join("Dockerfile");
        let df = crate::parse_bytes(&std::fs::read(path).unwrap()).unwrap();
        total += 1;
        match parse_stages(&df) {
            Ok(_) => typed += 1,
            Err(e) => println!("  {}: {e}", path_name(&entry_path)),
        }
    }
    println!("testfiles typed: {typed} of {total}");
    assert!(typed * 10 >= total * 7, "only {typed} of {total}");
}

fn path_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
