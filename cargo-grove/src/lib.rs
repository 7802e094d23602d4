//! `cargo grove`: start a grove project in one command, run its modules with a live
//! terminal dashboard, and check a module before loading it.
//!
//! ```text
//! cargo install --path cargo-grove
//! cargo grove new demo && cd demo
//! cargo grove run              # the dashboard: edit modules/demo/src/lib.rs and save
//! cargo grove check demo-module
//! ```
//!
//! The binary is a thin command line over this library, whose parts a test (or another
//! tool) can drive: [`new::create`] writes a project, [`project::discover`] finds a
//! workspace's module crates, [`session::Session`] is an engine with its dashboard, drawn
//! by [`dashboard::view::render`] on any ratatui backend.

pub mod capture;
pub mod check;
pub mod dashboard;
pub mod error;
pub mod logs;
pub mod new;
pub mod plain;
pub mod project;
pub mod run;
pub mod session;
pub mod tui;

pub use error::{Error, Result};
