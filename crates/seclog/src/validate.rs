//! `seclog validate-cloudtrail`: CloudTrail's own evidence (the signed hourly digest chain)
//! checked against what was imported, offline: digests come from `<group>-digest`, log file
//! hashes from the import ledger, keys from `aws cloudtrail list-public-keys`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use seclog_formats::service::{ImportedLog, StoredDigest, parse_public_keys, validate};
use seclog_journal::{JournalReader, Layout, group_names};
use seclog_model::{GroupName, Timestamp};

use crate::cli::ValidateArgs;
use crate::commands::{load_master, open_meta};

pub(crate) fn run(args: ValidateArgs) -> Result<ExitCode> {
    let layout = Layout::new(&args.data, args.master_key_file.clone());
    let keys_text = std::fs::read(&args.public_keys)
        .with_context(|| format!("reading {}", args.public_keys.display()))?;
    let keys = parse_public_keys(&keys_text).map_err(anyhow::Error::msg)?;
    let group = GroupName::parse(&args.group)?;
    let digest_group = seclog_server::import::digest_group(&group).map_err(anyhow::Error::msg)?;
    let mut digests = Vec::new();
    if group_names(&layout)?.contains(&digest_group) {
        let reader = JournalReader::new(&layout, load_master(&layout)?);
        let mut position = 0;
        loop {
            let events = reader.read(&digest_group, position, 10_000, None)?;
            let Some(last) = events.last() else { break };
            position = last.seq + 1;
            for event in events {
                let signature = serde_json::from_slice::<serde_json::Value>(&event.record.attrs)
                    .ok()
                    .and_then(|attrs| attrs["signature"].as_str().map(str::to_string));
                digests.push(StoredDigest {
                    object: event.record.source.clone(),
                    bytes: event.record.raw,
                    signature,
                });
            }
        }
    }
    let meta = open_meta(&layout).context("is the server running? stop it first")?;
    let logs: Vec<ImportedLog> = meta
        .imports(group.as_str())?
        .into_iter()
        .filter(|(_, state)| state.complete)
        .map(|(sha256, state)| ImportedLog {
            object: state.object,
            sha256,
        })
        .collect();
    let now = Timestamp::now().to_rfc3339();
    let report = validate(&digests, &keys, &logs, &now);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} digests: {} valid, {} invalid, {} without a known signature; {} log files: {} valid, {} invalid, {} not imported; {} imported log files no digest names",
            digests.len(),
            report.digests_valid.len(),
            report.digests_invalid.len(),
            report.digests_unverified.len(),
            report.logs_valid.len() + report.logs_invalid.len() + report.logs_not_imported.len(),
            report.logs_valid.len(),
            report.logs_invalid.len(),
            report.logs_not_imported.len(),
            report.logs_uncovered.len(),
        );
        for (name, reason) in &report.digests_invalid {
            println!("INVALID digest {name}: {reason}");
        }
        for name in &report.digests_unverified {
            println!(
                "UNVERIFIED digest {name}: its signature is kept in S3 object metadata; import it from S3 to check it"
            );
        }
        for (name, reason) in &report.logs_invalid {
            println!("INVALID log file {name}: {reason}");
        }
        for name in &report.logs_not_imported {
            println!("MISSING log file {name}: named by a digest, never imported");
        }
        for name in &report.logs_unverified {
            println!("UNVERIFIED log file {name}: matches a digest whose signature is not known");
        }
        for gap in &report.gaps {
            println!("GAP {gap}");
        }
        for name in &report.logs_uncovered {
            println!("UNCOVERED log file {name}: no digest names it");
        }
        for chain in &report.stale_chains {
            println!(
                "STALE {chain}: CloudTrail delivers a digest every hour; newer digests and logs may have been removed"
            );
        }
        match &report.newest_digest_end {
            Some(end) => println!("newest digest ends {end}"),
            None => println!("no digest files imported into {digest_group}"),
        }
    }
    Ok(if report.problems() == 0 && !digests.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
