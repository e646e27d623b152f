//! The interactive picker of `rolecall use` with no profile: a numbered list on the terminal,
//! answered with a number, a name, or part of a name (which narrows the list). Plain line
//! input, so it works in any terminal, over SSH and inside tmux, with no extra dependency.

use super::ProfileInfo;
use anyhow::bail;
use std::io::{BufRead, Write};

pub fn pick(
    profiles: &[ProfileInfo],
    current: Option<&str>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<String> {
    let mut shown: Vec<&ProfileInfo> = profiles.iter().collect();
    loop {
        let width = shown.len().to_string().len();
        for (i, p) in shown.iter().enumerate() {
            let mark = if Some(p.name.as_str()) == current {
                '*'
            } else {
                ' '
            };
            let region = p.region.as_deref().unwrap_or("-");
            writeln!(
                out,
                "{mark}{:>width$}) {}  [{} {}]",
                i + 1,
                p.name,
                p.source,
                region
            )?;
        }
        write!(out, "profile (number, name or filter; empty to cancel): ")?;
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            writeln!(out)?;
            bail!("no profile chosen");
        }
        let answer = line.trim();
        if answer.is_empty() {
            bail!("no profile chosen");
        }
        if let Ok(n) = answer.parse::<usize>() {
            if (1..=shown.len()).contains(&n) {
                return Ok(shown[n - 1].name.clone());
            }
        }
        if let Some(p) = shown.iter().find(|p| p.name == answer) {
            return Ok(p.name.clone());
        }
        let needle = answer.to_lowercase();
        let narrowed: Vec<&ProfileInfo> = shown
            .iter()
            .copied()
            .filter(|p| p.name.to_lowercase().contains(&needle))
            .collect();
        match narrowed.len() {
            1 => return Ok(narrowed[0].name.clone()),
            0 => writeln!(out, "no profile matches {answer:?}")?,
            _ => shown = narrowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Vec<ProfileInfo> {
        ["prod/Admin", "prod/ReadOnly", "dev/Admin"]
            .iter()
            .map(|n| ProfileInfo {
                name: (*n).into(),
                source: "corp".into(),
                region: Some("eu-west-1".into()),
            })
            .collect()
    }

    fn run(answers: &str) -> (anyhow::Result<String>, String) {
        let mut out = Vec::new();
        let r = pick(
            &profiles(),
            Some("dev/Admin"),
            &mut answers.as_bytes(),
            &mut out,
        );
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn number_name_and_filter() {
        assert_eq!(run("2\n").0.unwrap(), "prod/ReadOnly");
        assert_eq!(run("dev/Admin\n").0.unwrap(), "dev/Admin");
        assert_eq!(run("readonly\n").0.unwrap(), "prod/ReadOnly");
        // "prod" narrows to two; then "1" picks the first of the narrowed list.
        let (r, shown) = run("prod\n1\n");
        assert_eq!(r.unwrap(), "prod/Admin");
        assert!(shown.contains("*3) dev/Admin"), "{shown}");
    }

    #[test]
    fn cancel_and_no_match() {
        assert!(run("\n").0.is_err());
        assert!(run("").0.is_err());
        let (r, shown) = run("zzz\n");
        assert!(r.is_err());
        assert!(shown.contains("no profile matches \"zzz\""), "{shown}");
    }
}
