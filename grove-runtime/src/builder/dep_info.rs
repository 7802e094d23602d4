//! Which files a build used: cargo's dep-info file next to the library (`libname.d`), in
//! make syntax, lists every source file of the crate and of its local dependencies (path
//! dependencies and other workspace members; not crates from a registry).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// The dep-info file cargo writes next to `artifact`.
pub(super) fn path_for(artifact: &Path) -> PathBuf {
    artifact.with_extension("d")
}

/// The source files the build of `artifact` used, read from its dep-info file. Relative
/// paths (a `build.dep-info-basedir` setting) are taken relative to `base`.
pub(super) fn sources(artifact: &Path, base: &Path) -> io::Result<BTreeSet<PathBuf>> {
    let text = std::fs::read_to_string(path_for(artifact))?;
    Ok(parse(&text)
        .into_iter()
        .map(|path| base.join(path))
        .collect())
}

/// The prerequisites of every rule in a make-syntax dep-info text. Spaces inside a path are
/// escaped with a backslash.
fn parse(text: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for line in text.lines() {
        let words = split_words(line);
        // The first word ends with the rule's `:`; a line without one is not a rule.
        let Some(colon) = words.iter().position(|w| w.ends_with(':')) else {
            continue;
        };
        paths.extend(words[colon + 1..].iter().map(PathBuf::from));
    }
    paths
}

/// `line` split at unescaped spaces, escapes removed.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => word.push(next),
                None => word.push('\\'),
            },
            ' ' | '\t' => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_s_prerequisites_are_read() {
        let text = "/t/debug/libm.so: /w/m/src/lib.rs /w/helper/src/lib.rs /w/my\\ dir/x.rs\n\n\
                    /t/debug/libm.rlib: /w/m/src/lib.rs\n";
        assert_eq!(
            parse(text),
            [
                "/w/m/src/lib.rs",
                "/w/helper/src/lib.rs",
                "/w/my dir/x.rs",
                "/w/m/src/lib.rs"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            path_for(Path::new("/t/debug/libm.so")),
            Path::new("/t/debug/libm.d")
        );
    }
}
