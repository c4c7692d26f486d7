//! COPY and ADD (moby's `performCopy`): sources from the context, a finished stage or an
//! image; the `file:<sha>`/`dir:<sha>`/`multi:<sha>` history text that is also what makes
//! the cache key follow the files' content; the copy into a fresh layer.

use sha2::{Digest as _, Sha256};

use crate::context::SourceRoot;
use crate::copy::{self, CopyOptions};
use crate::dispatch::{normalize_workdir, Env, Say, StageState};
use crate::worker::LayerGuard;
use crate::BuildError;

/// A COPY or ADD after expansion.
pub struct CopySpec {
    pub name: &'static str,
    pub sources: Vec<String>,
    pub has_heredocs: bool,
    pub dest: String,
    pub chown: String,
    pub chmod: String,
    /// ADD: local archives are extracted.
    pub extract: bool,
    /// `--from`: the image (or stage result) to read from.
    pub source_image: Option<String>,
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://") || source.starts_with("git@")
}

fn parse_chmod(chmod: &str) -> Result<Option<u32>, BuildError> {
    if chmod.is_empty() {
        return Ok(None);
    }
    u32::from_str_radix(chmod, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .map(Some)
        .ok_or_else(|| BuildError::Copy(format!("invalid chmod parameter: {chmod}")))
}

pub fn copy(
    state: &mut StageState,
    env: &Env,
    say: Say,
    spec: &CopySpec,
) -> Result<(), BuildError> {
    if spec.has_heredocs {
        return Err(BuildError::NotImplemented(format!(
            "{} with a heredoc",
            spec.name
        )));
    }
    if let Some(url) = spec.sources.iter().find(|s| is_url(s)) {
        return Err(if spec.name == "COPY" {
            BuildError::Copy("source can't be a URL for COPY".into())
        } else {
            BuildError::NotImplemented(format!(
                "ADD from a URL ({url}; builds have no network: download it into the context)"
            ))
        });
    }
    let chmod = parse_chmod(&spec.chmod)?;
    let mount = match &spec.source_image {
        Some(image) => Some(LayerGuard {
            worker: env.worker,
            key: env.worker.mount_image(image)?,
        }),
        None => None,
    };
    let tree;
    let sources: &SourceRoot = match &mount {
        Some(guard) => {
            tree = SourceRoot::tree(&env.worker.layer_root(&guard.key)?);
            &tree
        }
        None => env.context,
    };
    let mut resolved = Vec::new();
    for pattern in &spec.sources {
        resolved.extend(sources.resolve(pattern)?);
    }
    if resolved.len() > 1 && !spec.dest.ends_with('/') {
        return Err(BuildError::Copy(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            spec.name
        )));
    }
    let hashes = resolved
        .iter()
        .map(|s| sources.source_hash(s))
        .collect::<Result<Vec<_>, _>>()?;
    let hash = match hashes.as_slice() {
        [one] => one.clone(),
        many => format!("multi:{:x}", Sha256::digest(many.join(",").as_bytes())),
    };
    let chown_comment = if spec.chown.is_empty() {
        String::new()
    } else {
        format!("--chown={}", spec.chown)
    };
    let comment = format!("{} {chown_comment}{hash} in {} ", spec.name, spec.dest);
    let dest = if spec.dest.starts_with('/') {
        spec.dest.clone()
    } else {
        let mut d = normalize_workdir(&state.config.working_dir, &spec.dest);
        if spec.dest.ends_with('/') || spec.dest == "." {
            d.push('/');
        }
        d
    };
    let cc = state.config.with_comment_string(&comment);
    state.commit(env, say, cc, |state| {
        let guard = LayerGuard {
            worker: env.worker,
            key: env.worker.prepare(&state.image)?,
        };
        let root = env.worker.layer_root(&guard.key)?;
        let (uid, gid) = copy::parse_chown(&root, &spec.chown)?;
        let options = CopyOptions {
            uid,
            gid,
            chmod,
            extract: spec.extract,
        };
        copy::copy_sources(&root, &resolved, &dest, options)?;
        let key = guard.key.clone();
        std::mem::forget(guard);
        Ok(Some((key, String::new())))
    })
}
