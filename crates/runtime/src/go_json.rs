//! JSON text in the shape Go's `json.MarshalIndent(v, "", "\t")` gives runtime-spec structs:
//! object keys in the specs-go field declaration order, tab indentation. serde_json's
//! maps are sorted (its preserve_order feature would change every crate in the workspace),
//! so `berth-runtime spec` writes its config.json through this instead.

use std::fmt::Write as _;

use serde_json::Value;

/// Keys in runtime-spec (specs-go) declaration order: Spec, Process, User, Capabilities,
/// Root, Mount/Rlimit/device rules, Linux, Resources, id mappings, hooks. One global rank
/// is enough because where two structs share a key name (`type`, `path`, `uidMappings`,
/// `devices`) their neighbours in this list never meet in one object.
const KEY_ORDER: &[&str] = &[
    // Spec
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
    // Process
    "terminal",
    "consoleSize",
    "user",
    "args",
    "commandLine",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    // User
    "uid",
    "gid",
    "umask",
    "additionalGids",
    // LinuxCapabilities
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
    // LinuxDeviceCgroup (allow, type, major, minor, access), Mount (destination, type,
    // source, options), POSIXRlimit (type, hard, soft), LinuxNamespace (type, path),
    // Root (path, readonly)
    "allow",
    "destination",
    "type",
    "source",
    "options",
    "path",
    "readonly",
    "hard",
    "soft",
    "major",
    "minor",
    "access",
    // Linux
    "uidMappings",
    "gidMappings",
    "sysctl",
    "resources",
    "cgroupsPath",
    "namespaces",
    "devices",
    "seccomp",
    "rootfsPropagation",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
    // LinuxIDMapping
    "containerID",
    "hostID",
    "size",
];

fn rank(key: &str) -> usize {
    KEY_ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(KEY_ORDER.len())
}

/// `value` as Go's MarshalIndent with a tab would write it (keys not in the list come
/// last, sorted).
pub fn to_string_indent(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    let indent = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push('\t');
        }
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            // Stable: keys of equal rank (unknown ones) stay sorted.
            keys.sort_by_key(|k| rank(k));
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                let _ = write!(out, "{}: ", Value::String((*key).clone()));
                write_value(out, &map[key.as_str()], depth + 1);
            }
            indent(out, depth);
            out.push('}');
        }
        // Scalars and empty containers print the same in Go and serde_json.
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_keys_follow_the_runtime_spec_struct_order() {
        let v = json!({"linux": {}, "mounts": [], "hostname": "h", "root": {"readonly": true,
            "path": "rootfs"}, "process": {"cwd": "/", "args": ["sh"], "terminal": true},
            "ociVersion": "1.2.0"});
        let text = to_string_indent(&v);
        let pos = |k: &str| text.find(&format!("\"{k}\"")).expect(k);
        let order = [
            "ociVersion",
            "process",
            "terminal",
            "args",
            "cwd",
            "root",
            "path",
            "readonly",
            "hostname",
            "mounts",
            "linux",
        ];
        for pair in order.windows(2) {
            assert!(pos(pair[0]) < pos(pair[1]), "{pair:?} in {text}");
        }
    }

    #[test]
    fn output_is_go_marshal_indent_with_tabs() {
        let v = json!({"b": [1, "x"], "a": {}, "c": []});
        assert_eq!(
            to_string_indent(&v),
            "{\n\t\"a\": {},\n\t\"b\": [\n\t\t1,\n\t\t\"x\"\n\t],\n\t\"c\": []\n}"
        );
    }

    #[test]
    fn reparses_to_the_same_value() {
        let v = crate::example::example_spec(true);
        let back: Value = serde_json::from_str(&to_string_indent(&v)).expect("valid json");
        assert_eq!(back, v);
    }
}
