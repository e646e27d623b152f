//! Questions on a terminal, answers from flags: one `Asker` decides which applies, so that
//! every step reads the same whether a person or a script runs setup.

use anyhow::bail;
use std::io::{BufRead, Write};

pub struct Asker {
    /// Stdin is a terminal: questions are asked.
    pub interactive: bool,
    /// `--yes`: every yes/no question is answered yes.
    pub yes: bool,
}

impl Asker {
    pub fn new(yes: bool) -> Self {
        // SAFETY: isatty only inspects the descriptor.
        let interactive = unsafe { libc::isatty(0) } == 1;
        Asker { interactive, yes }
    }

    /// A yes/no question. `--yes` answers yes; without a terminal the answer is `unattended`.
    pub fn confirm(&self, question: &str, default: bool, unattended: bool) -> anyhow::Result<bool> {
        if self.yes {
            return Ok(true);
        }
        if !self.interactive {
            return Ok(unattended);
        }
        let hint = if default { "[Y/n]" } else { "[y/N]" };
        loop {
            let a = self.line(&format!("{question} {hint} "))?;
            match a.to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => eprintln!("  please answer y or n"),
            }
        }
    }

    /// A free-text answer; `default` is taken on an empty line. Empty answers without a
    /// default are asked again.
    pub fn text(&self, question: &str, default: Option<&str>) -> anyhow::Result<String> {
        loop {
            let prompt = match default {
                Some(d) => format!("{question} [{d}]: "),
                None => format!("{question}: "),
            };
            let a = self.line(&prompt)?;
            if !a.is_empty() {
                return Ok(a);
            }
            if let Some(d) = default {
                return Ok(d.to_string());
            }
        }
    }

    /// One of `choices` (1-based), by number.
    pub fn choose(&self, question: &str, choices: &[&str]) -> anyhow::Result<usize> {
        eprintln!("{question}");
        for (i, c) in choices.iter().enumerate() {
            eprintln!("  {}) {c}", i + 1);
        }
        loop {
            let a = self.line(&format!("Choose 1-{}: ", choices.len()))?;
            match a.parse::<usize>() {
                Ok(n) if (1..=choices.len()).contains(&n) => return Ok(n - 1),
                _ => eprintln!("  please type a number from 1 to {}", choices.len()),
            }
        }
    }

    fn line(&self, prompt: &str) -> anyhow::Result<String> {
        // Prompts go to stderr: stdout stays for what setup reports.
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(prompt.as_bytes());
        let _ = err.flush();
        let mut s = String::new();
        if std::io::stdin().lock().read_line(&mut s)? == 0 {
            bail!("setup cancelled (end of input); nothing more was changed");
        }
        Ok(s.trim().to_string())
    }
}
