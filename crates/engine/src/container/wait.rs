//! `POST /containers/{id}/wait`: `not-running` (now, if it is not running), `next-exit` (the
//! next exit after the request) and `removed`, each answered with the last exit code.

use std::future::Future;
use std::pin::Pin;

use super::{Container, ContainerError};

/// Docker's wait conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitCondition {
    #[default]
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    /// `?condition=`; empty means `not-running`.
    pub fn parse(text: &str) -> Result<WaitCondition, ContainerError> {
        match text {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(ContainerError::InvalidArgument(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

/// Resolves to the exit code once the condition holds.
pub type WaitFuture = Pin<Box<dyn Future<Output = i64> + Send>>;

/// Captures the container's state now (so that an exit right after the request counts for
/// `next-exit`) and returns the future.
pub(super) fn wait(container: &Container, condition: WaitCondition) -> WaitFuture {
    let mut lifecycle = container.lifecycle();
    let baseline = *lifecycle.borrow_and_update();
    Box::pin(async move {
        let done = lifecycle
            .wait_for(|now| match condition {
                WaitCondition::NotRunning => !now.running,
                WaitCondition::NextExit => now.exits > baseline.exits || now.removed,
                WaitCondition::Removed => now.removed,
            })
            .await;
        match done {
            Ok(now) => i64::from(now.exit_code),
            // The container (and its sender) went away: its last known code.
            Err(_) => i64::from(baseline.exit_code),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{ContainerRecord, Lifecycle};

    #[tokio::test]
    async fn next_exit_waits_for_an_exit_after_the_request() {
        let container = Container::new(ContainerRecord::default());
        container.lifecycle.send_modify(|l| l.running = true);
        let not_running = wait(&container, WaitCondition::NotRunning);
        let next_exit = wait(&container, WaitCondition::NextExit);
        let removed = wait(&container, WaitCondition::Removed);
        container.lifecycle.send_modify(|l: &mut Lifecycle| {
            l.exits += 1;
            l.exit_code = 7;
            l.running = false;
        });
        assert_eq!(not_running.await, 7);
        assert_eq!(next_exit.await, 7);
        let later = wait(&container, WaitCondition::NotRunning);
        assert_eq!(later.await, 7, "not running already: answered at once");
        container.lifecycle.send_modify(|l| l.removed = true);
        assert_eq!(removed.await, 7);
    }

    #[test]
    fn conditions_parse_like_docker() {
        assert_eq!(
            WaitCondition::parse("").expect("empty"),
            WaitCondition::NotRunning
        );
        assert_eq!(
            WaitCondition::parse("removed").expect("removed"),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse("soon").is_err());
    }
}
