//! The process `exec` runs: from --process (a runtime-spec process JSON) or from the
//! container's own process with the command line's args, env, cwd, user, caps, tty.

use anyhow::{anyhow, Context as _};
use oci_spec::runtime::{Process, Spec};

use crate::cli::ExecArgs;

pub fn build(a: &ExecArgs, config: &Spec) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let mut p: Process = serde_json::from_slice(&bytes).context("parse process.json")?;
        if a.tty {
            p.set_terminal(Some(true));
        }
        return Ok(p);
    }
    if a.command.is_empty() {
        return Err(anyhow!("exec args cannot be empty"));
    }
    let mut p = config.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    if let Some(user) = &a.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let u = p.user_mut();
        u.set_uid(
            uid.parse()
                .map_err(|_| anyhow!("parsing {uid} as int for uid failed"))?,
        );
        if let Some(g) = gid {
            u.set_gid(
                g.parse()
                    .map_err(|_| anyhow!("parsing {g} as int for gid failed"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        berth_runtime::capabilities::add_exec_caps(&mut caps, &a.cap)?;
        p.set_capabilities(Some(caps));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}
