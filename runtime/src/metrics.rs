//! The reconcile loop's Prometheus metrics.
//!
//! The loop records into a [`Metrics`]; the HTTP server (`crate::http`)
//! encodes the same values on `GET /metrics`. Both hold clones of one
//! [`Metrics`], which shares its registry, so no locking is needed beyond
//! what the atomic counters do.
//!
//! Exposed names (exactly):
//!
//! | name | type | labels |
//! | --- | --- | --- |
//! | `knc_sync_duration_seconds` | histogram | |
//! | `knc_syncs_total` | counter | `result` (`success`, `failure`) |
//! | `knc_sync_failures_total` | counter | `reason` |
//! | `knc_last_successful_sync_timestamp_seconds` | gauge | |
//! | `knc_drift_repairs_total` | counter | |
//! | `knc_services` | gauge | |
//! | `knc_endpoints` | gauge | |
//! | `knc_conntrack_entries_deleted_total` | counter | |

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`Metrics::encode`] returns: the Prometheus
/// text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Failure reasons the reconcile loop reports; each starts at zero so that
/// dashboards and alerts see the series before the first failure.
pub const FAILURE_REASONS: [&str; 4] = ["invalid-input", "read", "apply", "lock"];

/// Bucket bounds of `knc_sync_duration_seconds`: 1 ms to 10 s. A sync is
/// an `nft -f` of a few hundred to a few hundred thousand lines.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type Labels = [(&'static str, String); 1];

#[derive(Debug)]
struct Inner {
    registry: Registry,
    sync_duration: Histogram,
    syncs: Family<Labels, Counter>,
    sync_failures: Family<Labels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    drift_repairs: Counter,
    services: Gauge,
    endpoints: Gauge,
    conntrack_deleted: Counter,
}

/// The reconcile loop's counters, shared between the loop and the HTTP
/// server. Cloning is cheap and clones share the values.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let sync_duration = Histogram::new(DURATION_BUCKETS);
        let syncs = Family::<Labels, Counter>::default();
        let sync_failures = Family::<Labels, Counter>::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let drift_repairs = Counter::default();
        let services = Gauge::default();
        let endpoints = Gauge::default();
        let conntrack_deleted = Counter::default();

        // prometheus-client appends `_total` to counter names itself.
        registry.register(
            "knc_sync_duration_seconds",
            "Time one sync took: read, compile, apply",
            sync_duration.clone(),
        );
        registry.register("knc_syncs", "Syncs by result", syncs.clone());
        registry.register(
            "knc_sync_failures",
            "Failed syncs by reason",
            sync_failures.clone(),
        );
        registry.register(
            "knc_last_successful_sync_timestamp_seconds",
            "Unix time of the last successful sync",
            last_success.clone(),
        );
        registry.register(
            "knc_drift_repairs",
            "Times the kernel's ruleset differed from the one knc applied and was rewritten",
            drift_repairs.clone(),
        );
        registry.register(
            "knc_services",
            "Service ports compiled for this node (one per port and IP family)",
            services.clone(),
        );
        registry.register(
            "knc_endpoints",
            "Endpoints in the compiled ruleset",
            endpoints.clone(),
        );
        registry.register(
            "knc_conntrack_entries_deleted",
            "Conntrack entries deleted for gone endpoints",
            conntrack_deleted.clone(),
        );

        for result in ["success", "failure"] {
            let _ = syncs.get_or_create(&[("result", result.to_owned())]);
        }
        for reason in FAILURE_REASONS {
            let _ = sync_failures.get_or_create(&[("reason", reason.to_owned())]);
        }

        Metrics {
            inner: Arc::new(Inner {
                registry,
                sync_duration,
                syncs,
                sync_failures,
                last_success,
                drift_repairs,
                services,
                endpoints,
                conntrack_deleted,
            }),
        }
    }

    /// A sync applied the desired ruleset (or found it already in place).
    pub fn sync_succeeded(&self, duration: Duration, unix_time_seconds: f64) {
        let m = &self.inner;
        m.sync_duration.observe(duration.as_secs_f64());
        m.syncs.get_or_create(&[("result", "success".into())]).inc();
        m.last_success.set(unix_time_seconds);
    }

    /// A sync failed; `reason` is one of [`FAILURE_REASONS`] (others are
    /// counted too, as their own series).
    pub fn sync_failed(&self, duration: Duration, reason: &str) {
        let m = &self.inner;
        m.sync_duration.observe(duration.as_secs_f64());
        m.syncs.get_or_create(&[("result", "failure".into())]).inc();
        m.sync_failures
            .get_or_create(&[("reason", reason.to_owned())])
            .inc();
    }

    /// The kernel's ruleset had drifted from knc's and was rewritten.
    pub fn drift_repaired(&self) {
        self.inner.drift_repairs.inc();
    }

    /// Service ports (per IP family) compiled for this node.
    pub fn set_services(&self, n: u64) {
        self.inner.services.set(saturate(n));
    }

    /// Endpoints in the compiled ruleset.
    pub fn set_endpoints(&self, n: u64) {
        self.inner.endpoints.set(saturate(n));
    }

    /// `n` conntrack entries were deleted (stale UDP flows to gone
    /// endpoints).
    pub fn conntrack_deleted(&self, n: u64) {
        self.inner.conntrack_deleted.inc_by(n);
    }

    /// Everything in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        prometheus_text::encode(&mut out, &self.inner.registry)
            .expect("encoding metrics into a String");
        out
    }
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `series ` exactly.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn every_name_is_exposed_exactly() {
        let text = Metrics::new().encode();
        for (name, kind) in [
            ("knc_sync_duration_seconds", "histogram"),
            ("knc_syncs_total", "counter"),
            ("knc_sync_failures_total", "counter"),
            ("knc_last_successful_sync_timestamp_seconds", "gauge"),
            ("knc_drift_repairs_total", "counter"),
            ("knc_services", "gauge"),
            ("knc_endpoints", "gauge"),
            ("knc_conntrack_entries_deleted_total", "counter"),
        ] {
            let line = format!("# TYPE {name} {kind}\n");
            assert!(text.contains(&line), "no {line:?} in:\n{text}");
        }
        assert!(!text.contains("_total_total"), "{text}");
    }

    #[test]
    fn series_start_at_zero() {
        let text = Metrics::new().encode();
        assert_eq!(
            sample(&text, r#"knc_syncs_total{result="success"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, r#"knc_syncs_total{result="failure"}"#),
            Some(0.0)
        );
        for reason in FAILURE_REASONS {
            let series = format!(r#"knc_sync_failures_total{{reason="{reason}"}}"#);
            assert_eq!(sample(&text, &series), Some(0.0), "{series}");
        }
    }

    #[test]
    fn records_what_the_loop_reports() {
        let metrics = Metrics::new();
        // A clone shares the values: the HTTP server holds one.
        let server_side = metrics.clone();
        metrics.sync_succeeded(Duration::from_millis(3), 1_700_000_000.5);
        metrics.sync_succeeded(Duration::from_millis(20), 1_700_000_010.5);
        metrics.sync_failed(Duration::from_secs(2), "apply");
        metrics.drift_repaired();
        metrics.set_services(7);
        metrics.set_endpoints(12);
        metrics.conntrack_deleted(3);
        metrics.conntrack_deleted(2);

        let text = server_side.encode();
        let at = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}"));
        assert_eq!(at(r#"knc_syncs_total{result="success"}"#), 2.0);
        assert_eq!(at(r#"knc_syncs_total{result="failure"}"#), 1.0);
        assert_eq!(at(r#"knc_sync_failures_total{reason="apply"}"#), 1.0);
        assert_eq!(at(r#"knc_sync_failures_total{reason="read"}"#), 0.0);
        assert_eq!(
            at("knc_last_successful_sync_timestamp_seconds"),
            1_700_000_010.5
        );
        assert_eq!(at("knc_drift_repairs_total"), 1.0);
        assert_eq!(at("knc_services"), 7.0);
        assert_eq!(at("knc_endpoints"), 12.0);
        assert_eq!(at("knc_conntrack_entries_deleted_total"), 5.0);
        assert_eq!(at("knc_sync_duration_seconds_count"), 3.0);
        assert_eq!(at(r#"knc_sync_duration_seconds_bucket{le="0.005"}"#), 1.0);
        assert_eq!(at(r#"knc_sync_duration_seconds_bucket{le="0.025"}"#), 2.0);
        assert_eq!(at(r#"knc_sync_duration_seconds_bucket{le="10"}"#), 3.0);
    }

    #[test]
    fn is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Metrics>();
    }
}
