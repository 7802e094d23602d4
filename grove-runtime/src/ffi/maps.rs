//! Is a file still mapped into this process? Read from `/proc/self/maps`: after `dlclose`
//! a library should be gone; one that is not was pinned (typically by a thread-local
//! destructor registered on a thread that is still alive).

use std::path::Path;

/// Whether `path` appears in this process's memory map. `None` when the map cannot be read
/// (not Linux, or no /proc).
pub(crate) fn is_mapped(path: &Path) -> Option<bool> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let path = path.to_str()?;
    Some(maps.lines().any(|line| {
        line.split_once('/')
            .is_some_and(|(_, rest)| rest.trim_end().trim_end_matches(" (deleted)") == &path[1..])
    }))
}

/// How many distinct files under `dir` are mapped into this process, for leak checks.
pub fn mapped_files_in(dir: &Path) -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let Some(dir) = dir.to_str() else { return 0 };
    let mut files: Vec<&str> = maps
        .lines()
        .filter_map(|line| line.find('/').map(|i| &line[i..]))
        .filter(|path| path.starts_with(dir))
        .collect();
    files.sort_unstable();
    files.dedup();
    files.len()
}
