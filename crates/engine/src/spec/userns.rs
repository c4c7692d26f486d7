//! User namespaces, the pure part: a container's `--userns` mode (`host`, `auto`,
//! `map=...`), /etc/subuid and /etc/subgid ranges, the daemon-wide `userns-remap` map, the
//! choice of a free `auto` block, and the user namespace and id maps of the OCI spec.
//! Claims, directories and idmapped mounts live in `container/userns*.rs`.

use serde_json::{json, Value};

pub use berth_snapshot::IdMapping;

/// Ids one `--userns auto` container gets (podman's default and Docker's remap size).
pub const AUTO_SIZE: u32 = 65536;

/// Ranges the kernel accepts in one uid_map or gid_map (Linux 4.15+).
const MAX_RANGES: usize = 340;

/// Why a user namespace setting is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernsError {
    /// An unknown `--userns` value or a bad `map=` entry.
    #[error("invalid --userns value {value:?}: {reason} (use host, auto or map=<container>:<host>:<size>[,...])")]
    InvalidMode { value: String, reason: String },
    /// The subordinate id files give the user nothing.
    #[error("{file} has no range for user {user} (add a line such as {user}:100000:65536)")]
    NoRange { file: &'static str, user: String },
    /// Every auto block is taken.
    #[error("no free range of {AUTO_SIZE} ids left for --userns auto in the ranges of user {user} (add ranges to /etc/subuid and /etc/subgid, or remove containers)")]
    Exhausted { user: String },
}

/// A user namespace's uid and gid maps (what /proc/<pid>/uid_map and gid_map hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdMapping>,
    pub gids: Vec<IdMapping>,
}

impl IdMap {
    /// The same `size` ids from `uid`/`gid` for both (an `auto` block).
    pub fn block(uid: u32, gid: u32, size: u32) -> IdMap {
        let one = |host_id| {
            vec![IdMapping {
                container_id: 0,
                host_id,
                size,
            }]
        };
        IdMap {
            uids: one(uid),
            gids: one(gid),
        }
    }

    /// Docker's `idtools` map for a remap user: its ranges in file order, container ids
    /// counted up from 0 across them.
    pub fn from_ranges(uids: &[(u32, u32)], gids: &[(u32, u32)]) -> IdMap {
        let stack = |ranges: &[(u32, u32)]| {
            let mut next = 0u32;
            ranges
                .iter()
                .map(|&(host_id, size)| {
                    let mapping = IdMapping {
                        container_id: next,
                        host_id,
                        size,
                    };
                    next = next.saturating_add(size);
                    mapping
                })
                .collect()
        };
        IdMap {
            uids: stack(uids),
            gids: stack(gids),
        }
    }

    /// The host uid and gid of the container's root.
    pub fn root(&self) -> (u32, u32) {
        let uid = berth_snapshot::idmap::map_id(&self.uids, 0).unwrap_or(u32::MAX);
        let gid = berth_snapshot::idmap::map_id(&self.gids, 0).unwrap_or(u32::MAX);
        (uid, gid)
    }

    /// The uid_map text (`<container> <host> <size>` lines).
    pub fn uid_map_text(&self) -> String {
        map_text(&self.uids)
    }

    /// The gid_map text.
    pub fn gid_map_text(&self) -> String {
        map_text(&self.gids)
    }
}

fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// A container's `HostConfig.UsernsMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernsMode {
    /// Empty: the daemon's `userns-remap` map if one is set, else the host's namespace.
    Default,
    /// `host`: the host's user namespace even when the daemon remaps (Docker's opt-out).
    Host,
    /// `auto`: a fresh block of [`AUTO_SIZE`] ids from the subordinate ranges, never
    /// shared with another container.
    Auto,
    /// `map=<container>:<host>:<size>[,...]`: these ranges; an entry prefixed `u:` or `g:`
    /// maps only uids or only gids, an unprefixed one both.
    Map(IdMap),
}

/// Parses `--userns` (berth's syntax; Docker's API knows only `` and `host`).
pub fn parse_mode(value: &str) -> Result<UsernsMode, UsernsError> {
    let invalid = |reason: &str| UsernsError::InvalidMode {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match value {
        "" => return Ok(UsernsMode::Default),
        "host" => return Ok(UsernsMode::Host),
        "auto" => return Ok(UsernsMode::Auto),
        _ => {}
    }
    let Some(list) = value.strip_prefix("map=") else {
        return Err(invalid("unknown mode"));
    };
    let mut map = IdMap {
        uids: Vec::new(),
        gids: Vec::new(),
    };
    for entry in list.split(',') {
        let (uids, gids, triple) = match entry.split_once(':') {
            Some(("u", rest)) => (true, false, rest),
            Some(("g", rest)) => (false, true, rest),
            _ => (true, true, entry),
        };
        let numbers: Vec<&str> = triple.split(':').collect();
        let [container, host, size] = numbers[..] else {
            return Err(invalid(&format!(
                "{entry:?} is not <container>:<host>:<size>"
            )));
        };
        let number = |text: &str| {
            text.parse::<u32>()
                .map_err(|_| invalid(&format!("{text:?} in {entry:?} is not an id")))
        };
        let mapping = IdMapping {
            container_id: number(container)?,
            host_id: number(host)?,
            size: number(size)?,
        };
        if uids {
            map.uids.push(mapping);
        }
        if gids {
            map.gids.push(mapping);
        }
    }
    for (what, maps) in [("uid", &map.uids), ("gid", &map.gids)] {
        check_maps(maps).map_err(|reason| invalid(&format!("{what} map: {reason}")))?;
    }
    Ok(UsernsMode::Map(map))
}

/// The kernel's rules for one map, plus berth's: root is mapped, and never to host root.
fn check_maps(maps: &[IdMapping]) -> Result<(), String> {
    if maps.is_empty() {
        return Err("no range".into());
    }
    if maps.len() > MAX_RANGES {
        return Err(format!("more than {MAX_RANGES} ranges"));
    }
    for (i, m) in maps.iter().enumerate() {
        let end = |start: u32| u64::from(start) + u64::from(m.size);
        if m.size == 0 || end(m.container_id) > 1 << 32 || end(m.host_id) > 1 << 32 {
            return Err(format!("range {} is empty or past 2^32", i + 1));
        }
        if m.host_id == 0 {
            return Err("host id 0 cannot be mapped (use --userns host)".into());
        }
        for other in &maps[..i] {
            let overlap = |a: u32, b: u32| {
                u64::from(a) < u64::from(b) + u64::from(other.size)
                    && u64::from(b) < u64::from(a) + u64::from(m.size)
            };
            if overlap(m.container_id, other.container_id) || overlap(m.host_id, other.host_id) {
                return Err("ranges overlap".into());
            }
        }
    }
    if berth_snapshot::idmap::map_id(maps, 0).is_none() {
        return Err("container id 0 (root) is not mapped".into());
    }
    Ok(())
}

/// The `(start, count)` ranges /etc/subuid (or subgid) text gives `user` (named, or by
/// numeric `uid`), in file order; comments and malformed lines are skipped, as shadow's
/// tools do.
pub fn subordinate_ranges(text: &str, user: &str, uid: Option<u32>) -> Vec<(u32, u32)> {
    let uid = uid.map(|u| u.to_string());
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            let owned = owner == user || uid.as_deref() == Some(owner);
            let range = (start.parse().ok()?, count.parse().ok()?);
            (owned && range.1 > 0).then_some(range)
        })
        .collect()
}

/// The first [`AUTO_SIZE`] block not in `taken` and not overlapping `reserved` (the
/// daemon-wide map), as `(uid, gid)` starts: block `i` of the uid ranges pairs with
/// block `i` of the gid ranges.
pub fn pick_auto_block(
    uid_ranges: &[(u32, u32)],
    gid_ranges: &[(u32, u32)],
    taken: &[(u32, u32)],
    reserved: Option<&IdMap>,
) -> Option<(u32, u32)> {
    let blocks = |ranges: &[(u32, u32)]| -> Vec<u32> {
        ranges
            .iter()
            .flat_map(|&(start, count)| {
                (0..count / AUTO_SIZE).filter_map(move |k| start.checked_add(k * AUTO_SIZE))
            })
            .filter(|s| s.checked_add(AUTO_SIZE).is_some())
            .collect()
    };
    let clashes = |start: u32, maps: &[IdMapping]| {
        maps.iter().any(|m| {
            u64::from(start) < u64::from(m.host_id) + u64::from(m.size)
                && u64::from(m.host_id) < u64::from(start) + u64::from(AUTO_SIZE)
        })
    };
    blocks(uid_ranges)
        .into_iter()
        .zip(blocks(gid_ranges))
        .find(|&(uid, gid)| {
            let used = taken.iter().any(|&(u, g)| u == uid || g == gid);
            let reserved = reserved.is_some_and(|r| clashes(uid, &r.uids) || clashes(gid, &r.gids));
            !used && !reserved
        })
}

/// Docker's `net.ipv4.ping_group_range` for a container with a network namespace.
pub(crate) const DEFAULT_PING_GROUP_RANGE: &str = "0 2147483647";

/// Puts the container in a new user namespace with `map`: the namespace first (the runtime
/// creates it before the others, as runc does) and the uid/gid maps.
pub fn apply(spec: &mut Value, map: &IdMap) {
    let encode = |maps: &[IdMapping]| -> Vec<Value> {
        maps.iter()
            .map(|m| json!({"containerID": m.container_id, "hostID": m.host_id, "size": m.size}))
            .collect()
    };
    let linux = &mut spec["linux"];
    if let Some(namespaces) = linux["namespaces"].as_array_mut() {
        namespaces.retain(|ns| ns["type"] != "user");
        namespaces.insert(0, json!({"type": "user"}));
    } else {
        linux["namespaces"] = json!([{"type": "user"}]);
    }
    // Docker's per-network defaults cannot be written from a user namespace that does not
    // own the (pinned, host-owned) network namespace joined by path: the runtime would fail
    // with EACCES, so they are left out as dockerd leaves them out under userns-remap.
    let joined_network = linux["namespaces"].as_array().is_some_and(|all| {
        all.iter()
            .any(|ns| ns["type"] == "network" && ns.get("path").is_some())
    });
    if let (true, Some(sysctl)) = (joined_network, linux["sysctl"].as_object_mut()) {
        sysctl.remove("net.ipv4.ip_unprivileged_port_start");
        sysctl.remove("net.ipv4.ping_group_range");
        if sysctl.is_empty() {
            linux.as_object_mut().map(|l| l.remove("sysctl"));
        }
    } else if let Some(range) = linux["sysctl"].get_mut("net.ipv4.ping_group_range") {
        // A network namespace of the container's own: the kernel refuses (EINVAL) a range
        // whose ends are not mapped in the user namespace, and Docker's default ends at
        // 2^31-1; it is capped at the highest mapped group (as CRI-O does). A range the
        // user gave is left as given.
        let highest = map
            .gids
            .iter()
            .filter_map(|m| m.container_id.checked_add(m.size.checked_sub(1)?))
            .max();
        if let (Some(highest), Some(DEFAULT_PING_GROUP_RANGE)) = (highest, range.as_str()) {
            *range = format!("0 {highest}").into();
        }
    }
    let linux = &mut spec["linux"];
    linux["uidMappings"] = encode(&map.uids).into();
    linux["gidMappings"] = encode(&map.gids).into();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(container_id: u32, host_id: u32, size: u32) -> IdMapping {
        IdMapping {
            container_id,
            host_id,
            size,
        }
    }

    #[test]
    fn modes_parse_host_auto_and_empty() {
        assert_eq!(parse_mode(""), Ok(UsernsMode::Default));
        assert_eq!(parse_mode("host"), Ok(UsernsMode::Host));
        assert_eq!(parse_mode("auto"), Ok(UsernsMode::Auto));
        assert!(matches!(
            parse_mode("private"),
            Err(UsernsError::InvalidMode { .. })
        ));
    }

    #[test]
    fn map_entries_apply_to_both_or_one_side() {
        let UsernsMode::Map(map) =
            parse_mode("map=0:100000:1000,u:1000:5000:1,g:1000:6000:2").expect("map")
        else {
            panic!("not a map");
        };
        assert_eq!(map.uids, vec![one(0, 100000, 1000), one(1000, 5000, 1)]);
        assert_eq!(map.gids, vec![one(0, 100000, 1000), one(1000, 6000, 2)]);
        assert_eq!(map.root(), (100000, 100000));
        assert_eq!(map.uid_map_text(), "0 100000 1000\n1000 5000 1\n");
    }

    #[test]
    fn bad_maps_are_refused_with_the_reason() {
        let cases = [
            ("map=0:100000", "is not <container>:<host>:<size>"),
            ("map=0:x:1", "is not an id"),
            ("map=0:100000:0", "empty"),
            ("map=1:100000:10", "root) is not mapped"),
            ("map=0:0:65536", "host id 0"),
            ("map=0:100000:10,5:200000:10", "overlap"),
            ("map=0:100000:10,10:100005:10", "overlap"),
            ("map=u:0:100000:10", "gid map: no range"),
            ("map=0:4294967295:2", "past 2^32"),
        ];
        for (value, reason) in cases {
            let text = parse_mode(value).expect_err(value).to_string();
            assert!(text.contains(reason), "{value}: {text}");
        }
    }

    #[test]
    fn subordinate_ranges_match_name_or_uid_in_file_order() {
        let text = "# comment\nalice:100000:65536\nberthremap:200000:65536\n\
                    999:300000:10\nberthremap:bad:1\nberthremap:400000:0\nberthremap:500000:5\n";
        assert_eq!(
            subordinate_ranges(text, "berthremap", Some(999)),
            vec![(200000, 65536), (300000, 10), (500000, 5)]
        );
        assert!(subordinate_ranges(text, "nobody", None).is_empty());
    }

    #[test]
    fn remap_ranges_stack_container_ids_from_zero() {
        let map = IdMap::from_ranges(&[(200000, 10), (300000, 5)], &[(400000, 15)]);
        assert_eq!(map.uids, vec![one(0, 200000, 10), one(10, 300000, 5)]);
        assert_eq!(map.gids, vec![one(0, 400000, 15)]);
    }

    #[test]
    fn auto_blocks_skip_taken_and_reserved_ranges() {
        let uids = [(100000, 3 * AUTO_SIZE + 7)];
        let gids = [(500000, 4 * AUTO_SIZE)];
        assert_eq!(
            pick_auto_block(&uids, &gids, &[], None),
            Some((100000, 500000))
        );
        let taken = [(100000, 500000)];
        assert_eq!(
            pick_auto_block(&uids, &gids, &taken, None),
            Some((100000 + AUTO_SIZE, 500000 + AUTO_SIZE))
        );
        let reserved = IdMap::block(100000 + AUTO_SIZE + 5, 1, 1);
        assert_eq!(
            pick_auto_block(&uids, &gids, &taken, Some(&reserved)),
            Some((100000 + 2 * AUTO_SIZE, 500000 + 2 * AUTO_SIZE))
        );
        let all = [
            (100000, 0),
            (100000 + AUTO_SIZE, 0),
            (100000 + 2 * AUTO_SIZE, 0),
        ];
        assert_eq!(
            pick_auto_block(&uids, &gids, &all, None),
            None,
            "3 uid blocks only"
        );
    }

    #[test]
    fn spec_gets_a_user_namespace_first_and_both_maps() {
        let mut spec = json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}});
        apply(&mut spec, &IdMap::block(100000, 200000, AUTO_SIZE));
        assert_eq!(spec["linux"]["namespaces"][0], json!({"type": "user"}));
        assert_eq!(
            spec["linux"]["namespaces"].as_array().map(Vec::len),
            Some(3)
        );
        assert_eq!(
            spec["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(spec["linux"]["gidMappings"][0]["hostID"], 200000);
    }

    #[test]
    fn docker_s_ping_range_is_capped_at_the_highest_mapped_group_in_an_own_network_namespace() {
        let spec_with = |range: &str, network: Value| {
            json!({"linux": {
                "namespaces": [{"type": "mount"}, network],
                "sysctl": {"net.ipv4.ping_group_range": range, "net.ipv4.ip_unprivileged_port_start": "0"}
            }})
        };
        let map = IdMap::block(100000, 200000, AUTO_SIZE);
        let mut own = spec_with(DEFAULT_PING_GROUP_RANGE, json!({"type": "network"}));
        apply(&mut own, &map);
        assert_eq!(
            own["linux"]["sysctl"]["net.ipv4.ping_group_range"],
            "0 65535"
        );
        assert_eq!(
            own["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"],
            "0"
        );
        let mut given = spec_with("0 10", json!({"type": "network"}));
        apply(&mut given, &map);
        assert_eq!(
            given["linux"]["sysctl"]["net.ipv4.ping_group_range"],
            "0 10"
        );
        let mut joined = spec_with(
            DEFAULT_PING_GROUP_RANGE,
            json!({"type": "network", "path": "/run/netns/x"}),
        );
        apply(&mut joined, &map);
        assert!(joined["linux"].get("sysctl").is_none());
    }
}
