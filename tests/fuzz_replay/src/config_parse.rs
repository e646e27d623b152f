//! The daemon's config parser: any text either parses into a config or is refused with one
//! error that names a place inside the text.

use rolecall_daemon::config;
use std::path::Path;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, Path::new("/fuzz/config.toml")) {
        Ok(cfg) => {
            // A config that parsed once parses the same way again (validation is pure).
            let again = config::parse(text, Path::new("/fuzz/config.toml"))
                .expect("a config that parsed once parses again");
            assert_eq!(cfg, again);
        }
        Err(e) => {
            if let Some((line, col)) = e.location {
                let lines = text.split('\n').count().max(1);
                assert!(
                    line >= 1 && line <= lines && col >= 1,
                    "error location {line}:{col} outside the text ({lines} lines)"
                );
            }
            let shown = e.to_string();
            assert!(!shown.is_empty());
        }
    }
}
