//! A throwaway module crate for the builder's tests, and libraries to build in it.

use std::path::Path;

use super::{BuildOptions, CrateBuilder};

/// A throwaway module crate with no dependencies and its own target directory.
pub(super) struct TestCrate {
    dir: tempfile::TempDir,
    pub(super) target: tempfile::TempDir,
}

impl TestCrate {
    pub(super) fn new(crate_types: &str, lib_rs: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!(
                "[package]\nname = \"grove-builder-probe\"\nversion = \"0.1.0\"\n\
                 edition = \"2021\"\n\n[lib]\ncrate-type = {crate_types}\n\n[workspace]\n"
            ),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        let crate_ = Self { dir, target };
        crate_.write_lib(lib_rs);
        crate_
    }

    pub(super) fn write_lib(&self, lib_rs: &str) {
        std::fs::write(self.dir.path().join("src/lib.rs"), lib_rs).unwrap();
    }

    pub(super) fn builder(&self) -> CrateBuilder {
        let options = BuildOptions {
            target_dir: Some(self.target.path().to_owned()),
            ..BuildOptions::default()
        };
        CrateBuilder::new(self.dir.path(), options).unwrap()
    }
}

/// A library exporting `f` and a marker string to find in the built file.
pub(super) fn lib_rs(mark: u32) -> String {
    format!(
        "#[no_mangle]\npub extern \"C\" fn f() -> u32 {{ {mark} }}\n\
         #[no_mangle]\npub static MARK: [u8; 16] = *b\"grove-mark-{mark:05}\";\n"
    )
}

/// Whether the built library holds `lib_rs(mark)`'s marker.
pub(super) fn has_mark(artifact: &Path, mark: u32) -> bool {
    let bytes = std::fs::read(artifact).unwrap();
    let needle = format!("grove-mark-{mark:05}");
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}
