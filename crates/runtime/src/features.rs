//! (placeholder: features, being written)
