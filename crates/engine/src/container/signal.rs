//! Signal names and numbers as Docker's `signal.ParseSignal` accepts them: `SIGTERM`,
//! `TERM`, `term`, `15`.

use super::ContainerError;

const SIGNALS: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// Parses a signal name or number; Docker's text `Invalid signal: x` otherwise.
pub fn parse(text: &str) -> Result<i32, ContainerError> {
    let invalid = || ContainerError::InvalidArgument(format!("Invalid signal: {text}"));
    if let Ok(number) = text.parse::<i32>() {
        return if (1..=64).contains(&number) {
            Ok(number)
        } else {
            Err(invalid())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let offset = if rt.is_empty() {
            Some(0)
        } else {
            rt.strip_prefix('+').and_then(|n| n.parse::<i32>().ok())
        };
        return offset
            .map(|o| libc::SIGRTMIN() + o)
            .filter(|n| *n <= libc::SIGRTMAX())
            .ok_or_else(invalid);
    }
    SIGNALS
        .iter()
        .find(|(candidate, _)| *candidate == name)
        .map(|(_, number)| *number)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_prefixes_parse_like_docker() {
        assert_eq!(parse("SIGTERM").expect("SIGTERM"), 15);
        assert_eq!(parse("term").expect("term"), 15);
        assert_eq!(parse("KILL").expect("KILL"), 9);
        assert_eq!(parse("10").expect("10"), 10);
        assert_eq!(parse("SIGRTMIN+1").expect("rt"), libc::SIGRTMIN() + 1);
        for bad in ["0", "65", "SIGNOPE", "", "-1"] {
            assert_eq!(
                parse(bad).expect_err(bad).to_string(),
                format!("Invalid signal: {bad}")
            );
        }
    }
}
