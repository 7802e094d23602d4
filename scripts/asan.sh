#!/usr/bin/env bash
# Runs the integration tests (grove-tests) and the grove-runtime and grove-sdk unit tests
# under AddressSanitizer and LeakSanitizer, with the nightly toolchain. A developer tool,
# not part of CI: without a nightly toolchain it says so and exits 0.
#
# Takes about 2.5 minutes on 2 cores from scratch (building target/asan and the fixtures),
# about 1m15 after that. Extra ASAN_OPTIONS / LSAN_OPTIONS from the environment are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v rustup >/dev/null || ! rustup toolchain list | grep -q '^nightly'; then
    echo "asan.sh: no nightly toolchain installed (rustup toolchain install nightly);" \
        "AddressSanitizer needs one. Nothing run."
    exit 0
fi
target=$(rustc +nightly -vV | sed -n 's/^host: //p')

# The sanitizer goes in through --config, not RUSTFLAGS: cargo hands its environment to the
# tests, and the tests run cargo themselves (the fixture libraries, Engine::watch_crate),
# which would then instrument their builds too, proc macros included. --target keeps build
# scripts and proc macros (loaded by rustc, which has no ASan runtime) uninstrumented, and
# --target-dir keeps the usual build untouched. Only unit tests (--lib): no doctests.
#
# The fixture libraries are built by the tests with the same nightly cargo, uninstrumented,
# into target/asan/grove-fixtures (so they do not replace the usual ones). An instrumented
# cdylib cannot be loaded: it needs the __asan_* symbols, which the ASan runtime linked
# statically into the test executable does not export ("undefined symbol:
# __asan_option_detect_stack_use_after_return" from dlopen). Uninstrumented, a module's
# malloc and free are still ASan's (the executable exports those), so memory crossing the
# boundary is checked; the host side is instrumented, and grove-sdk's side is, in its unit
# tests and in the modules linked statically into the tests (static_modules.rs).
common=(--target "$target" --target-dir target/asan
    --config 'build.rustflags=["-Zsanitizer=address"]')
export GROVE_FIXTURE_TARGET_DIR="$PWD/target/asan/grove-fixtures"

# handle_segv=0: the crash tests (crashes.rs) check that a segfault or a stack overflow in a
# module is reported by grove's handler, which then hands the signal to the handler that was
# there before, and that the child dies of it. ASan's handler would print its own report and
# exit(1) instead; without it, std's overflow report and the default action run, as without
# ASan. (Bad accesses in instrumented code are still caught before they fault.)
# fast_unwind_on_malloc=0, malloc_context_size=64: frame-pointer unwinding breaks in the
# uninstrumented module libraries, losing the host frames lsan.supp matches on.
# allocator_may_return_null=1: a state buffer too large to allocate is an error grove
# reports (StateBuffer's fallible allocation, tested), as with the system allocator;
# ASan's default aborts the process instead.
export ASAN_OPTIONS="allocator_may_return_null=1:handle_segv=0:fast_unwind_on_malloc=0:malloc_context_size=64${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# What is leaked on purpose, and why: scripts/lsan.supp.
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

echo "== unit tests: grove-runtime, grove-sdk (ASan, $target)"
cargo +nightly test "${common[@]}" -p grove-runtime -p grove-sdk --lib

# One test at a time: run in parallel, three tests fail now and then here without ASan too
# (2 cores, at a83f54c). reliability's a_thousand_reloads_leave_nothing_behind and
# chaos_every_panic_is_contained_and_nothing_leaks keep an old library mapped because a new
# thread of another test has a word in its stack that falls in the library's range, and
# logs' module_events_reach_the_host_subscriber sometimes gets no events while other tests
# set up subscribers (tracing's interest and level caches are process-wide; not pinned down).
echo "== integration tests: grove-tests (ASan, $target)"
cargo +nightly test "${common[@]}" -p grove-tests -- --test-threads=1

echo "asan.sh: no AddressSanitizer or LeakSanitizer reports; all tests passed"
