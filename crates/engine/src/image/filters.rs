//! `GET /images/json` and `/images/prune` filters with Docker's semantics: `dangling`,
//! `label` (`key` or `key=value`, `label!=` for prune), `before` / `since` (an image's
//! creation time), `reference` (Go `path.Match` globs on the familiar name, with or
//! without the tag) and `until` (prune, a timestamp or duration).

use std::collections::BTreeMap;

use berth_api::Filters;
use berth_oci::Reference;

use super::ImageError;

/// Filters accepted by `GET /images/json` (Docker's `acceptedImageFilterTags`).
pub const LIST_FILTERS: &[&str] = &["dangling", "label", "before", "since", "reference", "until"];
/// Filters accepted by `POST /images/prune`.
pub const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

/// Parsed list filters; `before`/`since` are already resolved to creation times.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub dangling: Option<bool>,
    pub labels: Filters,
    pub before: Option<i64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub references: Vec<String>,
}

/// What a filter looks at in one image.
pub struct Candidate<'a> {
    pub references: &'a [Reference],
    pub labels: &'a BTreeMap<String, String>,
    pub created: i64,
}

impl ListFilters {
    /// Parses `filters`; `created_of` resolves the image named by `before`/`since`.
    pub fn parse(
        filters: &Filters,
        accepted: &[&str],
        mut created_of: impl FnMut(&str) -> Result<i64, ImageError>,
    ) -> Result<ListFilters, ImageError> {
        filters.validate(accepted)?;
        let dangling = if filters.contains("dangling") {
            Some(filters.bool_or("dangling", false)?)
        } else {
            None
        };
        let mut labels = Filters::new();
        for value in filters.values("label") {
            labels.add("label", value);
        }
        for value in filters.values("label!") {
            labels.add("label!", value);
        }
        let mut one = |name: &str| -> Result<Option<i64>, ImageError> {
            filters
                .values(name)
                .first()
                .map(|v| created_of(v))
                .transpose()
        };
        let before = one("before")?;
        let since = one("since")?;
        let until = filters
            .values("until")
            .first()
            .map(|v| {
                parse_until(v, now_unix()).ok_or_else(|| ImageError::FilterValue {
                    filter: "until".into(),
                    value: (*v).to_string(),
                })
            })
            .transpose()?;
        Ok(ListFilters {
            dangling,
            labels,
            before,
            since,
            until,
            references: filters
                .values("reference")
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    pub fn matches(&self, image: &Candidate<'_>) -> bool {
        let tagged = image.references.iter().any(|r| r.digest().is_none());
        if let Some(dangling) = self.dangling {
            if dangling == tagged {
                return false;
            }
        }
        if !self.labels.match_key_values("label", image.labels) {
            return false;
        }
        if self.labels.contains("label!") {
            let mut negated = Filters::new();
            for v in self.labels.values("label!") {
                negated.add("label", v);
            }
            if negated.match_key_values("label", image.labels) {
                return false;
            }
        }
        if self.before.is_some_and(|t| image.created >= t)
            || self.since.is_some_and(|t| image.created <= t)
            || self.until.is_some_and(|t| image.created >= t)
        {
            return false;
        }
        if !self.references.is_empty() {
            let hit = self.references.iter().any(|pattern| {
                image
                    .references
                    .iter()
                    .any(|r| reference_matches(pattern, r))
            });
            if !hit {
                return false;
            }
        }
        true
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Docker's `reference.FamiliarMatch`: the pattern against the familiar string, then
/// against the familiar name alone.
pub fn reference_matches(pattern: &str, reference: &Reference) -> bool {
    glob_match(pattern, &reference.familiar_string())
        || glob_match(pattern, &reference.familiar_name())
}

/// Go's `path.Match`: `*` and `?` never match `/`; `[...]` classes with ranges and `^`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len())
            .take_while(|&i| i == 0 || n[i - 1] != '/')
            .any(|i| glob_at(&p[1..], &n[i..])),
        Some('?') => n.first().is_some_and(|c| *c != '/') && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(c) = n.first() else { return false };
            match class_match(&p[1..], *c) {
                Some((hit, rest)) => hit && *c != '/' && glob_at(rest, &n[1..]),
                None => false,
            }
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(ch) => n.first() == Some(ch) && glob_at(&p[1..], &n[1..]),
    }
}

/// Matches `c` against the class starting after `[`; returns the rest after `]`.
fn class_match(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negated, mut i) = match p.first() {
        Some('^') => (true, 1),
        _ => (false, 0),
    };
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negated, &p[i + 1..]));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= lo <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    None
}

/// Docker's `until`: a Unix timestamp (with fraction), an RFC 3339 time, or a Go duration
/// counted back from `now`.
pub fn parse_until(value: &str, now: i64) -> Option<i64> {
    if let Some((secs, _)) = berth_api::time::parse_rfc3339(value) {
        return Some(secs);
    }
    if let Ok(secs) = value.split('.').next().unwrap_or("").parse::<i64>() {
        if value
            .split('.')
            .nth(1)
            .is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()))
        {
            return Some(secs);
        }
    }
    parse_go_duration(value).map(|d| now - d)
}

/// Whole seconds of a Go duration such as `24h`, `1h30m`, `90s`.
fn parse_go_duration(value: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = value.chars().peekable();
    if value.is_empty() {
        return None;
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let n: f64 = number.parse().ok()?;
        number.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
    }
    if !number.is_empty() {
        return None;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(s: &str) -> Reference {
        Reference::parse_docker(s).expect("reference")
    }

    #[test]
    fn reference_filter_matches_familiar_names_like_docker() {
        assert!(reference_matches("busybox", &named("busybox:latest")));
        assert!(reference_matches("busybox:lat*", &named("busybox")));
        assert!(reference_matches(
            "localhost:5000/*",
            &named("localhost:5000/bb:1")
        ));
        assert!(!reference_matches("busy", &named("busybox")));
        assert!(!reference_matches("*", &named("localhost:5000/bb")));
        assert!(reference_matches("[a-c]usybox", &named("busybox")));
        assert!(!reference_matches("[^b]usybox", &named("busybox")));
    }

    #[test]
    fn dangling_label_and_time_filters_select_images() {
        let mut filters = Filters::new();
        filters.add("dangling", "true");
        filters.add("label", "a=1");
        let parsed = ListFilters::parse(&filters, LIST_FILTERS, |_| Ok(0)).expect("parse");
        let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let no_refs: Vec<Reference> = Vec::new();
        let tags = vec![named("busybox")];
        let dangling = Candidate {
            references: &no_refs,
            labels: &labels,
            created: 5,
        };
        assert!(parsed.matches(&dangling));
        let tagged = Candidate {
            references: &tags,
            ..dangling
        };
        assert!(!parsed.matches(&tagged));

        let mut filters = Filters::new();
        filters.add("before", "x");
        filters.add("since", "y");
        let parsed = ListFilters::parse(&filters, LIST_FILTERS, |name| {
            Ok(if name == "x" { 10 } else { 3 })
        })
        .expect("parse");
        let at = |created| Candidate {
            references: &tags,
            labels: &labels,
            created,
        };
        assert!(parsed.matches(&at(5)));
        assert!(!parsed.matches(&at(10)));
        assert!(!parsed.matches(&at(3)));
    }

    #[test]
    fn unknown_filters_and_bad_values_are_refused() {
        let mut filters = Filters::new();
        filters.add("colour", "red");
        assert!(ListFilters::parse(&filters, LIST_FILTERS, |_| Ok(0)).is_err());
        let mut filters = Filters::new();
        filters.add("dangling", "maybe");
        assert!(ListFilters::parse(&filters, LIST_FILTERS, |_| Ok(0)).is_err());
    }

    #[test]
    fn until_takes_timestamps_and_durations() {
        assert_eq!(parse_until("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_until("1700000000.5", 0), Some(1_700_000_000));
        assert_eq!(parse_until("24h", 100_000), Some(100_000 - 86_400));
        assert_eq!(parse_until("1h30m", 10_000), Some(10_000 - 5_400));
        assert_eq!(parse_until("2023-01-02T03:04:05Z", 0), Some(1_672_628_645));
        assert_eq!(parse_until("soon", 0), None);
    }
}
