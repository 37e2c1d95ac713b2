//! The workflow engine proper: definitions, expressions, node behaviour and the step
//! function. Everything here is pure Rust (no SPI), so it is tested with plain `#[test]`;
//! `crate::worker` is the only caller that talks to Postgres.

pub mod clock;
pub mod contract;
pub mod expr;
pub mod model;
pub mod nodes;
pub mod reducer;
pub mod schedule;
pub mod state;
pub mod step;
