//! Command-line interface definition.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// seclog: tamper-evident, encrypted security log store.
#[derive(Debug, Parser)]
#[command(name = "seclog", version, about, args_override_self = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the data directory and its master key are.
#[derive(Debug, Args, Clone)]
pub(crate) struct DataArgs {
    /// Data directory.
    #[arg(long = "data", value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// Master key file (default DIR/keys/master.key).
    #[arg(
        long = "master-key-file",
        env = "SECLOG_MASTER_KEY_FILE",
        value_name = "PATH"
    )]
    pub(crate) master_key_file: Option<PathBuf>,
}

/// Forward-secure epoch layout, used when a store is created.
#[derive(Debug, Args, Clone)]
pub(crate) struct EpochArgs {
    /// Length of a signing epoch in seconds (older epochs' keys are erased).
    #[arg(long, default_value_t = 3600)]
    pub(crate) epoch_secs: u64,
    /// Number of epochs the verification key commits to (default: five years of hours).
    #[arg(long, default_value_t = 43_920)]
    pub(crate) epochs: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a data directory: master key, signing state, verification key, admin token.
    Init {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        epochs: EpochArgs,
        /// Also create a CA and a server certificate in DIR/tls/ (ca.pem, ca.key, server.pem,
        /// server.key): `serve` then answers HTTPS only; clients trust DIR/tls/ca.pem.
        #[arg(long)]
        self_signed: bool,
        /// DNS name or IP address of the server certificate (repeatable; default localhost,
        /// 127.0.0.1, ::1 and this host's name).
        #[arg(long = "tls-name", value_name = "NAME", requires = "self_signed")]
        tls_names: Vec<String>,
    },
    /// Run the server (initializes an empty data directory first).
    Serve(Box<ServeArgs>),
    /// Check every stored byte against the signed checkpoints, with the public key only.
    Verify {
        /// Data directory.
        #[arg(long = "data", value_name = "DIR")]
        data: PathBuf,
        /// Verification key (default DIR/verification.key).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// A checkpoint kept outside the host (from `seclog checkpoint`): history before it must match.
        #[arg(long, value_name = "FILE")]
        since_checkpoint: Option<PathBuf>,
    },
    /// Print a self-contained proof bundle (JSON) for one event (recorded in seclog/access).
    Proof {
        #[command(flatten)]
        target: TargetArgs,
        /// Group of the event.
        #[arg(long)]
        group: String,
        /// Sequence number of the event.
        #[arg(long)]
        seq: u64,
        /// The bundle without the event (its commitment instead), as auditors get it.
        #[arg(long)]
        sealed: bool,
    },
    /// Check a proof bundle offline.
    VerifyProof {
        /// Verification key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Bundle file (`-` for standard input).
        bundle: PathBuf,
    },
    /// Print stored events as NDJSON (recorded in seclog/access; `--follow` tails the group).
    Cat {
        #[command(flatten)]
        target: TargetArgs,
        /// Group to print.
        #[arg(long)]
        group: String,
        /// First sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Maximum number of events.
        #[arg(long)]
        limit: Option<usize>,
        /// Keep printing new events as they arrive (with --server).
        #[arg(long, requires = "server")]
        follow: bool,
    },
    /// List groups with their event counts.
    Groups {
        /// Data directory.
        #[arg(long = "data", value_name = "DIR")]
        data: PathBuf,
    },
    /// Print the newest signed checkpoint (hand it to a witness; pin it with --since-checkpoint).
    Checkpoint {
        /// Data directory.
        #[arg(long = "data", value_name = "DIR")]
        data: PathBuf,
    },
    /// Retention policies.
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Crypto-shred a group: destroy the data keys of every record it holds, so that nobody
    /// can read them again, keeping the encrypted segments so that `verify` still passes (and
    /// reports the shred). Server stopped. Refused under a legal hold or compliance retention.
    Shred {
        #[command(flatten)]
        data: DataArgs,
        /// Group name.
        #[arg(long)]
        group: String,
        /// Why (recorded in seclog/access; the signed shred keeps its digest).
        #[arg(long)]
        reason: String,
    },
    /// The master key: generate one, rotate it (server stopped).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Run a CloudWatch Logs Insights query (recorded in seclog/access).
    Query(Box<QueryArgs>),
    /// Import service log files (CloudTrail, VPC Flow Logs, Route 53, ALB, WAF, S3 access,
    /// Config, database audit, web access logs), normalized to OCSF; each object once.
    Import(Box<ImportArgs>),
    /// Check imported CloudTrail log files against CloudTrail's signed digest chain, offline,
    /// and report what the chain leaves out (server stopped).
    ValidateCloudtrail(Box<ValidateArgs>),
    /// Generate realistic service log records (seeded) for benchmarks and demos.
    Gen(Box<GenArgs>),
    /// Sigma rules: check which load.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Findings and their delivery state.
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Run Sigma rules (and the built-in pack) over files or over stored history; one NDJSON
    /// line per match.
    Hunt(Box<HuntArgs>),
    /// Rebuild the search index from the journal (server stopped).
    Reindex {
        #[command(flatten)]
        data: DataArgs,
        /// Only this group (default: every group).
        #[arg(long)]
        group: Option<String>,
    },
}

/// Output format of `seclog query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Aligned columns.
    Table,
    /// One JSON document: fields, rows, stats.
    Json,
    /// One JSON object per row.
    Ndjson,
}

/// Where a command works: a running server, or a stopped data directory.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// A running server (token from SECLOG_TOKEN).
    #[arg(long, value_name = "URL", conflicts_with = "data")]
    pub(crate) server: Option<String>,
    /// A data directory, directly (the server must be stopped).
    #[arg(long, value_name = "DIR", required_unless_present = "server")]
    pub(crate) data: Option<PathBuf>,
    /// Master key file for --data (default DIR/keys/master.key).
    #[arg(
        long = "master-key-file",
        env = "SECLOG_MASTER_KEY_FILE",
        value_name = "PATH"
    )]
    pub(crate) master_key_file: Option<PathBuf>,
    /// Token for --server.
    #[arg(long, env = "SECLOG_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// cloudtrail, vpcflow, route53 or alb.
    #[arg(long)]
    pub(crate) format: String,
    /// How many records.
    #[arg(long, default_value_t = 1000)]
    pub(crate) events: u64,
    /// Seed: the same seed gives the same records.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Time of the first record (RFC 3339; default: so that the last is about now).
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
    /// Write gzip objects in the AWSLogs/<account>/<service>/<region>/YYYY/MM/DD/ layout under
    /// this directory instead of printing.
    #[arg(long, value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// Records per object with --output.
    #[arg(long, default_value_t = 5000)]
    pub(crate) per_file: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Data directory.
    #[arg(long = "data", value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// Master key file (default DIR/keys/master.key).
    #[arg(
        long = "master-key-file",
        env = "SECLOG_MASTER_KEY_FILE",
        value_name = "PATH"
    )]
    pub(crate) master_key_file: Option<PathBuf>,
    /// The JSON `aws cloudtrail list-public-keys` prints.
    #[arg(long, value_name = "FILE")]
    pub(crate) public_keys: PathBuf,
    /// The group the trail's log files were imported into (digests are in <group>-digest).
    #[arg(long, default_value = "aws/cloudtrail")]
    pub(crate) group: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// auto, cloudtrail, vpcflow, route53, alb, elb, waf, s3access, config, pgaudit,
    /// mysql-audit or combined.
    #[arg(long, default_value = "auto")]
    pub(crate) format: String,
    /// Group for the events (default aws/<format>).
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// VPC Flow Logs format string for files without a header line, e.g. '${version} ${srcaddr} …'.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) vpc_format: Option<String>,
    /// S3 endpoint for s3:// inputs (default AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub(crate) s3_endpoint: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Files, directories (read recursively) and s3://bucket/prefix URLs; .gz and .zst
    /// objects are decompressed.
    #[arg(required = true, value_name = "INPUT")]
    pub(crate) inputs: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Search the last period: 15m, 6h, 7d (default 1h).
    #[arg(long, value_name = "PERIOD", conflicts_with_all = ["start", "end"])]
    pub(crate) since: Option<String>,
    /// Start of the time range (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
    /// End of the time range (RFC 3339, default now).
    #[arg(long, value_name = "TIME")]
    pub(crate) end: Option<String>,
    /// Group to search (repeat for several; default every group you may read).
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
    /// The query, for example: filter eventName = "ConsoleLogin" | stats count(*) by sourceIPAddress
    pub(crate) query: String,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML file of serve settings, keyed by flag name (`syslog-udp = "0.0.0.0:514"`); flags
    /// on the command line win.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Detection rules evaluated on every sealed event (the built-in pack unless
    /// --no-builtin); findings go to seclog/alerts.
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
    /// Run no streaming detection.
    #[arg(long)]
    pub(crate) no_detection: bool,
    /// Deliver findings to the destinations in this TOML file (webhook, Slack, CEF, e-mail;
    /// docs/detection.md).
    #[arg(long, value_name = "FILE")]
    pub(crate) alerting: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) http: SocketAddr,
    /// How long a commit waits for concurrent requests to join it while several senders are
    /// writing (milliseconds; a lone sender's request commits at once).
    #[arg(long, default_value_t = 5)]
    pub(crate) commit_interval_ms: u64,
    /// Longest delay between an acknowledgement and its signed checkpoint (milliseconds, at most 1000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) seal_delay_ms: u64,
    /// Signed heartbeat checkpoint interval while idle (seconds, at most 60).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub(crate) heartbeat_secs: u64,
    /// How often retention policies are applied (seconds).
    #[arg(long, default_value_t = 300)]
    pub(crate) retention_sweep_secs: u64,
    /// Wrong tokens one address may present (within 5 minutes) before its requests are delayed;
    /// each further one doubles the delay.
    #[arg(long, default_value_t = 5)]
    pub(crate) auth_free_failures: u32,
    /// Longest delay for an address that keeps presenting wrong tokens (seconds).
    #[arg(long, default_value_t = 8)]
    pub(crate) auth_max_delay_secs: u64,
    /// How far the wall clock may drift from the time retention trusts before expiry stops
    /// following it (seconds; a stop longer than this needs `POST /api/v1/clock`).
    #[arg(long, default_value_t = 3600)]
    pub(crate) clock_tolerance_secs: u64,
    /// A group (pattern; `*` matches anything) and the longest silence expected of it, such
    /// as `aws/cloudtrail=15m`: a longer one raises a `source_silent` alarm (repeatable).
    #[arg(long = "expect", value_name = "GROUP=DURATION")]
    pub(crate) expect: Vec<String>,
    /// How often the logging-failure watchdog looks (seconds).
    #[arg(long, default_value_t = 10)]
    pub(crate) watchdog_interval_secs: u64,
    /// The indexer or detector not progressing this long while records wait is an alarm
    /// (seconds).
    #[arg(long, default_value_t = 300)]
    pub(crate) stall_after_secs: u64,
    /// Less free space than this percentage on the data directory's file system is an alarm.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) disk_min_free_percent: f64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 32 << 20)]
    pub(crate) max_body_bytes: usize,
    /// Largest decompressed body in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    pub(crate) max_decompressed_bytes: usize,
    /// Segment size at which a new segment is started (bytes).
    #[arg(long, default_value_t = 64 << 20)]
    pub(crate) segment_max_bytes: u64,
    /// zstd level for stored blocks.
    #[arg(long, default_value_t = 3)]
    pub(crate) zstd_level: i32,
    /// A query running longer answers with what it found so far (seconds).
    #[arg(long, default_value_t = 30)]
    pub(crate) query_timeout_secs: u64,
    /// Decrypted index data kept in memory for repeated queries (MiB; 0 disables).
    #[arg(long, default_value_t = 1024)]
    pub(crate) index_cache_mb: usize,
    /// Queries running at once (more wait their turn).
    #[arg(long, default_value_t = 2)]
    pub(crate) query_concurrency: usize,
    /// Import new service log objects under this bucket prefix as they land
    /// (s3://bucket/AWSLogs/…; repeat for several).
    #[arg(long = "watch", value_name = "S3_URL")]
    pub(crate) watch: Vec<String>,
    /// Seconds between listings of watched prefixes.
    #[arg(long, default_value_t = 60)]
    pub(crate) watch_interval_secs: u64,
    /// S3 endpoint for watched buckets (default AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub(crate) s3_endpoint: Option<String>,
    #[command(flatten)]
    pub(crate) syslog: SyslogArgs,
    /// PEM certificate chain for HTTPS on --http (default DIR/tls/server.pem when it exists;
    /// reloaded when the file changes).
    #[arg(long, value_name = "FILE", requires = "http_tls_key")]
    pub(crate) http_tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (default DIR/tls/server.key).
    #[arg(long, value_name = "FILE", requires = "http_tls_cert")]
    pub(crate) http_tls_key: Option<PathBuf>,
    /// PEM CA certificates: API clients must also present a certificate signed by one.
    #[arg(long, value_name = "FILE")]
    pub(crate) http_tls_client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) epochs: EpochArgs,
}

/// Syslog listeners of `serve`.
#[derive(Debug, Args)]
pub(crate) struct SyslogArgs {
    /// Syslog over UDP (RFC 5426) on this address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) syslog_udp: Option<SocketAddr>,
    /// Syslog over TCP (RFC 6587: octet counting, LF or NUL framing) on this address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) syslog_tcp: Option<SocketAddr>,
    /// Syslog over TLS (RFC 5425) on this address; needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub(crate) syslog_tls: Option<SocketAddr>,
    /// PEM certificate chain of the TLS listeners.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS listeners.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// PEM CA certificates: syslog TLS clients must present a certificate signed by one
    /// (and are then admitted from any network).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_client_ca: Option<PathBuf>,
    /// Network syslog senders may connect from (repeatable; default loopback only).
    #[arg(long = "syslog-allow", value_name = "CIDR")]
    pub(crate) syslog_allow: Vec<ipnet::IpNet>,
    /// Group of each syslog message; {appname} and {hostname} are replaced by its own.
    #[arg(long, default_value = "syslog/{appname}")]
    pub(crate) syslog_group: String,
    /// Largest syslog frame accepted (bytes).
    #[arg(long, default_value_t = 256 * 1024)]
    pub(crate) syslog_max_frame: usize,
}

impl SyslogArgs {
    pub(crate) fn settings(&self) -> seclog_server::SyslogSettings {
        seclog_server::SyslogSettings {
            udp: self.syslog_udp,
            tcp: self.syslog_tcp,
            tls: self.syslog_tls,
            tls_files: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(seclog_server::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                }),
                _ => None,
            },
            allow: if self.syslog_allow.is_empty() {
                seclog_server::syslog::loopback()
            } else {
                self.syslog_allow.clone()
            },
            group: self.syslog_group.clone(),
            max_frame: self.syslog_max_frame,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum RetentionAction {
    /// Keep a group's events for N days (whole expired segments are deleted, with a signed
    /// tombstone). Server stopped; else `PUT /api/v1/retention/{group}`.
    Set {
        #[command(flatten)]
        data: DataArgs,
        /// Group name.
        #[arg(long)]
        group: String,
        /// Days to keep.
        #[arg(long, required_unless_present = "preset", conflicts_with = "preset")]
        days: Option<u32>,
        /// governance (an admin may shorten it with --shorten) or compliance (nobody may
        /// shorten or remove it).
        #[arg(long, default_value = "governance", conflicts_with = "preset")]
        mode: String,
        /// A preset: pci-dss (365 days, compliance).
        #[arg(long)]
        preset: Option<String>,
        /// Shorten a governance policy (recorded).
        #[arg(long)]
        shorten: bool,
    },
    /// Stop expiry of a group until the hold is released.
    Hold {
        #[command(flatten)]
        data: DataArgs,
        /// Group name.
        #[arg(long)]
        group: String,
        /// Why (a case or matter reference).
        #[arg(long)]
        reason: String,
    },
    /// Release a legal hold.
    Release {
        #[command(flatten)]
        data: DataArgs,
        /// Group name.
        #[arg(long)]
        group: String,
    },
    /// Print every policy and hold.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `seclog keys …`. The master key comes from SECLOG_MASTER_KEY_COMMAND (a command printing
/// it), SECLOG_MASTER_KEY, or the key file (--master-key-file, default DIR/keys/master.key).
#[derive(Debug, Subcommand)]
pub(crate) enum KeysAction {
    /// Print a new random master key (for a secret manager, or --new-key-file).
    Generate,
    /// Re-wrap every data key, index file key, the signing state and the detector state under
    /// a new master key, without rewriting data; the key file is replaced (other providers
    /// must then hand out the new key). An interrupted rotation resumes when run again.
    Rotate {
        #[command(flatten)]
        data: DataArgs,
        /// The new key (a file from `seclog keys generate`); default: a generated one.
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenAction {
    /// Create a token and print it (the only time it is shown).
    Create {
        #[command(flatten)]
        target: TargetArgs,
        /// ingest, reader, auditor or admin.
        #[arg(long)]
        role: String,
        /// Group pattern: `*`, a name, or a prefix ending in `*`.
        #[arg(long, default_value = "*")]
        groups: String,
        /// Lifetime such as 90d, 12h, 30m.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Revoke a token by id.
    Revoke {
        #[command(flatten)]
        target: TargetArgs,
        /// Token id from `token list`.
        id: String,
    },
}

/// `seclog rules …`.
#[derive(Debug, Subcommand)]
pub(crate) enum RulesAction {
    /// Load rules; print a summary and, for every rule that cannot be used, why. Exit status 1
    /// when any rule is unsupported.
    Check {
        #[command(flatten)]
        rules: RuleArgs,
    },
}

/// Which rules, how they are routed and how their fields are renamed.
#[derive(Debug, Args)]
pub(crate) struct RuleArgs {
    /// Sigma rule files or directories (repeatable). The built-in pack is loaded too.
    #[arg(long = "rules", value_name = "PATH")]
    pub(crate) rules: Vec<PathBuf>,
    /// Leave out the built-in rule pack.
    #[arg(long)]
    pub(crate) no_builtin: bool,
    /// Log-source routing file (YAML; default: the built-in one, docs/detection.md).
    #[arg(long, value_name = "FILE")]
    pub(crate) sources: Option<PathBuf>,
    /// pySigma processing pipeline applied to every rule before its source's own (repeatable).
    #[arg(long = "pipeline", value_name = "FILE")]
    pub(crate) pipelines: Vec<PathBuf>,
    /// No API-rate anomalies (per principal and API call and error rates against a learned
    /// baseline, on CloudTrail events).
    #[arg(long)]
    pub(crate) no_anomalies: bool,
}

#[derive(Debug, Args)]
pub(crate) struct HuntArgs {
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
    /// Files to hunt in (.gz and .zst are decompressed).
    #[arg(long, num_args = 1.., value_name = "FILE", conflicts_with = "data")]
    pub(crate) input: Vec<PathBuf>,
    /// Format of --input files: auto, ndjson, syslog, or a service format (cloudtrail, alb,
    /// route53, vpcflow, …). NDJSON files are read by every rule, whatever its log source.
    #[arg(long, default_value = "auto")]
    pub(crate) format: String,
    /// A data directory (the server must be stopped): hunt over its stored history.
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    pub(crate) data: Option<PathBuf>,
    /// A running server: the rules are sent to it and run over the history of the groups the
    /// token may read (the read is recorded in seclog/access).
    #[arg(long, value_name = "URL", conflicts_with = "input")]
    pub(crate) server: Option<String>,
    /// Token for --server (a reader or admin token).
    #[arg(long, env = "SECLOG_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Master key file for --data (default DIR/keys/master.key).
    #[arg(
        long = "master-key-file",
        env = "SECLOG_MASTER_KEY_FILE",
        value_name = "PATH"
    )]
    pub(crate) master_key_file: Option<PathBuf>,
    /// Only events at or after this time (RFC 3339, or a duration back from now: 24h, 7d).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only these groups with --data (patterns with `*`; repeatable).
    #[arg(long = "group", value_name = "PATTERN")]
    pub(crate) groups: Vec<String>,
    /// Only matches of rules at this level or above.
    #[arg(long, value_name = "LEVEL")]
    pub(crate) min_level: Option<String>,
    /// Write matches here instead of standard output.
    #[arg(long = "output-file", value_name = "FILE")]
    pub(crate) output_file: Option<PathBuf>,
    /// Output format (NDJSON: one line per match).
    #[arg(long, default_value = "ndjson", value_parser = ["ndjson"])]
    pub(crate) output: String,
}

/// `seclog alerts …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AlertsAction {
    /// Findings with their delivery state per destination, newest first.
    List {
        #[command(flatten)]
        target: TargetArgs,
        /// Only deliveries in this state (pending, delivered, suppressed, failed).
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Output: table or json.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
}
