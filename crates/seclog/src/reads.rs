//! `seclog cat` and `seclog proof`: through a running server (`--server`, recorded there in
//! `seclog/access`), or from a data directory (`--data`).
//!
//! From a data directory the read is recorded in `seclog/access` before anything is printed
//! when no server owns the directory. While a server owns it, the journal cannot be written
//! from here: the read is then made without a record and says so on standard error (whoever
//! holds the master key file on the host can read the encrypted files anyway; reads that
//! must be recorded go through `--server`).

use std::io::{BufWriter, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use seclog_journal::{JournalReader, Layout, proof};
use seclog_meta::MetaError;
use seclog_model::GroupName;
use serde_json::{Value, json};

use crate::cli::TargetArgs;
use crate::commands::{load_master, record_local};

/// The data directory of a command given `--data` (an error naming `--server` otherwise).
pub(crate) fn target_layout(target: &TargetArgs) -> Result<Layout> {
    layout(target).context("give --server or --data")
}

fn layout(target: &TargetArgs) -> Option<Layout> {
    target
        .data
        .as_ref()
        .map(|data| Layout::new(data, target.master_key_file.clone()))
}

fn token(target: &TargetArgs) -> Result<&str> {
    target
        .token
        .as_deref()
        .context("--server needs a token (SECLOG_TOKEN or --token)")
}

/// Records a local read in `seclog/access` if no server owns the directory; false (with a
/// warning) when one does.
fn record_local_read(layout: &Layout, entry: Value) -> Result<bool> {
    match crate::commands::open_meta(layout) {
        Ok(meta) => {
            // Held while the journal is written: no server can start meanwhile.
            record_local(layout, entry)?;
            drop(meta);
            Ok(true)
        }
        Err(error)
            if matches!(
                error.downcast_ref::<MetaError>(),
                Some(MetaError::Locked(_))
            ) =>
        {
            eprintln!(
                "warning: a server owns {}: this read is not recorded in seclog/access (use --server for recorded reads)",
                layout.root().display()
            );
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

fn get(
    server: &str,
    token: &str,
    path: &str,
    timeout: Duration,
) -> Result<ureq::http::Response<ureq::Body>> {
    let agent = crate::client::agent(Some(timeout))?;
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let response = agent
        .get(&url)
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .with_context(|| format!("contacting {server}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.into_body().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|value| value["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{server} answered {status}: {message}");
    }
    Ok(response)
}

pub(crate) fn cat(
    target: &TargetArgs,
    group: &str,
    from: u64,
    limit: Option<usize>,
    follow: bool,
) -> Result<ExitCode> {
    let group = GroupName::parse(group)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut remaining = limit.unwrap_or(usize::MAX);
    if let Some(server) = &target.server {
        let token = token(target)?;
        let mut position = from;
        while remaining > 0 {
            let wait = if follow { 25 } else { 0 };
            let path = format!(
                "/api/v1/groups/{}/events?from={position}&limit={}&wait={wait}",
                group.as_str(),
                remaining.min(10_000)
            );
            let response = get(server, token, &path, Duration::from_secs(60))?;
            let next: u64 = response
                .headers()
                .get("x-seclog-next")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .unwrap_or(position);
            let body = response.into_body().read_to_string()?;
            let lines = body.lines().count();
            out.write_all(body.as_bytes())?;
            out.flush()?;
            remaining = remaining.saturating_sub(lines);
            if lines == 0 && !follow {
                break;
            }
            position = next;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let layout = layout(target).context("give --server or --data")?;
    let master = load_master(&layout)?;
    record_local_read(
        &layout,
        json!({ "action": "cat", "status": "ok", "groups": [group.as_str()], "from": from, "limit": limit }),
    )?;
    let reader = JournalReader::new(&layout, master);
    let mut position = from;
    while remaining > 0 {
        let events = reader.read(&group, position, remaining.min(10_000), None)?;
        let Some(last) = events.last() else { break };
        position = last.seq + 1;
        remaining -= events.len();
        for event in &events {
            serde_json::to_writer(
                &mut out,
                &proof::event_view(&event.group, event.seq, &event.record),
            )?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn proof(target: &TargetArgs, group: &str, seq: u64, sealed: bool) -> Result<ExitCode> {
    let group = GroupName::parse(group)?;
    let bundle: Value = if let Some(server) = &target.server {
        let path = format!("/api/v1/groups/{}/events/{seq}/proof", group.as_str());
        let response = get(server, token(target)?, &path, Duration::from_secs(60))?;
        let bundle: Value = serde_json::from_str(&response.into_body().read_to_string()?)?;
        if sealed && bundle.get("event").is_some() {
            let full: proof::ProofBundle = serde_json::from_value(bundle)?;
            serde_json::to_value(full.sealed().map_err(anyhow::Error::msg)?)?
        } else {
            bundle
        }
    } else {
        let layout = layout(target).context("give --server or --data")?;
        let master = load_master(&layout)?;
        record_local_read(
            &layout,
            json!({ "action": "proof", "status": "ok", "groups": [group.as_str()], "seq": seq, "sealed": sealed }),
        )?;
        let bundle = proof::make_proof(&layout, master, &group, seq)?;
        if sealed {
            serde_json::to_value(bundle.sealed().map_err(anyhow::Error::msg)?)?
        } else {
            serde_json::to_value(bundle)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&bundle)?);
    Ok(ExitCode::SUCCESS)
}

/// `seclog token create|list|revoke --server URL` with an admin token (recorded by the server).
pub(crate) fn token_over_api(server: &str, action: crate::cli::TokenAction) -> Result<ExitCode> {
    use crate::cli::TokenAction;
    let (target, method, path, body) = match &action {
        TokenAction::Create {
            target,
            role,
            groups,
            expires,
        } => (
            target,
            "POST",
            "/api/v1/tokens".to_string(),
            Some(json!({ "role": role, "groups": groups, "expires": expires })),
        ),
        TokenAction::List { target } => (target, "GET", "/api/v1/tokens".to_string(), None),
        TokenAction::Revoke { target, id } => {
            (target, "DELETE", format!("/api/v1/tokens/{id}"), None)
        }
    };
    let token = token(target)?;
    let agent = crate::client::agent(Some(Duration::from_secs(60)))?;
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let authorization = format!("Bearer {token}");
    let response = match (method, body) {
        ("POST", Some(body)) => agent
            .post(&url)
            .header("authorization", &authorization)
            .send_json(&body),
        ("DELETE", _) => agent
            .delete(&url)
            .header("authorization", &authorization)
            .call(),
        _ => agent
            .get(&url)
            .header("authorization", &authorization)
            .call(),
    }
    .with_context(|| format!("contacting {server}"))?;
    let status = response.status();
    let reply: Value =
        serde_json::from_str(&response.into_body().read_to_string()?).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{server} answered {status}: {}",
            reply["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    match action {
        TokenAction::Create { .. } => {
            eprintln!(
                "created token {} ({} on {})",
                reply["id"].as_str().unwrap_or("?"),
                reply["role"].as_str().unwrap_or("?"),
                reply["groups"].as_str().unwrap_or("?")
            );
            println!(
                "{}",
                reply["token"].as_str().context("no token in the answer")?
            );
        }
        TokenAction::List { .. } => {
            for info in reply["tokens"].as_array().into_iter().flatten() {
                println!(
                    "{} {} {} created={} expires={}",
                    info["id"].as_str().unwrap_or("?"),
                    info["role"].as_str().unwrap_or("?"),
                    info["groups"].as_str().unwrap_or("?"),
                    info["created"].as_str().unwrap_or("?"),
                    info["expires"].as_str().unwrap_or("never")
                );
            }
        }
        TokenAction::Revoke { id, .. } => println!("revoked {id}"),
    }
    Ok(ExitCode::SUCCESS)
}
