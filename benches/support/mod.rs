//! What the benchmark targets share: a scratch directory, rates, the run of one benchmark
//! from the command line, and the benchmarks themselves (one module each), which the tests
//! also include to check that every figure is reported.
//!
//! Each benchmark computes its figures as one JSON object ([`serde_json::Value`]) and prints
//! them either as that object (`--json`) or as text.
#![allow(dead_code)]

pub mod api;
pub mod audit;
pub mod http;
pub mod ingest;
pub mod sync;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use uuid::Uuid;

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty directory under the system's temporary directory, its name holding `name`.
    pub fn new(name: &str) -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!(
            "threatlog-bench-{name}-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `count` per second over `seconds`.
pub fn rate(count: usize, seconds: f64) -> f64 {
    count as f64 / seconds.max(1e-9)
}

/// The number `name` of `figures` (0 when missing).
pub fn figure(figures: &Value, name: &str) -> f64 {
    figures[name].as_f64().unwrap_or(0.0)
}

/// Options that can ask for the figures as one JSON object.
pub trait JsonOption {
    /// Whether to print one JSON object instead of text.
    fn json(&self) -> bool;
}

/// Runs a benchmark target: under `cargo bench` (which passes `--bench`), parses the options
/// from the rest of the arguments, computes the figures with `figures` and prints them, as
/// JSON with `--json` and with `text` otherwise. Under `cargo test` (no `--bench`) it does
/// nothing: the tests in `tests/` run each benchmark on a small workload.
pub fn main<O: Parser + JsonOption>(
    figures: fn(&O) -> Result<Value>,
    text: fn(&O, &Value),
) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|arg| arg == "--bench") {
        println!("benchmark: run it with `cargo bench`");
        return ExitCode::SUCCESS;
    }
    let options = O::parse_from(args.into_iter().filter(|arg| arg != "--bench"));
    match figures(&options) {
        Ok(figures) if options.json() => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Ok(figures) => {
            text(&options, &figures);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
