//! Everything that touches a module library: reading its file, staging its copy, opening
//! and closing it, the instances made from it, the host's table it calls back into, and
//! what the process learns from outside when the library's code misbehaves (threads still
//! running it, fatal signals inside it). Every `unsafe` of grove-runtime that concerns a
//! module is in this folder; everything above it is safe Rust.

pub(crate) mod calls;
pub(crate) mod crash;
pub(crate) mod elf;
pub(crate) mod host_log;
pub(crate) mod host_spans;
pub(crate) mod instance;
pub(crate) mod library;
pub(crate) mod mapped;
pub(crate) mod maps;
pub(crate) mod staging;
pub(crate) mod threads;
