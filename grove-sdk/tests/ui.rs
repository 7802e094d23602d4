//! One compile-fail case per misuse of `#[grove::module]`, with the error the author sees,
//! and the correct uses next to them.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p grove-sdk --test ui`
//! and read every changed `.stderr` before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
