//! Docker's container sizes (`docker ps --size`, `docker inspect --size`): `SizeRw`, the
//! apparent size of the files in the container's writable layer (hard links once, as moby's
//! `directory.Size` of the overlay upper directory), and `SizeRootFs`, that plus the size of
//! its image (moby's `daemon.imageService.GetContainerLayerSize`). Logs are not counted here
//! (`/system/df` adds them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_api::Filters;
use berth_snapshot::Mount;

use super::ContainerRecord;
use crate::Engine;

/// `SizeRw` and `SizeRootFs` of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerSize {
    pub rw: i64,
    pub root_fs: i64,
}

/// The sizes of `records`, in order. A layer that cannot be measured counts as empty, as
/// Docker logs the error and reports 0.
pub async fn sizes(engine: &Engine, records: &[ContainerRecord]) -> Vec<ContainerSize> {
    let image_sizes: BTreeMap<String, i64> = match engine.images.list(Filters::new()).await {
        Ok(images) => images
            .iter()
            .map(|i| (i.record.id.to_string(), i.size))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let upper = engine
            .images
            .rootfs_mounts(&record.id)
            .await
            .ok()
            .and_then(|mounts| mounts.first().and_then(writable_dir));
        let rw = match upper {
            Some(dir) => tokio::task::spawn_blocking(move || {
                crate::volume::usage::size(&dir).map_or(0, |n| n as i64)
            })
            .await
            .unwrap_or(0),
            None => 0,
        };
        let image = image_sizes.get(&record.image_id).copied().unwrap_or(0);
        out.push(ContainerSize {
            rw,
            root_fs: rw + image,
        });
    }
    out
}

/// The directory holding a container layer's own files: the overlay upper directory, or
/// the bound directory of the native driver.
fn writable_dir(m: &Mount) -> Option<PathBuf> {
    if m.fstype == "bind" {
        return Some(m.source.clone());
    }
    let upper = m.options.iter().find_map(|o| o.strip_prefix("upperdir="))?;
    Some(match &m.working_dir {
        Some(base) => base.join(upper),
        None => PathBuf::from(upper),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writable_directory_is_the_upper_or_the_bound_directory() {
        let overlay = Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "lowerdir=l/a".into(),
                "upperdir=/s/1/fs".into(),
                "workdir=/s/1/work".into(),
            ],
            working_dir: Some(PathBuf::from("/s")),
        };
        assert_eq!(writable_dir(&overlay), Some(PathBuf::from("/s/1/fs")));
        let bind = Mount {
            fstype: "bind".into(),
            source: "/s/2/fs".into(),
            options: vec!["rbind".into(), "rw".into()],
            working_dir: None,
        };
        assert_eq!(writable_dir(&bind), Some(PathBuf::from("/s/2/fs")));
        let committed = Mount {
            options: vec!["lowerdir=/a:/b".into(), "ro".into()],
            ..overlay
        };
        assert_eq!(writable_dir(&committed), None);
    }
}
