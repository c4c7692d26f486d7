//! Signal names and numbers as `kill` accepts them (runc: "KILL", "SIGKILL", "kill", "9").

const SIGNALS: &[(&str, libc::c_int)] = &[
    ("SIGABRT", libc::SIGABRT),
    ("SIGALRM", libc::SIGALRM),
    ("SIGBUS", libc::SIGBUS),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGFPE", libc::SIGFPE),
    ("SIGHUP", libc::SIGHUP),
    ("SIGILL", libc::SIGILL),
    ("SIGINT", libc::SIGINT),
    ("SIGIO", libc::SIGIO),
    ("SIGIOT", libc::SIGIOT),
    ("SIGKILL", libc::SIGKILL),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGPOLL", libc::SIGPOLL),
    ("SIGPROF", libc::SIGPROF),
    ("SIGPWR", libc::SIGPWR),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGSYS", libc::SIGSYS),
    ("SIGTERM", libc::SIGTERM),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
];

/// Parses a signal given as a number or a name with or without "SIG", any case.
/// Returns None for anything else (the caller reports `unknown signal "X"`).
pub fn parse(s: &str) -> Option<libc::c_int> {
    if let Ok(n) = s.parse::<libc::c_int>() {
        // Real-time signals are valid numbers too; 0 and out-of-range are not.
        return (1..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Every signal berth-runtime forwards to the container in the foreground
/// (all catchable ones except SIGCHLD, which it uses to reap).
pub fn forwarded() -> Vec<libc::c_int> {
    (1..=libc::SIGRTMAX())
        .filter(|s| ![libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD].contains(s))
        // glibc reserves 32 and 33 for its own threads.
        .filter(|s| !(32..libc::SIGRTMIN()).contains(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_prefixes_cases_and_numbers() {
        assert_eq!(parse("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse("SIGKILL"), Some(libc::SIGKILL));
        assert_eq!(parse("term"), Some(libc::SIGTERM));
        assert_eq!(parse("SigUsr1"), Some(libc::SIGUSR1));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("34"), Some(34));
    }

    #[test]
    fn refuses_unknown_names_and_bad_numbers() {
        assert_eq!(parse("BOGUS"), None);
        assert_eq!(parse("0"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("999"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn forwarded_excludes_uncatchable_and_sigchld() {
        let f = forwarded();
        assert!(f.contains(&libc::SIGTERM) && f.contains(&libc::SIGWINCH));
        assert!(!f.contains(&libc::SIGKILL) && !f.contains(&libc::SIGCHLD));
    }
}
