//! The secret service's verbs against a temporary data root.

use std::collections::BTreeMap;

use berth_api::secret::{SecretFileTarget, SecretReference, SecretSpec};
use berth_api::Filters;

use super::*;

fn spec(name: &str, data: &[u8]) -> SecretSpec {
    SecretSpec {
        name: name.to_string(),
        data: Some(BASE64.encode(data)),
        ..SecretSpec::default()
    }
}

fn grep_tree(root: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
    }
    false
}

#[test]
fn create_stores_no_plaintext_and_inspect_shows_no_data() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    let id = service
        .create(spec("db_password", b"s3cr3t-plaintext"))
        .expect("create");
    assert_eq!(id.len(), 25);
    assert!(!grep_tree(root.path(), b"s3cr3t-plaintext"));
    let secret = service.inspect("db_password").expect("inspect");
    assert_eq!(secret.id, id);
    assert_eq!(secret.version.index, 1);
    assert!(secret.spec.data.is_none());
    let text = serde_json::to_string(&secret).expect("json");
    assert!(!text.contains("Data"), "{text}");
}

#[test]
fn secrets_survive_a_reopen_and_decrypt() {
    let root = tempfile::tempdir().expect("tempdir");
    let id = SecretService::open(root.path())
        .expect("open")
        .create(spec("tls", b"key material"))
        .expect("create");
    let reopened = SecretService::open(root.path()).expect("reopen");
    assert_eq!(
        reopened.inspect(&id[..6]).expect("by prefix").spec.name,
        "tls"
    );
    let dir = secrets_dir(root.path());
    let record = store::read(&dir, &id).expect("record");
    let key = crypto::DaemonKey::load(&dir).expect("key");
    let plain = key
        .open(&id, &record.sealed().expect("sealed"))
        .expect("open");
    assert_eq!(plain.as_slice(), b"key material");
}

#[test]
fn duplicate_names_conflict_and_bad_names_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    service.create(spec("a", b"1")).expect("create");
    let error = service.create(spec("a", b"2")).expect_err("conflict");
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(error.to_string(), "secret a already exists");
    for bad in ["", "-a", "a b", "a/b", &"x".repeat(65)] {
        let error = service.create(spec(bad, b"1")).expect_err("invalid");
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
}

#[test]
fn empty_and_oversized_data_are_refused_with_swarms_text() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    for data in [Vec::new(), vec![b'x'; MAX_SECRET_SIZE]] {
        let error = service.create(spec("big", &data)).expect_err("refused");
        assert!(error
            .to_string()
            .starts_with("secret data must be larger than 0"));
    }
}

#[test]
fn list_filters_by_name_prefix_names_id_and_label() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    let mut labelled = spec("app-key", b"1");
    labelled.labels = Some(BTreeMap::from([("env".to_string(), "prod".to_string())]));
    let app = service.create(labelled).expect("create");
    service.create(spec("app-cert", b"2")).expect("create");
    service.create(spec("db", b"3")).expect("create");
    let names = |filters: &Filters| -> Vec<String> {
        service
            .list(filters)
            .expect("list")
            .into_iter()
            .map(|s| s.spec.name)
            .collect()
    };
    assert_eq!(names(&Filters::new()), ["app-cert", "app-key", "db"]);
    let mut by_name = Filters::new();
    by_name.add("name", "app");
    assert_eq!(names(&by_name), ["app-cert", "app-key"]);
    let mut exact = Filters::new();
    exact.add("names", "app");
    assert!(names(&exact).is_empty());
    let mut by_label = Filters::new();
    by_label.add("label", "env=prod");
    assert_eq!(names(&by_label), ["app-key"]);
    let mut by_id = Filters::new();
    by_id.add("id", &app[..5]);
    assert_eq!(names(&by_id), ["app-key"]);
    let mut unknown = Filters::new();
    unknown.add("driver", "x");
    assert!(service.list(&unknown).is_err());
}

#[test]
fn update_changes_labels_only_and_checks_the_version() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    service.create(spec("k", b"v")).expect("create");
    let mut new_spec = SecretSpec {
        name: "k".to_string(),
        labels: Some(BTreeMap::from([("a".to_string(), "b".to_string())])),
        ..SecretSpec::default()
    };
    let stale = service.update("k", 7, new_spec.clone()).expect_err("stale");
    assert_eq!(stale.to_string(), "update out of sequence");
    service.update("k", 1, new_spec.clone()).expect("update");
    let secret = service.inspect("k").expect("inspect");
    assert_eq!(secret.version.index, 2);
    assert_eq!(secret.spec.labels.expect("labels")["a"], "b");
    new_spec.data = Some(BASE64.encode(b"other"));
    let refused = service.update("k", 2, new_spec).expect_err("data change");
    assert_eq!(refused.to_string(), "only updates to Labels are allowed");
}

#[test]
fn remove_refuses_a_secret_containers_use() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    let id = service.create(spec("k", b"v")).expect("create");
    let users = |secret: &str| {
        if secret == id {
            vec!["web".to_string()]
        } else {
            Vec::new()
        }
    };
    let error = service.remove("k", users).expect_err("in use");
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert!(error.to_string().contains("web"));
    service.remove("k", |_| Vec::new()).expect("remove");
    assert_eq!(
        service.inspect("k").expect_err("gone").to_string(),
        "secret k not found"
    );
    assert!(SecretService::open(root.path())
        .expect("reopen")
        .inspect(&id)
        .is_err());
}

#[test]
fn references_resolve_to_ids_with_swarms_defaults() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    let id = service.create(spec("db", b"v")).expect("create");
    let mut references = vec![
        SecretReference {
            secret_name: "db".to_string(),
            ..SecretReference::default()
        },
        SecretReference {
            secret_name: "db".to_string(),
            file: Some(SecretFileTarget {
                name: "copy".to_string(),
                uid: "1000".to_string(),
                gid: String::new(),
                mode: 0o400,
            }),
            ..SecretReference::default()
        },
    ];
    resolve_references(root.path(), &mut references).expect("resolve");
    let first = references[0].file.clone().expect("file");
    assert_eq!(references[0].secret_id, id);
    assert_eq!(
        (first.name.as_str(), first.uid.as_str(), first.mode),
        ("db", "0", 0o444)
    );
    let second = references[1].file.clone().expect("file");
    assert_eq!((second.uid.as_str(), second.gid.as_str()), ("1000", "0"));
}

#[test]
fn references_to_missing_secrets_or_twice_one_target_fail() {
    let root = tempfile::tempdir().expect("tempdir");
    let service = SecretService::open(root.path()).expect("open");
    service.create(spec("db", b"v")).expect("create");
    let reference = |name: &str| SecretReference {
        secret_name: name.to_string(),
        ..SecretReference::default()
    };
    let missing = resolve_references(root.path(), &mut [reference("nope")]);
    assert_eq!(
        missing.expect_err("missing").to_string(),
        "secret nope not found"
    );
    let twice = resolve_references(root.path(), &mut [reference("db"), reference("db")]);
    assert!(twice
        .expect_err("twice")
        .to_string()
        .contains("more than once"));
    let mut bad_mode = reference("db");
    bad_mode.file = Some(SecretFileTarget {
        mode: 0o4755,
        ..SecretFileTarget::default()
    });
    assert!(resolve_references(root.path(), &mut [bad_mode]).is_err());
}
