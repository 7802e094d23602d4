//! Prints grove's benchmark table (markdown), every figure next to its floor from the same
//! run. `cargo run --release -p grove-bench` (about a minute; the frame pacing row alone
//! takes 10 s). `--quick` shortens every measurement, for a smoke run. Section names
//! (`reload`, `latency`, `overhead`, `pacing`, `formats`, `soak`, `logs`, `messaging`,
//! `snapshots`, `many`, `bigstate`, `editloop`) run only those:
//! `cargo run --release -p grove-bench -- logs`.

use std::time::Duration;

use grove_bench::table::{Table, ms};
use grove_bench::*;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(bigstate::PEAK_CHILD_ARG) {
        bigstate::peak_child(args[2].as_ref(), args[3].parse().unwrap());
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    const SECTIONS: [&str; 12] = [
        "reload",
        "latency",
        "overhead",
        "pacing",
        "formats",
        "soak",
        "logs",
        "messaging",
        "snapshots",
        "many",
        "bigstate",
        "editloop",
    ];
    if let Some(unknown) = only.iter().find(|a| !SECTIONS.contains(&a.as_str())) {
        eprintln!(
            "unknown section {unknown:?}; sections: {}",
            SECTIONS.join(", ")
        );
        std::process::exit(2);
    }
    let run = |section: &str| only.is_empty() || only.iter().any(|a| a == section);
    let scale = |n: usize| if quick { (n / 10).max(3) } else { n };
    eprintln!("building the benchmark module (release)...");
    let fixtures = build_fixtures();
    let mut table = Table::default();

    if run("reload") {
        for (label, bytes, samples) in [
            ("0 B", 0, 50),
            ("1 KiB", 1 << 10, 50),
            ("1 MiB", 1 << 20, 30),
            ("16 MiB", 16 << 20, 10),
        ] {
            eprintln!("reload call, state {label}...");
            let r = reload_call(&fixtures.v1, bytes, scale(samples));
            let ratio = r.swap.as_secs_f64() / r.floor.as_secs_f64();
            let (target, met) = match bytes {
                0 => ("<= 1.3x floor".to_owned(), Some(ratio <= 1.3)),
                b if b == 1 << 20 => (
                    "<= floor + 1.5 ms".to_owned(),
                    Some(r.swap <= r.floor + Duration::from_micros(1500)),
                ),
                _ => (String::new(), None),
            };
            table.row(
                format!("reload call, state {label}: stage, load, save, restore, init, swap"),
                ms(r.swap),
                format!("{} copy+dlopen+dlsym", ms(r.floor)),
                format!("{ratio:.2}x (+{})", ms(r.swap.saturating_sub(r.floor))),
                target,
                met,
            );
            table.row(
                format!("then retiring the old version, state {label}: destroy, dlclose, unmap check, delete"),
                ms(r.retire),
                format!("{} dlclose+delete", ms(r.floor_close)),
                format!("{:.2}x", r.retire.as_secs_f64() / r.floor_close.as_secs_f64()),
                "",
                None,
            );
            let whole_floor = r.floor + r.floor_close;
            table.row(
                format!("whole reload call, state {label}"),
                ms(r.reload),
                ms(whole_floor),
                format!("{:.2}x", r.reload.as_secs_f64() / whole_floor.as_secs_f64()),
                "",
                None,
            );
        }
    }

    if run("latency") {
        eprintln!("new file -> new code running...");
        let l = watcher_latency(&fixtures, scale(60));
        table.row(
            format!("new file -> new code running, p50 ({} reloads)", l.samples),
            ms(l.p50),
            ms(l.floor),
            format!("{:.2}x", l.p50.as_secs_f64() / l.floor.as_secs_f64()),
            "<= 2 ms",
            Some(l.p50 <= Duration::from_millis(2)),
        );
        table.row(
            "new file -> new code running, p99",
            ms(l.p99),
            ms(l.floor),
            format!("{:.2}x", l.p99.as_secs_f64() / l.floor.as_secs_f64()),
            "<= 5 ms",
            Some(l.p99 <= Duration::from_millis(5)),
        );
        table.row(
            "new file -> new code running, max",
            ms(l.max),
            "",
            "",
            "",
            None,
        );
    }

    if run("overhead") {
        for modules in [1, 100, 10_000] {
            eprintln!("per-module overhead, {modules} modules...");
            let frames = (scale(2_000_000) / modules).max(20) as u64;
            let o = overhead(&fixtures.v1, modules, frames);
            table.row(
                format!("module-frame through the C ABI, {modules} modules"),
                format!("{:.1} ns", o.abi_ns),
                format!("{:.1} ns direct", o.direct_ns),
                format!("+{:.1} ns", o.abi_ns - o.direct_ns),
                "<= 20 ns overhead",
                Some(o.abi_ns - o.direct_ns <= 20.0),
            );
            table.row(
                format!("module-frame through the engine (static), {modules} modules"),
                format!("{:.1} ns", o.engine_ns),
                format!("{:.1} ns direct", o.direct_ns),
                format!("+{:.1} ns", o.engine_ns - o.direct_ns),
                "",
                None,
            );
        }
    }

    if run("pacing") {
        eprintln!("frame pacing...");
        let seconds = if quick { 2.0 } else { 10.0 };
        let p = pacing(60.0, seconds);
        let fps_error = (p.achieved - p.fps).abs() / p.fps * 100.0;
        table.row(
            format!(
                "frame pacing, 60 FPS over {seconds} s: mean FPS ({} frames)",
                p.frames
            ),
            format!("{:.4}", p.achieved),
            "60",
            format!("{fps_error:.4}% off"),
            "<= 0.05% off",
            Some(fps_error <= 0.05),
        );
        table.row(
            "frame interval error p50 / p99 / max",
            format!(
                "{} / {} / {}",
                ms(p.error_p50),
                ms(p.error_p99),
                ms(p.error_max)
            ),
            "",
            "",
            "p99 < 1 ms",
            Some(p.error_p99 < Duration::from_millis(1)),
        );
    }

    if run("formats") {
        for (what, f) in [
            ("1 MiB world: particles, heights, tags", {
                eprintln!("state formats, world...");
                formats(scale(20))
            }),
            ("1 MiB game: units in a HashMap, nested enums, options", {
                eprintln!("state formats, game...");
                game_formats(scale(20))
            }),
        ] {
            table.row(
                format!(
                    "state save+load, {what}: positional (fixed-width, checked, {} B)",
                    f.positional_bytes
                ),
                ms(f.positional),
                format!("{} clone", ms(f.clone)),
                format!("{:.1}x", f.positional.as_secs_f64() / f.clone.as_secs_f64()),
                "same-shape reload takes it",
                Some(f.takes_positional),
            );
            table.row(
                format!(
                    "state save+load, {what}: self-describing (MessagePack, {} B)",
                    f.self_describing_bytes
                ),
                ms(f.self_describing),
                format!("{} clone", ms(f.clone)),
                format!(
                    "{:.1}x ({:.1}x positional)",
                    f.self_describing.as_secs_f64() / f.clone.as_secs_f64(),
                    f.self_describing.as_secs_f64() / f.positional.as_secs_f64()
                ),
                "",
                None,
            );
        }
    }

    if run("soak") {
        eprintln!("1,000 reloads soak...");
        let reloads = scale(1000);
        let (before, after) = soak(&fixtures.v1, reloads);
        let growth = (after.rss as f64 - before.rss as f64) / reloads as f64;
        table.row(
            format!("RSS growth per reload ({reloads} reloads)"),
            format!("{growth:.0} B"),
            format!("{} KiB before", before.rss / 1024),
            format!("{} KiB after", after.rss / 1024),
            "< 4 KiB",
            Some(growth < 4096.0),
        );
        table.row(
            "open fds / mapped libraries / staged files, before -> after",
            format!(
                "{} -> {} / {} -> {} / {} -> {}",
                before.fds, after.fds, before.mapped, after.mapped, before.staged, after.staged
            ),
            "",
            "",
            "back to baseline",
            Some(
                before.fds == after.fds
                    && before.mapped == after.mapped
                    && before.staged == after.staged,
            ),
        );
    }

    if run("many") {
        let modules = if quick { 50 } else { 500 };
        eprintln!("{modules} watched modules replaced at once...");
        let m = many_modules(&build_many_fixture(), modules);
        let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64);
        let frame_60 = Duration::from_micros(16_667);
        table.row(
            format!(
                "{} watched modules ({} KB libraries) replaced at once: new files -> every module running its new code",
                m.modules,
                m.library_bytes / 1000
            ),
            ms(m.all_reloaded),
            format!("{} copy+dlopen+dlsym of the {} files", ms(m.floor), m.modules),
            format!("{:.2}x", m.all_reloaded.as_secs_f64() / m.floor.as_secs_f64()),
            "",
            None,
        );
        table.row(
            format!(
                "longest frame meanwhile (reload budget {}; frames {}, {} of them reloading)",
                ms(m.budget),
                m.frames,
                m.reload_frames
            ),
            ms(m.longest_frame),
            format!("{} one 60 FPS frame", ms(frame_60)),
            format!(
                "{:.2}x",
                m.longest_frame.as_secs_f64() / frame_60.as_secs_f64()
            ),
            "< one 60 FPS frame",
            Some(m.longest_frame < frame_60),
        );
        let loaded = m.rss_loaded.saturating_sub(m.rss_before);
        table.row(
            format!(
                "RSS: engine alone / {} modules loaded / all reloaded, old libraries unmapped",
                m.modules
            ),
            format!(
                "{} / {} / {}",
                mib(m.rss_before),
                mib(m.rss_loaded),
                mib(m.rss_after)
            ),
            format!(
                "+{} with the {} files dlopen'ed by hand",
                mib(m.floor_rss),
                m.modules
            ),
            format!(
                "loaded +{} ({:.2}x); reloads +{}",
                mib(loaded),
                loaded as f64 / m.floor_rss.max(1) as f64,
                mib(m.rss_after.saturating_sub(m.rss_loaded))
            ),
            "reloads return what they take (< 10% of loaded)",
            Some(m.rss_after.saturating_sub(m.rss_loaded) * 10 < loaded),
        );
    }

    if run("bigstate") {
        eprintln!("building the benchmark module (debug)...");
        let debug = bigstate::build_debug_modules();
        let frame_60 = Duration::from_micros(16_667);
        let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64);
        let builds = [
            ("release", &fixtures.v1),
            ("debug", &debug.debug),
            (
                "debug, grove-sdk at opt-level 0",
                &debug.debug_sdk_unoptimised,
            ),
        ];
        for (build, library) in builds {
            for (label, bytes, samples) in [
                ("1 MiB", 1usize << 20, 10),
                ("16 MiB", 16 << 20, 5),
                ("200 MiB", 200 << 20, if build == "release" { 3 } else { 1 }),
            ] {
                eprintln!("big state {label}, {build} module...");
                let samples = if quick { 1 } else { samples };
                let b = bigstate::big_state_reload(library, bytes, samples);
                // The target is a release module's: a debug one is measured, not promised.
                let sixteen = bytes == 16 << 20 && build == "release";
                table.row(
                    format!(
                        "big state {label}, {build} module: reload call (stage, load, save, restore, init; {} reloads)",
                        b.samples
                    ),
                    format!("{} ({:.0} MiB/s)", ms(b.swap), b.mib_per_s()),
                    format!(
                        "{} = copying {label} {} + copy+dlopen+dlsym {}",
                        ms(b.floor()),
                        ms(b.memcpy),
                        ms(b.floor_load)
                    ),
                    format!("{:.2}x", b.swap.as_secs_f64() / b.floor().as_secs_f64()),
                    if sixteen {
                        "<= one 60 FPS frame (16.7 ms)"
                    } else {
                        ""
                    },
                    sixteen.then_some(b.swap <= frame_60),
                );
            }
        }
        eprintln!("peak memory of a reload, no state...");
        let empty = bigstate::peak(&fixtures.v1, 0);
        for (label, bytes) in [
            ("1 MiB", 1usize << 20),
            ("16 MiB", 16 << 20),
            ("200 MiB", 200 << 20),
        ] {
            eprintln!("peak memory of a reload, state {label}...");
            let p = bigstate::peak(&fixtures.v1, bytes);
            table.row(
                format!("peak memory during one reload, state {label} (release module, a process of its own)"),
                format!(
                    "+{} over the running state and a stateless reload's +{} ({:.2}x the state)",
                    mib(p.added().saturating_sub(empty.added())),
                    mib(empty.added()),
                    p.over_running(&empty)
                ),
                "+1x: the new state (the old one runs until the new one is proven)",
                format!("{:.2}x the state in all, the running one included", p.of_state(&empty)),
                "<= 2x the state over the running one (1% slack)",
                Some(p.over_running(&empty) <= 2.02),
            );
        }
    }

    if run("editloop") {
        edit_loop_rows(&mut table, scale(20));
    }

    // Last: it installs a global subscriber in this process, for good, which the rows
    // above must not pay for.
    if run("logs") {
        eprintln!("tracing events in a module...");
        grove_bench::install_discarding_subscriber();
        let g = log_events(&fixtures.logs, scale(2000));
        let ratio = g.disabled_module_ns / g.disabled_host_ns;
        table.row(
            format!(
                "disabled `debug!` in a loaded module, host subscriber at INFO, per event ({} per call)",
                g.disabled_events
            ),
            format!("{:.2} ns", g.disabled_module_ns),
            format!("{:.2} ns in the host", g.disabled_host_ns),
            format!("{ratio:.2}x"),
            "<= 2x host",
            Some(ratio <= 2.0),
        );
        table.row(
            format!(
                "enabled `info!` from a loaded module to a discarding host subscriber, per event ({} per call)",
                g.enabled_events
            ),
            format!("{:.1} ns", g.enabled_module_ns),
            format!("{:.1} ns in the host", g.enabled_host_ns),
            format!(
                "{:.1}x (+{:.1} ns)",
                g.enabled_module_ns / g.enabled_host_ns,
                g.enabled_module_ns - g.enabled_host_ns
            ),
            "",
            None,
        );
    }

    if run("messaging") {
        let frames = scale(200) as u64;
        for (label, per_frame, patterns, unique, target) in [
            ("one topic", 10_000, 0, false, Some(5e6)),
            (
                "one topic, 1,000 other subscriptions",
                10_000,
                1000,
                false,
                Some(5e6),
            ),
            (
                "a new topic per message, 1,000 other subscriptions",
                1_000,
                1000,
                true,
                None,
            ),
        ] {
            eprintln!("messaging, {label}...");
            let m = messaging(&fixtures, per_frame, frames, patterns, unique);
            let per_message_us = 1e6 / m.per_second;
            table.row(
                format!("messages between two loaded modules, 32 bytes, {label}: publish, route, deliver, decode"),
                format!("{:.2} M/s ({per_message_us:.3} us each)", m.per_second / 1e6),
                format!("{:.2} M/s std mpsc channel, 2 threads", m.floor_per_second / 1e6),
                format!("{:.2}x", m.per_second / m.floor_per_second),
                target.map_or_else(
                    || "< 1 us a message".to_owned(),
                    |t: f64| format!(">= {:.0} M/s", t / 1e6),
                ),
                Some(target.map_or(per_message_us < 1.0, |t| m.per_second >= t)),
            );
            table.row(
                format!("host allocations per message, {label}"),
                format!("{:.4}", m.allocations_per_message),
                "0".to_owned(),
                String::new(),
                if unique {
                    String::new()
                } else {
                    "0 in steady state".to_owned()
                },
                (!unique).then_some(m.allocations_per_message < 0.001),
            );
        }
    }

    if run("snapshots") {
        for (label, bytes, samples) in [
            ("1 KiB", 1usize << 10, 50),
            ("1 MiB", 1 << 20, 20),
            ("16 MiB", 16 << 20, 5),
        ] {
            eprintln!("snapshot, state {label}...");
            let s = snapshot_cost(&fixtures.v1, bytes, scale(samples));
            let budget = Duration::from_micros(16_667);
            table.row(
                format!("snapshot, state {label}: time on the frame thread (the file is written by another)"),
                ms(s.frame_cost),
                format!("{} copying {label}", ms(s.floor)),
                format!("{:.1}x", s.frame_cost.as_secs_f64() / s.floor.as_secs_f64().max(1e-9)),
                if bytes == 1 << 20 { "< one 60 FPS frame (16.7 ms)".to_owned() } else { String::new() },
                (bytes == 1 << 20).then_some(s.frame_cost < budget),
            );
        }
    }

    println!("{}", table.render());
}

/// The edit loop of the hello module in a debug build, with grove's development profile
/// (line tables) and with cargo's default (full debug info); then the reload part alone
/// of each library against copy + dlopen of the same file.
fn edit_loop_rows(table: &mut Table, edits: usize) {
    use grove_bench::editloop::{EditCrate, edit_loop, file_size};
    use grove_runtime::DevProfile;

    let krate = EditCrate::scratch();
    let mb = |bytes: u64| format!("{:.1} MB", bytes as f64 / 1e6);
    for (profile, label) in [
        (DevProfile::EditLoop, "line tables (grove's default)"),
        (
            DevProfile::AsConfigured,
            "full debug info (cargo's default)",
        ),
    ] {
        eprintln!("edit loop, {label} (the first build compiles the dependencies)...");
        let e = edit_loop(&krate, profile, edits);
        let (a, b) = &e.libraries;
        eprintln!("the reload part alone, {label}...");
        let l = file_latency(a, b, edits * 3);
        let what = format!("hello module, debug, {label}, {}", mb(e.library_bytes));
        let p = |(p50, p95): (Duration, Duration)| format!("{} / {}", ms(p50), ms(p95));
        table.row(
            format!(
                "edit saved -> build started, p50 / p95 ({what}, {} edits)",
                e.edits
            ),
            p(e.to_build),
            "",
            "",
            "",
            None,
        );
        table.row(
            format!("cargo's incremental build, p50 / p95 ({what})"),
            p(e.cargo),
            "",
            "",
            "",
            None,
        );
        table.row(
            format!("library on disk -> first frame of new code, p50 / p95 ({what})"),
            p(e.to_new_code),
            format!("{} copy+dlopen+dlsym", ms(l.floor)),
            format!(
                "{:.2}x",
                e.to_new_code.0.as_secs_f64() / l.floor.as_secs_f64()
            ),
            "",
            None,
        );
        table.row(
            format!("edit saved -> first frame of new code, p50 / p95 ({what})"),
            p(e.total),
            format!("{} cargo", ms(e.cargo.0)),
            format!("{:.2}x", e.total.0.as_secs_f64() / e.cargo.0.as_secs_f64()),
            "",
            None,
        );
        let ratio = l.p50.as_secs_f64() / l.floor.as_secs_f64();
        table.row(
            format!(
                "the reload part alone: new file -> new code running, p50 ({} reloads, {})",
                l.samples,
                mb(file_size(a))
            ),
            ms(l.p50),
            format!("{} copy+dlopen+dlsym", ms(l.floor)),
            format!("{ratio:.2}x"),
            "<= 1.5x floor",
            Some(ratio <= 1.5),
        );
        table.row(
            format!("the reload part alone, p99 ({})", mb(file_size(a))),
            ms(l.p99),
            ms(l.floor),
            format!("{:.2}x", l.p99.as_secs_f64() / l.floor.as_secs_f64()),
            "",
            None,
        );
    }
}
