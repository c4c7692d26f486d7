//! (placeholder: hooks, being written)
