//! (placeholder: rlimits, being written)
