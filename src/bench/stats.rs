//! Counting and reporting for the benchmarks.
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shared by every worker of a run.
#[derive(Default)]
pub struct Stats {
    pub ok: AtomicU64,
    pub bytes: AtomicU64,
    samples: Mutex<BTreeMap<&'static str, Vec<Duration>>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn sample(&self, what: &'static str, d: Duration) {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what)
            .or_default()
            .push(d);
    }

    pub fn error(&self, what: impl Into<String>) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what.into())
            .or_default() += 1;
    }

    pub fn error_count(&self) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Prints "N done, R/s, E errors" to stderr every second until `done` resolves.
    pub async fn progress(
        &self,
        unit: &str,
        total: u64,
        done: impl std::future::Future<Output = ()>,
    ) {
        let start = Instant::now();
        tokio::pin!(done);
        loop {
            tokio::select! {
                _ = &mut done => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    let n = self.ok.load(Ordering::Relaxed);
                    let rate = n as f64 / start.elapsed().as_secs_f64();
                    eprint!("\r{n}/{total} {unit}, {rate:.0}/s, {} errors   ", self.error_count());
                }
            }
        }
        eprintln!();
    }

    /// The result document: rates over `elapsed`, latency percentiles in milliseconds, errors.
    pub fn report(&self, elapsed: Duration, unit: &str, settings: Value) -> Value {
        let ok = self.ok.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut latency = serde_json::Map::new();
        for (what, samples) in self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
        {
            samples.sort_unstable();
            let pct = |p: f64| {
                let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
                ms(samples[i])
            };
            latency.insert(
                what.to_string(),
                json!({"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": ms(*samples.last().unwrap_or(&Duration::ZERO)), "count": samples.len()}),
            );
        }
        json!({
            "settings": settings,
            "elapsed_s": secs,
            unit: ok,
            format!("{unit}_per_s"): ok as f64 / secs,
            "mb_per_s": bytes as f64 / secs / 1e6,
            "latency_ms": latency,
            "errors": *self.errors.lock().unwrap_or_else(|p| p.into_inner()),
        })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Prints a report as text, or as JSON.
pub fn print(report: &Value, as_json: bool) {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    if let Some(map) = report.as_object() {
        for (k, v) in map {
            if k != "latency_ms" && k != "settings" {
                println!("{k:>16}: {v}");
            }
        }
        if let Some(lat) = report["latency_ms"].as_object() {
            for (what, v) in lat {
                println!(
                    "{:>16}: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} samples)",
                    format!("{what} latency"),
                    v["p50"],
                    v["p90"],
                    v["p99"],
                    v["max"],
                    v["count"]
                );
            }
        }
    }
}
