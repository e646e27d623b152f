//! Text from upstream (account names, role names, error messages relayed from Entra, AWS or the
//! daemon) on its way to a terminal. A control character in it could move the cursor, rewrite
//! the title, hide text or (on some terminals) answer back into the input: an escape-sequence
//! injection by whoever controls the upstream text. Every such value passes through
//! [`printable`] where it is printed; rolecall's own colour codes are added afterwards.

use std::borrow::Cow;

/// `s` without C0 controls (U+0000–U+001F, including ESC, CR and newline), DEL (U+007F) and
/// C1 controls (U+0080–U+009F, including the one-character CSI U+009B). Borrowed when there is
/// nothing to remove, which is the common case on the prompt's hot path.
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_control) {
        Cow::Owned(s.chars().filter(|c| !is_control(*c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn removes_c0_c1_and_del_and_keeps_everything_else() {
        assert_eq!(
            printable("Prod\x1b]0;pwned\x07\x1b[2J\u{9b}31m\r\n\x7f"),
            "Prod]0;pwned[2J31m"
        );
        assert_eq!(printable("Zürich-Ops ☁ 100%"), "Zürich-Ops ☁ 100%");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
