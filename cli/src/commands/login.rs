//! PLACEHOLDER: owned by a helper; replaced before landing.
pub fn run_login(_a: &crate::cli::LoginArgs, _autostart: bool) -> anyhow::Result<i32> {
    anyhow::bail!("login is not built yet")
}
pub fn run_logout(_a: &crate::cli::LogoutArgs, _autostart: bool) -> anyhow::Result<i32> {
    anyhow::bail!("logout is not built yet")
}
