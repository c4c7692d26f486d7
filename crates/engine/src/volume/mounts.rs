//! A container's mount points, resolved at create as moby's `registerMountPoints`:
//! `--volumes-from` first, then `-v`/`--mount` (which win on the same destination), then
//! the anonymous volumes of `Config.Volumes` (image `VOLUME`s and `-v /path`) where
//! nothing else is mounted. Host binds stay in the HostConfig (the spec builder mounts
//! them); the record keeps the volumes and what `--volumes-from` inherited.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use berth_api::container::Mount;
use serde::{Deserialize, Serialize};

use super::{VolumeError, VolumeRecord, LOCAL_DRIVER};

/// One mount of a container, as inspect's `Mounts` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// `volume` or `bind`.
    pub r#type: String,
    /// Volume name (empty for binds).
    #[serde(default)]
    pub name: String,
    /// Host path mounted (a volume's `_data`, or below it with a subpath).
    pub source: String,
    pub destination: String,
    #[serde(default)]
    pub driver: String,
    /// The mode text as given (`ro`, `z`, `nocopy`...).
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    #[serde(default)]
    pub propagation: String,
    /// Copy the image's content at `destination` into the volume while it is empty.
    #[serde(default)]
    pub copy_data: bool,
    /// `volume-subpath`.
    #[serde(default)]
    pub subpath: String,
}

impl MountPoint {
    pub fn is_volume(&self) -> bool {
        self.r#type == "volume"
    }
}

/// What a volume mount asks the service for (empty name: a new anonymous volume).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// The mount-related parts of a create request.
#[derive(Debug, Clone, Default)]
pub struct MountRequest {
    pub binds: Vec<String>,
    pub mounts: Vec<Mount>,
    /// `Config.Volumes` keys (image `VOLUME`s merged with `-v /path`).
    pub volumes: Vec<String>,
    /// `HostConfig.Tmpfs` destinations (an image volume there is skipped).
    pub tmpfs: Vec<String>,
    /// Mount points of each `--volumes-from` container with the mode asked for.
    pub volumes_from: Vec<(Vec<MountPoint>, String)>,
}

fn invalid(text: String) -> VolumeError {
    VolumeError::InvalidArgument(text)
}

/// Go's `filepath.Clean` for absolute container paths (trailing and doubled slashes).
fn clean(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// A parsed `-v` entry: a host bind (left to the spec builder) or a volume.
#[derive(Debug, PartialEq)]
pub enum Bind {
    Host { source: String, destination: String },
    Volume(Box<(MountPoint, VolumeSpec)>),
}

/// Parses one `-v` / `Binds` entry with moby's Linux rules.
pub fn parse_bind(spec: &str) -> Result<Bind, VolumeError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let invalid_spec = || invalid(format!("invalid volume specification: '{spec}'"));
    let (source, destination, mode) = match parts.as_slice() {
        [destination] => ("", *destination, ""),
        [source, destination] => {
            if valid_mode(destination) {
                // `/foo:rw`: a destination with a mode and no source.
                return Err(invalid_spec());
            }
            (*source, *destination, "")
        }
        [source, destination, mode] => (*source, *destination, *mode),
        _ => return Err(invalid_spec()),
    };
    if destination.is_empty() || (parts.len() > 1 && source.is_empty()) {
        return Err(invalid_spec());
    }
    if !destination.starts_with('/') {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"volume\": invalid mount path: '{destination}' mount path must be absolute"
        )));
    }
    if destination == "/" {
        return Err(invalid(
            "invalid specification: destination can't be '/'".to_string(),
        ));
    }
    if !valid_mode(mode) {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    let options: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
    if source.starts_with('/') {
        if options.contains(&"nocopy") {
            return Err(invalid(format!("invalid mode: {mode}")));
        }
        return Ok(Bind::Host {
            source: source.to_string(),
            destination: clean(destination),
        });
    }
    if !source.is_empty() {
        super::name::validate(source).map_err(|e| invalid(format!("create {source}: {e}")))?;
    }
    let point = MountPoint {
        r#type: "volume".to_string(),
        name: source.to_string(),
        destination: clean(destination),
        driver: LOCAL_DRIVER.to_string(),
        mode: if source.is_empty() {
            mode.to_string()
        } else if mode.is_empty() {
            // Docker shows a named `-v` volume's default SELinux mode.
            "z".to_string()
        } else {
            mode.to_string()
        },
        rw: !options.contains(&"ro"),
        copy_data: !options.contains(&"nocopy"),
        ..MountPoint::default()
    };
    let spec = VolumeSpec {
        name: source.to_string(),
        ..VolumeSpec::default()
    };
    Ok(Bind::Volume(Box::new((point, spec))))
}

/// moby's `ValidMountMode` for Linux: at most one of rw/ro, one of z/Z, one propagation,
/// one of nocopy, one consistency.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for option in mode.split(',') {
        let slot = match option {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            p if PROPAGATIONS.contains(&p) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[slot] += 1;
        if counts[slot] > 1 {
            return false;
        }
    }
    true
}

fn mount_error(kind: &str, text: impl std::fmt::Display) -> VolumeError {
    invalid(format!("invalid mount config for type \"{kind}\": {text}"))
}

/// moby's `validateMountConfig` for a `--mount` of any type but `volume` (whose own rules
/// are in `parse_volume_mount`): checked when the container is created, as Docker does, and
/// again when its spec is built (a bind source can vanish in between).
pub fn validate_mount(m: &Mount) -> Result<(), VolumeError> {
    let kind = m.r#type.as_str();
    if m.target.is_empty() {
        return Err(mount_error(kind, "field Target must not be empty"));
    }
    if clean(&m.target) == "/" {
        return Err(mount_error(
            kind,
            "invalid specification: destination can't be '/'",
        ));
    }
    if !m.target.starts_with('/') {
        return Err(mount_error(
            kind,
            format_args!(
                "invalid mount path: '{}' mount path must be absolute",
                m.target
            ),
        ));
    }
    match kind {
        "volume" => Ok(()),
        "bind" => {
            if m.source.is_empty() {
                return Err(mount_error(kind, "field Source must not be empty"));
            }
            if let Some(options) = &m.bind_options {
                let mode = options.propagation.as_str();
                if !mode.is_empty() && !PROPAGATIONS.contains(&mode) {
                    return Err(mount_error(
                        kind,
                        format_args!("invalid propagation mode: {mode}"),
                    ));
                }
            }
            if m.volume_options.is_some() {
                return Err(mount_error(
                    kind,
                    "field VolumeOptions must not be specified",
                ));
            }
            if m.tmpfs_options.is_some() {
                return Err(mount_error(
                    kind,
                    "field TmpfsOptions must not be specified",
                ));
            }
            if !m.source.starts_with('/') {
                return Err(mount_error(
                    kind,
                    format_args!(
                        "invalid mount path: '{}' mount path must be absolute",
                        m.source
                    ),
                ));
            }
            if !Path::new(&m.source).exists() {
                return Err(mount_error(
                    kind,
                    format_args!("bind source path does not exist: {}", m.source),
                ));
            }
            Ok(())
        }
        "tmpfs" => {
            if m.bind_options.is_some() {
                return Err(mount_error(kind, "field BindOptions must not be specified"));
            }
            if !m.source.is_empty() {
                return Err(mount_error(kind, "field Source must not be specified"));
            }
            Ok(())
        }
        _ => Err(mount_error(kind, "mount type unknown")),
    }
}

/// One `--mount type=volume` (moby's `validateMountConfig` rules for volumes).
fn parse_volume_mount(m: &Mount) -> Result<(MountPoint, VolumeSpec), VolumeError> {
    if !m.target.starts_with('/') {
        return Err(mount_error(
            "volume",
            format_args!(
                "invalid mount path: '{}' mount path must be absolute",
                m.target
            ),
        ));
    }
    if m.bind_options.is_some() {
        return Err(mount_error(
            "volume",
            "field BindOptions must not be specified",
        ));
    }
    if m.tmpfs_options.is_some() {
        return Err(mount_error(
            "volume",
            "field TmpfsOptions must not be specified",
        ));
    }
    let options = m.volume_options.clone().unwrap_or_default();
    let anonymous = m.source.is_empty();
    if anonymous && m.read_only {
        return Err(mount_error(
            "volume",
            "must not set ReadOnly mode when using anonymous volumes",
        ));
    }
    if anonymous && !options.subpath.is_empty() {
        return Err(mount_error(
            "volume",
            "must not set Subpath when Source is empty",
        ));
    }
    if !anonymous {
        super::name::validate(&m.source)
            .map_err(|e| invalid(format!("create {}: {e}", m.source)))?;
    }
    let subpath = options.subpath.trim_matches('/').to_string();
    if subpath.split('/').any(|c| c == "..") {
        return Err(mount_error(
            "volume",
            "subpath must be a relative path within the volume",
        ));
    }
    let driver = options.driver_config.clone().unwrap_or_default();
    let point = MountPoint {
        r#type: "volume".to_string(),
        name: m.source.clone(),
        destination: clean(&m.target),
        driver: LOCAL_DRIVER.to_string(),
        mode: if anonymous {
            String::new()
        } else {
            "z".to_string()
        },
        rw: !m.read_only,
        copy_data: !options.no_copy,
        subpath,
        ..MountPoint::default()
    };
    let spec = VolumeSpec {
        name: m.source.clone(),
        driver: driver.name,
        options: driver.options.unwrap_or_default(),
        labels: options.labels.unwrap_or_default(),
    };
    Ok((point, spec))
}

/// The host binds of a container as mount points (inspect, `--volumes-from`).
pub fn bind_points(binds: &[String], mounts: &[Mount]) -> Vec<MountPoint> {
    let mut points = Vec::new();
    for bind in binds {
        if let Ok(Bind::Host {
            source,
            destination,
        }) = parse_bind(bind)
        {
            let mode = bind.splitn(3, ':').nth(2).unwrap_or("").to_string();
            let options: Vec<&str> = mode.split(',').collect();
            let propagation = options
                .iter()
                .find(|o| PROPAGATIONS.contains(o))
                .map_or("rprivate", |p| p);
            points.push(MountPoint {
                r#type: "bind".to_string(),
                source,
                destination,
                rw: !options.contains(&"ro"),
                propagation: propagation.to_string(),
                mode,
                ..MountPoint::default()
            });
        }
    }
    for m in mounts.iter().filter(|m| m.r#type == "bind") {
        let propagation = m
            .bind_options
            .as_ref()
            .map(|b| b.propagation.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rprivate".to_string());
        points.push(MountPoint {
            r#type: "bind".to_string(),
            source: m.source.clone(),
            destination: clean(&m.target),
            rw: !m.read_only,
            propagation,
            ..MountPoint::default()
        });
    }
    points
}

/// Resolves the mount points of a new container; `ensure` finds or creates each volume.
pub fn resolve(
    request: &MountRequest,
    root: &Path,
    ensure: &mut dyn FnMut(VolumeSpec) -> Result<VolumeRecord, VolumeError>,
) -> Result<Vec<MountPoint>, VolumeError> {
    // Parse everything before creating anything: a bad entry creates no volume.
    let mut own: Vec<(MountPoint, VolumeSpec)> = Vec::new();
    let mut taken = BTreeSet::new();
    let mut claim = |destination: &str| -> Result<(), VolumeError> {
        if taken.insert(destination.to_string()) {
            Ok(())
        } else {
            Err(invalid(format!("Duplicate mount point: {destination}")))
        }
    };
    for bind in &request.binds {
        match parse_bind(bind)? {
            Bind::Host { destination, .. } => claim(&destination)?,
            Bind::Volume(volume) => {
                let (point, spec) = *volume;
                claim(&point.destination)?;
                own.push((point, spec));
            }
        }
    }
    for m in &request.mounts {
        if m.r#type == "volume" {
            let (point, spec) = parse_volume_mount(m)?;
            claim(&point.destination)?;
            own.push((point, spec));
        } else {
            validate_mount(m)?;
            claim(&clean(&m.target))?;
        }
    }
    let mut inherited: Vec<MountPoint> = Vec::new();
    for (points, mode) in &request.volumes_from {
        if !matches!(mode.as_str(), "" | "ro" | "rw") {
            return Err(invalid(format!("invalid mode: {mode}")));
        }
        for point in points {
            if taken.contains(&point.destination)
                || inherited.iter().any(|p| p.destination == point.destination)
            {
                continue;
            }
            let mut point = point.clone();
            match mode.as_str() {
                "" => {}
                "ro" => point.rw = false,
                _ => point.rw = true,
            }
            point.copy_data = false;
            inherited.push(point);
        }
    }
    let tmpfs: BTreeSet<String> = request.tmpfs.iter().map(|t| clean(t)).collect();
    let mut anonymous = Vec::new();
    for volume in &request.volumes {
        let destination = clean(volume);
        if taken.contains(&destination)
            || tmpfs.contains(&destination)
            || inherited.iter().any(|p| p.destination == destination)
            || anonymous
                .iter()
                .any(|(p, _): &(MountPoint, VolumeSpec)| p.destination == destination)
        {
            continue;
        }
        anonymous.push((
            MountPoint {
                r#type: "volume".to_string(),
                destination,
                driver: LOCAL_DRIVER.to_string(),
                rw: true,
                copy_data: true,
                ..MountPoint::default()
            },
            VolumeSpec::default(),
        ));
    }
    let mut points = inherited;
    for (mut point, spec) in own.into_iter().chain(anonymous) {
        let record = ensure(spec)?;
        let data = root.join(&record.name).join("_data");
        let source = if point.subpath.is_empty() {
            data
        } else {
            let path = data.join(&point.subpath);
            if !path.exists() {
                return Err(invalid(format!(
                    "cannot access path {}: no such file or directory",
                    path.display()
                )));
            }
            path
        };
        point.name = record.name;
        point.driver = record.driver;
        point.source = source.display().to_string();
        points.push(point);
    }
    points.sort_by(|a, b| a.destination.cmp(&b.destination));
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(spec: &str) -> MountPoint {
        match parse_bind(spec).expect(spec) {
            Bind::Volume(volume) => volume.0,
            other => panic!("not a volume: {other:?}"),
        }
    }

    #[test]
    fn v_specs_split_into_host_binds_and_volumes() {
        assert_eq!(
            parse_bind("/host:/ctr/:ro").expect("bind"),
            Bind::Host {
                source: "/host".into(),
                destination: "/ctr".into()
            }
        );
        let named = volume("data:/data");
        assert_eq!((named.name.as_str(), named.mode.as_str()), ("data", "z"));
        assert!(named.rw && named.copy_data);
        let ro = volume("data:/data:ro,nocopy");
        assert!(!ro.rw && !ro.copy_data);
        assert_eq!(ro.mode, "ro,nocopy");
        let anonymous = volume("/scratch");
        assert_eq!((anonymous.name.as_str(), anonymous.mode.as_str()), ("", ""));
    }

    #[test]
    fn bad_v_specs_get_dockers_texts() {
        let text = |spec: &str| parse_bind(spec).expect_err(spec).to_string();
        assert_eq!(text("/foo:rw"), "invalid volume specification: '/foo:rw'");
        assert_eq!(text("a:b:c:d"), "invalid volume specification: 'a:b:c:d'");
        assert_eq!(text("data:/x:bogus"), "invalid mode: bogus");
        assert_eq!(text("data:/x:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(
            text("a/b:/x"),
            "create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert!(text("data:rel").contains("mount path must be absolute"));
    }

    fn resolve_with(request: &MountRequest) -> Result<(Vec<MountPoint>, Vec<String>), VolumeError> {
        let mut created = Vec::new();
        let mut counter = 0;
        let points = resolve(request, Path::new("/v"), &mut |spec| {
            counter += 1;
            let name = if spec.name.is_empty() {
                format!("anon{counter}")
            } else {
                spec.name
            };
            created.push(name.clone());
            Ok(VolumeRecord {
                name,
                driver: "local".into(),
                ..VolumeRecord::default()
            })
        })?;
        Ok((points, created))
    }

    #[test]
    fn image_volumes_fill_only_free_destinations() {
        let request = MountRequest {
            binds: vec!["data:/data".into(), "/host:/etc/app".into()],
            volumes: vec![
                "/data".into(),
                "/etc/app".into(),
                "/cache/".into(),
                "/t".into(),
            ],
            tmpfs: vec!["/t".into()],
            ..MountRequest::default()
        };
        let (points, created) = resolve_with(&request).expect("resolve");
        assert_eq!(created, vec!["data", "anon2"]);
        let destinations: Vec<&str> = points.iter().map(|p| p.destination.as_str()).collect();
        assert_eq!(destinations, vec!["/cache", "/data"]);
        assert_eq!(points[0].source, "/v/anon2/_data");
    }

    #[test]
    fn volumes_from_inherits_with_the_mode_asked_and_yields_to_own_mounts() {
        let theirs = vec![
            MountPoint {
                r#type: "volume".into(),
                name: "shared".into(),
                destination: "/shared".into(),
                rw: true,
                ..MountPoint::default()
            },
            MountPoint {
                r#type: "bind".into(),
                source: "/host".into(),
                destination: "/mine".into(),
                rw: true,
                ..MountPoint::default()
            },
        ];
        let request = MountRequest {
            binds: vec!["own:/mine".into()],
            volumes_from: vec![(theirs, "ro".into())],
            ..MountRequest::default()
        };
        let (points, _) = resolve_with(&request).expect("resolve");
        assert_eq!(points.len(), 2);
        let shared = points.iter().find(|p| p.name == "shared").expect("shared");
        assert!(!shared.rw, "ro applies to inherited mounts");
        assert_eq!(
            points
                .iter()
                .find(|p| p.destination == "/mine")
                .expect("own")
                .name,
            "own"
        );
        let bad = MountRequest {
            volumes_from: vec![(Vec::new(), "rx".into())],
            ..MountRequest::default()
        };
        assert_eq!(
            resolve_with(&bad).expect_err("mode").to_string(),
            "invalid mode: rx"
        );
    }

    #[test]
    fn mount_api_volumes_follow_validate_mount_config() {
        let mount = |json: &str| -> Mount { serde_json::from_str(json).expect("mount") };
        let request = MountRequest {
            mounts: vec![mount(r#"{"Type":"volume","Target":"/x","ReadOnly":true}"#)],
            ..MountRequest::default()
        };
        assert_eq!(
            resolve_with(&request).expect_err("ro anonymous").to_string(),
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"
        );
        let request = MountRequest {
            mounts: vec![mount(
                r#"{"Type":"volume","Source":"v1","Target":"/x","VolumeOptions":{"NoCopy":true,"DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"tmpfs"}}}}"#,
            )],
            binds: vec!["v2:/x".into()],
            ..MountRequest::default()
        };
        assert_eq!(
            resolve_with(&request).expect_err("dup").to_string(),
            "Duplicate mount point: /x"
        );
        let request = MountRequest {
            mounts: request.mounts.clone(),
            ..MountRequest::default()
        };
        let (points, _) = resolve_with(&request).expect("resolve");
        assert!(!points[0].copy_data);
        assert_eq!(points[0].mode, "z");
    }

    #[test]
    fn bind_and_tmpfs_mounts_are_refused_at_create_with_dockers_texts() {
        let refused = |json: &str| -> String {
            let request = MountRequest {
                binds: vec!["first:/first".into()],
                mounts: vec![serde_json::from_str(json).expect("mount")],
                ..MountRequest::default()
            };
            let mut created = false;
            let err = resolve(&request, Path::new("/v"), &mut |_| {
                created = true;
                Err(invalid("no volume expected".into()))
            })
            .expect_err(json);
            assert!(!created, "{json}: a volume was created before the refusal");
            err.to_string()
        };
        let prefix = "invalid mount config for type";
        assert_eq!(
            refused(r#"{"Type":"bind","Source":"rel","Target":"/x"}"#),
            format!("{prefix} \"bind\": invalid mount path: 'rel' mount path must be absolute")
        );
        assert_eq!(
            refused(r#"{"Type":"bind","Source":"/nonexistent/berth","Target":"/x"}"#),
            format!("{prefix} \"bind\": bind source path does not exist: /nonexistent/berth")
        );
        assert_eq!(
            refused(r#"{"Type":"bind","Target":"/x"}"#),
            format!("{prefix} \"bind\": field Source must not be empty")
        );
        assert_eq!(
            refused(
                r#"{"Type":"bind","Source":"/","Target":"/x","BindOptions":{"Propagation":"sideways"}}"#
            ),
            format!("{prefix} \"bind\": invalid propagation mode: sideways")
        );
        assert_eq!(
            refused(r#"{"Type":"bind","Source":"/","Target":"/x","TmpfsOptions":{}}"#),
            format!("{prefix} \"bind\": field TmpfsOptions must not be specified")
        );
        assert_eq!(
            refused(r#"{"Type":"tmpfs","Source":"/tmp","Target":"/x"}"#),
            format!("{prefix} \"tmpfs\": field Source must not be specified")
        );
        assert_eq!(
            refused(r#"{"Type":"tmpfs","Target":"x"}"#),
            format!("{prefix} \"tmpfs\": invalid mount path: 'x' mount path must be absolute")
        );
        assert_eq!(
            refused(r#"{"Type":"bind","Source":"/","Target":"/"}"#),
            format!("{prefix} \"bind\": invalid specification: destination can't be '/'")
        );
        assert_eq!(
            refused(r#"{"Type":"floppy","Target":"/x"}"#),
            format!("{prefix} \"floppy\": mount type unknown")
        );
        let fine = MountRequest {
            mounts: vec![
                serde_json::from_str(r#"{"Type":"bind","Source":"/","Target":"/host"}"#)
                    .expect("bind"),
                serde_json::from_str(r#"{"Type":"tmpfs","Target":"/t"}"#).expect("tmpfs"),
            ],
            ..MountRequest::default()
        };
        resolve_with(&fine).expect("valid bind and tmpfs mounts");
    }
}
