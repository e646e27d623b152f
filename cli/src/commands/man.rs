//! `rolecall man [--out-dir DIR]`: the man pages, generated from the clap definition so they
//! never drift from `--help`. With a directory: `rolecall.1` plus one page per visible
//! subcommand (`rolecall-login.1`, `rolecall-service-install.1`, …), as packages ship them.
//! Without: `rolecall.1` on stdout (`rolecall man | man -l -`).

use crate::cli::{Cli, ManArgs};
use anyhow::Context;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

pub fn run(a: &ManArgs) -> anyhow::Result<i32> {
    match &a.out_dir {
        Some(dir) => {
            let written = write_pages(dir)?;
            println!("Wrote {written} man pages to {}", dir.display());
        }
        None => {
            let page = render_main()?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|_| out.flush())
                .context("cannot write to stdout")?;
        }
    }
    Ok(0)
}

/// `rolecall.1`, rendered in memory (a closed pipe then fails cleanly instead of half-way).
fn render_main() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .context("cannot render the man page")?;
    Ok(buf)
}

/// Writes every page into `dir` (created when missing) and returns how many.
fn write_pages(dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    let count = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("rolecall") && name.ends_with(".1")
        })
        .count();
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_page_names_the_program_and_its_commands() {
        let page = String::from_utf8(render_main().unwrap()).unwrap();
        assert!(page.contains(".TH rolecall 1"));
        for sub in ["credential\\-process", "login", "service", "demo"] {
            assert!(page.contains(sub), "{sub} missing from the page");
        }
        // Hidden commands stay out of the documentation.
        assert!(!page.contains("rolecall\\-names"));
    }

    #[test]
    fn out_dir_gets_one_page_per_visible_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let n = write_pages(dir.path()).unwrap();
        for page in [
            "rolecall.1",
            "rolecall-login.1",
            "rolecall-service-install.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH "), "{page} is not a man page");
        }
        assert!(!dir.path().join("rolecall-man.1").exists());
        assert!(!dir.path().join("rolecall-names.1").exists());
        assert!(n >= 20, "only {n} pages");
    }
}
