//! PLACEHOLDER: owned by a helper; replaced before landing.
pub fn run(_a: &crate::cli::ManArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not built yet")
}
