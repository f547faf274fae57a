//! `seclog gen`: seeded, realistic service log records for benchmarks and demos, printed or
//! written as AWS delivers them (`AWSLogs/<account>/<service>/<region>/YYYY/MM/DD/…`, gzip).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use seclog_formats::service::{Format, Generator};
use seclog_model::Timestamp;

use crate::cli::GenArgs;

pub(crate) fn run(args: GenArgs) -> Result<ExitCode> {
    let format =
        Format::parse(&args.format).with_context(|| format!("unknown format {:?}", args.format))?;
    let start = match &args.start {
        Some(text) => Timestamp::parse_rfc3339(text)
            .with_context(|| format!("--start {text:?}"))?
            .unix_seconds(),
        // Ends about now: records come at about 50 a second.
        None => Timestamp::now().unix_seconds() - (args.events / 50) as i64,
    };
    let mut generator = Generator::new(format, args.seed, start).map_err(anyhow::Error::msg)?;
    match &args.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            if let Some(header) = generator.header() {
                writeln!(out, "{header}")?;
            }
            for _ in 0..args.events {
                writeln!(out, "{}", generator.next_record())?;
            }
            out.flush()?;
        }
        Some(dir) => {
            let files = write_tree(
                &mut generator,
                format,
                args.events,
                args.per_file.max(1),
                dir,
            )?;
            eprintln!(
                "wrote {} {} records in {files} files under {}",
                args.events,
                format.name(),
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `events` records as gzip objects of `per_file` records in the `AWSLogs` layout.
fn write_tree(
    generator: &mut Generator,
    format: Format,
    events: u64,
    per_file: u64,
    dir: &Path,
) -> Result<u64> {
    let account = generator.account().to_string();
    let mut written = 0;
    let mut files = 0;
    while written < events {
        let count = per_file.min(events - written);
        let time = Timestamp::from_unix_nanos(generator.clock().saturating_mul(1_000_000_000));
        let text = time.to_rfc3339();
        let (date, clock) = text.split_once('T').unwrap_or((&text, ""));
        let day_path = date.replace('-', "/");
        let stamp = format!(
            "{}T{}{}Z",
            date.replace('-', ""),
            clock.get(0..2).unwrap_or("00"),
            clock.get(3..5).unwrap_or("00")
        );
        let region = "us-east-1";
        let (folder, name, body) = match format {
            Format::CloudTrail => {
                let records: Vec<String> = (0..count).map(|_| generator.next_record()).collect();
                (
                    format!("CloudTrail/{region}/{day_path}"),
                    format!("{account}_CloudTrail_{region}_{stamp}_{files:06}.json.gz"),
                    format!("{{\"Records\":[{}]}}", records.join(",")),
                )
            }
            Format::VpcFlow => (
                format!("vpcflowlogs/{region}/{day_path}"),
                format!(
                    "{account}_vpcflowlogs_{region}_fl-0a1b2c3d4e5f67890_{stamp}_{files:06}.log.gz"
                ),
                lines(generator, count),
            ),
            Format::Route53 => (
                format!("vpcdnsquerylogs/vpc-0a1b2c3d/{day_path}"),
                format!("{account}_vpcdnsquerylogs_vpc-0a1b2c3d_{stamp}_{files:06}.log.gz"),
                lines(generator, count),
            ),
            Format::Alb => (
                format!("elasticloadbalancing/{region}/{day_path}"),
                format!(
                    "{account}_elasticloadbalancing_{region}_app.web-prod.50dc6c495c0c9188_{stamp}_10.0.0.1_{files:06}.log.gz"
                ),
                lines(generator, count),
            ),
            other => bail!("gen does not make {} records", other.name()),
        };
        let folder = dir.join("AWSLogs").join(&account).join(folder);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let path = folder.join(name);
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
        encoder.write_all(body.as_bytes())?;
        encoder.finish()?.flush()?;
        written += count;
        files += 1;
    }
    Ok(files)
}

fn lines(generator: &mut Generator, count: u64) -> String {
    let mut text = String::new();
    if let Some(header) = generator.header() {
        text.push_str(header);
        text.push('\n');
    }
    for _ in 0..count {
        text.push_str(&generator.next_record());
        text.push('\n');
    }
    text
}
