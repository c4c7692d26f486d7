//! Device access rules (linux.resources.devices): runc's default allowed devices, the v1
//! devices.allow/devices.deny writes, and the effective rule set the v2 eBPF filter encodes.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device kind a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    All,
    Char,
    Block,
}

/// One normalised rule; `None` major/minor is the `*` wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u8,
}

impl Rule {
    pub(crate) fn from_spec(d: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::C => Kind::Char,
            LinuxDeviceType::B => Kind::Block,
            // The devices cgroup knows only a, b and c; runc refuses the others here.
            other => {
                return Err(CgroupError::InvalidValue {
                    resource: "linux.resources.devices",
                    reason: format!(
                        "type {:?} is not a cgroup device type (use a, b or c)",
                        other.as_str()
                    ),
                })
            }
        };
        let access = parse_access(d.access().as_deref().unwrap_or(""))?;
        Ok(Rule {
            allow: d.allow(),
            kind,
            major: number(d.major()),
            minor: number(d.minor()),
            access,
        })
    }

    /// The kernel's v1 syntax: `c 1:3 rwm`, `a *:* rwm`.
    pub(crate) fn v1_text(&self) -> String {
        let kind = match self.kind {
            Kind::All => "a",
            Kind::Char => "c",
            Kind::Block => "b",
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |v| v.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// Negative or missing numbers mean "any", as in the spec's JSON where they are optional.
fn number(n: Option<i64>) -> Option<u32> {
    n.and_then(|v| u32::try_from(v).ok())
}

/// runc refuses an empty access string (the kernel would read it as no access at all).
fn parse_access(s: &str) -> Result<u8, CgroupError> {
    if s.is_empty() {
        return Err(CgroupError::InvalidValue {
            resource: "linux.resources.devices",
            reason: "access cannot be empty (use a combination of r, w and m)".into(),
        });
    }
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            other => {
                return Err(CgroupError::InvalidValue {
                    resource: "linux.resources.devices",
                    reason: format!("access {s:?} has {other:?}; only r, w and m are allowed"),
                })
            }
        };
    }
    Ok(bits)
}

fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
    Rule {
        allow: true,
        kind,
        major,
        minor,
        access,
    }
}

/// runc's default allowed devices, appended after the spec's rules: mknod of any device,
/// and the standard nodes /dev/null, random, full, tty, zero, urandom, the pts devices,
/// /dev/ptmx and /dev/net/tun (kept by runc for compatibility).
pub(crate) fn default_allowed() -> Vec<Rule> {
    vec![
        allow(Kind::Char, None, None, ACC_MKNOD),
        allow(Kind::Block, None, None, ACC_MKNOD),
        allow(Kind::Char, Some(1), Some(3), ACC_ALL),
        allow(Kind::Char, Some(1), Some(8), ACC_ALL),
        allow(Kind::Char, Some(1), Some(7), ACC_ALL),
        allow(Kind::Char, Some(5), Some(0), ACC_ALL),
        allow(Kind::Char, Some(1), Some(5), ACC_ALL),
        allow(Kind::Char, Some(1), Some(9), ACC_ALL),
        allow(Kind::Char, Some(136), None, ACC_ALL),
        allow(Kind::Char, Some(5), Some(2), ACC_ALL),
        allow(Kind::Char, Some(10), Some(200), ACC_ALL),
    ]
}

/// The full ordered rule list for a container: deny everything (runc's starting point), the
/// spec's rules in order, then runc's default allowed devices.
pub(crate) fn container_rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    let mut rules = vec![Rule {
        allow: false,
        kind: Kind::All,
        major: None,
        minor: None,
        access: ACC_ALL,
    }];
    for d in spec {
        rules.push(Rule::from_spec(d)?);
    }
    rules.extend(default_allowed());
    Ok(rules)
}

/// The v1 writes, in order: (interface file, value). Rather than replaying the rule list,
/// the state it leads to is written: the default, then each exception, sorted by type and
/// number (wildcards first). The kernel reaches the same state either way, and this is what
/// runc writes, so devices.list reads the same under both runtimes.
pub(crate) fn v1_writes(rules: &[Rule]) -> Vec<(&'static str, String)> {
    let effective = Effective::from_rules(rules);
    let (default_file, exception_file) = if effective.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    let mut exceptions = effective.exceptions;
    let order = |k: Kind| match k {
        Kind::All => 0,
        Kind::Block => 1,
        Kind::Char => 2,
    };
    exceptions.sort_by_key(|x| (order(x.kind), x.major, x.minor));
    let all = Rule {
        allow: effective.default_allow,
        kind: Kind::All,
        major: None,
        minor: None,
        access: ACC_ALL,
    };
    std::iter::once((default_file, all.v1_text()))
        .chain(exceptions.iter().map(|x| (exception_file, x.v1_text())))
        .collect()
}

/// The state the v1 devices controller would reach after the rules are written in order:
/// a default plus exceptions of the opposite verdict. The v2 filter encodes this, so both
/// versions behave alike (including "allow" in a default-allow state punching no holes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Effective {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

impl Effective {
    pub(crate) fn from_rules(rules: &[Rule]) -> Effective {
        let mut e = Effective {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for r in rules {
            e.apply(r);
        }
        e
    }

    /// As the kernel's devcgroup_update_access: `a` resets the default and drops every
    /// exception; a rule agreeing with the default removes access from the exactly matching
    /// exception; a rule disagreeing adds (merges into) an exception.
    fn apply(&mut self, r: &Rule) {
        if r.kind == Kind::All {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return;
        }
        let same = |x: &Rule| x.kind == r.kind && x.major == r.major && x.minor == r.minor;
        if r.allow == self.default_allow {
            if let Some(i) = self.exceptions.iter().position(same) {
                self.exceptions[i].access &= !r.access;
                if self.exceptions[i].access == 0 {
                    self.exceptions.remove(i);
                }
            }
        } else if let Some(x) = self.exceptions.iter_mut().find(|x| same(x)) {
            x.access |= r.access;
        } else {
            self.exceptions.push(*r);
        }
    }

    /// The v1 verdict for one access (`access` is ACC_* bits), used to check the filter.
    #[cfg(test)]
    pub(crate) fn permits(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let hits = |x: &&Rule| {
            x.kind == kind
                && x.major.is_none_or(|m| m == major)
                && x.minor.is_none_or(|m| m == minor)
        };
        if self.default_allow {
            // Any overlap with a deny exception refuses (the kernel's partial match).
            !self
                .exceptions
                .iter()
                .filter(hits)
                .any(|x| x.access & access != 0)
        } else {
            self.exceptions
                .iter()
                .filter(hits)
                .any(|x| access & !x.access == 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn spec_rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: i64,
        minor: i64,
        access: &str,
    ) -> LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .major(major)
            .minor(minor)
            .access(access)
            .build()
            .expect("rule")
    }

    #[test]
    fn v1_writes_deny_all_then_the_allowed_devices_sorted_as_runc() {
        let spec = vec![
            spec_rule(true, LinuxDeviceType::C, 10, 229, "rw"),
            spec_rule(false, LinuxDeviceType::B, 8, 0, "rwm"),
        ];
        let writes = v1_writes(&container_rules(&spec).expect("rules"));
        let text: Vec<String> = writes.iter().map(|(f, v)| format!("{f} {v}")).collect();
        assert_eq!(
            text,
            vec![
                "devices.deny a *:* rwm",
                "devices.allow b *:* m",
                "devices.allow c *:* m",
                "devices.allow c 1:3 rwm",
                "devices.allow c 1:5 rwm",
                "devices.allow c 1:7 rwm",
                "devices.allow c 1:8 rwm",
                "devices.allow c 1:9 rwm",
                "devices.allow c 5:0 rwm",
                "devices.allow c 5:2 rwm",
                "devices.allow c 10:200 rwm",
                "devices.allow c 10:229 rw",
                "devices.allow c 136:* rwm",
            ]
        );
    }

    #[test]
    fn v1_writes_of_a_blacklist_allow_all_then_deny_the_exceptions() {
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build()
            .expect("all");
        let rules = vec![
            Rule::from_spec(&all).expect("rule"),
            Rule::from_spec(&spec_rule(false, LinuxDeviceType::C, 1, 9, "w")).expect("rule"),
        ];
        let writes = v1_writes(&rules);
        assert_eq!(
            writes,
            vec![
                ("devices.allow", "a *:* rwm".to_string()),
                ("devices.deny", "c 1:9 w".to_string())
            ]
        );
    }

    #[test]
    fn bad_access_letters_are_rejected() {
        let spec = vec![spec_rule(true, LinuxDeviceType::C, 1, 3, "rx")];
        let err = container_rules(&spec).expect_err("x is not an access");
        assert!(err.to_string().contains("rx"), "{err}");
    }

    #[test]
    fn fifo_and_unbuffered_types_are_rejected_like_runc() {
        for typ in [LinuxDeviceType::P, LinuxDeviceType::U] {
            let spec = vec![spec_rule(true, typ, 1, 3, "r")];
            let err = container_rules(&spec).expect_err("not a cgroup type");
            assert!(err.to_string().contains("a, b or c"), "{err}");
        }
    }

    #[test]
    fn empty_access_is_rejected_like_runc() {
        let spec = vec![spec_rule(true, LinuxDeviceType::C, 1, 3, "")];
        let err = container_rules(&spec).expect_err("empty access");
        assert!(err.to_string().contains("cannot be empty"), "{err}");
    }

    #[test]
    fn effective_rules_follow_the_last_wildcard() {
        let rules = container_rules(&[]).expect("rules");
        let e = Effective::from_rules(&rules);
        assert!(!e.default_allow);
        assert!(e.permits(Kind::Char, 1, 3, ACC_READ | ACC_WRITE));
        assert!(e.permits(Kind::Char, 136, 7, ACC_WRITE));
        assert!(e.permits(Kind::Block, 8, 0, ACC_MKNOD));
        assert!(!e.permits(Kind::Block, 8, 0, ACC_READ));
        assert!(!e.permits(Kind::Char, 1, 1, ACC_READ));
    }

    #[test]
    fn a_deny_after_an_allow_removes_access_from_the_exception() {
        let spec = vec![
            spec_rule(true, LinuxDeviceType::C, 10, 229, "rwm"),
            spec_rule(false, LinuxDeviceType::C, 10, 229, "w"),
        ];
        let e = Effective::from_rules(&container_rules(&spec).expect("rules"));
        assert!(e.permits(Kind::Char, 10, 229, ACC_READ));
        assert!(!e.permits(Kind::Char, 10, 229, ACC_WRITE));
    }

    #[test]
    fn allow_all_then_deny_is_a_blacklist() {
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwm")
            .build()
            .expect("all");
        let spec = vec![all, spec_rule(false, LinuxDeviceType::B, 8, 0, "w")];
        let mut rules = vec![];
        for d in &spec {
            rules.push(Rule::from_spec(d).expect("rule"));
        }
        let e = Effective::from_rules(&rules);
        assert!(e.default_allow);
        assert!(e.permits(Kind::Block, 8, 0, ACC_READ));
        assert!(!e.permits(Kind::Block, 8, 0, ACC_READ | ACC_WRITE));
        assert!(e.permits(Kind::Char, 4, 4, ACC_ALL));
    }
}
