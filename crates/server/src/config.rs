//! Option registry (placeholder).
