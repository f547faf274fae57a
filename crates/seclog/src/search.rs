//! `seclog query` and `seclog reindex`.

use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use seclog_index::{Catalog, Indexer};
use seclog_journal::{
    JournalConfig, JournalReader, JournalWriter, Layout, group_extent, group_names,
};
use seclog_meta::MetaError;
use seclog_model::{GroupName, Timestamp};
use seclog_query::{Engine, Limits, QueryError, QueryRequest};
use seclog_server::access::{self, ACCESS_GROUP};
use serde_json::{Value as Json, json};

use crate::cli::{OutputFormat, QueryArgs};
use crate::commands::{load_master, open_meta};

const BATCH: usize = 50_000;

fn parse_period(text: &str) -> Result<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .context("a period looks like 15m, 6h or 7d")?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .context("a period looks like 15m, 6h or 7d")?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!("unknown period unit {unit:?} (s, m, h, d, w)"),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

fn time_range(args: &QueryArgs) -> Result<(Timestamp, Timestamp)> {
    let end = match &args.end {
        Some(text) => Timestamp::parse_rfc3339(text).with_context(|| format!("--end {text:?}"))?,
        None => Timestamp::now(),
    };
    let start = match (&args.start, &args.since) {
        (Some(text), _) => {
            Timestamp::parse_rfc3339(text).with_context(|| format!("--start {text:?}"))?
        }
        (None, Some(period)) => {
            let period = parse_period(period)?;
            Timestamp::from_unix_nanos(
                end.unix_nanos()
                    .saturating_sub(period.as_nanos().min(i64::MAX as u128) as i64),
            )
        }
        (None, None) => Timestamp::from_unix_nanos(end.unix_nanos() - 3600 * 1_000_000_000),
    };
    if end.unix_nanos() <= start.unix_nanos() {
        bail!("the end of the time range must be after its start");
    }
    Ok((start, end))
}

/// Prints where a query is wrong, with a caret under the spot.
fn show_query_error(query: &str, message: &str, offset: usize) {
    let offset = offset.min(query.len());
    let line_start = query[..offset].rfind('\n').map_or(0, |at| at + 1);
    let line_end = query[offset..]
        .find('\n')
        .map_or(query.len(), |at| offset + at);
    let column = query[line_start..offset].chars().count();
    eprintln!("error: {message}");
    eprintln!("  {}", &query[line_start..line_end]);
    eprintln!("  {}^", " ".repeat(column));
}

/// Opens the metadata store, which fails while a server holds the directory.
fn claim_directory(layout: &Layout, advice: &str) -> Result<seclog_meta::MetaStore> {
    match open_meta(layout) {
        Ok(meta) => Ok(meta),
        Err(error)
            if matches!(
                error.downcast_ref::<MetaError>(),
                Some(MetaError::Locked(_))
            ) =>
        {
            bail!(
                "a server is running on {}; {advice}",
                layout.root().display()
            )
        }
        Err(error) => Err(error),
    }
}

pub(crate) fn query(args: QueryArgs) -> Result<ExitCode> {
    let (start, end) = time_range(&args)?;
    match (&args.target.server, &args.target.data) {
        (Some(server), _) => query_server(&args, server, start, end),
        (None, Some(data)) => query_local(
            &args,
            &Layout::new(data, args.target.master_key_file.clone()),
            start,
            end,
        ),
        (None, None) => bail!("give --server URL or --data DIR"),
    }
}

fn query_server(
    args: &QueryArgs,
    server: &str,
    start: Timestamp,
    end: Timestamp,
) -> Result<ExitCode> {
    let token = args
        .target
        .token
        .as_deref()
        .context("set SECLOG_TOKEN (or --token) to a reader token")?;
    let url = format!("{}/api/v1/query", server.trim_end_matches('/'));
    let mut body = json!({
        "query": args.query,
        "start": start.to_rfc3339(),
        "end": end.to_rfc3339(),
    });
    if !args.groups.is_empty() {
        body["groups"] = json!(args.groups);
    }
    if args.output == OutputFormat::Ndjson {
        body["format"] = json!("ndjson");
    }
    let agent = crate::client::agent(Some(Duration::from_secs(300)))?;
    let response = agent
        .post(&url)
        .header("authorization", &format!("Bearer {token}"))
        .send_json(&body)
        .with_context(|| format!("contacting {server}"))?;
    let status = response.status();
    if !status.is_success() {
        let reply: Json = response.into_body().read_json().unwrap_or(Json::Null);
        let message = reply["error"]["message"]
            .as_str()
            .unwrap_or("request failed")
            .to_string();
        if let Some(offset) = reply["error"]["details"]["offset"].as_u64() {
            show_query_error(&args.query, &message, offset as usize);
        } else {
            eprintln!("error: {message} (HTTP {})", status.as_u16());
        }
        return Ok(ExitCode::from(1));
    }
    if args.output == OutputFormat::Ndjson {
        let reader = BufReader::new(response.into_body().into_reader());
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for line in reader.lines() {
            writeln!(out, "{}", line?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let reply: Json = response
        .into_body()
        .read_json()
        .context("reading the answer")?;
    print_answer(args.output, &reply)?;
    Ok(ExitCode::SUCCESS)
}

fn query_local(
    args: &QueryArgs,
    layout: &Layout,
    start: Timestamp,
    end: Timestamp,
) -> Result<ExitCode> {
    // The metadata lock tells whether a server owns the directory.
    let _meta = claim_directory(layout, "query it with --server")?;
    let master = load_master(layout)?;
    let (mut writer, notes) = JournalWriter::open(layout, master.clone(), JournalConfig::default())
        .context("opening the journal")?;
    for note in notes {
        eprintln!("{note}");
    }
    let catalog = Catalog::open(layout, master.clone())?;
    let reader = JournalReader::new(layout, master);
    catch_up(
        layout,
        &catalog,
        &reader,
        &writer.heads().snapshot().into_keys().collect::<Vec<_>>(),
        false,
    )?;
    let known = group_names(layout)?;
    let groups: Vec<GroupName> = if args.groups.is_empty() {
        known
            .into_iter()
            .filter(|group| group.as_str() != ACCESS_GROUP)
            .collect()
    } else {
        let mut groups = Vec::new();
        for name in &args.groups {
            let group = GroupName::parse(name)?;
            if !known.contains(&group) {
                bail!("no group named {group}");
            }
            groups.push(group);
        }
        groups
    };
    let engine = Engine::new(catalog, reader);
    let request = QueryRequest {
        query: args.query.clone(),
        start,
        end,
        groups: groups.clone(),
        limits: Limits::default(),
    };
    let outcome = engine.run(&request);
    let entry = access::with_outcome(
        access::entry("query", &args.query, &groups, start, end),
        &outcome,
    );
    let actor = json!({
        "local_user": std::env::var("USER").unwrap_or_default(),
        "via": "seclog query --data",
    });
    writer.append(
        &access::access_group(),
        &[access::record(entry, actor)],
        Timestamp::now(),
    )?;
    writer.commit()?;
    writer.close(Timestamp::now())?;
    let answer = match outcome {
        Ok(answer) => answer,
        Err(QueryError::Parse {
            message, offset, ..
        }) => {
            show_query_error(&args.query, &message, offset);
            return Ok(ExitCode::from(1));
        }
        Err(error) => return Err(error.into()),
    };
    print_answer(args.output, &answer.to_json())?;
    Ok(ExitCode::SUCCESS)
}

fn cell(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn print_answer(format: OutputFormat, reply: &Json) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let empty = Vec::new();
    let rows = reply["rows"].as_array().unwrap_or(&empty);
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(reply)?)?,
        OutputFormat::Ndjson => {
            for row in rows {
                writeln!(out, "{row}")?;
            }
        }
        OutputFormat::Table => {
            let fields: Vec<String> = reply["fields"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(cell)
                .collect();
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(&fields);
            for row in rows {
                table.add_row(fields.iter().map(|field| {
                    let text = cell(&row[field]);
                    if text.chars().count() > 200 {
                        format!("{}…", text.chars().take(200).collect::<String>())
                    } else {
                        text
                    }
                }));
            }
            writeln!(out, "{table}")?;
            let stats = &reply["stats"];
            eprintln!(
                "{} rows, {} matched, {} scanned, {} ms{}",
                rows.len(),
                stats["matched"],
                stats["scanned"],
                stats["took_ms"],
                if reply["partial"].as_bool() == Some(true) {
                    format!(" (partial: {})", cell(&reply["partial_reason"]))
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}

/// Indexes what the journal holds beyond the index, for `groups`.
fn catch_up(
    layout: &Layout,
    catalog: &Arc<Catalog>,
    reader: &JournalReader,
    groups: &[GroupName],
    progress: bool,
) -> Result<u64> {
    let mut indexer = Indexer::new(Arc::clone(catalog), reader.clone());
    let mut ends = Vec::new();
    let mut total = 0u64;
    for group in groups {
        let (_, end) = group_extent(layout, group)?;
        total += end.saturating_sub(catalog.next_seq(group));
        ends.push((group.clone(), end));
    }
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} events ({per_sec}, {eta} left) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut indexed = 0u64;
    for (group, end) in ends {
        bar.set_message(group.to_string());
        loop {
            let count = indexer.index_group(&group, end, BATCH)?;
            if count == 0 {
                break;
            }
            indexed += count as u64;
            bar.inc(count as u64);
        }
    }
    indexer.close()?;
    bar.finish_and_clear();
    Ok(indexed)
}

pub(crate) fn reindex(layout: &Layout, group: Option<&str>) -> Result<ExitCode> {
    let _meta = claim_directory(layout, "stop it before reindexing")?;
    let master = load_master(layout)?;
    // Opening the writer recovers an interrupted tail first.
    let (writer, notes) = JournalWriter::open(layout, master.clone(), JournalConfig::default())
        .context("opening the journal")?;
    for note in notes {
        eprintln!("{note}");
    }
    drop(writer);
    let groups = match group {
        Some(name) => vec![GroupName::parse(name)?],
        None => group_names(layout)?,
    };
    let catalog = Catalog::open(layout, master.clone())?;
    let reader = JournalReader::new(layout, master);
    let mut indexer = Indexer::new(Arc::clone(&catalog), reader.clone());
    for group in &groups {
        indexer.reset_group(group)?;
    }
    indexer.close()?;
    let started = std::time::Instant::now();
    let indexed = catch_up(
        layout,
        &catalog,
        &reader,
        &groups,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    eprintln!(
        "reindexed {indexed} events in {} group(s) in {:.1} s",
        groups.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
