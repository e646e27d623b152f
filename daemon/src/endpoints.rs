//! PLACEHOLDER: owned by a helper.
