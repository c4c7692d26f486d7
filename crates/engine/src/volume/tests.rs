//! The volume service without mounts: persistence, names, filters, reference rules, prune.

use super::*;

fn service(root: &Path) -> VolumeService {
    VolumeService::open(root.to_path_buf(), Arc::new(EventBus::new())).expect("open")
}

fn request(name: &str) -> CreateRequest {
    CreateRequest {
        name: name.to_string(),
        ..CreateRequest::default()
    }
}

fn names(volumes: &[Volume]) -> Vec<&str> {
    volumes.iter().map(|v| v.name.as_str()).collect()
}

#[tokio::test]
async fn volumes_persist_across_reopen_with_labels_and_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volumes = service(dir.path());
    let mut create = request("data");
    create.labels.insert("team".into(), "a".into());
    create.options.insert("type".into(), "tmpfs".into());
    create.options.insert("device".into(), "tmpfs".into());
    let created = volumes.create(create).await.expect("create");
    assert_eq!(created.scope, "local");
    assert_eq!(created.driver, "local");
    assert!(created.created_at.ends_with('Z'), "{}", created.created_at);
    assert_eq!(
        Path::new(&created.mountpoint),
        dir.path().join("data/_data")
    );
    assert!(dir.path().join("data/_data").is_dir());
    // A half-created volume (no record) is a crash leftover and goes at open.
    std::fs::create_dir_all(dir.path().join("half/_data")).expect("leftover");
    let reopened = service(dir.path());
    let again = reopened.inspect("data").await.expect("inspect");
    assert_eq!(again, created);
    assert!(!dir.path().join("half").exists());
    assert_eq!(
        reopened
            .inspect("nope")
            .await
            .expect_err("missing")
            .to_string(),
        "get nope: no such volume"
    );
}

#[tokio::test]
async fn create_checks_names_drivers_and_options_and_reuses_existing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volumes = service(dir.path());
    let err = volumes.create(request("a/b")).await.expect_err("slash");
    assert!(err
        .to_string()
        .starts_with("create a/b: \"a/b\" includes invalid characters"));
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let mut bad = request("ok1");
    bad.options.insert("colour".into(), "red".into());
    assert_eq!(
        volumes.create(bad).await.expect_err("option").to_string(),
        "create ok1: invalid option: \"colour\""
    );
    let mut plugin = request("ok2");
    plugin.driver = "nfs-plugin".into();
    assert_eq!(
        volumes.create(plugin).await.expect_err("driver").kind(),
        ErrorKind::NotFound
    );
    assert!(is_empty_dir(dir.path()), "nothing created");
    let first = volumes.create(request("same")).await.expect("create");
    let second = volumes.create(request("same")).await.expect("again");
    assert_eq!(first.created_at, second.created_at);
    let generated = volumes
        .create(CreateRequest::default())
        .await
        .expect("unnamed");
    assert_eq!(generated.name.len(), 64);
}

#[tokio::test]
async fn referenced_volumes_are_never_removed_or_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volumes = service(dir.path());
    let request = mounts::MountRequest {
        binds: vec!["named:/named".into()],
        volumes: vec!["/anon".into()],
        ..mounts::MountRequest::default()
    };
    let points = volumes.acquire("c1", &request).expect("acquire");
    assert_eq!(points.len(), 2);
    let anonymous = points
        .iter()
        .find(|p| p.destination == "/anon")
        .expect("anon");
    std::fs::write(Path::new(&anonymous.source).join("f"), b"12345").expect("write");
    let err = volumes.remove("named", false).await.expect_err("in use");
    assert_eq!(err.to_string(), "remove named: volume is in use - [c1]");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let all = Filters::parse(r#"{"all":["true"]}"#).expect("filters");
    let (pruned, _) = volumes.prune(&all).await.expect("prune");
    assert!(pruned.is_empty(), "in use: {pruned:?}");
    let dangling = Filters::parse(r#"{"dangling":["true"]}"#).expect("filters");
    assert!(volumes.list(&dangling).await.expect("list").is_empty());

    // The references come back from the records after a restart.
    let reopened = service(dir.path());
    reopened.restore([("c1", points.as_slice(), false)].into_iter());
    assert!(reopened.remove("named", false).await.is_err());

    // Removing the container without -v keeps both; prune then takes only the anonymous one.
    assert!(reopened.release("c1", false).is_empty());
    let volume_dir = Path::new(&anonymous.source).parent().expect("volume dir");
    let held = super::usage::disk_bytes(volume_dir).expect("du");
    let before = super::usage::disk_bytes(dir.path()).expect("du");
    let (pruned, reclaimed) = reopened.prune(&Filters::new()).await.expect("prune");
    assert_eq!(pruned, vec![anonymous.name.clone()]);
    // The disk blocks of the whole volume directory: what `du` of the root loses.
    assert_eq!(reclaimed, held);
    assert_eq!(
        reclaimed,
        before - super::usage::disk_bytes(dir.path()).expect("du")
    );
    assert_eq!(
        names(&reopened.list(&Filters::new()).await.expect("list")),
        vec!["named"]
    );
    let (pruned, _) = reopened.prune(&all).await.expect("prune all");
    assert_eq!(pruned, vec!["named".to_string()]);
    assert!(std::fs::read_dir(dir.path())
        .expect("root")
        .next()
        .is_none());
}

#[tokio::test]
async fn rm_v_removes_only_anonymous_volumes_nothing_else_uses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volumes = service(dir.path());
    let request = mounts::MountRequest {
        binds: vec!["keep:/keep".into(), "/only".into()],
        ..mounts::MountRequest::default()
    };
    let points = volumes.acquire("c1", &request).expect("c1");
    let anonymous = points
        .iter()
        .find(|p| p.destination == "/only")
        .expect("anon")
        .clone();
    let from = mounts::MountRequest {
        volumes_from: vec![(points.clone(), String::new())],
        ..mounts::MountRequest::default()
    };
    volumes.acquire("c2", &from).expect("c2");
    assert!(volumes.release("c1", true).is_empty(), "c2 still uses both");
    assert_eq!(volumes.release("c2", true), vec![anonymous.name.clone()]);
    assert!(volumes.inspect("keep").await.is_ok(), "named volumes stay");
}

#[tokio::test]
async fn list_filters_follow_docker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volumes = service(dir.path());
    let mut labelled = request("web-data");
    labelled.labels.insert("app".into(), "web".into());
    volumes.create(labelled).await.expect("create");
    volumes.create(request("db-data")).await.expect("create");
    let list = |text: &'static str| {
        let volumes = &volumes;
        async move {
            let filters = Filters::parse(text).expect("filters");
            names(&volumes.list(&filters).await.expect("list"))
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(r#"{"label":["app=web"]}"#).await, vec!["web-data"]);
    assert_eq!(list(r#"{"label!":["app"]}"#).await, vec!["db-data"]);
    assert_eq!(list(r#"{"name":["db"]}"#).await, vec!["db-data"]);
    assert_eq!(list(r#"{"driver":["local"]}"#).await.len(), 2);
    assert_eq!(list(r#"{"dangling":["false"]}"#).await.len(), 0);
    let bad = Filters::parse(r#"{"colour":["red"]}"#).expect("filters");
    assert_eq!(
        volumes.list(&bad).await.expect_err("filter").kind(),
        ErrorKind::InvalidArgument
    );
}
