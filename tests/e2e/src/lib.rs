//! Shared fixtures for berth's end-to-end tests (bundles, binaries, cleanup guards).
//!
//! These tests run the real binaries as root; `scripts/test.sh` builds them first.
