//! What seclog-app costs a service: a trivial axum handler served three ways, each in its own
//! process, measured by one load generator in this process.
//!
//! - `baseline`: no middleware, no layer;
//! - `seclog-app`: `RequestLogLayer` + `JsonLayer` shipping to a collector that accepts
//!   connections and never answers (the worst case for blocking), spool on disk;
//! - `seclog-app+stdout`: the same, also writing every line to stdout (to /dev/null).
//!
//! For each: an open loop at a fixed rate (default 10,000 requests/s for 10 s; latency counted
//! from each request's scheduled time, so a stalled server cannot hide its queue), then a
//! closed loop for the highest throughput (64 connections, 5 s).
//!
//! `cargo bench -p seclog-app --bench middleware [-- --rate 10000 --secs 10]`

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

const MODE_VAR: &str = "SECLOG_APP_BENCH_SERVE";

fn main() {
    if let Ok(mode) = std::env::var(MODE_VAR) {
        serve(&mode);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|index| args.get(index + 1))
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let rate = value("--rate", 10_000);
    let secs = value("--secs", 10);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "| server | fixed rate: achieved req/s | server CPU (of one core) | p50 ms | p99 ms | max ms | errors | closed loop req/s | closed loop cost |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut baseline_max = None;
    for mode in ["baseline", "seclog-app", "seclog-app+stdout"] {
        let mut server = Server::start(mode);
        let cpu_before = cpu_seconds(server.child.id());
        let fixed = runtime.block_on(open_loop(server.address, rate, Duration::from_secs(secs)));
        let cpu = (cpu_seconds(server.child.id()) - cpu_before) / secs as f64 * 100.0;
        let most = runtime.block_on(closed_loop(server.address, 64, Duration::from_secs(5)));
        let stats = server.stop();
        let base = *baseline_max.get_or_insert(most);
        let cost = if mode == "baseline" {
            "—".to_string()
        } else {
            format!("{:.1} %", (1.0 - most / base) * 100.0)
        };
        println!(
            "| {mode} | {:.0} | {cpu:.0} % | {:.2} | {:.2} | {:.2} | {} | {most:.0} | {cost} |",
            fixed.achieved, fixed.p50_ms, fixed.p99_ms, fixed.max_ms, fixed.errors
        );
        if !stats.is_empty() {
            eprintln!("{mode}: {stats}");
        }
    }
}

/// User plus system CPU seconds a process has used (Linux `/proc/<pid>/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|text| text.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// A server subprocess (this binary with `SECLOG_APP_BENCH_SERVE` set).
struct Server {
    child: Child,
    address: SocketAddr,
    stderr: BufReader<std::process::ChildStderr>,
    _spool: Option<tempfile::TempDir>,
}

impl Server {
    fn start(mode: &str) -> Server {
        let spool = (mode != "baseline").then(|| tempfile::tempdir().expect("spool dir"));
        let mut command = Command::new(std::env::current_exe().expect("this binary"));
        command
            .env(MODE_VAR, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(spool) = &spool {
            command.env("SECLOG_SPOOL_DIR", spool.path());
        }
        let mut child = command.spawn().expect("server process");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        stderr.read_line(&mut first).expect("server address");
        let address = first.trim().parse().expect("an address");
        Server {
            child,
            address,
            stderr,
            _spool: spool,
        }
    }

    /// Ends the server; returns the rest of what it printed on stderr (its counters).
    fn stop(&mut self) -> String {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stderr, &mut rest);
        let _ = self.child.wait();
        rest.trim().to_string()
    }
}

/// The server side: prints its address on stdout, serves until stdin closes.
fn serve(mode: &str) {
    use axum::Router;
    use axum::routing::get;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A collector that takes connections and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").expect("blackhole");
    let collector = format!("http://{}", blackhole.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in blackhole.incoming().flatten() {
            held.push(stream);
        }
    });
    let logging = if mode == "baseline" {
        None
    } else {
        let service = seclog_app::Service {
            name: "bench".into(),
            version: "0".into(),
            host: "bench".into(),
        };
        let mut seclog =
            seclog_app::SeclogConfig::new(collector, seclog_app::Secret::new("slt_x"), "bench");
        seclog.spool_dir = std::env::var_os("SECLOG_SPOOL_DIR").map(Into::into);
        seclog.shutdown_timeout = Duration::from_millis(100);
        let config = seclog_app::Config {
            service,
            stdout: mode.ends_with("+stdout"),
            seclog: Some(seclog),
            redactor: seclog_app::Redactor::default(),
            filter: "info".into(),
        };
        Some(seclog_app::init(config).expect("logging"))
    };
    let mut app = Router::new().route("/hello/{name}", get(|| async { "hello" }));
    if logging.is_some() {
        app = app.layer(seclog_app::middleware::RequestLogLayer::new());
    }
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        // The address goes to the parent on stderr (stdout is the log output).
        let address = listener.local_addr().expect("address");
        eprintln!("{address}");
        let stop = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            })
            .await;
        };
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await
        .expect("serve");
    });
    if let Some(logging) = logging {
        let stats = logging.stats();
        eprintln!(
            "  counters: events {} spooled {} sent {} dropped {} stdout dropped {}",
            stats.events, stats.spooled, stats.sent, stats.dropped, stats.stdout_dropped
        );
        logging.shutdown();
    }
}

struct Fixed {
    achieved: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(address: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

async fn request(sender: &mut Sender, address: SocketAddr, n: u64) -> bool {
    if sender.ready().await.is_err() {
        return false;
    }
    let request = hyper::Request::get(format!("/hello/{}", n % 1000))
        .header("host", address.to_string())
        .body(Empty::<Bytes>::new())
        .expect("request");
    match sender.send_request(request).await {
        Ok(response) => {
            let ok = response.status() == 200;
            ok && response.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

/// `rate` requests per second for `length`, over enough connections that none waits for
/// another; latency counts from each request's scheduled time.
async fn open_loop(address: SocketAddr, rate: u64, length: Duration) -> Fixed {
    let total = rate * length.as_secs();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now() + Duration::from_millis(50);
    let interval_ns = 1_000_000_000 / rate;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (next, errors) = (Arc::clone(&next), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(address).await;
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return latencies;
                }
                let scheduled = started + Duration::from_nanos(n * interval_ns);
                tokio::time::sleep_until(scheduled.into()).await;
                if request(&mut sender, address, n).await {
                    latencies.push(scheduled.elapsed().as_nanos() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    sender = connect(address).await;
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(total as usize);
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |quantile: f64| {
        let index = ((latencies.len() as f64 - 1.0) * quantile).round() as usize;
        latencies.get(index).copied().unwrap_or(0) as f64 / 1e6
    };
    Fixed {
        achieved: latencies.len() as f64 / elapsed,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Requests per second with `connections` clients sending back to back.
async fn closed_loop(address: SocketAddr, connections: usize, length: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(address).await;
            let mut n = 0;
            while Instant::now() < deadline {
                if request(&mut sender, address, n).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    sender = connect(address).await;
                }
                n += 1;
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    done.load(Ordering::Relaxed) as f64 / length.as_secs_f64()
}
