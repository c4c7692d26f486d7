//! The hot command lines (`create`, `run`, `start`, `state`, `kill`, `delete`) parsed
//! without clap, into the same `Cli` clap would build.
//!
//! Why: an engine runs these verbs for every container, and building clap's command tree
//! costs about a quarter of a millisecond and pages in its code on every call. Anything
//! this parser does not know for sure (help, `--`, a repeated or unknown flag, a missing
//! value, non-UTF-8 text, another verb) returns `None`, and clap parses the command line
//! instead, so its errors and help stay exactly as they were. A test checks that both
//! parsers agree on every form this one accepts.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command, CreateArgs};

/// Parses `args` (program name first), or `None` to let clap do it.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Option<Cli> {
    let args: Vec<String> = args
        .into_iter()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect::<Option<_>>()?;
    let mut p = Parser::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if p.global(arg, &mut rest)? {
            continue;
        }
        if arg.starts_with('-') {
            // A flag before the verb that is not global: clap's error to give.
            p.verb?;
            p.flag(arg, &mut rest)?;
        } else if p.verb.is_none() {
            p.verb = Some(arg.as_str());
        } else {
            p.positionals.push(arg.clone());
        }
    }
    p.finish()
}

#[derive(Default)]
struct Parser<'a> {
    verb: Option<&'a str>,
    debug: bool,
    log: Option<PathBuf>,
    log_format: Option<String>,
    root: Option<PathBuf>,
    criu: Option<String>,
    systemd_cgroup: bool,
    /// Flags of the subcommand, by their long name, each at most once (as clap).
    flags: Vec<(&'static str, Option<String>)>,
    positionals: Vec<String>,
}

/// `--name value` or `--name=value` (long) / `-x value` (short); `None`: not this flag.
/// `Some(None)`: this flag, but its value is missing.
fn value_of<'a>(
    arg: &str,
    long: &str,
    short: Option<char>,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Option<Option<String>> {
    let is_short =
        short.is_some_and(|c| arg.len() == 2 && arg.strip_prefix('-') == Some(&c.to_string()));
    let Some(name) = arg.strip_prefix("--") else {
        return is_short.then(|| rest.next().filter(|v| usable(v)).cloned());
    };
    if name == long {
        return Some(rest.next().filter(|v| usable(v)).cloned());
    }
    let (n, v) = name.split_once('=')?;
    (n == long).then(|| Some(v.to_string()).filter(|v| usable(v)))
}

/// A value clap would take as such: not empty and not another flag.
fn usable(v: &str) -> bool {
    !v.is_empty() && !v.starts_with('-')
}

fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

fn set_bool(slot: &mut bool) -> Option<()> {
    if *slot {
        return None;
    }
    *slot = true;
    Some(())
}

impl<'a> Parser<'a> {
    /// A global flag (allowed before or after the verb): `Some(true)` when consumed.
    fn global(&mut self, arg: &str, rest: &mut impl Iterator<Item = &'a String>) -> Option<bool> {
        match arg {
            "--debug" => return set_bool(&mut self.debug).map(|()| true),
            "--systemd-cgroup" => return set_bool(&mut self.systemd_cgroup).map(|()| true),
            _ => {}
        }
        if let Some(v) = value_of(arg, "root", None, rest) {
            set(&mut self.root, PathBuf::from(v?))?;
        } else if let Some(v) = value_of(arg, "log", None, rest) {
            set(&mut self.log, PathBuf::from(v?))?;
        } else if let Some(v) = value_of(arg, "log-format", None, rest) {
            set(&mut self.log_format, v?)?;
        } else if let Some(v) = value_of(arg, "criu", None, rest) {
            set(&mut self.criu, v?)?;
        } else {
            return Some(false);
        }
        Some(true)
    }

    /// A flag of the subcommand.
    fn flag(&mut self, arg: &str, rest: &mut impl Iterator<Item = &'a String>) -> Option<()> {
        const CREATE_VALUES: [(&str, Option<char>); 4] = [
            ("bundle", Some('b')),
            ("console-socket", None),
            ("pid-file", None),
            ("preserve-fds", None),
        ];
        const CREATE_SWITCHES: [(&str, Option<char>); 2] =
            [("no-pivot", None), ("no-new-keyring", None)];
        const RUN_SWITCHES: [(&str, Option<char>); 3] = [
            ("detach", Some('d')),
            ("keep", None),
            ("no-subreaper", None),
        ];
        let (values, switches): (&[_], Vec<_>) = match self.verb? {
            "create" => (&CREATE_VALUES, CREATE_SWITCHES.to_vec()),
            "run" => (
                &CREATE_VALUES,
                CREATE_SWITCHES
                    .iter()
                    .chain(&RUN_SWITCHES)
                    .copied()
                    .collect(),
            ),
            "delete" => (&[], vec![("force", Some('f'))]),
            "kill" => (&[], vec![("all", Some('a'))]),
            _ => return None,
        };
        for &(long, short) in values {
            if let Some(v) = value_of(arg, long, short, rest) {
                return self.record(long, Some(v?));
            }
        }
        for &(long, short) in &switches {
            let is_short = short.is_some_and(|c| arg == format!("-{c}"));
            if is_short || arg.strip_prefix("--") == Some(long) {
                return self.record(long, None);
            }
        }
        None
    }

    fn record(&mut self, long: &'static str, value: Option<String>) -> Option<()> {
        if self.flags.iter().any(|(n, _)| *n == long) {
            return None;
        }
        self.flags.push((long, value));
        Some(())
    }

    fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|(n, _)| *n == long)
    }

    fn value(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(n, _)| *n == long)
            .and_then(|(_, v)| v.as_deref())
    }

    fn create_args(&self, id: String) -> Option<CreateArgs> {
        let preserve_fds = match self.value("preserve-fds") {
            Some(v) => v.parse().ok()?,
            None => 0,
        };
        Some(CreateArgs {
            bundle: PathBuf::from(self.value("bundle").unwrap_or(".")),
            console_socket: self.value("console-socket").map(PathBuf::from),
            pid_file: self.value("pid-file").map(PathBuf::from),
            no_pivot: self.has("no-pivot"),
            no_new_keyring: self.has("no-new-keyring"),
            preserve_fds,
            id,
        })
    }

    fn finish(mut self) -> Option<Cli> {
        let verb = self.verb?;
        let mut positionals = std::mem::take(&mut self.positionals).into_iter();
        let id = positionals.next()?;
        let command = match verb {
            "create" => Command::Create(self.create_args(id)?),
            "run" => Command::Run {
                create: self.create_args(id)?,
                detach: self.has("detach"),
                keep: self.has("keep"),
                no_subreaper: self.has("no-subreaper"),
            },
            "start" => Command::Start { id },
            "state" => Command::State { id },
            "delete" => Command::Delete {
                force: self.has("force"),
                id,
            },
            "kill" => Command::Kill {
                all: self.has("all"),
                id,
                signal: positionals.next(),
            },
            _ => return None,
        };
        if positionals.next().is_some() {
            return None;
        }
        Some(Cli {
            debug: self.debug,
            log: self.log,
            log_format: self.log_format.unwrap_or_else(|| "text".to_string()),
            root: self
                .root
                .unwrap_or_else(|| PathBuf::from("/run/berth-runtime")),
            criu: self.criu,
            systemd_cgroup: self.systemd_cgroup,
            command,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn os(args: &[&str]) -> Vec<OsString> {
        std::iter::once("berth-runtime")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn hot_verbs_parse_exactly_as_clap_does() {
        let cases: &[&[&str]] = &[
            &["run", "c1"],
            &[
                "--root",
                "/tmp/r",
                "run",
                "-d",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "c1",
            ],
            &[
                "run",
                "--bundle=/b",
                "--keep",
                "--no-subreaper",
                "c1",
                "--debug",
            ],
            &[
                "--log",
                "/l",
                "--log-format",
                "json",
                "create",
                "-b",
                "/b",
                "c1",
            ],
            &[
                "create",
                "--console-socket",
                "/s",
                "--no-pivot",
                "--no-new-keyring",
                "c1",
            ],
            &["create", "--preserve-fds", "3", "--root=/r", "c1"],
            &["--systemd-cgroup", "create", "c1"],
            &["--criu", "criu", "start", "c1"],
            &["state", "c1"],
            &["delete", "-f", "c1"],
            &["delete", "c1", "--force"],
            &["kill", "c1"],
            &["kill", "--all", "c1", "KILL", "--root", "/r"],
            &["kill", "-a", "c1", "9"],
        ];
        for args in cases {
            let fast = parse(os(args)).unwrap_or_else(|| panic!("fast path refused {args:?}"));
            let clap = Cli::try_parse_from(os(args)).expect("clap parses");
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{args:?}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_clap() {
        let cases: &[&[&str]] = &[
            &[],
            &["--help"],
            &["run", "--help"],
            &["run"],
            &["run", "a", "b"],
            &["run", "--bundle"],
            &["run", "--bundle", "--keep", "c1"],
            &["run", "--bundle=", "c1"],
            &["run", "--detach", "-d", "c1"],
            &["--root", "/a", "--root", "/b", "state", "c1"],
            &["run", "--unknown", "c1"],
            &["create", "--preserve-fds", "x", "c1"],
            &["start", "-f", "c1"],
            &["kill", "c1", "KILL", "extra"],
            &["list"],
            &["exec", "c1", "true"],
            &["run", "--", "c1"],
            &["-d", "run", "c1"],
        ];
        for args in cases {
            assert!(parse(os(args)).is_none(), "{args:?} should go to clap");
        }
    }
}
