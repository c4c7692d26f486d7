//! ADD of a Git repository as BuildKit does it (`util/gitutil` and `source/git`): which
//! sources are Git references (http(s) URLs whose path ends in `.git`, `git://`, `ssh://`
//! and scp-like `user@host:path`; `file://` and plain paths are not), the `#ref:subdir`
//! fragment (and its `##ref=..,subdir=..` form), the ref resolved with `git ls-remote`, a
//! shallow fetch and checkout into a scratch directory, `.git` dropped unless
//! `--keep-git-dir`. It runs the host's `git` as buildkitd does (no user code runs there:
//! hooks do not run on fetch and checkout of a fresh repository). Submodules are not
//! fetched.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildError;

/// A parsed Git source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    /// What `git` fetches from (the URL without its fragment).
    pub remote: String,
    /// Branch, tag or commit; empty for the remote's HEAD.
    pub reference: String,
    /// A directory inside the repository; empty for its root.
    pub subdir: String,
}

const PROTOCOLS: [&str; 4] = ["http", "https", "ssh", "git"];

/// The Git reference `source` names, or `None` when BuildKit would not take it for one
/// (then ADD treats it as an HTTP URL or a context path).
pub fn parse(source: &str) -> Option<GitRef> {
    if source.starts_with("./") || source.starts_with("../") || source.starts_with("github.com/") {
        // `github.com/x/y` is indistinguishable from a local path: BuildKit's ADD copies
        // it from the context.
        return None;
    }
    let (remote, fragment) = match source.split_once('#') {
        Some((r, f)) => (r, f),
        None => (source, ""),
    };
    if let Some((scheme, rest)) = remote.split_once("://") {
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        if !PROTOCOLS.contains(&scheme.as_str()) {
            return None;
        }
        let path = rest
            .split_once('/')
            .map(|(_, p)| p)
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default();
        if scheme.starts_with("http") && !path.ends_with(".git") {
            return None;
        }
    } else if !is_scp_like(remote) {
        return None;
    }
    let (reference, subdir) = split_fragment(fragment)?;
    Some(GitRef {
        remote: remote.to_string(),
        reference,
        subdir,
    })
}

/// `user@host:path` (BuildKit's `sshutil` pattern: a user is required).
fn is_scp_like(remote: &str) -> bool {
    let Some((user, rest)) = remote.split_once('@') else {
        return false;
    };
    let Some((host, _path)) = rest.split_once(':') else {
        return false;
    };
    !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `ref:subdir`, or the CSV form `#ref=..,subdir=..` (a second `#`).
fn split_fragment(fragment: &str) -> Option<(String, String)> {
    if let Some(csv) = fragment.strip_prefix('#') {
        let (mut reference, mut subdir, mut commit) = (String::new(), String::new(), String::new());
        for field in csv.split(',').filter(|f| !f.is_empty()) {
            let (key, value) = field.split_once('=')?;
            match key.to_ascii_lowercase().as_str() {
                "ref" => reference = value.to_string(),
                "subdir" => subdir = value.to_string(),
                "commit" => commit = value.to_string(),
                _ => return None,
            }
        }
        if reference.is_empty() {
            reference = commit;
        }
        return Some((reference, subdir));
    }
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    Some((reference.to_string(), subdir.to_string()))
}

fn is_commit_sha(reference: &str) -> bool {
    (reference.len() == 40 || reference.len() == 64)
        && reference
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The remote without credentials, for messages.
fn redacted(remote: &str) -> String {
    let Some((scheme, rest)) = remote.split_once("://") else {
        return remote.to_string();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            let path = &rest[authority.len()..];
            format!("{scheme}://xxxxx@{host}{path}")
        }
        None => remote.to_string(),
    }
}

/// Runs `git` with no system/user configuration and no prompts; stdout on success.
fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.args(["-c", "advice.detachedHead=false"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", "/nonexistent")
        .stdin(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "failed to find git binary (install git)".to_string(),
        _ => e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "git error: {}\nstderr:\n{}",
            out.status
                .code()
                .map(|c| format!("exit status {c}"))
                .unwrap_or_else(|| "killed".into()),
            stderr.trim_end()
        ))
    }
}

/// A checked-out repository: the tree ADD copies and the commit it came from.
#[derive(Debug)]
pub struct Checkout {
    pub tree: PathBuf,
    pub commit: String,
}

/// Fetches `git_ref` into `dir/repo` and returns the tree ADD copies (the subdirectory when
/// one is named); `.git` is removed unless `keep_git_dir`.
pub fn checkout(git_ref: &GitRef, keep_git_dir: bool, dir: &Path) -> Result<Checkout, BuildError> {
    let remote = git_ref.remote.as_str();
    let fetch_failed =
        |e: String| BuildError::Copy(format!("failed to fetch remote {}: {e}", redacted(remote)));
    let reference = if git_ref.reference.is_empty() {
        "HEAD"
    } else {
        git_ref.reference.as_str()
    };
    if !is_commit_sha(reference) {
        let listed = git(None, &["ls-remote", remote, reference]).map_err(fetch_failed)?;
        if !listed.contains('\t') {
            return Err(BuildError::Copy(format!(
                "repository does not contain ref {reference}, output: {listed:?}"
            )));
        }
    }
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).map_err(|source| BuildError::Io {
        op: format!("creating {}", repo.display()),
        source,
    })?;
    git(
        Some(&repo),
        &["-c", "init.defaultBranch=master", "init", "-q"],
    )
    .map_err(fetch_failed)?;
    let mut fetch = vec!["fetch", "-q", "--no-tags"];
    if !is_commit_sha(reference) {
        fetch.push("--depth=1");
    }
    fetch.extend([remote, reference]);
    git(Some(&repo), &fetch).map_err(fetch_failed)?;
    git(Some(&repo), &["checkout", "-q", "FETCH_HEAD"]).map_err(|e| {
        BuildError::Copy(format!(
            "failed to checkout remote {}: {e}",
            redacted(remote)
        ))
    })?;
    let commit = git(Some(&repo), &["rev-parse", "HEAD"])
        .map_err(fetch_failed)?
        .trim()
        .to_string();
    let subdir = crate::context::clean(&git_ref.subdir);
    if subdir.split('/').any(|c| c == "..") {
        return Err(BuildError::Copy(format!(
            "invalid subdirectory {:?} of {}",
            git_ref.subdir,
            redacted(remote)
        )));
    }
    if !keep_git_dir || !subdir.is_empty() {
        let _ = std::fs::remove_dir_all(repo.join(".git"));
    } else {
        // What the image keeps: the remote without credentials, no reflog.
        let _ = git(Some(&repo), &["remote", "add", "origin", &redacted(remote)]);
    }
    // `/.` so that a symlinked subdirectory resolves inside the checkout too.
    let tree = crate::copy::resolve_in_root(&repo, &format!("{subdir}/."));
    if !tree.is_dir() {
        return Err(BuildError::Copy(format!(
            "lstat {}: no such file or directory in {}",
            git_ref.subdir,
            redacted(remote)
        )));
    }
    Ok(Checkout { tree, commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_references_are_what_buildkit_takes_for_them() {
        // (source, Some((remote, ref, subdir)) when it is a Git reference)
        type Case<'a> = (&'a str, Option<(&'a str, &'a str, &'a str)>);
        let cases: &[Case] = &[
            (
                "https://github.com/moby/moby.git#v1.0:docs",
                Some(("https://github.com/moby/moby.git", "v1.0", "docs")),
            ),
            (
                "http://127.0.0.1:8080/r.git",
                Some(("http://127.0.0.1:8080/r.git", "", "")),
            ),
            (
                "git@github.com:moby/moby.git#main",
                Some(("git@github.com:moby/moby.git", "main", "")),
            ),
            (
                "git://host/repo#dev:a/b",
                Some(("git://host/repo", "dev", "a/b")),
            ),
            (
                "ssh://git@host/repo.git##ref=v2,subdir=sub",
                Some(("ssh://git@host/repo.git", "v2", "sub")),
            ),
            ("https://example.com/file.tar.gz", None),
            ("https://example.com/repo.git/file", None),
            ("file:///srv/repo.git", None),
            ("github.com/moby/moby", None),
            ("./repo.git", None),
            ("src/app.git", None),
            ("user@host", None),
        ];
        for (source, want) in cases {
            let got = parse(source);
            let want = want.map(|(r, f, s)| GitRef {
                remote: r.into(),
                reference: f.into(),
                subdir: s.into(),
            });
            assert_eq!(got, want, "{source}");
        }
    }

    #[test]
    fn credentials_are_redacted_from_messages() {
        assert_eq!(
            redacted("https://user:token@host/r.git"),
            "https://xxxxx@host/r.git"
        );
        assert_eq!(redacted("https://host/r.git"), "https://host/r.git");
    }

    fn run(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// A repository with a tag `v1` (sub/a = one) and a later `main` (sub/a = two).
    fn repository(root: &Path) -> PathBuf {
        let repo = root.join("src");
        std::fs::create_dir_all(repo.join("sub")).expect("mkdir");
        run(&repo, &["init", "-q", "-b", "main"]);
        let commit = |text: &str| {
            std::fs::write(repo.join("sub/a"), text).expect("write");
            std::fs::write(repo.join("top"), "top\n").expect("write");
            run(&repo, &["add", "."]);
            run(
                &repo,
                &[
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "commit",
                    "-q",
                    "-m",
                    text,
                ],
            );
        };
        commit("one\n");
        run(&repo, &["tag", "v1"]);
        commit("two\n");
        repo
    }

    #[test]
    fn checkout_takes_the_ref_and_subdirectory_and_drops_dot_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = repository(dir.path());
        let remote = repo.display().to_string();
        // Plain paths are what the tests can serve without a network; parse() never yields
        // one, so `file` protocol restrictions do not apply to them here.
        let at_tag = GitRef {
            remote: remote.clone(),
            reference: "v1".into(),
            subdir: "sub".into(),
        };
        let out = dir.path().join("one");
        let got = checkout(&at_tag, false, &out).expect("checkout v1");
        assert_eq!(
            std::fs::read_to_string(got.tree.join("a")).expect("a"),
            "one\n"
        );
        assert!(!out.join("repo/.git").exists());
        assert!(!got.tree.join("top").exists());
        let head = GitRef {
            remote,
            reference: String::new(),
            subdir: String::new(),
        };
        let out = dir.path().join("two");
        let got = checkout(&head, true, &out).expect("checkout HEAD");
        assert_eq!(
            std::fs::read_to_string(got.tree.join("sub/a")).expect("a"),
            "two\n"
        );
        assert!(got.tree.join(".git").is_dir());
        assert_eq!(got.commit.len(), 40);
    }

    #[test]
    fn a_missing_ref_fails_with_buildkits_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = repository(dir.path());
        let missing = GitRef {
            remote: repo.display().to_string(),
            reference: "nope".into(),
            subdir: String::new(),
        };
        let err = checkout(&missing, false, &dir.path().join("x")).expect_err("missing ref");
        assert_eq!(
            err.to_string(),
            "repository does not contain ref nope, output: \"\""
        );
    }
}
