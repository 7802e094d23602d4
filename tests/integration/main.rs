//! Integration tests: real module libraries built from tests/fixtures (once per run, see
//! `support`), loaded, run and reloaded through grove-runtime.

mod boundary;
mod check;
mod config;
mod console;
mod crashes;
mod dashboard;
mod engine;
mod faults;
mod fields;
mod health;
mod lifecycle;
mod live_crate;
mod logs;
mod many;
mod messaging;
mod reliability;
mod reload;
mod showcase;
mod snapshots;
mod static_modules;
mod support;
mod systems;
