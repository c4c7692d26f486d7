//! The trust policy at pull time: berthd reads the policy file at every pull (edits apply
//! without a restart; a broken file refuses pulls instead of silently trusting), and a pull
//! the policy constrains fetches exactly the digest whose signatures it verified, whose
//! signatures are then kept for create's check ([`super::local`]).

use berth_oci::Reference;
use berth_registry::client::Credentials;

use super::local::Verified;
use super::policy::Policy;
use super::registry::{enforce, Target};
use crate::image::{ImageError, ImageService};

impl ImageService {
    /// What the pull of `reference` must fetch: `tag_or_digest` unchanged when the policy
    /// asks for nothing, the verified digest (with its signatures, to keep once the pull
    /// succeeds) when it asks for signatures; an error when it refuses the image.
    pub(crate) async fn trusted_pull_target(
        &self,
        reference: &Reference,
        tag_or_digest: &str,
        credentials: &Credentials,
    ) -> Result<(String, Option<Verified>), ImageError> {
        let path = self.signature_policy.clone();
        let policy = tokio::task::spawn_blocking(move || Policy::load(&path)).await??;
        let target = Target {
            host: reference.domain().to_string(),
            path: reference.path().to_string(),
            tag_or_digest: tag_or_digest.to_string(),
        };
        let verified = enforce(
            &policy,
            &target,
            credentials.clone(),
            &self.registry_options,
            &self.inner.content,
        )
        .await?;
        let target = verified
            .as_ref()
            .map_or_else(|| tag_or_digest.to_string(), |v| v.digest.to_string());
        Ok((target, verified))
    }
}
