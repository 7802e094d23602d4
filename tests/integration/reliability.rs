//! A running engine survives anything a module or a half-finished build throws at it, and
//! loses no state: bad libraries, chaos panics, rebuild storms, a thousand reloads, and a
//! library pinned in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove_runtime::bench_support::mapped_files_in;
use grove_runtime::{Engine, EngineEvent, Error, LoadedModule, Staging, Unmapped};

use crate::support::{
    counter, counter_state, engine_on_copy, frame, open_fds_under, plain_cdylib, scratch_dir,
    unpaced_engine,
};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The counter's bytes with the header's magic (or the ABI version after it) replaced.
fn patched_header(patch: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut bytes = std::fs::read(counter("v1")).unwrap();
    let magic = grove::abi::MAGIC;
    let at = bytes
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("the header's magic is in the file");
    patch(&mut bytes[at..at + 12]);
    bytes
}

/// Every bad library, each with what its error must say.
fn bad_libraries(dir: &Path) -> Vec<(&'static str, PathBuf, &'static [&'static str])> {
    let good = std::fs::read(counter("v1")).unwrap();
    let mut random = Vec::with_capacity(64 * 1024);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    while random.len() < 64 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.extend_from_slice(&x.to_le_bytes());
    }
    let mut cases = vec![
        ("empty file", write(dir, "empty.so", b""), &["empty"][..]),
        (
            "random bytes",
            write(dir, "random.so", &random),
            &["not a complete ELF"][..],
        ),
        (
            "a shared library with no grove symbols",
            plain_cdylib(),
            &["exports no grove module"][..],
        ),
        (
            "wrong magic",
            write(
                dir,
                "magic.so",
                &patched_header(|h| h[..8].copy_from_slice(b"GROVEBAD")),
            ),
            &["wrong magic"][..],
        ),
        (
            "an ABI version from the future",
            write(
                dir,
                "abi.so",
                &patched_header(|h| h[8..12].copy_from_slice(&99u32.to_le_bytes())),
            ),
            &[
                "ABI version 99",
                "supports versions 1 to 1",
                "rebuild the module",
            ][..],
        ),
        (
            "a missing path",
            dir.join("missing.so"),
            &["cannot read", "No such file"][..],
        ),
        (
            "a directory",
            dir.to_owned(),
            &["cannot read", "directory"][..],
        ),
        (
            "an unreadable file",
            PathBuf::from("/proc/self/mem"),
            &["cannot read"][..],
        ),
    ];
    for percent in [1, 10, 50, 90, 99] {
        let cut = good.len() * percent / 100;
        let name: &'static str = Box::leak(format!("truncated at {percent}%").into_boxed_str());
        let path = write(dir, &format!("truncated-{percent}.so"), &good[..cut]);
        cases.push((name, path, &["not a grove module library"][..]));
    }
    cases
}

#[test]
fn bad_libraries_are_clear_errors_and_the_running_version_keeps_its_state() {
    let dir = scratch_dir();
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    let mut n = 0;
    for (what, path, says) in bad_libraries(&dir) {
        module.process(&frame(n)).unwrap();
        n += 1;
        let err = module.reload(&path, &frame(n)).unwrap_err();
        let message = err.to_string();
        let Error::ReloadRefused { source, .. } = &err else {
            panic!("{what}: expected a refused reload, got {err:?}");
        };
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            message.contains(&*name),
            "{what}: the error names the file: {message}"
        );
        for needle in says {
            assert!(
                message.contains(needle),
                "{what}: the error says {needle:?}: {message}"
            );
        }
        assert!(
            !matches!(**source, Error::Panicked { .. }),
            "{what}: no code ran"
        );
        assert_eq!(module.generation(), 1, "{what}");
        // And the same file loaded from scratch is the same clear error.
        let direct = LoadedModule::load(&path).unwrap_err().to_string();
        assert!(direct.contains(&*name), "{what}: {direct}");
    }
    module.process(&frame(n)).unwrap();
    let state = counter_state(&mut module);
    assert_eq!(state.count, n + 1, "every frame counted, nothing lost");
    assert_eq!(state.name, "v1");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unreadable_file_is_a_read_error() {
    use std::os::unix::fs::PermissionsExt;
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if uid.is_ok_and(|uid| uid == 0) {
        // Root reads any file; /proc/self/mem (in the test above) stands in for it.
        return;
    }
    let dir = scratch_dir();
    let path = dir.join("unreadable.so");
    std::fs::copy(counter("v1"), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let err = LoadedModule::load(&path).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("Permission denied"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn world_writable_libraries_are_refused_unless_the_host_opts_in() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir();
    let path = dir.join("libcounter.so");
    std::fs::copy(counter("v1"), &path).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let strict = Arc::new(Staging::new().unwrap());
    let err = LoadedModule::load_in(&path, &strict, &frame(0)).unwrap_err();
    assert!(matches!(err, Error::Untrusted { .. }), "{err:?}");
    assert!(err.to_string().contains("world-writable"), "{err}");
    let trusting = Arc::new(Staging::new().unwrap().allow_world_writable(true));
    LoadedModule::load_in(&path, &trusting, &frame(0)).unwrap();

    let mut strict_engine = Engine::builder().watch_files(false).build().unwrap();
    let err = strict_engine.load_module(&path).unwrap_err();
    assert!(matches!(err, Error::Untrusted { .. }), "{err:?}");
    let mut trusting_engine = Engine::builder()
        .watch_files(false)
        .allow_world_writable(true)
        .build()
        .unwrap();
    trusting_engine.load_module(&path).unwrap();
    drop(trusting_engine);

    // A staging area of the host's own decides; a builder setting that disagrees with it
    // is an error rather than ignored, one that agrees is fine.
    let err = Engine::builder()
        .staging(Arc::clone(&strict))
        .allow_world_writable(true)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConflictingSettings {
                setting: "allow_world_writable",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("Staging::allow_world_writable"),
        "{err}"
    );
    let mut agreeing = Engine::builder()
        .watch_files(false)
        .staging(Arc::clone(&trusting))
        .allow_world_writable(true)
        .build()
        .unwrap();
    agreeing.load_module(&path).unwrap();
    drop(agreeing);
    std::fs::remove_dir_all(dir).unwrap();
}

fn panics(events: &Receiver<EngineEvent>) -> usize {
    events
        .try_iter()
        .filter(|e| matches!(e, EngineEvent::Panicked { .. }))
        .count()
}

#[test]
fn chaos_every_panic_is_contained_and_nothing_leaks() {
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    engine.load_module(counter("chaos")).unwrap();
    engine
        .add_static("calm-a", counter::Counter::default())
        .unwrap();
    engine
        .add_static("calm-b", counter::Counter::default())
        .unwrap();
    let staging = engine.staging().path().to_owned();
    let fds = || open_fds_under(&staging);
    let (fds_before, mapped_before) = (fds(), mapped_files_in(&staging));
    let frames = 2_000;
    let mut panicked = 0;
    for _ in 0..frames {
        engine.step();
        let now = panics(&events);
        if now > 0 {
            panicked += now;
            // A "fixed" build: the same library, reloaded with the state it had.
            engine.reload("counter").unwrap();
        }
    }
    assert!(panicked > 50, "chaos struck about 5% of frames: {panicked}");
    let stats = engine.stats();
    assert_eq!(stats.frames, frames, "the frame loop never stopped");
    assert_eq!(stats.modules[1].frames, frames);
    assert_eq!(stats.modules[2].frames, frames);
    assert_eq!(stats.reloads as usize, panicked);
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!(
        state.count as usize,
        frames as usize - panicked,
        "every frame that did not panic counted, across {panicked} reloads"
    );
    assert_eq!(fds(), fds_before, "no fd left open on a staged library");
    assert_eq!(
        mapped_files_in(&staging),
        mapped_before,
        "one library mapped, as before"
    );
    engine.staging().wait_for_removals();
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        1,
        "one staged copy"
    );
}

#[test]
fn rebuild_storm_never_loads_a_partial_file_and_ends_on_the_last_version() {
    use std::io::Write;

    let dir = scratch_dir();
    let (mut engine, events, path) = engine_on_copy(&dir, 60.0);

    let v1 = std::fs::read(counter("v1")).unwrap();
    let v2 = std::fs::read(counter("v2")).unwrap();
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..50 {
            // Ends on v2.
            let bytes = if i % 2 == 0 { &v1 } else { &v2 };
            match i % 3 {
                // Rename into place.
                0 => {
                    let tmp = writer_path.with_extension("tmp");
                    std::fs::write(&tmp, bytes).unwrap();
                    std::fs::rename(&tmp, &writer_path).unwrap();
                }
                // Rewrite in place, slowly: a reload may start in the middle of it.
                1 => {
                    let mut file = std::fs::File::create(&writer_path).unwrap();
                    for chunk in bytes.chunks(bytes.len() / 4 + 1) {
                        file.write_all(chunk).unwrap();
                        file.flush().unwrap();
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
                // Delete and create.
                _ => {
                    std::fs::remove_file(&writer_path).unwrap();
                    std::fs::write(&writer_path, bytes).unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(5 + (i % 4) * 10));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refused = Vec::new();
    let mut reloads = 0;
    loop {
        engine.step();
        for event in events.try_iter() {
            match event {
                EngineEvent::Reloaded(_) => reloads += 1,
                EngineEvent::ReloadRefused { error, .. } => refused.push(error.to_string()),
                _ => {}
            }
        }
        let state: crate::support::CounterState = engine.module_state("counter").unwrap();
        if writer.is_finished() && state.name == "v2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last version never ran: {state:?}"
        );
    }
    writer.join().unwrap();
    assert!(refused.is_empty(), "a partial file was tried: {refused:?}");
    assert!(reloads >= 1);
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!(
        state.count,
        engine.stats().frames,
        "state continuous across {reloads} reloads"
    );
    drop(engine);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_thousand_reloads_leave_nothing_behind() {
    let staging = Arc::new(Staging::new().unwrap());
    let mut module = LoadedModule::load_in(&counter("v1"), &staging, &frame(0)).unwrap();
    let fds = || open_fds_under(staging.path());
    module.reload(&counter("v2"), &frame(0)).unwrap();
    let (fds_before, mapped_before) = (fds(), mapped_files_in(staging.path()));
    for i in 0..1000u64 {
        let next = if i % 2 == 0 {
            counter("v1")
        } else {
            counter("v2")
        };
        let reloaded = module.reload(&next, &frame(i)).unwrap();
        assert_eq!(reloaded.old_library, Unmapped::Yes, "reload {i}");
        module.process(&frame(i)).unwrap();
    }
    assert_eq!(
        counter_state(&mut module).count,
        1000,
        "state carried through every reload"
    );
    assert_eq!(fds(), fds_before, "no fd left open on a staged library");
    assert_eq!(
        mapped_files_in(staging.path()),
        mapped_before,
        "mapped libraries back to baseline"
    );
    staging.wait_for_removals();
    assert_eq!(
        std::fs::read_dir(staging.path()).unwrap().count(),
        1,
        "one staged copy"
    );
}

#[test]
fn a_library_pinned_by_a_thread_local_is_reported_and_does_not_break_the_next_reload() {
    let staging = Arc::new(Staging::new().unwrap());
    // On a thread of its own, so the pin is released when the test is done with it.
    let report = std::thread::spawn(move || {
        let mut module = LoadedModule::load_in(&counter("pin_tls"), &staging, &frame(0)).unwrap();
        module.process(&frame(0)).unwrap(); // registers the thread-local's destructor
        let pinned = module.reload(&counter("v1"), &frame(1)).unwrap();
        module.process(&frame(1)).unwrap();
        let next = module.reload(&counter("v2"), &frame(2)).unwrap();
        module.process(&frame(2)).unwrap();
        let count = counter_state(&mut module).count;
        (
            pinned.old_library,
            next.old_library,
            count,
            mapped_files_in(staging.path()),
        )
    })
    .join()
    .unwrap();
    let (pinned, next, count, mapped) = report;
    assert_eq!(
        pinned,
        Unmapped::Pinned,
        "the thread-local's destructor pinned the library"
    );
    assert_eq!(next, Unmapped::Yes, "the next reload is unaffected");
    assert_eq!(count, 3);
    assert_eq!(
        mapped, 2,
        "the running copy, and the pinned one until its thread exits"
    );
}
