//! The refresh scheduler. PLACEHOLDER.
