//! `seclog rules check` and `seclog hunt`: Sigma rules over files, or over a stopped data
//! directory's history.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use seclog_detect::event::{Shape, detection_event};
use seclog_detect::sources::wildcard_match;
use seclog_detect::{BuildReport, Detector, Level, Match, RuleLibrary, SigmaEngine, Sources};
use seclog_formats::service::{self, DecodeOptions, Format, Item};
use seclog_journal::{JournalReader, Layout, group_names};
use seclog_model::Timestamp;
use serde_json::{Map, Value, json};

use crate::cli::{HuntArgs, RuleArgs};

/// Loads the rule pack and the rules named on the command line.
fn load_rules(args: &RuleArgs) -> Result<RuleLibrary> {
    let mut library = if args.no_builtin {
        RuleLibrary::default()
    } else {
        RuleLibrary::builtin()
    };
    for path in &args.rules {
        library
            .add_path(path)
            .with_context(|| format!("loading rules from {}", path.display()))?;
    }
    library.drop_dangling_correlations();
    Ok(library)
}

fn load_sources(args: &RuleArgs) -> Result<Sources> {
    match &args.sources {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(Sources::parse(&text)?)
        }
        None => Ok(Sources::default_sources()),
    }
}

fn load_pipelines(args: &RuleArgs) -> Result<Vec<seclog_detect::Pipeline>> {
    args.pipelines
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            seclog_detect::parse_pipeline(&text)
                .with_context(|| format!("pipeline {}", path.display()))
        })
        .collect()
}

/// The engine `serve` runs on the stream: rules that do not load are reported and left out.
pub(crate) fn streaming_engine(args: &RuleArgs) -> Result<SigmaEngine> {
    let library = load_rules(args)?;
    let (engine, report) =
        SigmaEngine::routed(&library, load_sources(args)?, &load_pipelines(args)?);
    let engine = with_anomalies(engine, args);
    for refused in library.unsupported.iter().chain(&report.failed) {
        tracing::warn!(
            file = %refused.file.display(),
            rule = refused.rule.as_deref().unwrap_or(""),
            reason = %refused.reason,
            "detection rule left out"
        );
    }
    tracing::info!(
        rules = engine.rule_count(),
        unsupported = library.unsupported.len() + report.failed.len(),
        "streaming detection ready"
    );
    Ok(engine)
}

fn with_anomalies(engine: SigmaEngine, args: &RuleArgs) -> SigmaEngine {
    if args.no_anomalies {
        engine
    } else {
        engine.with_rate_anomalies(seclog_detect::AnomalyConfig::default())
    }
}

/// `seclog rules check`: loads everything, prints a summary and each refused rule's reason.
/// Exit status 1 when any rule was refused.
pub(crate) fn check(args: &RuleArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let library = load_rules(args)?;
    let (engine, report) =
        SigmaEngine::routed(&library, load_sources(args)?, &load_pipelines(args)?);
    let elapsed = started.elapsed();
    let mut out = std::io::stdout().lock();
    let refused = library.unsupported.len() + report.failed.len();
    writeln!(
        out,
        "{} files: {} rules, {} correlations, {} filters loaded; {} unsupported ({:.2} s)",
        library.files,
        library.rules.len(),
        library.correlations.len(),
        library.filters.len(),
        refused,
        elapsed.as_secs_f64()
    )?;
    for (source, rules, correlations) in &report.per_source {
        writeln!(
            out,
            "  source {source}: {rules} rules, {correlations} correlations"
        )?;
    }
    writeln!(
        out,
        "  {} loaded rules have a log source no group is routed to (they run in `hunt` over NDJSON files)",
        report.unrouted.len()
    )?;
    let _ = engine;
    print_unsupported(&mut out, &library, &report)?;
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_unsupported(
    out: &mut impl Write,
    library: &RuleLibrary,
    report: &BuildReport,
) -> Result<()> {
    if library.unsupported.is_empty() && report.failed.is_empty() {
        return Ok(());
    }
    writeln!(out, "unsupported:")?;
    for refused in library.unsupported.iter().chain(&report.failed) {
        let reason = refused.reason.replace('\n', " ");
        match &refused.rule {
            Some(rule) => writeln!(out, "  {}: {rule}: {reason}", refused.file.display())?,
            None => writeln!(out, "  {}: {reason}", refused.file.display())?,
        }
    }
    Ok(())
}

/// Where an event came from, for the output line.
enum Origin<'a> {
    File { input: &'a str, record_index: u64 },
    Stored { group: &'a str, seq: u64 },
}

/// Writes matches as NDJSON and counts them per rule.
struct Output<'w> {
    out: BufWriter<Box<dyn Write + 'w>>,
    min_level: Level,
    per_rule: BTreeMap<String, u64>,
    matches: u64,
}

impl Output<'_> {
    fn write(&mut self, matched: &Match, origin: Origin<'_>, event: &Value) -> Result<()> {
        if matched.rule.level < self.min_level {
            return Ok(());
        }
        let mut place = Map::new();
        match origin {
            Origin::File {
                input,
                record_index,
            } => {
                place.insert("input".into(), json!(input));
                place.insert("record_index".into(), json!(record_index));
            }
            Origin::Stored { group, seq } => {
                place.insert("group".into(), json!(group));
                place.insert("seq".into(), json!(seq));
            }
        }
        let line = seclog_server::detect::match_line(matched, place, event.clone());
        self.line(&line)
    }

    /// Writes one match line and counts it.
    fn line(&mut self, line: &Value) -> Result<()> {
        self.matches += 1;
        let title = line["rule"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *self.per_rule.entry(title).or_default() += 1;
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
}

/// `seclog hunt`.
pub(crate) fn hunt(args: HuntArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let library = load_rules(&args.rules)?;
    let sources = load_sources(&args.rules)?;
    let pipelines = load_pipelines(&args.rules)?;
    let min_level = match &args.min_level {
        Some(name) => Level::parse(name).with_context(|| format!("unknown level {name:?}"))?,
        None => Level::Informational,
    };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let out: Box<dyn Write> = match &args.output_file {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut output = Output {
        out: BufWriter::new(out),
        min_level,
        per_rule: BTreeMap::new(),
        matches: 0,
    };
    let events = if let Some(server) = &args.server {
        hunt_server(server, &args, since, &mut output)?
    } else if !args.input.is_empty() {
        hunt_files(&args, &library, sources, &pipelines, since, &mut output)?
    } else if let Some(data) = &args.data {
        let (engine, report) = SigmaEngine::routed(&library, sources, &pipelines);
        let mut engine = with_anomalies(engine, &args.rules);
        report_build(&library, &report);
        let layout = Layout::new(data, args.master_key_file.clone());
        hunt_store(&layout, &args.groups, since, &mut engine, &mut output)?
    } else {
        bail!("give --input FILE… or --data DIR");
    };
    output.out.flush()?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{events} events, {} matches in {elapsed:.2} s ({:.0} events/s)",
        output.matches,
        events as f64 / elapsed.max(1e-9)
    );
    for (rule, count) in &output.per_rule {
        eprintln!("  {count:>8}  {rule}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A request to a running server with a bearer token: GET, or POST of `body`. A refusal becomes
/// an error with the server's message.
fn call_server(
    server: &str,
    token: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<ureq::http::Response<ureq::Body>> {
    let agent = crate::client::agent(None)?;
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let authorization = format!("Bearer {token}");
    let response = match body {
        Some(body) => agent
            .post(&url)
            .header("authorization", &authorization)
            .send_json(body),
        None => agent
            .get(&url)
            .header("authorization", &authorization)
            .call(),
    }
    .with_context(|| format!("contacting {server}"))?;
    let status = response.status();
    if !status.is_success() {
        let reply: Value = response.into_body().read_json().unwrap_or(Value::Null);
        bail!(
            "{} (HTTP {})",
            reply["error"]["message"]
                .as_str()
                .unwrap_or("request failed"),
            status.as_u16()
        );
    }
    Ok(response)
}

/// Sends the rule files to a server and writes the matches it streams back.
fn hunt_server(
    server: &str,
    args: &HuntArgs,
    since: Option<Timestamp>,
    output: &mut Output<'_>,
) -> Result<u64> {
    let token = args
        .token
        .as_deref()
        .context("set SECLOG_TOKEN (or --token) to a reader or admin token")?;
    let mut files = Vec::new();
    for path in &args.rules.rules {
        let mut found = Vec::new();
        if path.is_dir() {
            collect_rule_files(path, &mut found)?;
        } else {
            found.push(path.clone());
        }
        found.sort();
        for file in found {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            files.push(json!({"name": file.to_string_lossy(), "text": text}));
        }
    }
    let body = json!({
        "rules": files,
        "builtin": !args.rules.no_builtin,
        "anomalies": !args.rules.no_anomalies,
        "groups": args.groups,
        "since": since.map(Timestamp::to_rfc3339),
        "min_level": args.min_level,
    });
    let response = call_server(server, token, "/api/v1/hunt", Some(&body))?;
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let mut events = 0;
    for line in std::io::BufRead::lines(reader) {
        let line: Value =
            serde_json::from_str(&line?).context("the server sent a line that is not JSON")?;
        if let Some(summary) = line.get("summary") {
            events = summary["events"].as_u64().unwrap_or(0);
            if let Some(refused) = summary["unsupported_rules"].as_u64().filter(|n| *n > 0) {
                eprintln!("{refused} rules unsupported (see `seclog rules check`)");
            }
        } else if let Some(error) = line.get("error") {
            eprintln!("error: {error}");
        } else {
            output.line(&line)?;
        }
    }
    Ok(events)
}

fn collect_rule_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rule_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            out.push(path);
        }
    }
    Ok(())
}

fn report_build(library: &RuleLibrary, report: &BuildReport) {
    let compiled: usize = report.per_source.iter().map(|(_, rules, _)| rules).sum();
    eprintln!(
        "{} rules loaded ({} compiled for the sources read), {} unsupported (see `seclog rules check`)",
        library.rules.len(),
        compiled,
        library.unsupported.len() + report.failed.len()
    );
}

/// `--since`: RFC 3339, or a duration back from now (`24h`, `7d`).
fn parse_since(text: &str) -> Result<Timestamp> {
    if let Ok(time) = Timestamp::parse_rfc3339(text) {
        return Ok(time);
    }
    let seconds = crate::commands::parse_duration(text)
        .with_context(|| format!("--since {text:?} is neither RFC 3339 nor a duration"))?;
    Ok(Timestamp::from_unix_nanos(
        Timestamp::now().unix_nanos() - seconds * 1_000_000_000,
    ))
}

/// Hunts over stored groups, one group after another in sequence order.
fn hunt_store(
    layout: &Layout,
    patterns: &[String],
    since: Option<Timestamp>,
    engine: &mut SigmaEngine,
    output: &mut Output<'_>,
) -> Result<u64> {
    let reader = JournalReader::new(layout, crate::commands::load_master(layout)?);
    let mut events = 0;
    for group in group_names(layout)? {
        if group.is_internal()
            || (!patterns.is_empty()
                && !patterns
                    .iter()
                    .any(|pattern| wildcard_match(pattern, group.as_str())))
        {
            continue;
        }
        let mut failure = Ok(());
        events += seclog_server::detect::hunt_group(
            engine,
            &reader,
            &group,
            since,
            &mut |seq, view, matches| {
                for matched in &matches {
                    let origin = Origin::Stored {
                        group: group.as_str(),
                        seq,
                    };
                    if let Err(error) = output.write(matched, origin, &view) {
                        failure = Err(error);
                        return false;
                    }
                }
                true
            },
        )?;
        failure?;
    }
    Ok(events)
}

/// What `--format` names for offline files.
#[derive(Clone, Copy)]
enum FileFormat {
    Service(Format),
    Ndjson,
    Syslog,
}

/// The group a file format's events are routed as (so the routing file decides which rules
/// read them).
fn pseudo_group(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Service(Format::CloudTrail) => "aws/cloudtrail",
        FileFormat::Service(Format::VpcFlow) => "aws/vpcflow",
        FileFormat::Service(Format::Route53) => "aws/route53",
        FileFormat::Service(Format::Alb) => "aws/alb",
        FileFormat::Service(Format::Elb) => "aws/elb",
        FileFormat::Service(Format::Combined) => "aws/combined",
        FileFormat::Service(Format::Waf) => "aws/waf",
        FileFormat::Service(Format::S3Access) => "aws/s3access",
        FileFormat::Service(Format::Config) => "aws/config",
        FileFormat::Service(Format::PgAudit) => "aws/pgaudit",
        FileFormat::Service(Format::MysqlAudit) => "aws/mysqlaudit",
        FileFormat::Syslog => "syslog/file",
        FileFormat::Ndjson => "ndjson",
    }
}

fn file_format(name: &str, path: &Path, head: &[u8]) -> Result<FileFormat> {
    match name {
        "ndjson" | "json" => Ok(FileFormat::Ndjson),
        "syslog" => Ok(FileFormat::Syslog),
        "auto" => {
            let file = path.to_string_lossy();
            if let Some(format) = service::detect(&file, head) {
                return Ok(FileFormat::Service(format));
            }
            let first = head.iter().find(|byte| !byte.is_ascii_whitespace());
            Ok(if first == Some(&b'{') {
                FileFormat::Ndjson
            } else {
                FileFormat::Syslog
            })
        }
        other => Format::parse(other)
            .map(FileFormat::Service)
            .with_context(|| format!("unknown --format {other:?}")),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    match bytes.get(..4) {
        Some([0x1f, 0x8b, ..]) => {
            flate2::read::MultiGzDecoder::new(bytes.as_slice())
                .read_to_end(&mut out)
                .with_context(|| format!("decompressing {}", path.display()))?;
        }
        Some([0x28, 0xb5, 0x2f, 0xfd]) => {
            zstd::stream::read::Decoder::new(bytes.as_slice())?
                .read_to_end(&mut out)
                .with_context(|| format!("decompressing {}", path.display()))?;
        }
        _ => return Ok(bytes),
    }
    Ok(out)
}

/// One event of a file, ready for the engine.
struct FileEvent {
    event: Value,
    time: Option<Timestamp>,
}

/// Hunts over files: every input is decoded in its format and its events evaluated in order.
fn hunt_files(
    args: &HuntArgs,
    library: &RuleLibrary,
    sources: Sources,
    pipelines: &[seclog_detect::Pipeline],
    since: Option<Timestamp>,
    output: &mut Output<'_>,
) -> Result<u64> {
    let mut inputs = Vec::new();
    for path in &args.input {
        let bytes = read_file(path)?;
        let head = bytes.get(..4096).unwrap_or(&bytes);
        let format = file_format(&args.format, path, head)?;
        inputs.push((path.clone(), format, bytes));
    }
    // Files whose log source is unknown (NDJSON) are read by every rule; the others by the
    // rules of their source.
    let any_ndjson = inputs
        .iter()
        .any(|(_, format, _)| matches!(format, FileFormat::Ndjson));
    let (routed, report) = SigmaEngine::routed(library, sources, pipelines);
    let mut routed = with_anomalies(routed, &args.rules);
    report_build(library, &report);
    let mut everything = any_ndjson.then(|| SigmaEngine::unrouted(library, pipelines).0);
    let mut events = 0;
    let received = Timestamp::now();
    for (index, (path, format, bytes)) in inputs.iter().enumerate() {
        let input = path.to_string_lossy();
        let group = pseudo_group(*format);
        let engine: &mut SigmaEngine = match (format, everything.as_mut()) {
            (FileFormat::Ndjson, Some(engine)) => engine,
            _ => &mut routed,
        };
        let with_ocsf = engine.wants_ocsf(group);
        let mut record_index = 0u64;
        // Every record of the file, decoded or not, takes the next record index.
        let mut evaluate = |file_event: Option<FileEvent>| -> Result<()> {
            let at = record_index;
            record_index += 1;
            let Some(file_event) = file_event else {
                return Ok(());
            };
            if since.is_some_and(|since| file_event.time.is_some_and(|time| time < since)) {
                return Ok(());
            }
            events += 1;
            let time = file_event.time.map_or(0, Timestamp::unix_seconds);
            let evidence = format!("{index}:{at}");
            for matched in engine.process(group, &file_event.event, time, &evidence) {
                output.write(
                    &matched,
                    Origin::File {
                        input: &input,
                        record_index: at,
                    },
                    &file_event.event,
                )?;
            }
            Ok(())
        };
        let Some(with_ocsf) = with_ocsf else {
            eprintln!(
                "{input}: no rule reads {group} events (see the routing in `seclog rules check`)"
            );
            continue;
        };
        match format {
            FileFormat::Service(format) => {
                let mut failure = Ok(());
                service::decode_each(*format, bytes, &DecodeOptions::default(), &mut |item| {
                    if failure.is_err() {
                        return;
                    }
                    match item {
                        Item::Event(decoded) => {
                            let shape = match decoded.kind {
                                service::RawKind::Json => Shape::Json,
                                service::RawKind::Text => Shape::Text,
                            };
                            let mut attrs = decoded.fields;
                            if !decoded.ocsf.is_empty() {
                                attrs.insert(
                                    seclog_detect::event::OCSF_ATTR.into(),
                                    Value::Object(decoded.ocsf),
                                );
                            }
                            // Whole records: matches print the event.
                            let event = detection_event(shape, &decoded.raw, &attrs, with_ocsf);
                            failure = evaluate(event.map(|event| FileEvent {
                                event,
                                time: decoded.time,
                            }));
                        }
                        Item::Rejected(rejected) => {
                            eprintln!("{input}: skipped: {}", rejected.reason);
                            failure = evaluate(None);
                        }
                    }
                });
                failure?;
            }
            FileFormat::Ndjson => {
                for (number, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match detection_event(Shape::Json, line, &Map::new(), with_ocsf) {
                        Some(event) => {
                            let time = event_time(&event);
                            evaluate(Some(FileEvent { event, time }))?;
                        }
                        None => {
                            eprintln!("{input}: line {}: not JSON, skipped", number + 1);
                            evaluate(None)?;
                        }
                    }
                }
            }
            FileFormat::Syslog => {
                for line in bytes.split(|byte| *byte == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let (attrs, time) = match seclog_formats::syslog::parse_syslog(line, received) {
                        Ok(message) => (message.fields, message.time),
                        Err(_) => (Map::new(), None),
                    };
                    let event = detection_event(Shape::Text, line, &attrs, with_ocsf);
                    evaluate(event.map(|event| FileEvent { event, time }))?;
                }
            }
        }
    }
    Ok(events)
}

/// The time of an NDJSON event from the usual fields.
fn event_time(event: &Value) -> Option<Timestamp> {
    ["eventTime", "@timestamp", "timestamp", "time"]
        .iter()
        .filter_map(|key| event.get(*key).and_then(Value::as_str))
        .find_map(|text| Timestamp::parse_rfc3339(text).ok())
}

/// `seclog alerts list`.
pub(crate) fn alerts_list(
    target: &crate::cli::TargetArgs,
    state: Option<&str>,
    limit: usize,
    output: &str,
) -> Result<ExitCode> {
    let reply: Value = if let Some(server) = &target.server {
        let token = target
            .token
            .as_deref()
            .context("set SECLOG_TOKEN (or --token) to an auditor, admin or reader token")?;
        let mut path = format!("/api/v1/alerts?limit={limit}");
        if let Some(state) = state {
            path.push_str(&format!("&state={state}"));
        }
        call_server(server, token, &path, None)?
            .into_body()
            .read_json()
            .context("reading the answer")?
    } else if let Some(data) = &target.data {
        let layout = Layout::new(data, target.master_key_file.clone());
        let meta = crate::commands::open_meta(&layout)?;
        let all = seclog_server::alerting::deliveries(&meta).map_err(anyhow::Error::msg)?;
        let mut counts = BTreeMap::<String, u64>::new();
        for delivery in &all {
            *counts.entry(delivery.state.clone()).or_default() += 1;
        }
        let deliveries: Vec<_> = all
            .iter()
            .filter(|delivery| state.is_none_or(|wanted| delivery.state == wanted))
            .take(limit)
            .collect();
        json!({ "counts": counts, "deliveries": deliveries })
    } else {
        bail!("give --server URL or --data DIR");
    };
    let mut out = std::io::stdout().lock();
    if output == "json" {
        serde_json::to_writer_pretty(&mut out, &reply)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header([
        "time",
        "severity",
        "finding",
        "destination",
        "state",
        "attempts",
        "last error",
    ]);
    for delivery in reply["deliveries"].as_array().into_iter().flatten() {
        table.add_row([
            delivery["time"].as_str().unwrap_or_default().to_string(),
            delivery["severity"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            delivery["title"].as_str().unwrap_or_default().to_string(),
            delivery["destination"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            delivery["state"].as_str().unwrap_or_default().to_string(),
            delivery["attempts"].to_string(),
            delivery["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ]);
    }
    writeln!(out, "{table}")?;
    let counts = reply["counts"].as_object().cloned().unwrap_or_default();
    let summary: Vec<String> = counts
        .iter()
        .map(|(state, count)| format!("{count} {state}"))
        .collect();
    writeln!(out, "{}", summary.join(", "))?;
    Ok(ExitCode::SUCCESS)
}
