//! POSIX resource limits of the container process (`process.rlimits`): spec names to
//! RLIMIT_* resources, duplicate detection, setrlimit with errors a person can act on.

use std::io;

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("rlimit {name} is listed more than once (runtime-spec: each type at most once)")]
    Duplicate { name: &'static str },
    #[error("rlimit {name}: soft limit {soft} is above hard limit {hard}")]
    SoftAboveHard {
        name: &'static str,
        soft: u64,
        hard: u64,
    },
    #[error(
        "set rlimit {name} to soft {soft}, hard {hard}: not permitted (raising a hard limit \
         above the current one ({current_hard}) needs CAP_SYS_RESOURCE; lower the limit in \
         config.json)"
    )]
    RaiseHard {
        name: &'static str,
        soft: u64,
        hard: u64,
        current_hard: String,
        #[source]
        source: io::Error,
    },
    #[error("set rlimit {name} to soft {soft}, hard {hard}")]
    Set {
        name: &'static str,
        soft: u64,
        hard: u64,
        #[source]
        source: io::Error,
    },
}

/// The spec name of a limit type and the kernel resource it sets.
pub fn resource(t: PosixRlimitType) -> (&'static str, libc::__rlimit_resource_t) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => ("RLIMIT_CPU", libc::RLIMIT_CPU),
        RlimitFsize => ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        RlimitData => ("RLIMIT_DATA", libc::RLIMIT_DATA),
        RlimitStack => ("RLIMIT_STACK", libc::RLIMIT_STACK),
        RlimitCore => ("RLIMIT_CORE", libc::RLIMIT_CORE),
        RlimitRss => ("RLIMIT_RSS", libc::RLIMIT_RSS),
        RlimitNproc => ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        RlimitNofile => ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        RlimitMemlock => ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        RlimitAs => ("RLIMIT_AS", libc::RLIMIT_AS),
        RlimitLocks => ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        RlimitSigpending => ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        RlimitMsgqueue => ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        RlimitNice => ("RLIMIT_NICE", libc::RLIMIT_NICE),
        RlimitRtprio => ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        RlimitRttime => ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    }
}

/// Checks the list without touching the process: no type twice (runtime-spec), soft not
/// above hard. The parent calls this before forking so the error is readable.
pub fn validate(r: &[PosixRlimit]) -> Result<(), RlimitError> {
    for (i, limit) in r.iter().enumerate() {
        let (name, _) = resource(limit.typ());
        if r[..i].iter().any(|earlier| earlier.typ() == limit.typ()) {
            return Err(RlimitError::Duplicate { name });
        }
        if limit.soft() > limit.hard() {
            return Err(RlimitError::SoftAboveHard {
                name,
                soft: limit.soft(),
                hard: limit.hard(),
            });
        }
    }
    Ok(())
}

fn current_hard(resource: libc::__rlimit_resource_t) -> String {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct through a valid pointer.
    if unsafe { libc::getrlimit(resource, &mut old) } != 0 {
        return "unknown".to_string();
    }
    if old.rlim_max == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        old.rlim_max.to_string()
    }
}

/// Sets each limit in order (after [`validate`]); a refusal names the limit and, for EPERM,
/// says that only CAP_SYS_RESOURCE may raise a hard limit.
pub fn apply(r: &[PosixRlimit]) -> Result<(), RlimitError> {
    validate(r)?;
    for limit in r {
        let (name, resource) = resource(limit.typ());
        let (soft, hard) = (limit.soft(), limit.hard());
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads one rlimit struct through a valid pointer.
        if unsafe { libc::setrlimit(resource, &new) } == 0 {
            continue;
        }
        let source = io::Error::last_os_error();
        return Err(if source.raw_os_error() == Some(libc::EPERM) {
            RlimitError::RaiseHard {
                name,
                soft,
                hard,
                current_hard: current_hard(resource),
                source,
            }
        } else {
            RlimitError::Set {
                name,
                soft,
                hard,
                source,
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::PosixRlimitBuilder;

    fn limit(t: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(t)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap()
    }

    #[test]
    fn every_spec_rlimit_name_parses_and_maps_to_its_resource() {
        let table = [
            ("RLIMIT_CPU", libc::RLIMIT_CPU),
            ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
            ("RLIMIT_DATA", libc::RLIMIT_DATA),
            ("RLIMIT_STACK", libc::RLIMIT_STACK),
            ("RLIMIT_CORE", libc::RLIMIT_CORE),
            ("RLIMIT_RSS", libc::RLIMIT_RSS),
            ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
            ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
            ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
            ("RLIMIT_AS", libc::RLIMIT_AS),
            ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
            ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
            ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
            ("RLIMIT_NICE", libc::RLIMIT_NICE),
            ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
            ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        ];
        for (spec_name, res) in table {
            let json = serde_json::json!({"type": spec_name, "soft": 1, "hard": 2});
            let parsed: PosixRlimit = serde_json::from_value(json).unwrap();
            assert_eq!(resource(parsed.typ()), (spec_name, res));
        }
    }

    #[test]
    fn unknown_rlimit_name_is_refused_by_the_parser() {
        let json = serde_json::json!({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 2});
        let err = serde_json::from_value::<PosixRlimit>(json).unwrap_err();
        assert!(err.to_string().contains("RLIMIT_BOGUS"), "{err}");
    }

    #[test]
    fn duplicate_rlimit_type_is_an_error_naming_it() {
        let r = [
            limit(PosixRlimitType::RlimitNofile, 10, 10),
            limit(PosixRlimitType::RlimitCore, 0, 0),
            limit(PosixRlimitType::RlimitNofile, 20, 20),
        ];
        let err = validate(&r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rlimit RLIMIT_NOFILE is listed more than once (runtime-spec: each type at most once)"
        );
        assert!(apply(&r).is_err());
    }

    #[test]
    fn soft_above_hard_is_an_error() {
        let err = validate(&[limit(PosixRlimitType::RlimitCore, 5, 4)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rlimit RLIMIT_CORE: soft limit 5 is above hard limit 4"
        );
    }

    fn fork_and_wait(child: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only calls getrlimit/setrlimit/capset and _exits; glibc's fork
        // keeps malloc usable in the child.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = child();
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        libc::WEXITSTATUS(status)
    }

    #[test]
    fn apply_sets_the_limits_in_a_forked_child() {
        let code = fork_and_wait(|| {
            if apply(&[limit(PosixRlimitType::RlimitCore, 0, 0)]).is_err() {
                return 2;
            }
            let mut now = libc::rlimit {
                rlim_cur: 9,
                rlim_max: 9,
            };
            // SAFETY: getrlimit writes one struct through a valid pointer.
            unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut now) };
            i32::from(now.rlim_cur != 0 || now.rlim_max != 0)
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn raising_the_hard_limit_without_cap_sys_resource_says_so() {
        let code = fork_and_wait(|| {
            // Lower the hard limit, give up CAP_SYS_RESOURCE, then ask for more.
            if apply(&[limit(PosixRlimitType::RlimitNofile, 64, 128)]).is_err() {
                return 2;
            }
            if caps::drop(
                None,
                caps::CapSet::Effective,
                caps::Capability::CAP_SYS_RESOURCE,
            )
            .is_err()
            {
                return 3;
            }
            match apply(&[limit(PosixRlimitType::RlimitNofile, 64, 256)]) {
                Err(e @ RlimitError::RaiseHard { .. }) => {
                    let text = e.to_string();
                    let expected = "set rlimit RLIMIT_NOFILE to soft 64, hard 256: ";
                    if text.starts_with(expected)
                        && text.contains("current one (128) needs CAP_SYS_RESOURCE")
                    {
                        0
                    } else {
                        4
                    }
                }
                _ => 5,
            }
        });
        assert_eq!(code, 0);
    }
}
