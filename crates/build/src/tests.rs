//! Builds through the fake worker: stage graph, instruction semantics, history texts,
//! ARG/ENV expansion, cache hits and invalidation, COPY from the context and stages.

use std::collections::BTreeMap;

use crate::fake::FakeWorker;
use crate::output::Collect;
use crate::{build, BuildError, BuildOptions, RunConfig};

pub(crate) struct Fixture {
    pub worker: FakeWorker,
    pub context: tempfile::TempDir,
}

pub(crate) fn fixture() -> Fixture {
    let worker = FakeWorker::new().unwrap();
    let config = RunConfig {
        env: Some(vec!["PATH=/bin".into()]),
        cmd: Some(vec!["sh".into()]),
        ..RunConfig::default()
    };
    worker
        .add_image(
            "busybox",
            config,
            &[
                ("/bin/sh", "sh"),
                (
                    "/etc/passwd",
                    "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
                ),
                ("/etc/group", "root:x:0:\napp:x:1000:\n"),
            ],
        )
        .unwrap();
    Fixture {
        worker,
        context: tempfile::tempdir().unwrap(),
    }
}

impl Fixture {
    pub fn file(&self, path: &str, content: &str) {
        let p = self.context.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn options(&self, dockerfile: &str) -> BuildOptions {
        BuildOptions {
            dockerfile: dockerfile.to_string(),
            dockerfile_name: "Dockerfile".into(),
            context: self.context.path().to_path_buf(),
            tags: vec!["app".into()],
            ..BuildOptions::default()
        }
    }

    pub fn build(
        &self,
        options: &BuildOptions,
    ) -> (Result<crate::BuildResult, BuildError>, String) {
        let out = Collect::default();
        let result = build(&self.worker, options, &out);
        (result, out.text())
    }
}

pub(crate) fn history(worker: &FakeWorker, image: &str) -> Vec<String> {
    worker
        .image(image)
        .unwrap()
        .history
        .into_iter()
        .skip(1)
        .map(|(h, _)| h)
        .collect()
}

#[test]
fn metadata_instructions_write_the_classic_builders_config_and_history() {
    let f = fixture();
    let df = "FROM busybox\nENV A=1 B=\"two words\"\nLABEL k=v\nEXPOSE 80 53/udp\nUSER app\nVOLUME /data\nSTOPSIGNAL SIGTERM\nWORKDIR /srv\nWORKDIR sub\nCMD echo $A\nENTRYPOINT [\"/bin/sh\"]\nHEALTHCHECK --interval=5m --timeout=3s CMD true\nONBUILD RUN echo hi\nMAINTAINER me\n";
    let (result, out) = f.build(&f.options(df));
    let result = result.unwrap();
    let image = f.worker.image(&result.image).unwrap();
    let c = &image.config;
    assert_eq!(
        c.env.clone().unwrap(),
        vec!["PATH=/bin", "A=1", "B=two words"]
    );
    assert_eq!(c.labels.clone().unwrap()["k"], "v");
    let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, vec!["53/udp", "80/tcp"]);
    assert_eq!(c.user, "app");
    assert_eq!(c.working_dir, "/srv/sub");
    assert_eq!(c.stop_signal, "SIGTERM");
    assert_eq!(
        c.cmd.clone().unwrap(),
        vec!["/bin/sh", "-c", "echo $A"],
        "CMD set in the stage survives ENTRYPOINT"
    );
    assert_eq!(c.entrypoint.clone().unwrap(), vec!["/bin/sh"]);
    assert_eq!(c.on_build.clone().unwrap(), vec!["RUN echo hi"]);
    assert_eq!(c.healthcheck.as_ref().unwrap().interval, 300_000_000_000);
    assert_eq!(image.author, "me");
    assert!(image.root.join("srv/sub").is_dir());
    let h = history(&f.worker, &result.image);
    assert_eq!(h[0], "/bin/sh -c #(nop)  ENV A=1 B=two words");
    assert_eq!(h[1], "/bin/sh -c #(nop)  LABEL k=v");
    assert_eq!(h[3], "/bin/sh -c #(nop)  USER app");
    assert_eq!(h[4], "/bin/sh -c #(nop)  VOLUME [/data]");
    assert_eq!(h[6], "/bin/sh -c #(nop) WORKDIR /srv");
    assert_eq!(
        h[8],
        "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"echo $A\"]"
    );
    assert_eq!(h[9], "/bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\"]");
    assert_eq!(
        h[10],
        "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5m0s\" \"3s\" \"0s\" '\\x00'}"
    );
    assert!(out.starts_with("Step 1/14 : FROM busybox\n ---> "));
    assert!(out.contains("Step 14/14 : MAINTAINER me\n"));
    assert_eq!(f.worker.live_layers(), 0);
}

#[test]
fn config_image_field_is_the_parent_of_each_step() {
    let f = fixture();
    let base = f.worker.image("busybox").unwrap().id;
    let (result, _) = f.build(&f.options("FROM busybox\nENV A=1\nENV B=2\n"));
    let last = f.worker.image(&result.unwrap().image).unwrap();
    assert_eq!(f.worker.image(&last.parent).unwrap().config.image, base);
    assert_eq!(last.config.image, last.parent);
}

#[test]
fn run_gets_env_build_args_user_and_workdir_and_history_shows_used_args() {
    let f = fixture();
    let mut options = f.options(
        "FROM busybox\nARG V=default\nARG UNSET\nENV E=1\nUSER app\nWORKDIR /w\nRUN echo $V > /w/out\n",
    );
    options.build_args.insert("V".into(), "given".into());
    let (result, out) = f.build(&options);
    let result = result.unwrap();
    let run = f.worker.runs().pop().unwrap();
    assert_eq!(run.cmd.unwrap(), vec!["/bin/sh", "-c", "echo $V > /w/out"]);
    assert!(run.env.clone().unwrap().contains(&"V=given".to_string()));
    assert!(run.env.unwrap().contains(&"E=1".to_string()));
    assert_eq!((run.user.as_str(), run.working_dir.as_str()), ("app", "/w"));
    let h = history(&f.worker, &result.image);
    assert_eq!(h[0], "/bin/sh -c #(nop)  ARG V=default");
    assert_eq!(h.last().unwrap(), "|1 V=given /bin/sh -c echo $V > /w/out");
    // The build arg is not part of the image's Env.
    let image = f.worker.image(&result.image).unwrap();
    assert!(!image
        .config
        .env
        .unwrap()
        .iter()
        .any(|e| e.starts_with("V=")));
    assert!(out.contains(" ---> Running in "));
    assert!(out.contains("Removing intermediate container "));
}

#[test]
fn failing_run_reports_the_classic_text_and_code_and_leaks_nothing() {
    let f = fixture();
    let (result, _) = f.build(&f.options("FROM busybox\nRUN exit 3\n"));
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    );
    assert_eq!(err.code(), 3);
    assert_eq!(f.worker.live_layers(), 0);
}

#[test]
fn shell_and_exec_forms_of_run_cmd_entrypoint() {
    let f = fixture();
    let (result, _) = f.build(&f.options(
        "FROM busybox\nSHELL [\"/bin/ash\", \"-eo\"]\nRUN echo a\nRUN [\"echo\", \"b\"]\nCMD run me\n",
    ));
    let image = f.worker.image(&result.unwrap().image).unwrap();
    let runs = f.worker.runs();
    assert_eq!(
        runs[0].cmd.clone().unwrap(),
        vec!["/bin/ash", "-eo", "echo a"]
    );
    assert_eq!(runs[1].cmd.clone().unwrap(), vec!["echo", "b"]);
    assert_eq!(image.config.cmd.unwrap(), vec!["/bin/ash", "-eo", "run me"]);
    assert_eq!(image.config.shell.unwrap(), vec!["/bin/ash", "-eo"]);
}

#[test]
fn rebuild_hits_the_cache_and_a_changed_file_invalidates_from_its_copy() {
    let f = fixture();
    f.file("a.txt", "one");
    f.file("b.txt", "bee");
    let df =
        "FROM busybox\nRUN echo x > /x\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nRUN echo y > /y\n";
    let (first, _) = f.build(&f.options(df));
    let first = first.unwrap();
    let runs = f.worker.runs().len();
    let (second, out) = f.build(&f.options(df));
    assert_eq!(second.unwrap().image, first.image);
    assert_eq!(out.matches(" ---> Using cache").count(), 4);
    assert_eq!(f.worker.runs().len(), runs, "no RUN ran again");
    f.file("b.txt", "changed");
    let (third, out) = f.build(&f.options(df));
    let third = third.unwrap();
    assert_ne!(third.image, first.image);
    assert_eq!(out.matches(" ---> Using cache").count(), 2);
    assert_eq!(f.worker.runs().len(), runs + 1);
    let root = f.worker.image(&third.image).unwrap().root;
    assert_eq!(
        std::fs::read_to_string(root.join("b.txt")).unwrap(),
        "changed"
    );
    let mut no_cache = f.options(df);
    no_cache.no_cache = true;
    let (_, out) = f.build(&no_cache);
    assert!(!out.contains("Using cache"));
}

#[test]
fn a_changed_build_arg_invalidates_only_the_runs_that_use_it() {
    let f = fixture();
    let df = "FROM busybox\nARG V\nRUN echo fixed\nRUN echo $V\n";
    let mut options = f.options(df);
    options.build_args.insert("V".into(), "1".into());
    f.build(&options).0.unwrap();
    options.build_args.insert("V".into(), "2".into());
    let (_, out) = f.build(&options);
    // ARG and the first RUN carry `|1 V=2` too (Docker puts every set arg in the RUN's
    // history), so only the ARG step itself is cached.
    assert_eq!(out.matches("Using cache").count(), 1);
}

#[test]
fn multi_stage_builds_only_needed_stages_and_copies_from_them() {
    let f = fixture();
    f.file("src/main.c", "int main;");
    let df = "FROM busybox AS build\nCOPY src /src\nRUN echo built > /out\n\nFROM busybox AS unused\nRUN echo never\n\nFROM scratch\nCOPY --from=build /out /src/main.c /app/\n";
    let (result, out) = f.build(&f.options(df));
    let result = result.unwrap();
    assert!(!out.contains("echo never"), "{out}");
    assert!(out.contains("Step 1/5 : FROM busybox AS build"));
    assert!(out.contains("Step 4/5 : FROM scratch"));
    let root = f.worker.image(&result.image).unwrap().root;
    assert_eq!(
        std::fs::read_to_string(root.join("app/out")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("app/main.c")).unwrap(),
        "int main;"
    );
    let mut target = f.options(df);
    target.target = "unused".into();
    let (_, out) = f.build(&target);
    assert!(out.contains("echo never") && !out.contains("COPY src"));
}

#[test]
fn independent_stages_output_stays_in_dockerfile_order() {
    let f = fixture();
    let df = "FROM busybox AS a\nRUN echo from-a\nFROM busybox AS b\nRUN echo from-b\nFROM busybox\nCOPY --from=a /bin/sh /a\nCOPY --from=b /bin/sh /b\n";
    let (result, out) = f.build(&f.options(df));
    result.unwrap();
    let a = out.find("from-a").unwrap();
    let b = out.find("Step 3/7 : FROM busybox AS b").unwrap();
    let c = out.find("Step 5/7").unwrap();
    assert!(a < b && b < c, "{out}");
}

#[test]
fn a_stage_runs_its_steps_before_a_copy_from_waits_for_the_stage_it_reads() {
    let f = fixture();
    // Stage a finishes only after the final stage's first RUN has run: with whole-stage
    // dependencies the final stage would not start before a, and a's await would time out.
    let df = "FROM busybox AS a\nRUN await final-started && echo a > /a\nFROM busybox\nRUN signal final-started\nCOPY --from=a /a /a\n";
    let (result, out) = f.build(&f.options(df));
    let root = f.worker.image(&result.unwrap().image).unwrap().root;
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "a\n");
    let a = out.find("Step 2/5 : RUN await").unwrap();
    let last = out.find("Step 4/5 : RUN signal").unwrap();
    assert!(a < last, "{out}");
}

#[test]
fn a_failing_stage_fails_the_build_with_its_error_while_another_waits_for_it() {
    let f = fixture();
    let df = "FROM busybox AS a\nRUN await final-started && exit 4\nFROM busybox\nRUN signal final-started\nCOPY --from=a /a /a\nRUN echo never\n";
    let (result, out) = f.build(&f.options(df));
    let err = result.unwrap_err();
    assert_eq!(err.code(), 4, "{err}");
    assert!(!out.contains("Step 5/6"), "{out}");
    assert_eq!(f.worker.live_layers(), 0);
}

#[test]
fn copy_chown_wildcards_and_multi_source_rules() {
    let f = fixture();
    f.file("x1.txt", "1");
    f.file("x2.txt", "2");
    let (err, _) = f.build(&f.options("FROM busybox\nCOPY x*.txt /dst\n"));
    assert_eq!(
        err.unwrap_err().to_string(),
        "COPY failed: When using COPY with more than one source file, the destination must be a directory and end with a /"
    );
    let (result, _) = f.build(
        &f.options("FROM busybox\nWORKDIR /w\nCOPY --chown=app:app --chmod=600 x*.txt ./\n"),
    );
    let image = f.worker.image(&result.unwrap().image).unwrap();
    let copied = image.root.join("w/x2.txt");
    assert_eq!(crate::copy::owner(&copied), Some((1000, 1000)));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&copied).unwrap().mode() & 0o777, 0o600);
    let h = image.history.last().unwrap().0.clone();
    assert!(
        h.starts_with("/bin/sh -c #(nop) COPY --chown=app:appmulti:"),
        "{h}"
    );
    assert!(h.ends_with(" in ./ "));
    let (missing, _) = f.build(&f.options("FROM busybox\nCOPY nope /\n"));
    assert_eq!(
        missing.unwrap_err().to_string(),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist"
    );
}

#[test]
fn add_of_an_unreachable_git_url_fails_and_onbuild_triggers_run_in_children() {
    let f = fixture();
    let (err, _) = f.build(&f.options("FROM busybox\nADD http://127.0.0.1:1/x.git#main /x\n"));
    let text = err.unwrap_err().to_string();
    assert!(
        text.starts_with("ADD failed: failed to fetch remote http://127.0.0.1:1/x.git: git error: exit status 128"),
        "{text}"
    );
    assert_eq!(f.worker.live_layers(), 0);
    let mut parent = f.options("FROM busybox\nONBUILD RUN echo triggered > /t\n");
    parent.tags = vec!["parent".into()];
    f.build(&parent).0.unwrap();
    let (child, out) = f.build(&f.options("FROM parent\nENV X=1\n"));
    let child = f.worker.image(&child.unwrap().image).unwrap();
    assert!(out.contains("# Executing 1 build trigger\n"));
    assert_eq!(
        std::fs::read_to_string(child.root.join("t")).unwrap(),
        "triggered\n"
    );
    assert_eq!(child.config.on_build, Some(vec![]));
}

#[test]
fn global_args_expand_from_and_labels_are_appended() {
    let f = fixture();
    let mut options = f.options("ARG BASE=busybox\nFROM $BASE\n");
    options.labels = BTreeMap::from([("team".to_string(), "db".to_string())]);
    options.build_args.insert("NOPE".into(), "x".into());
    let (result, out) = f.build(&options);
    let image = f.worker.image(&result.unwrap().image).unwrap();
    assert_eq!(image.config.labels.unwrap()["team"], "db");
    assert!(
        out.starts_with("Step 1/3 : ARG BASE=busybox\nStep 2/3 : FROM $BASE\n"),
        "{out}"
    );
    assert!(out.contains("Step 3/3 : LABEL \"team\"='db'"));
    assert!(out.contains("[Warning] One or more build-args [NOPE] were not consumed"));
}

#[test]
fn parse_errors_carry_the_line() {
    let f = fixture();
    let (err, _) = f.build(&f.options("FROM busybox\nRUN true\nFOO bar\n"));
    let text = err.unwrap_err().to_string();
    assert!(
        text.contains("line 3") && text.contains("unknown instruction: FOO"),
        "{text}"
    );
    let (err, _) = f.build(&f.options("FROM busybox\n"));
    assert!(err.is_ok());
    let mut t = f.options("FROM busybox AS a\n");
    t.target = "b".into();
    assert!(matches!(f.build(&t).0.unwrap_err(), BuildError::Target(_)));
}

#[test]
fn squash_merges_the_target_onto_its_stages_base_and_tags_the_merged_image() {
    let f = fixture();
    let base = f.worker.image("busybox").unwrap().id;
    let df = "FROM busybox AS first\nRUN echo x > /x\nFROM busybox\nCOPY --from=first /x /x\nENV A=1\nRUN echo y > /y\n";
    let mut options = f.options(df);
    options.squash = true;
    let (result, _) = f.build(&options);
    let result = result.unwrap();
    let squashes = f.worker.squashes();
    assert_eq!(squashes.len(), 1);
    let (unsquashed, onto) = &squashes[0];
    assert_eq!(onto, &base, "the final stage's FROM image");
    assert_ne!(&result.image, unsquashed);
    assert_eq!(f.worker.image("app").unwrap().id, result.image, "tagged");
    let top = f.worker.image(unsquashed).unwrap();
    let squashed = f.worker.image(&result.image).unwrap();
    assert_eq!(squashed.config, top.config, "the config is kept");
    let flags: Vec<bool> = squashed.history.iter().map(|(_, e)| *e).collect();
    assert_eq!(flags, [false, true, true, true, false]);
    assert_eq!(
        squashed.history.last().unwrap().0,
        format!("merge {unsquashed} to {base}")
    );
    assert!(squashed.root.join("x").is_file() && squashed.root.join("y").is_file());
    assert_eq!(f.worker.live_layers(), 0);
}

#[test]
fn squash_of_a_scratch_stage_creates_a_new_image_and_without_squash_nothing_merges() {
    let f = fixture();
    f.file("a.txt", "a");
    let mut options = f.options("FROM scratch\nCOPY a.txt /\n");
    options.squash = true;
    let (result, _) = f.build(&options);
    let result = result.unwrap();
    let (unsquashed, onto) = f.worker.squashes().pop().unwrap();
    assert_eq!(onto, "");
    let squashed = f.worker.image(&result.image).unwrap();
    assert_eq!(
        squashed.history.last().unwrap().0,
        format!("create new from {unsquashed}")
    );
    let (plain, _) = f.build(&f.options("FROM busybox\nENV B=2\n"));
    plain.unwrap();
    assert_eq!(f.worker.squashes().len(), 1);
}

#[test]
fn cached_copy_from_a_stage_mounts_no_image_and_a_changed_stage_copies_again() {
    let f = fixture();
    f.file("src/a", "one");
    let df = "FROM busybox AS a\nCOPY src /src\n\nFROM busybox\nCOPY --from=a /src /app/\n";
    let first = f.build(&f.options(df)).0.unwrap();
    let mounted = f.worker.images_mounted();
    assert_eq!(
        mounted, 1,
        "the first build hashes and copies from one mount"
    );
    let (second, out) = f.build(&f.options(df));
    assert_eq!(second.unwrap().image, first.image);
    assert_eq!(out.matches(" ---> Using cache").count(), 2, "{out}");
    assert_eq!(
        f.worker.images_mounted(),
        mounted,
        "the memo spared the mount"
    );
    f.file("src/a", "two");
    let third = f.build(&f.options(df)).0.unwrap();
    assert_ne!(third.image, first.image);
    let root = f.worker.image(&third.image).unwrap().root;
    assert_eq!(std::fs::read_to_string(root.join("app/a")).unwrap(), "two");
    assert_eq!(f.worker.live_layers(), 0);
}

#[test]
fn a_tar_context_is_copied_from_memory_and_extracted_only_for_a_bind_mount() {
    let f = fixture();
    f.file("a.txt", "from the tar");
    f.file("Dockerfile", "unused");
    // Headers as the docker CLI writes them: permission bits only (tar's own builder
    // would keep st_mode's file-type bits, which are part of dockerd's digest).
    let mut builder = tar::Builder::new(Vec::new());
    for name in ["a.txt", "Dockerfile"] {
        let path = f.context.path().join(name);
        let mut header = tar::Header::new_gnu();
        header.set_metadata(&std::fs::metadata(&path).unwrap());
        header.set_mode(header.mode().unwrap() & 0o7777);
        header.set_cksum();
        let data = std::fs::read(&path).unwrap();
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    let tar = crate::context_tar::ContextTar::new(builder.into_inner().unwrap())
        .unwrap()
        .unwrap();
    let tar = std::sync::Arc::new(tar);
    let df = "FROM busybox\nCOPY a.txt /a.txt\n";
    let from_dir = f.build(&f.options(df)).0.unwrap();
    let options = |dir: &tempfile::TempDir| BuildOptions {
        context: dir.path().to_path_buf(),
        context_tar: Some(tar.clone()),
        ..f.options(df)
    };
    let cached_dir = tempfile::tempdir().unwrap();
    let (cached, out) = f.build(&options(&cached_dir));
    assert_eq!(
        cached.unwrap().image,
        from_dir.image,
        "same cache key: {out}"
    );
    assert!(std::fs::read_dir(cached_dir.path())
        .unwrap()
        .next()
        .is_none());
    let mut no_cache = options(&cached_dir);
    no_cache.no_cache = true;
    let fresh = f.build(&no_cache).0.unwrap();
    let root = f.worker.image(&fresh.image).unwrap().root;
    assert_eq!(
        std::fs::read_to_string(root.join("a.txt")).unwrap(),
        "from the tar"
    );
    assert!(
        std::fs::read_dir(cached_dir.path())
            .unwrap()
            .next()
            .is_none(),
        "a COPY that misses the cache writes the layer from the tar's bytes"
    );
    let bind = BuildOptions {
        dockerfile: "FROM busybox\nRUN --mount=type=bind,source=a.txt,target=/d cat /d\n".into(),
        ..options(&cached_dir)
    };
    let (run, out) = f.build(&bind);
    run.unwrap();
    assert!(out.contains("from the tar"), "{out}");
    assert!(cached_dir.path().join("a.txt").is_file());
}
