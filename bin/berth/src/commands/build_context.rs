//! The build context tar `berth build` uploads, written as the docker CLI writes it, since
//! the daemon's COPY digests (history, cache keys) are tarsums of these headers: entries
//! in `filepath.Walk` order without the root, `.dockerignore`'d paths left out (the
//! Dockerfile and `.dockerignore` always sent), permission and set-id bits only, owner
//! 0:0 with no user names, mtimes in whole seconds, directory names ending in `/`, a file
//! seen again through another hard link sent as a link to its first path.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_dockerfile::dockerignore::PatternMatcher;

/// Writes the context tar of `dir`.
pub struct ContextWriter {
    builder: tar::Builder<Vec<u8>>,
    ignore: Option<PatternMatcher>,
    /// (dev, inode) of files with more than one link -> the first path sent.
    seen: HashMap<(u64, u64), String>,
}

impl ContextWriter {
    /// A writer for `dir`, reading its `.dockerignore` (`dockerfile`: the Dockerfile's path
    /// in the context, always sent).
    pub fn new(dir: &Path, dockerfile: Option<&str>) -> anyhow::Result<ContextWriter> {
        let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(text) => Some(
                PatternMatcher::from_dockerignore(&text, dockerfile)
                    .map_err(|e| anyhow::anyhow!("error checking context: {e}"))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => anyhow::bail!("error checking context: reading .dockerignore: {e}"),
        };
        Ok(ContextWriter {
            ignore,
            ..ContextWriter::empty()
        })
    }

    /// A writer for files added one by one (a lone Dockerfile from stdin).
    pub fn empty() -> ContextWriter {
        ContextWriter {
            builder: tar::Builder::new(Vec::new()),
            ignore: None,
            seen: HashMap::new(),
        }
    }

    /// Adds everything below `dir` that `.dockerignore` keeps.
    pub fn add_tree(&mut self, dir: &Path) -> anyhow::Result<()> {
        self.walk(dir, "")
    }

    fn walk(&mut self, dir: &Path, rel: &str) -> anyhow::Result<()> {
        let read = |e: std::io::Error| {
            anyhow::anyhow!(
                "error checking context: can't stat '{}': {e}",
                dir.display()
            )
        };
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(read)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read)?;
        names.sort();
        for name in names {
            let Some(name) = name.to_str() else {
                anyhow::bail!("error checking context: {name:?} is not UTF-8");
            };
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let path = dir.join(name);
            let meta = std::fs::symlink_metadata(&path).map_err(|e| {
                anyhow::anyhow!(
                    "error checking context: can't stat '{}': {e}",
                    path.display()
                )
            })?;
            let ignored = self.ignore.as_ref().is_some_and(|m| m.is_excluded(&child));
            if !ignored {
                self.add_entry(&path, &child, &meta)?;
            }
            // An excluded directory is still walked when an exception could bring back
            // something below it.
            let has_exceptions = self.ignore.as_ref().is_some_and(|m| m.has_exclusions());
            if meta.is_dir() && (!ignored || has_exceptions) {
                self.walk(&path, &child)?;
            }
        }
        Ok(())
    }

    fn add_entry(
        &mut self,
        path: &Path,
        rel: &str,
        meta: &std::fs::Metadata,
    ) -> anyhow::Result<()> {
        let kind = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        header.set_size(0);
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            return self.append(header, &format!("{rel}/"), None, &[]);
        }
        if kind.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            let target = std::fs::read_link(path)?;
            let target = target
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("error checking context: {target:?} is not UTF-8"))?
                .to_string();
            return self.append(header, rel, Some(&target), &[]);
        }
        if !kind.is_file() {
            // Devices, fifos and sockets: the docker CLI sends devices and fifos, which a
            // build context never needs; berth leaves them out rather than fail.
            return Ok(());
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.seen.get(&key).cloned() {
                header.set_entry_type(tar::EntryType::Link);
                return self.append(header, rel, Some(&first), &[]);
            }
            self.seen.insert(key, rel.to_string());
        }
        header.set_entry_type(tar::EntryType::Regular);
        let data = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!(
                "error checking context: can't read '{}': {e}",
                path.display()
            )
        })?;
        header.set_size(data.len() as u64);
        self.append(header, rel, None, &data)
    }

    /// Adds a file that is not in the directory (a Dockerfile from stdin or from outside
    /// the context), mode 0600 as the docker CLI adds it.
    pub fn add_file(&mut self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o600);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        header.set_size(data.len() as u64);
        self.append(header, name, None, data)
    }

    /// Appends `header` named `name` exactly (tar's own path setter drops a directory's
    /// trailing `/`), with GNU long-name and long-link entries when they do not fit.
    fn append(
        &mut self,
        mut header: tar::Header,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> anyhow::Result<()> {
        if let Some(link) = link {
            let slot = &mut header.as_old_mut().linkname;
            if link.len() <= slot.len() {
                slot[..link.len()].copy_from_slice(link.as_bytes());
            } else {
                self.long_entry(tar::EntryType::GNULongLink, link)?;
                let n = slot.len();
                slot.copy_from_slice(&link.as_bytes()[..n]);
            }
        }
        let slot = &mut header.as_old_mut().name;
        if name.len() <= slot.len() {
            slot[..name.len()].copy_from_slice(name.as_bytes());
        } else {
            self.long_entry(tar::EntryType::GNULongName, name)?;
            let n = slot.len();
            slot.copy_from_slice(&name.as_bytes()[..n]);
        }
        header.set_cksum();
        self.builder.append(&header, data)?;
        Ok(())
    }

    fn long_entry(&mut self, kind: tar::EntryType, value: &str) -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        let name = b"././@LongLink";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, &data[..])?;
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<Vec<u8>> {
        Ok(self.builder.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// (name, type, mode, uid, gid, link, data) of one entry, long names applied.
    type Entry = (String, char, u32, u64, u64, String, Vec<u8>);

    fn entries(data: &[u8]) -> Vec<Entry> {
        let mut archive = tar::Archive::new(data);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap())
                .unwrap_or_default();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            out.push((
                name,
                header.entry_type().as_byte() as char,
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                link,
                content,
            ));
        }
        out
    }

    #[test]
    fn headers_are_the_docker_clis() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::write(root.join("src/a.txt"), "a").unwrap();
        std::fs::write(root.join("run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::fs::hard_link(root.join("src/a.txt"), root.join("src/sub/again")).unwrap();
        std::os::unix::fs::symlink("src/a.txt", root.join("link")).unwrap();
        let long = format!("{}/f", "d".repeat(120));
        std::fs::create_dir(root.join("d".repeat(120))).unwrap();
        std::fs::write(root.join(&long), "long").unwrap();
        std::fs::write(root.join("debug.log"), "left out").unwrap();
        std::fs::write(
            root.join(".dockerignore"),
            "*.log\n.dockerignore\nDockerfile\n",
        )
        .unwrap();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        let mut writer = ContextWriter::new(root, Some("Dockerfile")).unwrap();
        writer.add_tree(root).unwrap();
        let got = entries(&writer.finish().unwrap());
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                &format!("{}/", "d".repeat(120)),
                &long,
                "link",
                "run.sh",
                "src/",
                "src/a.txt",
                "src/sub/",
                "src/sub/again",
            ]
        );
        let by_name = |n: &str| got.iter().find(|e| e.0 == n).unwrap().clone();
        assert_eq!(
            by_name("run.sh").2,
            0o4755,
            "permission and set-id bits only"
        );
        assert_eq!(by_name("src/").1, '5');
        assert!(got.iter().all(|e| e.3 == 0 && e.4 == 0), "owned 0:0");
        let link = by_name("link");
        assert_eq!((link.1, link.5.as_str()), ('2', "src/a.txt"));
        let again = by_name("src/sub/again");
        assert_eq!((again.1, again.5.as_str()), ('1', "src/a.txt"));
        assert!(again.6.is_empty());
        assert_eq!(by_name(&long).6, b"long");
    }

    #[test]
    fn excluded_directories_are_walked_only_for_exceptions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("node_modules/keep")).unwrap();
        std::fs::write(root.join("node_modules/x.js"), "x").unwrap();
        std::fs::write(root.join("node_modules/keep/k.js"), "k").unwrap();
        std::fs::write(
            root.join(".dockerignore"),
            "node_modules\n!node_modules/keep\n",
        )
        .unwrap();
        let mut writer = ContextWriter::new(root, None).unwrap();
        writer.add_tree(root).unwrap();
        let names: Vec<String> = entries(&writer.finish().unwrap())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "node_modules/keep/",
                "node_modules/keep/k.js"
            ]
        );
    }
}
