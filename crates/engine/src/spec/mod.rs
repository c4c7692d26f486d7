//! Docker's default OCI runtime spec for a container, built from its Config, HostConfig and
//! image config (skeleton).
