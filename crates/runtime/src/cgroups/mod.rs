//! (placeholder: cgroups, being written)
