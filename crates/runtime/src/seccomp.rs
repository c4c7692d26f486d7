//! (placeholder: seccomp, being written)
