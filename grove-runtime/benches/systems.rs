//! `cargo bench -p grove-runtime --bench systems`: the module systems against each other
//! and against their floor, measured in the same run.
//!
//! - 8 CPU-bound modules of ~2 ms each per frame: the speedup of `Threaded` and `Pool` over
//!   `Sequential` (ideal: the number of cores).
//! - 1,000 light modules (an increment each): what a system costs per module-frame, over
//!   the floor of calling the modules directly in a loop.
//!
//! The CPU-bound module does a fixed amount of work, calibrated once to take ~2 ms, rather
//! than spinning until 2 ms have passed: a spin on the clock ends on time even when the
//! thread spent most of it preempted, and would make 8 threads on 2 cores look 8 times as
//! fast. After criterion's groups a ratio table is printed (its own short measurement:
//! median frame time over a fixed number of frames).

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use grove::{Context, Module};
use grove_runtime::{Engine, StaticModule, Strategy};

const CPU_MODULES: usize = 8;
const CPU_MODULE_COST: Duration = Duration::from_millis(2);
const LIGHT_MODULES: usize = 1000;
const FEW_MODULES: usize = 2;

/// A fixed amount of arithmetic: `rounds` steps of a xorshift generator.
fn work(rounds: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// How many rounds of `work` take `CPU_MODULE_COST` on this machine (the fastest of a few
/// tries, so that a preempted try does not inflate it).
fn rounds() -> u64 {
    static ROUNDS: OnceLock<u64> = OnceLock::new();
    *ROUNDS.get_or_init(|| {
        let probe = 1_000_000;
        let fastest = (0..5)
            .map(|_| {
                let started = Instant::now();
                black_box(work(black_box(probe)));
                started.elapsed()
            })
            .min()
            .unwrap();
        (probe as f64 * CPU_MODULE_COST.as_secs_f64() / fastest.as_secs_f64()) as u64
    })
}

/// A CPU-bound module: ~2 ms of arithmetic per frame.
#[derive(Default)]
struct Busy {
    out: u64,
}

impl Module for Busy {
    fn process(&mut self, _ctx: &mut Context) {
        self.out = self.out.wrapping_add(work(black_box(rounds())));
    }
}

/// A light module: one increment per frame.
#[derive(Default)]
struct Light {
    count: u64,
}

impl Module for Light {
    fn process(&mut self, _ctx: &mut Context) {
        self.count = black_box(self.count + 1);
    }
}

fn engine<M: Module + Default>(strategy: Strategy, modules: usize) -> Engine {
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .strategy(strategy)
        .build()
        .unwrap();
    for i in 0..modules {
        engine
            .add_linked(StaticModule::stateless(format!("m{i}"), M::default()), None)
            .unwrap();
    }
    engine.step(); // threads started, first-frame costs paid
    engine
}

/// The floor: the same modules called directly through `dyn Module`, one after another, no
/// engine (no timing, no panic guard).
fn direct<M: Module + Default>(modules: usize) -> impl FnMut() {
    let mut modules: Vec<Box<dyn Module>> = (0..modules)
        .map(|_| Box::new(M::default()) as Box<dyn Module>)
        .collect();
    let mut frame = 0;
    move || {
        let mut ctx = Context::from_frame(grove::abi::FrameInfo {
            frame,
            ..Default::default()
        });
        for m in &mut modules {
            m.process(&mut ctx);
        }
        frame += 1;
    }
}

fn cpu_bound(c: &mut Criterion) {
    rounds();
    let mut group = c.benchmark_group(format!("{CPU_MODULES} modules x 2 ms"));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(6));
    let mut floor = direct::<Busy>(CPU_MODULES);
    group.bench_function("floor: direct calls", |b| b.iter(&mut floor));
    for strategy in Strategy::ALL {
        let mut engine = engine::<Busy>(strategy, CPU_MODULES);
        group.bench_function(BenchmarkId::from_parameter(strategy), |b| {
            b.iter(|| engine.step())
        });
    }
    group.finish();
}

fn light(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("{LIGHT_MODULES} light modules"));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    let mut floor = direct::<Light>(LIGHT_MODULES);
    group.bench_function("floor: direct calls", |b| b.iter(&mut floor));
    for strategy in Strategy::ALL {
        let mut engine = engine::<Light>(strategy, LIGHT_MODULES);
        group.bench_function(BenchmarkId::from_parameter(strategy), |b| {
            b.iter(|| engine.step())
        });
    }
    group.finish();
}

criterion_group!(benches, cpu_bound, light);

/// Median time of one call of `f` over `n` calls, after `n / 10` warm-up calls.
fn median(n: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[n / 2]
}

/// The ratio table: speedups and per-module-frame overheads, each against its floor.
fn summary() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("\n## Summary ({cores} cores; median frame)\n");
    println!("{CPU_MODULES} modules x ~2 ms each, per frame:\n");
    println!("| system | frame | speedup over sequential | ideal |");
    println!("| --- | ---: | ---: | ---: |");
    let floor = median(30, direct::<Busy>(CPU_MODULES));
    println!(
        "| floor: direct calls | {:.2} ms | | |",
        floor.as_secs_f64() * 1e3
    );
    let mut sequential = None;
    for strategy in Strategy::ALL {
        let mut engine = engine::<Busy>(strategy, CPU_MODULES);
        let t = median(30, || engine.step());
        let base = *sequential.get_or_insert(t);
        let ideal = if strategy == Strategy::Sequential {
            1
        } else {
            cores.min(CPU_MODULES)
        };
        println!(
            "| {strategy} | {:.2} ms | {:.2}x | {ideal}x |",
            t.as_secs_f64() * 1e3,
            base.as_secs_f64() / t.as_secs_f64()
        );
    }

    println!("\n{LIGHT_MODULES} light modules, per frame:\n");
    println!("| system | frame | per module-frame | over the floor | x sequential |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let floor = median(300, direct::<Light>(LIGHT_MODULES));
    let per = |t: Duration| t.as_secs_f64() * 1e9 / LIGHT_MODULES as f64;
    println!(
        "| floor: direct calls | {:.1} us | {:.1} ns | | |",
        floor.as_secs_f64() * 1e6,
        per(floor)
    );
    let mut sequential = None;
    for strategy in Strategy::ALL {
        let mut engine = engine::<Light>(strategy, LIGHT_MODULES);
        let frames = if strategy == Strategy::Threaded {
            60
        } else {
            300
        };
        let t = median(frames, || engine.step());
        let base = *sequential.get_or_insert(t);
        println!(
            "| {strategy} | {:.1} us | {:.1} ns | {:.1} ns | {:.1} |",
            t.as_secs_f64() * 1e6,
            per(t),
            per(t) - per(floor),
            t.as_secs_f64() / base.as_secs_f64()
        );
    }

    println!("\n{FEW_MODULES} light modules: the fixed cost of a frame\n");
    println!("| system | frame |");
    println!("| --- | ---: |");
    for strategy in Strategy::ALL {
        let mut engine = engine::<Light>(strategy, FEW_MODULES);
        let t = median(2000, || engine.step());
        println!("| {strategy} | {:.1} us |", t.as_secs_f64() * 1e6);
    }
}

fn main() {
    let listing = std::env::args().any(|a| a == "--list" || a == "--test");
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    if !listing {
        summary();
    }
}
