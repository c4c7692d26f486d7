//! Image platforms (`linux/arm64/v8`): `--platform` parsing, normalisation, the host
//! platform, and matching/ordering for manifest-list selection, following containerd's
//! `platforms` package, which Docker uses for the same jobs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a `--platform` string was refused (containerd's texts, without the errdefs suffix).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PlatformError {
    #[error("{specifier:?}: wildcards not yet supported")]
    Wildcard { specifier: String },
    #[error(
        "{component:?} is an invalid component of {specifier:?}: platform specifier component must match \"^[A-Za-z0-9_-]+$\""
    )]
    InvalidComponent {
        component: String,
        specifier: String,
    },
    #[error("{specifier:?}: unknown operating system or architecture")]
    Unknown { specifier: String },
    #[error("{specifier:?}: cannot parse platform specifier")]
    TooManyComponents { specifier: String },
}

/// An OCI platform as it appears in image indexes and image configs. Empty strings mean
/// "not set", as in the Go structs (and are omitted from JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.to_owned(),
            ..Platform::default()
        }
    }

    /// Parses a `--platform` specifier like containerd's `platforms.Parse`: `os`,
    /// `arch`, `os/arch`, `os/arch/variant`, with `os(version)` allowed for the os.
    /// A lone os gets the host architecture; a lone architecture gets the host os.
    /// Names are normalised (`aarch64` -> `arm64`, `x86_64` -> `amd64`, `armhf` ->
    /// `arm/v7`); `arm64` with an explicit empty variant becomes `v8`.
    pub fn parse(specifier: &str) -> Result<Platform, PlatformError> {
        if specifier.contains('*') {
            return Err(PlatformError::Wildcard {
                specifier: specifier.to_owned(),
            });
        }
        let (first, os_version, rest) = split_os_version(specifier);
        let parts: Vec<&str> = std::iter::once(first)
            .chain(rest.map(|r| r.split('/')).into_iter().flatten())
            .collect();
        for part in &parts {
            if part.is_empty()
                || !part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(PlatformError::InvalidComponent {
                    component: (*part).to_owned(),
                    specifier: specifier.to_owned(),
                });
            }
        }
        let mut p = Platform {
            os_version: os_version.to_owned(),
            ..Platform::default()
        };
        match parts.as_slice() {
            [single] => {
                let os = normalize_os(single);
                if is_known_os(&os) {
                    let host = Platform::host();
                    p.os = os;
                    p.architecture = host.architecture;
                    if p.architecture == "arm" && host.variant != "v7" {
                        p.variant = host.variant;
                    }
                    return Ok(p);
                }
                (p.architecture, p.variant) = normalize_arch(single, "");
                if p.architecture == "arm" && p.variant == "v7" {
                    p.variant.clear();
                }
                if !is_known_arch(&p.architecture) {
                    return Err(PlatformError::Unknown {
                        specifier: specifier.to_owned(),
                    });
                }
                p.os = Platform::host().os;
            }
            [os, arch] => {
                p.os = normalize_os(os);
                (p.architecture, p.variant) = normalize_arch(arch, "");
                if p.architecture == "arm" && p.variant == "v7" {
                    p.variant.clear();
                }
            }
            [os, arch, variant] => {
                p.os = normalize_os(os);
                (p.architecture, p.variant) = normalize_arch(arch, variant);
                if p.architecture == "arm64" && p.variant.is_empty() {
                    p.variant = "v8".to_owned();
                }
            }
            _ => {
                return Err(PlatformError::TooManyComponents {
                    specifier: specifier.to_owned(),
                })
            }
        }
        Ok(p)
    }

    /// containerd's `Normalize`: canonical os, architecture and variant names (arm
    /// defaults to `v7`, arm64's `v8` is dropped as the default), for comparisons.
    pub fn normalized(&self) -> Platform {
        let (architecture, variant) = normalize_arch(&self.architecture, &self.variant);
        Platform {
            os: normalize_os(&self.os),
            architecture,
            variant,
            ..self.clone()
        }
    }

    /// The platform this binary was built for (arm hosts are assumed to be `v7`:
    /// reading the CPU variant from /proc/cpuinfo is the caller's job, this crate does no I/O).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86" => "386",
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "powerpc" => "ppc",
            "loongarch64" => "loong64",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "sparc64" => "sparc64",
            other => other,
        };
        let os = normalize_os(std::env::consts::OS);
        let variant = if architecture == "arm" { "v7" } else { "" };
        Platform::new(&os, architecture, variant)
    }
}

impl fmt::Display for Platform {
    /// containerd's `Format`: `os/arch[/variant]`, or `unknown` when the os is unset.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.os.is_empty() {
            return f.write_str("unknown");
        }
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

/// Splits `os(version)/rest` into its os, version and remaining components.
fn split_os_version(specifier: &str) -> (&str, &str, Option<&str>) {
    let (first, rest) = match specifier.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (specifier, None),
    };
    if let Some(open) = first.find('(') {
        if let Some(inner) = first[open + 1..].strip_suffix(')') {
            let version_ok = inner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if version_ok {
                return (&first[..open], inner, rest);
            }
        }
    }
    (first, "", rest)
}

fn normalize_os(os: &str) -> String {
    let os = os.to_lowercase();
    if os == "macos" {
        return "darwin".to_owned();
    }
    os
}

/// containerd's `normalizeArch`.
fn normalize_arch(architecture: &str, variant: &str) -> (String, String) {
    let (architecture, variant) = (architecture.to_lowercase(), variant.to_lowercase());
    let (a, v): (&str, &str) = match architecture.as_str() {
        "i386" => ("386", ""),
        "x86_64" | "x86-64" | "amd64" => ("amd64", if variant == "v1" { "" } else { &variant }),
        "aarch64" | "arm64" => (
            "arm64",
            match variant.as_str() {
                "8" | "v8" | "v8.0" => "",
                "9" | "9.0" | "v9.0" => "v9",
                other => other,
            },
        ),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => (
            "arm",
            match variant.as_str() {
                "" | "7" => "v7",
                "5" => "v5",
                "6" => "v6",
                "8" => "v8",
                other => other,
            },
        ),
        other => (other, &variant),
    };
    (a.to_owned(), v.to_owned())
}

fn is_known_os(os: &str) -> bool {
    const KNOWN: &[&str] = &[
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
        "zos",
    ];
    KNOWN.contains(&os)
}

fn is_known_arch(architecture: &str) -> bool {
    const KNOWN: &[&str] = &[
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "ppc64",
        "ppc64le",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    ];
    KNOWN.contains(&architecture)
}

/// Selects and orders platforms for a wanted one, like containerd's `platforms.Only`
/// (the platform plus the ones it can run: amd64 runs 386 and lower amd64 levels, arm64
/// runs arm v8 down to v5, arm vN runs lower arm variants) or `OnlyStrict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformMatcher {
    /// Acceptable platforms, normalised, best first.
    ordered: Vec<Platform>,
}

impl PlatformMatcher {
    /// `platforms.Only`: the platform and the ones it can also run, best first.
    pub fn only(wanted: &Platform) -> PlatformMatcher {
        PlatformMatcher {
            ordered: platform_vector(wanted.normalized()),
        }
    }

    /// `platforms.OnlyStrict`: exactly this platform (after normalisation).
    pub fn strict(wanted: &Platform) -> PlatformMatcher {
        PlatformMatcher {
            ordered: vec![wanted.normalized()],
        }
    }

    /// Whether a candidate (e.g. a manifest-list entry) is acceptable.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.rank(candidate).is_some()
    }

    /// Position of the candidate in preference order (0 is best), `None` if refused.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        let candidate = candidate.normalized();
        self.ordered.iter().position(|want| {
            want.os == candidate.os
                && want.architecture == candidate.architecture
                && want.variant == candidate.variant
                && os_version_matches(want, &candidate)
        })
    }

    /// containerd's `Less`: true when `a` is preferred over `b` (refused ones sort last).
    pub fn less(&self, a: &Platform, b: &Platform) -> bool {
        match (self.rank(a), self.rank(b)) {
            (Some(ra), Some(rb)) => ra < rb,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Index of the best candidate; ties keep the earliest, as Docker's stable sort does.
    pub fn best<'a>(&self, candidates: impl IntoIterator<Item = &'a Platform>) -> Option<usize> {
        candidates
            .into_iter()
            .enumerate()
            .filter_map(|(index, p)| self.rank(p).map(|rank| (rank, index)))
            .min()
            .map(|(_, index)| index)
    }
}

/// Windows images must match the host build (major.minor.build prefix); others ignore it.
fn os_version_matches(want: &Platform, candidate: &Platform) -> bool {
    if want.os != "windows" || want.os_version.is_empty() || candidate.os_version.is_empty() {
        return true;
    }
    let prefix = |v: &str| v.split('.').take(3).collect::<Vec<_>>().join(".");
    prefix(&want.os_version) == prefix(&candidate.os_version)
}

/// Highest amd64 micro-architecture level and arm variant that exist; fallbacks are only
/// generated up to these, so `linux/arm/v9999999` cannot make a huge vector (containerd
/// loops down from any number: found by the `platform_parse` fuzz target).
const MAX_AMD64_LEVEL: u32 = 4;
const MAX_ARM_VARIANT: u32 = 8;

/// containerd's `platformVector`: the wanted platform then the compatible fallbacks.
fn platform_vector(p: Platform) -> Vec<Platform> {
    let mut vector = vec![p.clone()];
    let level = |variant: &str| {
        variant
            .strip_prefix('v')
            .and_then(|n| n.parse::<u32>().ok())
    };
    match p.architecture.as_str() {
        "amd64" => {
            if let Some(version) = level(&p.variant).filter(|v| *v > 1) {
                for lower in (1..version.min(MAX_AMD64_LEVEL + 1)).rev() {
                    let variant = if lower == 1 {
                        String::new()
                    } else {
                        format!("v{lower}")
                    };
                    vector.push(Platform {
                        variant,
                        ..p.clone()
                    });
                }
            }
            vector.push(Platform {
                architecture: "386".to_owned(),
                variant: String::new(),
                ..p.clone()
            });
        }
        "arm" => {
            if let Some(version) = level(&p.variant).filter(|v| *v > 5) {
                for lower in (5..version.min(MAX_ARM_VARIANT + 1)).rev() {
                    vector.push(Platform {
                        variant: format!("v{lower}"),
                        ..p.clone()
                    });
                }
            }
        }
        "arm64" => {
            let variant = if p.variant.is_empty() {
                "v8".to_owned()
            } else {
                p.variant.clone()
            };
            vector.extend(platform_vector(Platform {
                architecture: "arm".to_owned(),
                variant,
                ..p.clone()
            }));
        }
        _ => {}
    }
    vector
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
