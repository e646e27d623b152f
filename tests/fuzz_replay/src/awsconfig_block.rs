//! The `~/.aws/config` managed-block editor of `rolecall populate`: on any file it accepts,
//! the bytes outside the block never change, the block written is exactly the rendered one,
//! and writing the same block again changes nothing.
//!
//! Input: the file text, a NUL, then profile names one per line (only names the config
//! accepts reach the editor, as in `rolecall populate`); a name's first byte picks a region.

use crate::awsconfig::{apply, render_block, split, BlockProfile};
use rolecall_proto::names::is_valid_name;

const EXE: &str = "/usr/bin/rolecall";

pub fn run(data: &[u8]) {
    let (text, names) = crate::two_parts(data);
    let (Ok(text), Ok(names)) = (std::str::from_utf8(text), std::str::from_utf8(names)) else {
        return;
    };
    let Ok(before) = split(text) else {
        return;
    };
    let outside = before.outside_profiles();
    let profiles: Vec<BlockProfile> = names
        .lines()
        .filter(|n| is_valid_name(n) && !outside.iter().any(|o| o == n))
        .map(|n| BlockProfile {
            name: n.to_string(),
            region: (n.len() % 2 == 0).then(|| "eu-west-1".to_string()),
        })
        .collect();
    let block = render_block(&profiles, EXE);
    let out = apply(text, &before, &block);

    // Outside the block: byte for byte what was there.
    match before.block {
        Some(_) => {
            assert!(
                out.starts_with(before.before),
                "bytes before the block changed"
            );
            assert!(out.ends_with(before.after), "bytes after the block changed");
            assert_eq!(
                out.len(),
                before.before.len() + block.len() + before.after.len(),
                "the block is not exactly the rendered one"
            );
            assert_eq!(
                &out[before.before.len()..out.len() - before.after.len()],
                block
            );
        }
        None => {
            assert!(out.starts_with(text), "the file's bytes changed");
            assert!(out.ends_with(&block), "the block is not at the end");
            let gap = &out[text.len()..out.len() - block.len()];
            assert!(
                gap.chars().all(|c| c == '\n'),
                "{gap:?} between file and block"
            );
        }
    }

    // The result is a file the editor accepts, with the same surroundings and sections.
    let after = split(&out).unwrap_or_else(|e| panic!("populate wrote a file it refuses: {e}"));
    assert_eq!(
        after.block,
        Some(block.as_str()),
        "the block does not read back"
    );
    assert_eq!(after.outside_sections, before.outside_sections);
    if before.block.is_some() {
        assert_eq!(after.before, before.before);
        assert_eq!(after.after, before.after);
    }
    // Idempotent: populating again with the same profiles changes nothing.
    assert_eq!(
        apply(&out, &after, &block),
        out,
        "a second populate changed the file"
    );
}
