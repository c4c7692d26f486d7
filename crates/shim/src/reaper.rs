//! The shim's single reaper: collects every child status with `waitpid(-1)` and hands each to
//! the process it belongs to, keeping statuses of pids not yet known (an exec that exits before
//! the runtime's pid file was read) until they are claimed.

use std::collections::HashMap;

/// How a child ended, as waitpid reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

impl WaitStatus {
    /// Docker's exit code: the code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            WaitStatus::Exited(code) => code,
            WaitStatus::Signaled(signal) => 128 + signal,
        }
    }

    /// Decodes a raw `waitpid` status; `None` for stop/continue notifications.
    pub fn from_raw(raw: i32) -> Option<WaitStatus> {
        if libc::WIFEXITED(raw) {
            Some(WaitStatus::Exited(libc::WEXITSTATUS(raw)))
        } else if libc::WIFSIGNALED(raw) {
            Some(WaitStatus::Signaled(libc::WTERMSIG(raw)))
        } else {
            None
        }
    }
}

/// Source of child statuses: the real `waitpid(-1, WNOHANG)` or a fake in tests.
pub trait ChildWaiter {
    /// The next ended child, or `None` when no more are ready now.
    fn next_exited(&mut self) -> Option<(u32, WaitStatus)>;
}

/// `waitpid(-1, WNOHANG)`: the only place the shim reaps.
pub struct SystemWaiter;

impl ChildWaiter for SystemWaiter {
    fn next_exited(&mut self) -> Option<(u32, WaitStatus)> {
        loop {
            let mut raw = 0;
            // SAFETY: waitpid with a valid out-pointer; -1 and WNOHANG need no other invariant.
            let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
            if pid <= 0 {
                return None;
            }
            if let Some(status) = WaitStatus::from_raw(raw) {
                return Some((pid as u32, status));
            }
        }
    }
}

/// Maps reaped pids to owners of type `O` (init, an exec id).
#[derive(Debug)]
pub struct Reaper<O> {
    owners: HashMap<u32, O>,
    unclaimed: HashMap<u32, WaitStatus>,
}

impl<O> Default for Reaper<O> {
    fn default() -> Self {
        Reaper {
            owners: HashMap::new(),
            unclaimed: HashMap::new(),
        }
    }
}

impl<O> Reaper<O> {
    /// Registers `pid` for `owner`. If that pid was already reaped, returns its status at once
    /// (the owner exited before we learned its pid).
    pub fn register(&mut self, pid: u32, owner: O) -> Option<WaitStatus> {
        if let Some(status) = self.unclaimed.remove(&pid) {
            return Some(status);
        }
        self.owners.insert(pid, owner);
        None
    }

    /// Reaps everything ready and returns the statuses of registered owners; statuses of
    /// unknown pids (grandchildren reparented to us, not-yet-registered execs) are kept.
    pub fn reap(&mut self, waiter: &mut dyn ChildWaiter) -> Vec<(O, WaitStatus)> {
        let mut out = Vec::new();
        while let Some((pid, status)) = waiter.next_exited() {
            match self.owners.remove(&pid) {
                Some(owner) => out.push((owner, status)),
                None => {
                    self.unclaimed.insert(pid, status);
                }
            }
        }
        // Bound the memory held for reparented orphans that nobody will ever claim.
        if self.unclaimed.len() > 1024 {
            self.unclaimed.clear();
        }
        out
    }

    /// How many statuses wait for an owner.
    pub fn unclaimed(&self) -> usize {
        self.unclaimed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    struct FakeWaiter(VecDeque<(u32, WaitStatus)>);

    impl ChildWaiter for FakeWaiter {
        fn next_exited(&mut self) -> Option<(u32, WaitStatus)> {
            self.0.pop_front()
        }
    }

    #[test]
    fn statuses_go_to_their_registered_owner() {
        let mut reaper = Reaper::default();
        assert_eq!(reaper.register(10, "init"), None);
        assert_eq!(reaper.register(11, "exec-a"), None);
        let mut waiter = FakeWaiter(
            [(11, WaitStatus::Exited(3)), (10, WaitStatus::Signaled(9))]
                .into_iter()
                .collect(),
        );
        let got = reaper.reap(&mut waiter);
        assert_eq!(
            got,
            vec![
                ("exec-a", WaitStatus::Exited(3)),
                ("init", WaitStatus::Signaled(9))
            ]
        );
        assert_eq!(got[1].1.code(), 137);
    }

    #[test]
    fn a_status_reaped_before_registration_is_returned_on_register() {
        let mut reaper = Reaper::default();
        let mut waiter = FakeWaiter([(20, WaitStatus::Exited(0))].into_iter().collect());
        assert!(reaper.reap(&mut waiter).is_empty());
        assert_eq!(reaper.unclaimed(), 1);
        assert_eq!(reaper.register(20, "exec"), Some(WaitStatus::Exited(0)));
        assert_eq!(reaper.unclaimed(), 0);
    }

    #[test]
    fn each_pid_is_dispatched_once() {
        let mut reaper = Reaper::default();
        reaper.register(5, "init");
        let mut waiter = FakeWaiter([(5, WaitStatus::Exited(1))].into_iter().collect());
        assert_eq!(reaper.reap(&mut waiter).len(), 1);
        // A recycled pid exiting later is not the old owner's.
        let mut waiter = FakeWaiter([(5, WaitStatus::Exited(2))].into_iter().collect());
        assert!(reaper.reap(&mut waiter).is_empty());
    }

    #[test]
    fn raw_wait_statuses_decode_like_the_kernel_encodes_them() {
        assert_eq!(WaitStatus::from_raw(3 << 8), Some(WaitStatus::Exited(3)));
        assert_eq!(WaitStatus::from_raw(9), Some(WaitStatus::Signaled(9)));
        assert_eq!(WaitStatus::from_raw(0x137f), None);
    }
}
