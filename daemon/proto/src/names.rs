//! The one rule for source and profile names.
//!
//! Names travel far: into file names under the state dir (browser profiles), into secret-store
//! key prefixes, into socket API paths, into `~/.aws/config` section names, and into shell
//! completion words. A single conservative character set keeps every one of those safe without
//! quoting: no `/` or `..` (paths), no whitespace, quotes, `$`, backticks or globs (shells), no
//! control characters (terminals), and a letter or digit first (never an option, never hidden).

/// The longest name accepted, in bytes (all allowed characters are ASCII).
pub const MAX_NAME_LEN: usize = 128;

/// The rule in words, for error messages.
pub const NAME_RULE: &str =
    "a letter or digit, then up to 127 letters, digits, '.', '_', '+', '@' or '-'";

/// True when `name` matches `[A-Za-z0-9][A-Za-z0-9._+@-]{0,127}`.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'@' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_refuses_everything_risky() {
        for ok in [
            "corp",
            "dev-admin",
            "Prod-EU.Admin",
            "a",
            "x_y+z@1",
            &"a".repeat(128),
        ] {
            assert!(is_valid_name(ok), "{ok:?}");
        }
        for bad in [
            "",
            "$(touch /tmp/x)",
            "`id`",
            "../etc",
            "..",
            ".hidden",
            "-rf",
            "a/b",
            "a b",
            "a*",
            "a\u{1b}[31m",
            "naïve",
            &"a".repeat(129),
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
