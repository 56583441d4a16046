//! Redis glob-style pattern matching (placeholder; see glob.rs owner).
