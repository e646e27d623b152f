//! A small line-based unified diff (LCS over the lines between the common prefix and
//! suffix) for `populate --dry-run` and `import --dry-run`.

const CONTEXT: usize = 3;
/// Above this many LCS cells the middle is shown as one replaced run: still a correct diff,
/// just not a minimal one, and the dry run stays quick on huge files.
const MAX_CELLS: usize = 16_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Add,
}

/// `---`/`+++` headers and `@@` hunks; empty when `old == new`.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = script(&a, &b);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    // Walk the edit script, emitting hunks around each run of changes.
    let mut i = 0;
    while i < ops.len() {
        if ops[i].0 == Op::Same {
            i += 1;
            continue;
        }
        let start = i.saturating_sub(CONTEXT);
        // Extend the hunk while changes are within 2*CONTEXT of each other.
        let mut end = i;
        let mut j = i;
        while j < ops.len() {
            if ops[j].0 != Op::Same {
                end = j;
                j += 1;
                continue;
            }
            let run = ops[j..].iter().take_while(|o| o.0 == Op::Same).count();
            if j + run >= ops.len() || run > 2 * CONTEXT {
                break;
            }
            j += run;
        }
        let stop = (end + 1 + CONTEXT).min(ops.len());
        let hunk = &ops[start..stop];
        let (a0, b0) = (hunk[0].1, hunk[0].2);
        let a_len = hunk.iter().filter(|o| o.0 != Op::Add).count();
        let b_len = hunk.iter().filter(|o| o.0 != Op::Del).count();
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(a0, a_len),
            range(b0, b_len)
        ));
        for &(op, ai, bi) in hunk {
            let (mark, line) = match op {
                Op::Same => (' ', a[ai]),
                Op::Del => ('-', a[ai]),
                Op::Add => ('+', b[bi]),
            };
            out.push(mark);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
        i = stop;
    }
    out
}

fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

/// The edit script: (op, index into a, index into b) — for `Add`, the a index is where it goes.
fn script(a: &[&str], b: &[&str]) -> Vec<(Op, usize, usize)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<(Op, usize, usize)> = (0..prefix).map(|k| (Op::Same, k, k)).collect();
    if ma.len().saturating_mul(mb.len()) > MAX_CELLS {
        ops.extend((0..ma.len()).map(|k| (Op::Del, prefix + k, prefix)));
        ops.extend((0..mb.len()).map(|k| (Op::Add, prefix + ma.len(), prefix + k)));
    } else {
        // lcs[i][j] = LCS length of ma[i..] and mb[j..], row-major in one buffer.
        let w = mb.len() + 1;
        let mut lcs = vec![0u32; (ma.len() + 1) * w];
        for i in (0..ma.len()).rev() {
            for j in (0..mb.len()).rev() {
                lcs[i * w + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < ma.len() || j < mb.len() {
            if i < ma.len() && j < mb.len() && ma[i] == mb[j] {
                ops.push((Op::Same, prefix + i, prefix + j));
                i += 1;
                j += 1;
            } else if i < ma.len() && (j == mb.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])
            {
                // Deletions first, as diff(1) prints them.
                ops.push((Op::Del, prefix + i, prefix + j));
                i += 1;
            } else {
                ops.push((Op::Add, prefix + i, prefix + j));
                j += 1;
            }
        }
    }
    let (ea, eb) = (a.len() - suffix, b.len() - suffix);
    ops.extend((0..suffix).map(|k| (Op::Same, ea + k, eb + k)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "a", "b"), "");
    }

    #[test]
    fn small_change_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        assert_eq!(
            unified(old, new, "a/x", "b/x"),
            "--- a/x\n+++ b/x\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn distant_changes_make_two_hunks_and_insertions_count_right() {
        let old: String = (1..=20).map(|n| format!("{n}\n")).collect();
        let new = old.replace("2\n", "2\nnew\n").replacen("18\n", "", 1);
        let d = unified(&old, &new, "a", "b");
        assert_eq!(d.matches("@@ ").count(), 2, "{d}");
        assert!(d.contains("@@ -1,5 +1,6 @@\n 1\n 2\n+new\n 3\n"), "{d}");
        assert!(d.contains("-18\n"), "{d}");
    }

    #[test]
    fn from_and_to_empty() {
        assert_eq!(
            unified("", "a\n", "a", "b"),
            "--- a\n+++ b\n@@ -0,0 +1 @@\n+a\n"
        );
        assert_eq!(
            unified("a\n", "", "a", "b"),
            "--- a\n+++ b\n@@ -1 +0,0 @@\n-a\n"
        );
        assert_eq!(
            unified("a", "a\n", "a", "b"),
            "--- a\n+++ b\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n"
        );
    }

    #[test]
    fn applying_the_diff_with_patch_gives_the_new_text() {
        let old: String = (1..=200).map(|n| format!("line {n}\n")).collect();
        let new = old
            .replace("line 7\n", "")
            .replace("line 50\n", "line 50\nextra\nextra2\n")
            .replace("line 199\n", "changed\n");
        let d = unified(&old, &new, "a/f", "b/f");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), &old).unwrap();
        let mut child = crate::spawn::command("patch")
            .args(["-s", "-p1", "-d"])
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("patch(1)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(d.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "{d}");
        assert_eq!(std::fs::read_to_string(dir.path().join("f")).unwrap(), new);
    }
}
