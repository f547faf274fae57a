//! What each subcommand does.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use seclog_journal::{
    EpochParams, JournalConfig, JournalWriter, Layout, MasterKey, SignedCheckpoint, Signer,
    VerificationKey, group_extent, group_names, latest_checkpoint, proof, verify,
};
use seclog_meta::{MetaStore, Role};
use seclog_model::{GroupName, Timestamp};
use seclog_server::{CommitSettings, IngestLimits, SearchSettings, Server, ServerConfig};

use crate::cli::{Cli, Command, DataArgs, EpochArgs, RetentionAction, ServeArgs, TokenAction};
use seclog_meta::{RetentionChange, RetentionMode};

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init {
            data,
            epochs,
            self_signed,
            tls_names,
        } => {
            let layout = layout(&data);
            if is_initialized(&layout) {
                bail!("{} is already initialized", layout.root().display());
            }
            initialize(&layout, &epochs)?;
            if self_signed {
                let names = if tls_names.is_empty() {
                    default_tls_names()
                } else {
                    tls_names
                };
                let dir = layout.root().join("tls");
                crate::certs::self_signed(&dir, &names)
                    .with_context(|| format!("creating certificates in {}", dir.display()))?;
                eprintln!(
                    "created {0}/ca.pem (give it to clients), {0}/ca.key (keep it offline: it signs certificates), {0}/server.pem and server.key for {1}; `seclog serve` now answers HTTPS",
                    dir.display(),
                    names.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve(*args),
        Command::Verify {
            data,
            key,
            since_checkpoint,
        } => verify_command(&data, key.as_deref(), since_checkpoint.as_deref()),
        Command::Proof {
            target,
            group,
            seq,
            sealed,
        } => crate::reads::proof(&target, &group, seq, sealed),
        Command::VerifyProof { key, bundle } => verify_proof(&key, &bundle),
        Command::Cat {
            target,
            group,
            from,
            limit,
            follow,
        } => crate::reads::cat(&target, &group, from, limit, follow),
        Command::Groups { data } => {
            let layout = Layout::new(&data, None);
            for group in group_names(&layout)? {
                let (first, next) = group_extent(&layout, &group)?;
                println!("{group} {}", next - first);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint { data } => {
            let layout = Layout::new(&data, None);
            let checkpoint =
                latest_checkpoint(&layout)?.context("no checkpoint has been signed yet")?;
            print!("{}", checkpoint.to_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention { action } => retention(action),
        Command::Token { action } => token(action),
        Command::Keys { action } => keys(action),
        Command::Shred {
            data,
            group,
            reason,
        } => shred(&data, &group, &reason),
        Command::Query(args) => crate::search::query(*args),
        Command::Rules {
            action: crate::cli::RulesAction::Check { rules },
        } => crate::hunt::check(&rules),
        Command::Hunt(args) => crate::hunt::hunt(*args),
        Command::Alerts {
            action:
                crate::cli::AlertsAction::List {
                    target,
                    state,
                    limit,
                    output,
                },
        } => crate::hunt::alerts_list(&target, state.as_deref(), limit, &output),
        Command::Import(args) => crate::import::run(*args),
        Command::ValidateCloudtrail(args) => crate::validate::run(*args),
        Command::Gen(args) => crate::generate::run(*args),
        Command::Reindex { data, group } => {
            crate::search::reindex(&layout(&data), group.as_deref())
        }
    }
}

/// The names a self-signed server certificate is for when none are given.
fn default_tls_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_string());
        }
    }
    names
}

/// The HTTPS files `serve` uses: the flags, else `DIR/tls/server.pem` and `server.key` when
/// both exist.
fn http_tls(args: &ServeArgs, layout: &Layout) -> Option<seclog_server::TlsFiles> {
    let client_ca = args.http_tls_client_ca.clone();
    match (&args.http_tls_cert, &args.http_tls_key) {
        (Some(cert), Some(key)) => Some(seclog_server::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca,
        }),
        _ => {
            let dir = layout.root().join("tls");
            let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
            (cert.is_file() && key.is_file()).then_some(seclog_server::TlsFiles {
                cert,
                key,
                client_ca,
            })
        }
    }
}

pub(crate) fn layout(data: &DataArgs) -> Layout {
    Layout::new(&data.data, data.master_key_file.clone())
}

fn is_initialized(layout: &Layout) -> bool {
    layout.verification_key().is_file()
}

/// The master key from its provider ([`crate::keys`]); refused while a rotation is unfinished.
pub(crate) fn load_master(layout: &Layout) -> Result<MasterKey> {
    crate::keys::refuse_unfinished_rotation(layout)?;
    crate::keys::Provider::for_layout(layout).load()
}

pub(crate) fn open_meta(layout: &Layout) -> Result<MetaStore> {
    Ok(MetaStore::open(&layout.meta_dir())?)
}

/// Creates keys, signing state and the admin token; prints the token once.
fn initialize(layout: &Layout, epochs: &EpochArgs) -> Result<()> {
    std::fs::create_dir_all(layout.root())
        .with_context(|| format!("creating {}", layout.root().display()))?;
    // An existing master key is used: one kept elsewhere (--master-key-file), or one left by an
    // initialization that was interrupted before the verification key was written.
    let master = match crate::keys::Provider::for_layout(layout) {
        crate::keys::Provider::File(path) if !path.is_file() => MasterKey::create(&path)?,
        provider => provider.load()?,
    };
    let params = EpochParams {
        start_unix: Timestamp::now().unix_seconds(),
        epoch_secs: epochs.epoch_secs,
        count: epochs.epochs,
    };
    Signer::init(layout, &master, params)?;
    let meta = open_meta(layout)?;
    let (token, _) = meta.create_token(Role::Admin, "*", None)?;
    println!("admin token: {token}");
    eprintln!(
        "initialized {}; verification key: {}",
        layout.root().display(),
        layout.verification_key().display()
    );
    Ok(())
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let layout = layout(&args.data);
    if !is_initialized(&layout) {
        initialize(&layout, &args.epochs)?;
    }
    let master = load_master(&layout)?;
    let meta = Arc::new(open_meta(&layout)?);
    let detection = if args.no_detection {
        None
    } else {
        Some(crate::hunt::streaming_engine(&args.rules)?)
    };
    let alerting = args
        .alerting
        .as_deref()
        .map(|path| -> Result<seclog_server::alerting::AlertingConfig> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let value: serde_json::Value =
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
            seclog_server::alerting::AlertingConfig::parse(value)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("checking {}", path.display()))
        })
        .transpose()?;
    let journal_config = JournalConfig {
        zstd_level: args.zstd_level,
        segment_max_bytes: args.segment_max_bytes,
        ..JournalConfig::default()
    };
    let (writer, notes) = JournalWriter::open(&layout, master.clone(), journal_config)
        .context("opening the journal")?;
    for note in notes {
        tracing::warn!("{note}");
    }
    let config = ServerConfig {
        http: args.http,
        commit: CommitSettings {
            commit_interval: Duration::from_millis(args.commit_interval_ms),
            seal_delay: Duration::from_millis(args.seal_delay_ms),
            heartbeat: Duration::from_secs(args.heartbeat_secs),
            retention_sweep: Duration::from_secs(args.retention_sweep_secs),
            clock_tolerance: Duration::from_secs(args.clock_tolerance_secs),
            ..CommitSettings::default()
        },
        limits: IngestLimits {
            max_body_bytes: args.max_body_bytes,
            max_decompressed_bytes: args.max_decompressed_bytes,
        },
        search: SearchSettings {
            timeout: Duration::from_secs(args.query_timeout_secs),
            concurrency: args.query_concurrency.max(1),
            ..SearchSettings::default()
        },
        syslog: args.syslog.settings(),
        auth: seclog_server::AuthSettings {
            free_failures: args.auth_free_failures,
            max_delay: Duration::from_secs(args.auth_max_delay_secs),
            ..seclog_server::AuthSettings::default()
        },
        http_tls: http_tls(&args, &layout),
    };
    let watchdog = seclog_server::watchdog::WatchdogSettings {
        interval: Duration::from_secs(args.watchdog_interval_secs.max(1)),
        expect: args
            .expect
            .iter()
            .map(|text| {
                let (pattern, every) = text.rsplit_once('=').with_context(|| {
                    format!(
                        "--expect {text:?}: give GROUP=DURATION (for example aws/cloudtrail=15m)"
                    )
                })?;
                let secs = parse_duration(every).with_context(|| format!("--expect {text:?}"))?;
                Ok((
                    pattern.to_string(),
                    Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1)),
                ))
            })
            .collect::<Result<Vec<_>>>()?,
        stall_after: Duration::from_secs(args.stall_after_secs.max(1)),
        disk_min_free_percent: args.disk_min_free_percent,
    };
    seclog_index::crypt_dir::set_cache_budget(args.index_cache_mb.saturating_mul(1 << 20));
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .with_context(|| format!("binding {}", config.http))?;
        let address = listener.local_addr()?;
        tracing::info!(
            http = %address,
            commit_interval_ms = args.commit_interval_ms,
            seal_delay_ms = args.seal_delay_ms,
            heartbeat_secs = args.heartbeat_secs,
            "seclog listening"
        );
        let mut server = Server::start(writer, meta, master.clone(), &config)?;
        if let Some(engine) = detection {
            server
                .start_detection(engine, master)
                .context("starting the detector")?;
        }
        if let Some(config) = alerting {
            server
                .start_alerting(config)
                .map_err(anyhow::Error::msg)
                .context("starting alert delivery")?;
        }
        server
            .start_syslog(&config.syslog)
            .await
            .context("starting the syslog listeners")?;
        server.start_watchdog(watchdog, layout.root().to_path_buf());
        server
            .start_watchers(&seclog_server::watch::WatchSettings {
                urls: args.watch.clone(),
                interval: Duration::from_secs(args.watch_interval_secs),
                endpoint: args.s3_endpoint.clone(),
            })
            .map_err(anyhow::Error::msg)
            .context("watching buckets")?;
        server.serve(listener, shutdown_signal()).await?;
        tracing::info!("seclog stopped; journal sealed");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Index pieces keep their segment files open, so the server wants many file descriptors: the
/// soft limit is raised to the hard one (as database servers do), with a warning when that is low.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 65_536 => tracing::warn!(
            limit,
            "the open-file limit is low for a server with many index pieces; raise the hard limit (for example LimitNOFILE=1048576)"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => tracing::warn!(error = %error, "could not raise the open-file limit"),
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests and sealing the journal");
}

fn verify_command(data: &Path, key: Option<&Path>, since: Option<&Path>) -> Result<ExitCode> {
    let layout = Layout::new(data, None);
    let key_path = key.map_or_else(|| layout.verification_key(), Path::to_path_buf);
    let key = VerificationKey::load(&key_path)
        .with_context(|| format!("loading the verification key {}", key_path.display()))?;
    let pinned = match since {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                SignedCheckpoint::from_text(&text)
                    .map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?,
            )
        }
        None => None,
    };
    let started = std::time::Instant::now();
    let report = verify::verify(&layout, &key, pinned.as_ref())?;
    let elapsed = started.elapsed();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for finding in &report.findings {
        writeln!(out, "{finding}")?;
    }
    // Findings alone go to standard output, one line each; notes and the summary to standard
    // error when something is wrong, so that the output can be read line by line.
    for note in &report.notes {
        if report.is_intact() {
            writeln!(out, "note: {note}")?;
        } else {
            eprintln!("note: {note}");
        }
    }
    let records: u64 = report
        .groups
        .iter()
        .map(|group| group.size - group.retained_from)
        .sum();
    let latest = report.latest.as_ref().map_or_else(
        || "none".to_string(),
        |body| format!("#{} at {} (epoch {})", body.seq, body.time, body.epoch),
    );
    if report.is_intact() {
        writeln!(
            out,
            "OK: {} groups, {records} records, {} checkpoints (newest {latest}), {} bytes verified in {:.3} s ({:.1} MB/s)",
            report.groups.len(),
            report.checkpoints,
            report.bytes,
            elapsed.as_secs_f64(),
            report.bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
        )?;
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("FAILED: {} findings", report.findings.len());
        Ok(ExitCode::from(1))
    }
}

fn verify_proof(key: &Path, bundle: &Path) -> Result<ExitCode> {
    let key = VerificationKey::load(key)
        .with_context(|| format!("loading the verification key {}", key.display()))?;
    let mut text = String::new();
    if bundle == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(bundle)
            .with_context(|| format!("reading {}", bundle.display()))?;
    }
    match proof::verify_proof(&text, &key) {
        Ok(summary) => {
            println!(
                "OK: group {} record {} is included in checkpoint #{} signed at {} (epoch {})",
                summary.group,
                summary.seq,
                summary.checkpoint.body.seq,
                summary.checkpoint.body.time,
                summary.checkpoint.body.epoch
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            println!("INVALID: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Records an admin action taken on a stopped data directory in `seclog/access` (the caller
/// holds the metadata store, so no server runs).
pub(crate) fn record_local(layout: &Layout, entry: serde_json::Value) -> Result<()> {
    let (mut writer, notes) =
        JournalWriter::open(layout, load_master(layout)?, JournalConfig::default())
            .context("opening the journal to record the action in seclog/access")?;
    for note in notes {
        eprintln!("{note}");
    }
    let actor = serde_json::json!({
        "local_user": std::env::var("USER").unwrap_or_default(),
        "via": "seclog command line",
    });
    writer.append(
        &seclog_server::access::access_group(),
        &[seclog_server::access::record(entry, actor)],
        Timestamp::now(),
    )?;
    writer.commit()?;
    writer.close(Timestamp::now())?;
    Ok(())
}

fn shred(data: &DataArgs, group: &str, reason: &str) -> Result<ExitCode> {
    let group = GroupName::parse(group)?;
    if group.is_internal() {
        bail!("groups beginning with seclog/ cannot be shredded");
    }
    if reason.trim().is_empty() {
        bail!("give the reason for shredding (--reason)");
    }
    let layout = layout(data);
    let meta = open_meta(&layout)?;
    if let Some(hold) = meta
        .legal_holds()?
        .into_iter()
        .find(|hold| hold.group == group.as_str())
    {
        bail!(
            "{group} is under a legal hold ({:?}); release it first",
            hold.reason
        );
    }
    if let Some(policy) = meta.retention_policy(group.as_str())?
        && policy.mode == RetentionMode::Compliance
    {
        bail!(
            "{group} has compliance retention ({} days): nothing in it may be destroyed before it expires",
            policy.days
        );
    }
    let (mut writer, notes) =
        JournalWriter::open(&layout, load_master(&layout)?, JournalConfig::default())
            .context("opening the journal")?;
    for note in notes {
        eprintln!("{note}");
    }
    if !writer.sizes().contains_key(&group) {
        bail!("no group named {group}");
    }
    // Recorded (durably) before anything is destroyed.
    let actor = serde_json::json!({
        "local_user": std::env::var("USER").unwrap_or_default(),
        "via": "seclog shred",
    });
    let entry = serde_json::json!({
        "action": "group_shred",
        "status": "requested",
        "groups": [group.as_str()],
        "target": { "group": group.as_str(), "reason": reason },
    });
    writer.append(
        &seclog_server::access::access_group(),
        &[seclog_server::access::record(entry, actor)],
        Timestamp::now(),
    )?;
    writer.commit()?;
    let shred = writer.shred(&group, reason, Timestamp::now())?;
    writer.close(Timestamp::now())?;
    // The index holds terms of the shredded records: it goes too (later records are indexed
    // again from the journal).
    let index = layout.root().join("index").join(group.to_dir_name());
    if index.exists() {
        std::fs::remove_dir_all(&index)
            .with_context(|| format!("removing the index of {group} ({})", index.display()))?;
    }
    match shred {
        Some(shred) => println!(
            "shredded {group}: records {}..{} ({} segments) can no longer be read by anyone; the segments stay for `seclog verify`",
            shred.from_seq,
            shred.upto_seq.saturating_sub(1),
            shred.segments
        ),
        None => println!("{group} held nothing left to shred"),
    }
    Ok(ExitCode::SUCCESS)
}

fn keys(action: crate::cli::KeysAction) -> Result<ExitCode> {
    match action {
        crate::cli::KeysAction::Generate => {
            print!("{}", MasterKey::generate()?.to_text());
        }
        crate::cli::KeysAction::Rotate { data, new_key_file } => {
            let layout = layout(&data);
            // The metadata store is held first: no server runs while the journal is written.
            let meta = open_meta(&layout)?;
            // Recorded first, while the journal still opens with the current key (a resumed
            // rotation was recorded when it began).
            if crate::keys::refuse_unfinished_rotation(&layout).is_ok() {
                record_local(
                    &layout,
                    serde_json::json!({ "action": "master_key_rotate", "status": "requested" }),
                )?;
            }
            let report = crate::keys::rotate(&layout, &meta, new_key_file.as_deref())?;
            println!(
                "rotated the master key: {} data keys, {} index files ({} left to be rebuilt), signing state{} re-wrapped in {:.2} s; nothing else was rewritten",
                report.data_keys,
                report.index_files,
                report.index_skipped,
                if report.detector_state {
                    ", detector state"
                } else {
                    ""
                },
                report.seconds
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn retention(action: RetentionAction) -> Result<ExitCode> {
    match action {
        RetentionAction::Set {
            data,
            group,
            days,
            mode,
            preset,
            shorten,
        } => {
            let group = GroupName::parse(&group)?;
            let change = match (preset.as_deref(), days) {
                (Some(preset), _) => RetentionChange::preset(preset)?,
                (None, Some(days)) => RetentionChange {
                    days,
                    mode: RetentionMode::parse(&mode)?,
                    shorten,
                },
                (None, None) => bail!("give --days or --preset"),
            };
            let meta = open_meta(&layout(&data))?;
            let previous = meta.check_retention_change(group.as_str(), &change)?;
            record_local(
                &layout(&data),
                seclog_server::access::retention_change_entry(
                    &group,
                    &change,
                    preset.as_deref(),
                    previous.as_ref(),
                ),
            )?;
            meta.change_retention(group.as_str(), &change)?;
            println!(
                "retention of {group}: {} days, {} (applied by the server's sweep)",
                change.days,
                change.mode.name()
            );
        }
        RetentionAction::Hold {
            data,
            group,
            reason,
        } => {
            let group = GroupName::parse(&group)?;
            let meta = open_meta(&layout(&data))?;
            if reason.trim().is_empty() {
                bail!("a legal hold needs a reason (a case or matter reference)");
            }
            record_local(
                &layout(&data),
                serde_json::json!({
                    "action": "hold_place",
                    "status": "requested",
                    "groups": [group.as_str()],
                    "target": { "group": group.as_str(), "reason": reason },
                }),
            )?;
            meta.place_hold(group.as_str(), &reason, Timestamp::now().unix_seconds())?;
            println!("legal hold on {group}: nothing there expires until it is released");
        }
        RetentionAction::Release { data, group } => {
            let group = GroupName::parse(&group)?;
            let meta = open_meta(&layout(&data))?;
            record_local(
                &layout(&data),
                serde_json::json!({
                    "action": "hold_release",
                    "status": "requested",
                    "groups": [group.as_str()],
                    "target": { "group": group.as_str() },
                }),
            )?;
            if meta.release_hold(group.as_str())?.is_none() {
                bail!("{group} has no legal hold");
            }
            println!("released the legal hold on {group}");
        }
        RetentionAction::List { data } => {
            let meta = open_meta(&layout(&data))?;
            for policy in meta.retention_policies()? {
                println!(
                    "{} {} days {}",
                    policy.group,
                    policy.days,
                    policy.mode.name()
                );
            }
            for hold in meta.legal_holds()? {
                println!(
                    "{} hold since={} reason={:?}",
                    hold.group, hold.since_unix, hold.reason
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn token(action: TokenAction) -> Result<ExitCode> {
    let target = match &action {
        TokenAction::Create { target, .. }
        | TokenAction::List { target }
        | TokenAction::Revoke { target, .. } => target,
    };
    if let Some(server) = target.server.clone() {
        return crate::reads::token_over_api(&server, action);
    }
    match action {
        TokenAction::Create {
            target,
            role,
            groups,
            expires,
        } => {
            let meta = open_meta(&crate::reads::target_layout(&target)?)?;
            let expires_unix = expires
                .map(|text| {
                    parse_duration(&text).map(|secs| Timestamp::now().unix_seconds() + secs)
                })
                .transpose()?;
            let (token, info) = meta.create_token(Role::parse(&role)?, &groups, expires_unix)?;
            let recorded = record_local(
                &crate::reads::target_layout(&target)?,
                serde_json::json!({
                    "action": "token_create",
                    "status": "ok",
                    "target": { "id": info.id, "role": info.role.name(), "groups": info.groups, "expires_unix": info.expires_unix },
                }),
            );
            if let Err(error) = recorded {
                meta.revoke_token(&info.id)?;
                return Err(error
                    .context("the token was revoked again: its creation could not be recorded"));
            }
            eprintln!(
                "created token {} ({:?} on {})",
                info.id, info.role, info.groups
            );
            println!("{token}");
        }
        TokenAction::List { target } => {
            let meta = open_meta(&crate::reads::target_layout(&target)?)?;
            for info in meta.list_tokens()? {
                let role = serde_json::to_value(info.role)?;
                println!(
                    "{} {} {} created={} expires={}",
                    info.id,
                    role.as_str().unwrap_or("?"),
                    info.groups,
                    info.created_unix,
                    info.expires_unix
                        .map_or_else(|| "never".into(), |at| at.to_string())
                );
            }
        }
        TokenAction::Revoke { target, id } => {
            let meta = open_meta(&crate::reads::target_layout(&target)?)?;
            record_local(
                &crate::reads::target_layout(&target)?,
                serde_json::json!({
                    "action": "token_revoke",
                    "status": "requested",
                    "target": { "id": id },
                }),
            )?;
            if meta.revoke_token(&id)?.is_none() {
                bail!("no token with id {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `90d`, `12h`, `30m`, `45s` into seconds.
pub(crate) fn parse_duration(text: &str) -> Result<i64> {
    seclog_model::parse_duration_secs(text).map_err(anyhow::Error::msg)
}
