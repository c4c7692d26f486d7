//! `/_ping`, `/version`, `/info`, and the 404 for unknown routes.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use berth_api::system::{ComponentVersion, PlatformName, SystemInfo, VersionResponse};
use berth_api::version::{ping_headers, PingInfo, MIN_API_VERSION, PING_BODY};
use berth_api::ErrorKind;

use berth_engine::container::Status;

use crate::error::ApiError;
use crate::json;
use crate::{AppState, SERVER_VERSION};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
}

/// `GET`/`HEAD /_ping`: the CLI negotiates its API version from these headers.
async fn ping(method: Method) -> Response<Body> {
    let head = method == Method::HEAD;
    let mut response = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(PING_BODY))
    };
    let headers = response.headers_mut();
    for (name, value) in ping_headers(&PingInfo::new(SERVER_VERSION)) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if head {
        headers.insert("Content-Length", HeaderValue::from_static("0"));
    }
    response
}

fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /version`.
async fn version() -> Response<Body> {
    let api = berth_api::version::MAX_API_VERSION.to_string();
    let engine = ComponentVersion {
        name: "Engine".to_string(),
        version: SERVER_VERSION.to_string(),
        details: Some(
            [
                ("ApiVersion".to_string(), api.clone()),
                ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
                ("Os".to_string(), "linux".to_string()),
                ("Arch".to_string(), architecture().to_string()),
                ("KernelVersion".to_string(), kernel_release()),
                ("Experimental".to_string(), "false".to_string()),
            ]
            .into_iter()
            .collect(),
        ),
    };
    json::ok(&VersionResponse {
        platform: PlatformName {
            name: format!("berth {SERVER_VERSION}"),
        },
        components: Some(vec![engine]),
        version: SERVER_VERSION.to_string(),
        api_version: api,
        min_api_version: MIN_API_VERSION.to_string(),
        git_commit: String::new(),
        go_version: String::new(),
        os: "linux".to_string(),
        arch: architecture().to_string(),
        kernel_version: kernel_release(),
        experimental: false,
        build_time: String::new(),
    })
}

/// `GET /info`: host facts and the engine's counts.
async fn info(State(engine): State<AppState>) -> Response<Body> {
    let mut info = SystemInfo {
        id: String::new(),
        driver: "overlay2".to_string(),
        logging_driver: engine.config.log_driver.clone(),
        cgroup_driver: "cgroupfs".to_string(),
        kernel_version: kernel_release(),
        operating_system: os_release(),
        os_type: "linux".to_string(),
        architecture: std::env::consts::ARCH.to_string(),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get() as i64),
        docker_root_dir: engine.config.data_root.display().to_string(),
        server_version: SERVER_VERSION.to_string(),
        default_runtime: engine.config.default_runtime.clone(),
        live_restore_enabled: true,
        debug: engine.config.debug,
        name: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        index_server_address: "https://index.docker.io/v1/".to_string(),
        ..SystemInfo::default()
    };
    for container in engine.containers.list() {
        info.containers += 1;
        match container.record().state.status {
            Status::Running | Status::Restarting => info.containers_running += 1,
            Status::Paused => info.containers_paused += 1,
            _ => info.containers_stopped += 1,
        }
    }
    // Docker counts images with `all`: every image record, tagged or not.
    if let Ok(images) = engine.images.list(berth_api::Filters::new()).await {
        info.images = images.len() as i64;
    }
    info.cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2".to_string()
    } else {
        "1".to_string()
    };
    // Every non-privileged container gets berth's default seccomp profile (Docker 25+ names
    // its own `builtin`); a private cgroup namespace is the default on cgroup v2.
    let mut security = vec!["name=seccomp,profile=builtin".to_string()];
    if info.cgroup_version == "2" {
        security.push("name=cgroupns".to_string());
    }
    info.security_options = Some(security);
    json::ok(&info)
}

fn os_release() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".to_string())
}

/// Unknown routes: Docker answers 404 `page not found`.
pub async fn not_found(uri: Uri) -> impl IntoResponse {
    let _ = uri;
    (
        StatusCode::NOT_FOUND,
        ApiError::new(ErrorKind::NotFound, "page not found"),
    )
}
