//! Ownership of applied entries: kept, remapped for a user namespace, or left to the caller.

/// One range of a user-namespace id map (`/proc/<pid>/uid_map` line): container ids
/// `container_id..container_id+size` are host ids `host_id..host_id+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    /// First id inside the container.
    pub container_id: u32,
    /// The host id `container_id` maps to.
    pub host_id: u32,
    /// How many ids the range covers.
    pub size: u32,
}

/// What apply does with the uid/gid of each entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Ownership {
    /// Chown every entry to the uid/gid its header names (needs root).
    #[default]
    Preserve,
    /// Chown every entry to its header's ids translated through these maps (userns-remap).
    Remap {
        /// uid ranges.
        uids: Vec<IdMapping>,
        /// gid ranges.
        gids: Vec<IdMapping>,
    },
    /// Leave every entry owned by the applying user (rootless, tests, the copy fallback).
    Ignore,
}

/// Translates a container id through `maps`, or `None` when no range covers it.
pub fn map_id(maps: &[IdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let offset = id.checked_sub(m.container_id)?;
        (offset < m.size)
            .then(|| m.host_id.checked_add(offset))
            .flatten()
    })
}

impl Ownership {
    /// The host (uid, gid) for header ids, `Ok(None)` when ownership is ignored, or the
    /// first id no range maps.
    pub fn host_ids(&self, uid: u32, gid: u32) -> Result<Option<(u32, u32)>, u32> {
        match self {
            Ownership::Preserve => Ok(Some((uid, gid))),
            Ownership::Remap { uids, gids } => {
                let host_uid = map_id(uids, uid).ok_or(uid)?;
                let host_gid = map_id(gids, gid).ok_or(gid)?;
                Ok(Some((host_uid, host_gid)))
            }
            Ownership::Ignore => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: [IdMapping; 2] = [
        IdMapping {
            container_id: 0,
            host_id: 100000,
            size: 1000,
        },
        IdMapping {
            container_id: 1000,
            host_id: 5000,
            size: 1,
        },
    ];

    #[test]
    fn ids_inside_a_range_are_offset() {
        assert_eq!(map_id(&MAP, 0), Some(100000));
        assert_eq!(map_id(&MAP, 999), Some(100999));
        assert_eq!(map_id(&MAP, 1000), Some(5000));
    }

    #[test]
    fn ids_outside_every_range_are_unmapped() {
        assert_eq!(map_id(&MAP, 1001), None);
        assert_eq!(map_id(&[], 0), None);
    }

    #[test]
    fn remap_reports_the_unmapped_id() {
        let own = Ownership::Remap {
            uids: MAP.to_vec(),
            gids: MAP.to_vec(),
        };
        assert_eq!(own.host_ids(1, 2), Ok(Some((100001, 100002))));
        assert_eq!(own.host_ids(1, 7777), Err(7777));
        assert_eq!(Ownership::Ignore.host_ids(1, 2), Ok(None));
    }
}
