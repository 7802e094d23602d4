//! `cargo bench -p grove-bench`: criterion's view of the hot paths, each group with its
//! floor. The one-table summary is `cargo run --release -p grove-bench`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use grove::Module;
use grove::state::{self, StateFormat};
use grove_bench::{World, build_fixtures, floor_load, frame, loaded_with_state};
use grove_runtime::Staging;
use grove_runtime::bench_support::Instances;

fn reload(c: &mut Criterion) {
    let fixtures = build_fixtures();
    let mut group = c.benchmark_group("reload");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    let staging = Arc::new(Staging::new().unwrap());
    let mut n = 0;
    group.bench_function("floor: copy + dlopen + dlsym + dlclose + delete", |b| {
        b.iter(|| {
            n += 1;
            floor_load(&fixtures.v1, staging.path(), n)
        })
    });
    for (label, bytes) in [("0 B", 0), ("1 MiB", 1 << 20)] {
        let mut module = loaded_with_state(&fixtures.v1, bytes, &staging);
        group.bench_function(format!("reload, state {label}"), |b| {
            b.iter(|| module.reload(&fixtures.v1, &frame(0)).unwrap())
        });
    }
    group.finish();
}

fn module_frame(c: &mut Criterion) {
    let fixtures = build_fixtures();
    let mut group = c.benchmark_group("100 module-frames");
    let mut instances = Instances::load(&fixtures.v1, 100).unwrap();
    group.bench_function("through the C ABI", |b| {
        b.iter(|| instances.process_all(&frame(0)).unwrap())
    });
    let mut direct: Vec<bench_module::Bench> = (0..100).map(|_| Default::default()).collect();
    group.bench_function("floor: direct call", |b| {
        b.iter(|| {
            let mut ctx = grove::Context::from_frame(frame(0));
            for m in &mut direct {
                m.process(&mut ctx);
            }
        })
    });
    group.finish();
}

fn formats(c: &mut Criterion) {
    let world = World::sized(1 << 20);
    let mut group = c.benchmark_group("state save+load, 1 MiB");
    group.sample_size(20);
    group.bench_function("floor: clone", |b| b.iter(|| world.clone()));
    for format in [StateFormat::Positional, StateFormat::SelfDescribing] {
        group.bench_function(format.to_string(), |b| {
            b.iter(|| {
                let bytes = state::save(&world, format).unwrap();
                state::restore::<World>(&bytes, format).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, reload, module_frame, formats);
criterion_main!(benches);
