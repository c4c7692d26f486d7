//! Docker image references (`busybox`, `localhost:5000/a/b:tag@sha256:...`): the grammar,
//! normalisation and familiar form of docker/distribution's `reference` package, with the
//! error texts the Docker CLI and daemon print.
//!
//! Grammar (distribution/reference, written out here as the contract this parser keeps):
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [domain '/'] path-component ['/' path-component]*
//! domain         := host [':' port-number]
//! host           := domain-name | '[' [a-fA-F0-9:]+ ']'
//! domain-name    := component ['.' component]*   ; component: [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*  ; separator: '.' | '_' | '__' | '-'+
//! tag            := [\w][\w.-]{0,127}
//! digest         := algorithm ':' hex{32,}   ; algorithm: [A-Za-z][A-Za-z0-9]* joined by [-_+.]
//! ```
//! The parser is hand-written, not a regex, but accepts exactly that language with the
//! same leftmost choice: the first path element is a domain when the rest still parses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::digest::{Digest, DigestError};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy Docker Hub ("Docker Index") domain, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name (domain included), in bytes.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag, in bytes.
pub const TAG_LENGTH_MAX: usize = 128;

/// Why a reference was refused. Texts are distribution's, as Docker prints them.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid tag format")]
    InvalidTag,
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// `ParseNormalizedNamed`'s message: `remote_name` includes `library/` for Hub names.
    #[error("invalid reference format: repository name ({remote_name}) must be lowercase")]
    RemoteNameContainsUppercase { remote_name: String },
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexadecimalName { input: String },
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A parsed reference: a repository name with an optional tag and digest.
///
/// `domain` is empty only for references from [`Reference::parse`] without a domain;
/// every normalised reference has one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// What `ParseAnyReference` yields: an image id / digest, or a named reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyReference {
    Digest(Digest),
    Named(Reference),
}

impl Reference {
    /// distribution's `Parse`: the grammar only, no normalisation (`busybox` has no domain).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let Some(parts) = match_reference(s) else {
            if s.is_empty() {
                return Err(ReferenceError::NameEmpty);
            }
            if match_reference(&s.to_lowercase()).is_some() {
                return Err(ReferenceError::NameContainsUppercase);
            }
            return Err(ReferenceError::InvalidFormat);
        };
        if parts.name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = parts.digest.map(Digest::parse).transpose()?;
        Ok(Reference {
            domain: parts.domain.to_owned(),
            path: parts.path.to_owned(),
            tag: parts.tag.map(str::to_owned),
            digest,
        })
    }

    /// distribution's `ParseNormalizedNamed`: what `docker pull NAME` accepts. Adds
    /// `docker.io` and `library/` for Hub names, maps `index.docker.io` to `docker.io`,
    /// refuses 64-hex ids and uppercase repository names with Docker's messages. Does
    /// not add a default tag (see [`Reference::parse_docker`]).
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_identifier(s) {
            return Err(ReferenceError::HexadecimalName {
                input: s.to_owned(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(name, _)| name);
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::RemoteNameContainsUppercase {
                remote_name: remote_name.to_owned(),
            });
        }
        Reference::parse(&format!("{domain}/{remainder}"))
    }

    /// distribution's `ParseDockerRef`: normalised, then either digested (a tag next to a
    /// digest is dropped) or tagged (`latest` added when there is neither).
    pub fn parse_docker(s: &str) -> Result<Reference, ReferenceError> {
        let named = Reference::parse_normalized(s)?;
        if named.digest.is_some() {
            return Ok(Reference { tag: None, ..named });
        }
        Ok(named.with_default_tag())
    }

    /// distribution's `ParseAnyReference`: a bare 64-hex id or a valid digest is an
    /// image id; anything else is parsed as a normalised name.
    pub fn parse_any(s: &str) -> Result<AnyReference, ReferenceError> {
        if is_identifier(s) {
            let digest = Digest::parse(&format!("sha256:{s}"))?;
            return Ok(AnyReference::Digest(digest));
        }
        if let Ok(digest) = Digest::parse(s) {
            return Ok(AnyReference::Digest(digest));
        }
        Reference::parse_normalized(s).map(AnyReference::Named)
    }

    /// `domain/path` (or just `path` when there is no domain).
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True when the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// distribution's `TagNameOnly`: adds `latest` when neither tag nor digest is set.
    pub fn with_default_tag(self) -> Reference {
        if self.is_name_only() {
            return Reference {
                tag: Some(DEFAULT_TAG.to_owned()),
                ..self
            };
        }
        self
    }

    /// The same repository with `tag` (validated) and without any digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest`, keeping the tag as Docker's `WithDigest` does.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Only the repository name, without tag or digest.
    pub fn repository(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// distribution's `FamiliarName`: drops `docker.io/` and, for official images with
    /// no further namespace, `library/` (`docker.io/library/busybox` -> `busybox`).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// distribution's `FamiliarString`: the familiar name plus `:tag` and `@digest`.
    pub fn familiar_string(&self) -> String {
        let mut out = self.familiar_name();
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The full string (`docker.io/library/busybox:latest`), distribution's `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    /// Same as [`Reference::parse_normalized`], what users type.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

impl Serialize for Reference {
    /// As the full string (`docker.io/library/busybox:latest`).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    /// With [`Reference::parse`] (no normalisation), so that what was stored comes back
    /// exactly; normalised references are stored in full form and so stay normalised.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// distribution's `splitDockerDomain`: decides whether the first element is a domain.
fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, remote) = match name.split_once('/') {
        None => {
            return (
                DEFAULT_DOMAIN.to_owned(),
                format!("{OFFICIAL_REPO_PREFIX}{name}"),
            )
        }
        Some((first, rest)) if first == LEGACY_DEFAULT_DOMAIN => (DEFAULT_DOMAIN, rest),
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.to_lowercase() != first =>
        {
            (first, rest)
        }
        Some(_) => (DEFAULT_DOMAIN, name),
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain.to_owned(), format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain.to_owned(), remote.to_owned())
}

/// The pieces of a string that matches the reference grammar.
struct ReferenceParts<'a> {
    name: &'a str,
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

fn match_reference(s: &str) -> Option<ReferenceParts<'_>> {
    let (name_and_tag, digest) = match s.split_once('@') {
        Some((before, after)) => (before, Some(after)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        if !is_reference_digest(digest) {
            return None;
        }
    }
    // A ':' after the last '/' can only start the tag: path components never hold ':'
    // and a domain's port is always followed by '/'.
    let last_slash = name_and_tag.rfind('/');
    let (name, tag) = match name_and_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
        }
        _ => (name_and_tag, None),
    };
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return None;
        }
    }
    let (domain, path) = match_name(name)?;
    Some(ReferenceParts {
        name,
        domain,
        path,
        tag,
        digest,
    })
}

/// Splits a name into (domain, path); the domain is empty when the first element is
/// not one or when the rest would not parse as a path (leftmost-first regex choice).
fn match_name(name: &str) -> Option<(&str, &str)> {
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain(first) && is_path(rest) {
            return Some((first, rest));
        }
    }
    is_path(name).then_some(("", name))
}

/// Whether `s` is a repository path in the reference grammar (no domain): components of
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`. The registry server validates
/// `/v2/<name>/` with it.
pub fn is_path(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

fn is_path_component(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &s[start..i];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

fn is_domain(s: &str) -> bool {
    let (host_ok, rest) = if let Some(inner) = s.strip_prefix('[') {
        let Some((address, rest)) = inner.split_once(']') else {
            return false;
        };
        let address_ok =
            !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (address_ok, rest)
    } else {
        let (host, rest) = s.find(':').map_or((s, ""), |i| s.split_at(i));
        (host.split('.').all(is_domain_component), rest)
    };
    let port_ok = rest.is_empty()
        || rest
            .strip_prefix(':')
            .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn is_domain_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `s` is a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(s: &str) -> bool {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(&first) if is_word_byte(first) && bytes.len() <= TAG_LENGTH_MAX => bytes
            .iter()
            .all(|&b| is_word_byte(b) || b == b'.' || b == b'-'),
        _ => false,
    }
}

/// The digest shape the reference grammar allows (go-digest validates it afterwards).
fn is_reference_digest(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        let bytes = c.as_bytes();
        matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic())
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(component_ok)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// distribution's `anchoredIdentifierRegexp`: exactly 64 lowercase hex characters.
fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
