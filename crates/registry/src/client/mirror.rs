//! Registry mirrors as Docker's `registry-mirrors`: pulls from Docker Hub try each mirror
//! in order and fall back to the hub itself; pushes and other registries never use them.

use berth_content::Store;
use berth_oci::Platform;

use super::progress::ProgressSender;
use super::{ClientError, ClientOptions, Credentials, PulledImage, RegistryClient};

/// Whether Docker would consult mirrors for this registry (Docker Hub only).
pub fn mirrors_apply(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// `https://mirror.example:5000/` -> (`mirror.example:5000`, insecure = false).
fn mirror_host(mirror: &str) -> (String, bool) {
    let (rest, insecure) = match mirror.split_once("://") {
        Some((scheme, rest)) => (rest, scheme.eq_ignore_ascii_case("http")),
        None => (mirror, false),
    };
    (rest.trim_end_matches('/').to_owned(), insecure)
}

/// Pulls `repo:reference` from the first of `mirrors` that serves it, else from `host`.
/// Mirror failures are not errors; the registry's own failure is.
#[allow(clippy::too_many_arguments)]
pub async fn pull_with_mirrors(
    host: &str,
    mirrors: &[String],
    credentials: Credentials,
    options: &ClientOptions,
    repo: &str,
    reference: &str,
    platform: &Platform,
    store: &Store,
    progress: Option<&ProgressSender>,
) -> Result<PulledImage, ClientError> {
    for mirror in mirrors {
        let (mirror, insecure) = mirror_host(mirror);
        let mut mirror_options = options.clone();
        if insecure {
            mirror_options.insecure_registries.push(mirror.clone());
        }
        // Mirrors are pull-through caches read anonymously, as Docker does by default.
        let Ok(client) =
            RegistryClient::connect(&mirror, Credentials::Anonymous, mirror_options).await
        else {
            continue;
        };
        if let Ok(pulled) = client
            .pull(repo, reference, platform, store, progress)
            .await
        {
            return Ok(pulled);
        }
    }
    let client = RegistryClient::connect(host, credentials, options.clone()).await?;
    client
        .pull(repo, reference, platform, store, progress)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_are_for_docker_hub_and_parse_like_docker() {
        assert!(mirrors_apply("docker.io"));
        assert!(!mirrors_apply("quay.io"));
        assert_eq!(
            mirror_host("https://m.example:5000/"),
            ("m.example:5000".into(), false)
        );
        assert_eq!(
            mirror_host("http://10.0.0.1:5000"),
            ("10.0.0.1:5000".into(), true)
        );
        assert_eq!(mirror_host("m.example"), ("m.example".into(), false));
    }
}
