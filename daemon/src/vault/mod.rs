//! The secret store. PLACEHOLDER.
