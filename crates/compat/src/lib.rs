//! Differential harness (placeholder).
