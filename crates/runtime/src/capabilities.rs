//! (placeholder: capabilities, being written)
