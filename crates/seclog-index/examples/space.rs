//! Prints how much index space each schema field takes for an NDJSON file:
//! `cargo run --release -p seclog-index --example space -- events.ndjson [max events]`.

use std::io::BufRead;

use seclog_index::IndexSchema;
use seclog_journal::{Record, RecordKind};
use seclog_model::Timestamp;
use tantivy::{Index, IndexWriter, TantivyDocument};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: space FILE [MAX]")?;
    let max: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(usize::MAX);
    let schema = IndexSchema::new();
    let index = Index::create_in_ram(schema.schema.clone());
    IndexSchema::register_tokenizers(&index);
    let mut writer: IndexWriter<TantivyDocument> = index.writer_with_num_threads(1, 256 << 20)?;
    let started = std::time::Instant::now();
    let mut raw = 0usize;
    let mut build = std::time::Duration::ZERO;
    let now = Timestamp::now();
    for (seq, line) in std::io::BufReader::new(std::fs::File::open(path)?)
        .lines()
        .take(max)
        .enumerate()
    {
        let line = line?;
        raw += line.len() + 1;
        let record = Record {
            time: now,
            observed_time: now,
            kind: RecordKind::Json,
            source: "bench".into(),
            attrs: Vec::new(),
            raw: line.into_bytes(),
        };
        let t = std::time::Instant::now();
        let doc = schema.document(seq as u64, &record);
        build += t.elapsed();
        writer.add_document(doc)?;
    }
    writer.commit()?;
    let elapsed = started.elapsed();
    writer.wait_merging_threads()?;
    let reader = index.reader()?;
    let searcher = reader.searcher();
    let usage = searcher.space_usage()?;
    println!(
        "raw {raw} bytes; index {} bytes ({:.3} of raw); {:.1} s ({:.1} MB/s), building documents {:.1} s",
        usage.total().get_bytes(),
        usage.total().get_bytes() as f64 / raw as f64,
        elapsed.as_secs_f64(),
        raw as f64 / 1e6 / elapsed.as_secs_f64(),
        build.as_secs_f64()
    );
    for segment in usage.segments() {
        for (name, part) in [
            ("postings", segment.postings()),
            ("termdict", segment.termdict()),
            ("fast", segment.fast_fields()),
            ("positions", segment.positions()),
            ("fieldnorms", segment.fieldnorms()),
        ] {
            let mut fields: Vec<_> = part.fields().collect();
            fields.sort_by_key(|usage| std::cmp::Reverse(usage.total().get_bytes()));
            for usage in fields.iter().take(12) {
                println!(
                    "  {name:10} {:40} {:>12}",
                    usage.field_name(),
                    usage.total().get_bytes()
                );
            }
        }
        println!("  store {}", segment.store().total().get_bytes());
    }
    Ok(())
}
