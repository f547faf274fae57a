//! `seclog import`: service log files from files and directories (plain, `.gz`, `.zst`), sent
//! one object at a time to a running server (`--server`) or stored directly into a stopped
//! data directory (`--data`). The server keeps the position of every object, so a second run
//! stores nothing twice and an interrupted run resumes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use seclog_journal::{JournalConfig, JournalWriter, Layout};
use seclog_server::import::{ImportOutcome, ImportRequest};
use seclog_server::s3::{S3Object, S3Source, S3Url};
use seclog_server::{CommitSettings, IngestLimits, SearchSettings, Server, ServerConfig};

use crate::cli::ImportArgs;
use crate::commands::{load_master, open_meta};

/// Where objects go.
enum Target {
    Server { url: String, token: String },
    Local(Box<Server>),
}

/// One object to import.
enum Input {
    File(PathBuf, u64),
    S3(Arc<S3Source>, S3Object),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(path, _) => path.display().to_string(),
            Input::S3(source, object) => source.url().object_url(&object.key),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Input::File(_, size) => *size,
            Input::S3(_, object) => object.size,
        }
    }
}

pub(crate) fn run(args: ImportArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let objects = runtime.block_on(collect(&args.inputs, args.s3_endpoint.as_deref()))?;
    if objects.is_empty() {
        bail!("no objects found under {}", args.inputs.join(", "));
    }
    let total: u64 = objects.iter().map(Input::size).sum();
    let target = match (&args.target.server, &args.target.data) {
        (Some(url), None) => Target::Server {
            url: url.trim_end_matches('/').to_string(),
            token: args
                .target
                .token
                .clone()
                .context("--server needs a token: --token or SECLOG_TOKEN")?,
        },
        (None, Some(data)) => {
            let layout = Layout::new(data, args.target.master_key_file.clone());
            Target::Local(Box::new(runtime.block_on(open_local(&layout))?))
        }
        _ => bail!("name one of --server URL or --data DIR"),
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut failed = 0usize;
    // A few objects at once: decoding is one thread per object, and objects are independent.
    let parallel = std::thread::available_parallelism().map_or(2, |count| count.get());
    let target_ref = &target;
    let args_ref = &args;
    let results = runtime.block_on(async {
        futures_util::stream::iter(objects.iter())
            .map(|input| async move {
                let name = input.name();
                let result = import_one(target_ref, args_ref, input, &name).await;
                (input, name, result)
            })
            .buffer_unordered(parallel)
            .inspect(|(input, name, _)| {
                bar.set_message(name.clone());
                bar.inc(input.size());
            })
            .collect::<Vec<_>>()
            .await
    });
    for (_, name, result) in results {
        match result {
            Ok(outcome) => summary.add(&outcome),
            Err(error) if format!("{error:#}").contains("cannot tell the format") => {
                summary.unknown += 1;
                bar.suspend(|| {
                    eprintln!("skipped: {name}: not a known log format (name it with --format)")
                });
            }
            Err(error) => {
                failed += 1;
                bar.suspend(|| eprintln!("error: {name}: {error:#}"));
            }
        }
    }
    bar.finish_and_clear();
    if let Target::Local(server) = target {
        runtime.block_on(server.shutdown())?;
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{} objects: {} imported, {} already imported, {} digests, {} of unknown format, {failed} failed; {} events, {} dead letters; {:.1} MB in {seconds:.1} s ({:.1} MB/s of input)",
        objects.len(),
        summary.imported,
        summary.already,
        summary.digests,
        summary.unknown,
        summary.events,
        summary.rejected,
        total as f64 / 1e6,
        total as f64 / 1e6 / seconds,
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Imports one object (for S3: asks first whether this version is stored, by name and ETag).
async fn import_one(
    target: &Target,
    args: &ImportArgs,
    input: &Input,
    name: &str,
) -> Result<ImportOutcome> {
    let mut request = ImportRequest {
        object: name.to_string(),
        format: Some(args.format.clone()),
        group: args.group.clone(),
        vpc_format: args.vpc_format.clone(),
        etag: None,
        check: false,
        signature: None,
    };
    match input {
        Input::File(path, _) => {
            let path = path.clone();
            let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
                .await?
                .with_context(|| format!("reading {name}"))?;
            send(target, &request, bytes).await
        }
        Input::S3(source, object) => {
            request.etag = object.etag.clone();
            if request.etag.is_some() {
                request.check = true;
                let known = send(target, &request, Vec::new()).await?;
                if known.status == "already_imported" {
                    return Ok(known);
                }
                request.check = false;
            }
            let (bytes, signature) = source
                .get_with_signature(object)
                .await
                .map_err(anyhow::Error::msg)?;
            request.signature = signature;
            send(target, &request, bytes).await
        }
    }
}

#[derive(Default)]
struct Summary {
    unknown: usize,
    imported: usize,
    already: usize,
    digests: usize,
    events: u64,
    rejected: u64,
}

impl Summary {
    fn add(&mut self, outcome: &ImportOutcome) {
        match outcome.status.as_str() {
            "already_imported" => self.already += 1,
            "digest" => self.digests += 1,
            _ => self.imported += 1,
        }
        self.events += outcome.events;
        self.rejected += outcome.rejected;
    }
}

async fn send(target: &Target, request: &ImportRequest, bytes: Vec<u8>) -> Result<ImportOutcome> {
    match target {
        Target::Local(server) => server
            .import(request, bytes)
            .await
            .map_err(anyhow::Error::msg),
        Target::Server { url, token } => {
            let url = format!("{url}/api/v1/import");
            let token = token.clone();
            let request = request.clone();
            tokio::task::spawn_blocking(move || post(&url, &token, &request, &bytes)).await?
        }
    }
}

fn post(url: &str, token: &str, request: &ImportRequest, bytes: &[u8]) -> Result<ImportOutcome> {
    let agent = crate::client::agent(Some(Duration::from_secs(600)))?;
    let mut call = agent
        .post(url)
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .query("object", &request.object);
    if let Some(format) = &request.format {
        call = call.query("format", format);
    }
    if let Some(group) = &request.group {
        call = call.query("group", group);
    }
    if let Some(vpc_format) = &request.vpc_format {
        call = call.query("vpc_format", vpc_format);
    }
    if let Some(etag) = &request.etag {
        call = call.query("etag", etag);
    }
    if request.check {
        call = call.query("check", "true");
    }
    if let Some(signature) = &request.signature {
        call = call.query("signature", signature);
    }
    let response = call
        .send(bytes)
        .with_context(|| format!("contacting {url}"))?;
    let status = response.status();
    let reply: serde_json::Value = response
        .into_body()
        .read_json()
        .context("reading the answer")?;
    if !status.is_success() {
        let message = reply["error"]["message"]
            .as_str()
            .unwrap_or("request failed");
        bail!("{message} (HTTP {})", status.as_u16());
    }
    Ok(serde_json::from_value(reply)?)
}

/// A server over a stopped data directory, without listeners.
async fn open_local(layout: &Layout) -> Result<Server> {
    if !layout.verification_key().is_file() {
        bail!(
            "{} is not a seclog data directory (run seclog init first)",
            layout.root().display()
        );
    }
    let master = load_master(layout)?;
    let meta =
        Arc::new(open_meta(layout).context("is the server running? stop it, or use --server")?);
    let (writer, notes) = JournalWriter::open(layout, master.clone(), JournalConfig::default())
        .context("opening the journal")?;
    for note in notes {
        tracing::warn!("{note}");
    }
    let config = ServerConfig {
        http: ([127, 0, 0, 1], 0).into(),
        commit: CommitSettings::default(),
        limits: IngestLimits::default(),
        search: SearchSettings::default(),
        syslog: seclog_server::SyslogSettings::default(),
        auth: seclog_server::AuthSettings::default(),
        http_tls: None,
    };
    // Indexing waits for the server: a bulk load is not slowed by it, and `serve` indexes
    // what was loaded when it starts.
    Ok(Server::start_ingest_only(writer, meta, master, &config)?)
}

/// Objects named by the inputs: files, directories read recursively in name order, and
/// bucket prefixes listed in key order.
async fn collect(inputs: &[String], endpoint: Option<&str>) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("s3://") {
            let url = S3Url::parse(input).map_err(anyhow::Error::msg)?;
            let source = Arc::new(S3Source::new(&url, endpoint).map_err(anyhow::Error::msg)?);
            let objects = source.list().await.map_err(anyhow::Error::msg)?;
            out.extend(
                objects
                    .into_iter()
                    .map(|object| Input::S3(Arc::clone(&source), object)),
            );
            continue;
        }
        let mut files = Vec::new();
        walk(Path::new(input), &mut files).with_context(|| format!("reading {input}"))?;
        out.extend(
            files
                .into_iter()
                .map(|(path, size)| Input::File(path, size)),
        );
    }
    Ok(out)
}

fn walk(path: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<()> {
    let metadata = std::fs::metadata(path)?;
    if metadata.is_file() {
        out.push((path.to_path_buf(), metadata.len()));
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with('.'));
        if !hidden {
            walk(&entry, out)?;
        }
    }
    Ok(())
}
