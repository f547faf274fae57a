//! Syslog listeners: UDP (RFC 5426), TCP (RFC 6587: octet counting, LF or NUL framing) and
//! TLS (RFC 5425, TLS 1.2 and 1.3, optional client certificates).
//!
//! Every message becomes one event: the frame exactly as received is the record's `raw`, the
//! parsed header, structured data and text are its attributes, the message's own timestamp
//! its time. The group comes from a template (`syslog/{appname}` by default). A frame that
//! cannot be a message goes, with the reason, to `seclog/dead-letter`.
//!
//! Backpressure: a TCP or TLS connection is not read while its previous frames wait for the
//! journal, so a sender that outruns the disk is slowed down, never dropped. UDP cannot be
//! slowed: datagrams wait in a bounded queue and those that find it full are counted as dropped.
//!
//! Senders are allowed by network (loopback only by default); a TLS listener configured with
//! a client CA admits any sender presenting a certificate it signed instead.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use seclog_formats::syslog::{DEFAULT_MAX_FRAME, Frame, Framer, parse_syslog};
use seclog_journal::{Record, RecordKind};
use seclog_model::{GroupName, Timestamp};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::committer::{CommitHandle, GroupBatch, SubmitError};
use crate::metrics::{ListenerCounters, Metrics};
use crate::protocol::Batches;
use crate::tls::{HANDSHAKE_TIMEOUT, ReloadingTls};

/// Datagrams waiting for the journal before new ones are dropped.
const UDP_QUEUE: usize = 65_536;
/// Most records one journal submission carries.
const MAX_BATCH: usize = 8_192;
/// Bytes read from a stream at once.
const READ_CHUNK: usize = 256 * 1024;
/// At shutdown, a connection is read until its sender has been quiet this long.
const DRAIN_QUIET: Duration = Duration::from_millis(500);
/// How long a listener waits for room in the journal queue before giving up on a batch.
const SUBMIT_WAIT: Duration = Duration::from_secs(300);

pub use crate::tls::TlsFiles;

/// Which syslog listeners run, and how messages are grouped.
#[derive(Debug, Clone)]
pub struct SyslogSettings {
    /// UDP address.
    pub udp: Option<SocketAddr>,
    /// Plain TCP address.
    pub tcp: Option<SocketAddr>,
    /// TLS address (needs `tls_files`).
    pub tls: Option<SocketAddr>,
    /// Certificates of the TLS listener.
    pub tls_files: Option<TlsFiles>,
    /// Networks senders may connect from (without a client certificate).
    pub allow: Vec<IpNet>,
    /// Group of each message: `{appname}` and `{hostname}` are replaced by the message's own
    /// (characters a group name cannot hold become `_`; a missing one is `unknown`).
    pub group: String,
    /// Largest frame accepted.
    pub max_frame: usize,
}

impl Default for SyslogSettings {
    fn default() -> Self {
        SyslogSettings {
            udp: None,
            tcp: None,
            tls: None,
            tls_files: None,
            allow: loopback(),
            group: "syslog/{appname}".into(),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// The loopback networks (the default allow-list).
pub fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

impl SyslogSettings {
    /// Whether any listener is configured.
    pub fn any(&self) -> bool {
        self.udp.is_some() || self.tcp.is_some() || self.tls.is_some()
    }
}

/// Running listeners.
pub struct SyslogListeners {
    /// Bound UDP address.
    pub udp: Option<SocketAddr>,
    /// Bound TCP address.
    pub tcp: Option<SocketAddr>,
    /// Bound TLS address.
    pub tls: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Certificate reloading.
    watchers: Vec<JoinHandle<()>>,
}

impl SyslogListeners {
    /// Stops accepting and reading; returns once what was read has been committed.
    pub async fn stop(self) {
        for watcher in &self.watchers {
            watcher.abort();
        }
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What every listener task shares.
struct Context {
    commit: CommitHandle,
    settings: SyslogSettings,
    /// Last `sequenceId` per sender (address, host, application).
    sequences: Mutex<HashMap<String, u64>>,
}

/// Binds and starts the configured listeners.
pub(crate) async fn start(
    settings: &SyslogSettings,
    commit: CommitHandle,
    metrics: &Metrics,
) -> std::io::Result<SyslogListeners> {
    check_template(&settings.group)?;
    let tls_config = match (&settings.tls, &settings.tls_files) {
        (Some(_), Some(files)) => Some(ReloadingTls::new("syslog", files.clone(), |files| {
            let mut config = files.server_config(&[])?;
            // No TLS 1.3 session tickets: syslog senders never read from the connection, and
            // a socket closed with unread bytes (the tickets) is reset, which would throw away
            // the messages still waiting in seclog's receive buffer.
            config.send_tls13_tickets = 0;
            Ok(config)
        })?),
        (Some(_), None) => {
            return Err(std::io::Error::other(
                "the syslog TLS listener needs --tls-cert and --tls-key",
            ));
        }
        _ => None,
    };
    let context = Arc::new(Context {
        commit,
        settings: settings.clone(),
        sequences: Mutex::new(HashMap::new()),
    });
    let (stop, stopped) = watch::channel(false);
    let mut listeners = SyslogListeners {
        udp: None,
        tcp: None,
        tls: None,
        stop,
        tasks: Vec::new(),
        watchers: Vec::new(),
    };
    if let Some(address) = settings.udp {
        let socket = UdpSocket::bind(address).await?;
        listeners.udp = Some(socket.local_addr()?);
        let counters = metrics.listener("syslog_udp");
        listeners.tasks.push(tokio::spawn(serve_udp(
            socket,
            Arc::clone(&context),
            counters,
            stopped.clone(),
        )));
    }
    if let Some(address) = settings.tcp {
        let listener = TcpListener::bind(address).await?;
        listeners.tcp = Some(listener.local_addr()?);
        let counters = metrics.listener("syslog_tcp");
        listeners.tasks.push(tokio::spawn(accept_loop(
            listener,
            None,
            Arc::clone(&context),
            counters,
            stopped.clone(),
        )));
    }
    if let (Some(address), Some(tls)) = (settings.tls, tls_config) {
        let listener = TcpListener::bind(address).await?;
        listeners.tls = Some(listener.local_addr()?);
        let counters = metrics.listener("syslog_tls");
        listeners.watchers.push(tls.watch());
        listeners.tasks.push(tokio::spawn(accept_loop(
            listener,
            Some(tls),
            Arc::clone(&context),
            counters,
            stopped.clone(),
        )));
    }
    Ok(listeners)
}

fn check_template(template: &str) -> std::io::Result<()> {
    let sample = template
        .replace("{appname}", "app")
        .replace("{hostname}", "host");
    GroupName::parse(&sample).map(|_| ()).map_err(|error| {
        std::io::Error::other(format!("syslog group template {template:?}: {error}"))
    })
}

fn allowed(context: &Context, peer: IpAddr) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    context.settings.allow.iter().any(|net| net.contains(&peer))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<ReloadingTls>,
    context: Arc<Context>,
    counters: Arc<ListenerCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let transport = if tls.is_some() { "tls" } else { "tcp" };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %error, transport, "syslog accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let certificate_auth = context
            .settings
            .tls_files
            .as_ref()
            .is_some_and(|files| tls.is_some() && files.client_ca.is_some());
        if !certificate_auth && !allowed(&context, peer.ip()) {
            ListenerCounters::add(&counters.refused_connections, 1);
            tracing::warn!(peer = %peer, transport, "syslog sender not in the allow-list");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let context = Arc::clone(&context);
        let counters = Arc::clone(&counters);
        let stop = stop.clone();
        let tls = tls.as_ref().map(ReloadingTls::acceptor);
        connections.spawn(async move {
            match tls {
                None => serve_stream(stream, peer.ip(), transport, context, counters, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_stream(stream, peer.ip(), transport, context, counters, stop)
                                .await;
                        }
                        Ok(Err(error)) => {
                            ListenerCounters::add(&counters.refused_connections, 1);
                            tracing::warn!(peer = %peer, error = %error, "syslog TLS handshake failed");
                        }
                        Err(_) => {
                            ListenerCounters::add(&counters.refused_connections, 1);
                            tracing::warn!(peer = %peer, "syslog TLS handshake timed out");
                        }
                    }
                }
            }
        });
        // Reap finished connections as we go.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// Reads frames from one connection until it closes (or the server stops). What each read
/// completes is queued for the journal at once, and reading goes on while up to
/// `MAX_IN_FLIGHT` such batches are being committed; beyond that the connection waits.
async fn serve_stream<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: IpAddr,
    transport: &'static str,
    context: Arc<Context>,
    counters: Arc<ListenerCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut framer = Framer::new(context.settings.max_frame);
    let mut buffer: Vec<u8> = Vec::with_capacity(READ_CHUNK * 2);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut in_flight = InFlight::default();
    let mut stopping = false;
    let source = format!("syslog-{transport}:{peer}");
    loop {
        // Once the server stops, what the sender already sent is still read (until it closes
        // or goes quiet for a moment), so that nothing in the socket buffer is lost.
        let read = if stopping {
            match tokio::time::timeout(DRAIN_QUIET, stream.read(&mut chunk)).await {
                Ok(read) => read,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                read = stream.read(&mut chunk) => read,
                _ = stop.changed() => {
                    stopping = true;
                    continue;
                }
            }
        };
        let (count, eof) = match read {
            Ok(0) => (0, true),
            Ok(count) => (count, false),
            Err(error) => {
                tracing::debug!(peer = %peer, error = %error, transport, "syslog connection read failed");
                (0, true)
            }
        };
        buffer.extend_from_slice(chunk.get(..count).unwrap_or_default());
        let received = Timestamp::now();
        let mut batch = Batch::default();
        let mut at = 0;
        loop {
            let (frame, used) = framer.next(buffer.get(at..).unwrap_or_default(), eof);
            at += used;
            match frame {
                Some(frame) => {
                    ListenerCounters::add(&counters.received, 1);
                    batch.add(
                        &context,
                        &counters,
                        frame,
                        peer,
                        (transport, &source),
                        received,
                    );
                    if batch.len() >= MAX_BATCH
                        && !in_flight.queue(&mut batch, &context, &counters).await
                    {
                        return;
                    }
                }
                None if used == 0 || at >= buffer.len() => break,
                None => {}
            }
        }
        buffer.drain(..at.min(buffer.len()));
        if !in_flight.queue(&mut batch, &context, &counters).await || eof {
            break;
        }
    }
    in_flight.drain().await;
}

/// Batches of one connection queued for the journal and not yet durable.
#[derive(Default)]
struct InFlight {
    batches: std::collections::VecDeque<JoinHandle<bool>>,
}

/// Batches one connection may have queued for the journal at once.
const MAX_IN_FLIGHT: usize = 4;

impl InFlight {
    /// Queues `batch` (in connection order), after waiting for the oldest queued batch if
    /// `MAX_IN_FLIGHT` are pending; `false` if the journal is gone.
    async fn queue(
        &mut self,
        batch: &mut Batch,
        context: &Arc<Context>,
        counters: &Arc<ListenerCounters>,
    ) -> bool {
        while self.batches.len() >= MAX_IN_FLIGHT {
            match self.batches.pop_front() {
                Some(oldest) => {
                    if !oldest.await.unwrap_or(false) {
                        return false;
                    }
                }
                None => break,
            }
        }
        let Some((batches, accepted, rejected)) = batch.take() else {
            return true;
        };
        let queued = match context.commit.enqueue(batches, SUBMIT_WAIT).await {
            Ok(queued) => queued,
            Err(error) => {
                report_failure(counters, accepted + rejected, &error);
                return false;
            }
        };
        let counters = Arc::clone(counters);
        self.batches.push_back(tokio::spawn(async move {
            match queued.committed().await {
                Ok(_) => {
                    ListenerCounters::add(&counters.accepted, accepted);
                    ListenerCounters::add(&counters.rejected, rejected);
                    true
                }
                Err(error) => {
                    report_failure(&counters, accepted + rejected, &error);
                    false
                }
            }
        }));
        true
    }

    /// Waits for every queued batch.
    async fn drain(self) {
        for handle in self.batches {
            let _ = handle.await;
        }
    }
}

fn report_failure(counters: &ListenerCounters, messages: u64, error: &SubmitError) {
    ListenerCounters::add(&counters.dropped, messages);
    match error {
        SubmitError::Busy => tracing::error!(
            "the journal stayed busy for {SUBMIT_WAIT:?}; {messages} syslog messages dropped"
        ),
        SubmitError::Closed => {}
        SubmitError::Failed(reason) => {
            tracing::error!(error = %reason, "{messages} syslog messages not committed");
        }
    }
}

async fn serve_udp(
    socket: UdpSocket,
    context: Arc<Context>,
    counters: Arc<ListenerCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let (sender, mut receiver) = mpsc::channel::<(Vec<u8>, IpAddr, Timestamp)>(UDP_QUEUE);
    let drain_context = Arc::clone(&context);
    let drain_counters = Arc::clone(&counters);
    let drain = tokio::spawn(async move {
        let mut datagrams = Vec::with_capacity(MAX_BATCH);
        while receiver.recv_many(&mut datagrams, MAX_BATCH).await > 0 {
            let mut batch = Batch::default();
            for (datagram, peer, received) in datagrams.drain(..) {
                let message = trim_datagram(&datagram);
                let source = format!("syslog-udp:{peer}");
                batch.add(
                    &drain_context,
                    &drain_counters,
                    Frame::Message(message),
                    peer,
                    ("udp", &source),
                    received,
                );
            }
            if !batch.commit(&drain_context, &drain_counters).await {
                // The journal is gone: what is still queued cannot be stored.
                break;
            }
        }
    });
    let mut buffer = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            _ = stop.changed() => break,
        };
        let (count, peer) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(error = %error, "syslog UDP receive failed");
                continue;
            }
        };
        if !allowed(&context, peer.ip()) {
            ListenerCounters::add(&counters.refused_connections, 1);
            continue;
        }
        ListenerCounters::add(&counters.received, 1);
        let datagram = buffer.get(..count).unwrap_or_default().to_vec();
        if sender
            .try_send((datagram, peer.ip(), Timestamp::now()))
            .is_err()
        {
            ListenerCounters::add(&counters.dropped, 1);
        }
    }
    drop(sender);
    let _ = drain.await;
}

/// A datagram without the line end or NUL some senders add.
fn trim_datagram(datagram: &[u8]) -> &[u8] {
    let mut end = datagram.len();
    while end > 0 && matches!(datagram.get(end - 1), Some(b'\n' | b'\r' | 0)) {
        end -= 1;
    }
    datagram.get(..end).unwrap_or_default()
}

/// Records of one read or one run of datagrams, by group.
#[derive(Default)]
struct Batch {
    groups: Batches,
    accepted: u64,
    rejected: u64,
}

impl Batch {
    fn len(&self) -> usize {
        self.groups.len()
    }

    fn push(&mut self, group: GroupName, record: Vec<u8>) {
        self.groups.push(&group, record);
    }

    fn add(
        &mut self,
        context: &Context,
        counters: &ListenerCounters,
        frame: Frame<'_>,
        peer: IpAddr,
        (transport, source): (&str, &str),
        received: Timestamp,
    ) {
        let (raw, reason) = match frame {
            Frame::Message(raw) => match parse_syslog(raw, received) {
                Ok(message) => {
                    if let Some(sequence) = message.sequence_id {
                        let key = format!(
                            "{peer}|{}|{}",
                            message.hostname.as_deref().unwrap_or_default(),
                            message.app_name.as_deref().unwrap_or_default()
                        );
                        let gap = sequence_gap(context, key, sequence);
                        ListenerCounters::add(&counters.sequence_gaps, gap);
                    }
                    let group = group_for(
                        &context.settings.group,
                        message.app_name.as_deref(),
                        message.hostname.as_deref(),
                    );
                    let mut attrs = message.fields;
                    attrs.insert("transport".into(), json!(transport));
                    let record = Record {
                        time: message.time.unwrap_or(received),
                        observed_time: received,
                        kind: RecordKind::Text,
                        source: source.to_string(),
                        attrs: Value::Object(attrs).to_string().into_bytes(),
                        raw: raw.to_vec(),
                    };
                    self.push(group, record.encode());
                    self.accepted += 1;
                    return;
                }
                Err(reason) => (raw, reason),
            },
            Frame::Invalid { raw, reason } => (raw, reason),
        };
        let record = crate::protocol::dead_letter(
            raw,
            &reason,
            &format!("syslog_{transport}"),
            received,
            source,
        );
        self.push(GroupName::dead_letter(), record);
        self.rejected += 1;
    }

    /// The batch's records for the journal, with its accepted and rejected counts, leaving
    /// it empty (`None` if it was).
    fn take(&mut self) -> Option<(Vec<GroupBatch>, u64, u64)> {
        if self.groups.len() == 0 {
            return None;
        }
        let batches = std::mem::take(&mut self.groups).into_inner();
        let counts = (self.accepted, self.rejected);
        (self.accepted, self.rejected) = (0, 0);
        Some((batches, counts.0, counts.1))
    }

    /// Commits the batch (waiting for room in the journal); `false` if the journal is gone.
    async fn commit(&mut self, context: &Context, counters: &ListenerCounters) -> bool {
        let Some((batches, accepted, rejected)) = self.take() else {
            return true;
        };
        match context.commit.submit(batches, SUBMIT_WAIT).await {
            Ok(_) => {
                ListenerCounters::add(&counters.accepted, accepted);
                ListenerCounters::add(&counters.rejected, rejected);
                true
            }
            Err(error) => {
                report_failure(counters, accepted + rejected, &error);
                false
            }
        }
    }
}

/// Messages missing before `sequence` from this sender (RFC 5424 §7.3.1: 1 to 2^31-1, then
/// wrapping to 1). A lower number than the last one is a restart, not a gap.
fn sequence_gap(context: &Context, sender: String, sequence: u64) -> u64 {
    let mut sequences = context
        .sequences
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if sequences.len() >= 100_000 && !sequences.contains_key(&sender) {
        sequences.clear();
    }
    let last = sequences.insert(sender, sequence);
    match last {
        Some(last) if sequence > last + 1 => sequence - last - 1,
        _ => 0,
    }
}

/// The group a message goes to.
fn group_for(template: &str, app_name: Option<&str>, hostname: Option<&str>) -> GroupName {
    let name = template
        .replace("{appname}", &group_part(app_name))
        .replace("{hostname}", &group_part(hostname));
    GroupName::parse(&name)
        .or_else(|_| GroupName::parse("syslog/unknown"))
        .unwrap_or_else(|_| GroupName::dead_letter())
}

/// A value made fit for one part of a group name (`unknown` when absent).
fn group_part(value: Option<&str>) -> String {
    value
        .and_then(crate::protocol::name_part)
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_from_the_template() {
        assert_eq!(
            group_for("syslog/{appname}", Some("sshd"), None).as_str(),
            "syslog/sshd"
        );
        assert_eq!(
            group_for(
                "syslog/{hostname}/{appname}",
                Some("my app!"),
                Some("web-1")
            )
            .as_str(),
            "syslog/web-1/my_app_"
        );
        assert_eq!(
            group_for("syslog/{appname}", None, None).as_str(),
            "syslog/unknown"
        );
        assert_eq!(
            group_for("syslog/{appname}", Some(".."), None).as_str(),
            "syslog/_"
        );
        assert!(check_template("syslog/{appname}").is_ok());
        assert!(check_template("bad group/{appname}").is_err());
    }

    #[test]
    fn datagrams_lose_their_line_ends() {
        assert_eq!(trim_datagram(b"<13>hi\n\0"), b"<13>hi");
        assert_eq!(trim_datagram(b"\n"), b"");
    }
}
