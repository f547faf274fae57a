//! Per-listener counters, served as Prometheus text at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters of one listener (`syslog_udp`, `syslog_tcp`, `syslog_tls`, `http_ingest`, ...).
#[derive(Debug, Default)]
pub struct ListenerCounters {
    /// Messages (frames, datagrams, records) received.
    pub received: AtomicU64,
    /// Messages stored as events.
    pub accepted: AtomicU64,
    /// Messages that could not be decoded, stored in `seclog/dead-letter`.
    pub rejected: AtomicU64,
    /// Messages dropped without being stored (UDP with a full queue).
    pub dropped: AtomicU64,
    /// Connections refused (sender not allowed, TLS handshake failed).
    pub refused_connections: AtomicU64,
    /// Messages missing according to the senders' RFC 5424 `sequenceId`.
    pub sequence_gaps: AtomicU64,
}

impl ListenerCounters {
    /// Adds `count` to `counter`.
    pub fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts a request's messages once they are durable: received, stored as events, and
    /// stored as dead letters.
    pub fn stored(&self, accepted: u64, rejected: u64) {
        Self::add(&self.received, accepted + rejected);
        Self::add(&self.accepted, accepted);
        Self::add(&self.rejected, rejected);
    }
}

/// A metric family: name, help text, and which counter it reads.
type Family = (
    &'static str,
    &'static str,
    fn(&ListenerCounters) -> &AtomicU64,
);

/// Every listener's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    listeners: Mutex<BTreeMap<&'static str, Arc<ListenerCounters>>>,
}

impl Metrics {
    /// The counters of `listener`, created on first use.
    pub fn listener(&self, listener: &'static str) -> Arc<ListenerCounters> {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(listeners.entry(listener).or_default())
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let listeners: Vec<(&'static str, Arc<ListenerCounters>)> = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, counters)| (*name, Arc::clone(counters)))
            .collect();
        let mut out = String::new();
        let families: [Family; 6] = [
            (
                "seclog_received_total",
                "Messages received, per listener.",
                |c| &c.received,
            ),
            (
                "seclog_accepted_total",
                "Messages stored as events, per listener.",
                |c| &c.accepted,
            ),
            (
                "seclog_rejected_total",
                "Messages that could not be decoded (kept in seclog/dead-letter), per listener.",
                |c| &c.rejected,
            ),
            (
                "seclog_dropped_total",
                "Messages dropped without being stored (full UDP queue), per listener.",
                |c| &c.dropped,
            ),
            (
                "seclog_refused_connections_total",
                "Connections refused (sender not allowed or TLS handshake failed), per listener.",
                |c| &c.refused_connections,
            ),
            (
                "seclog_syslog_sequence_gaps_total",
                "Messages missing by the senders' RFC 5424 meta sequenceId, per listener.",
                |c| &c.sequence_gaps,
            ),
        ];
        for (name, help, counter) in families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (listener, counters) in &listeners {
                let value = counter(counters).load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{listener=\"{listener}\"}} {value}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_per_listener() {
        let metrics = Metrics::default();
        let udp = metrics.listener("syslog_udp");
        ListenerCounters::add(&udp.received, 3);
        ListenerCounters::add(&udp.dropped, 1);
        metrics.listener("http_ingest");
        let text = metrics.render();
        assert!(text.contains("seclog_received_total{listener=\"syslog_udp\"} 3\n"));
        assert!(text.contains("seclog_dropped_total{listener=\"syslog_udp\"} 1\n"));
        assert!(text.contains("seclog_received_total{listener=\"http_ingest\"} 0\n"));
        assert!(text.contains("# TYPE seclog_accepted_total counter\n"));
    }
}
