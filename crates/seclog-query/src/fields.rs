//! Field discovery: which fields a group's recent events carry, how often, and their most
//! common values, read from the term dictionaries (no event is decrypted).

use std::collections::HashMap;

use seclog_index::Catalog;
use seclog_model::GroupName;

use crate::error::QueryError;

/// One discovered field.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldSummary {
    /// Flattened path (`userIdentity.arn`).
    pub name: String,
    /// Events carrying it (in the pieces examined).
    pub count: u64,
    /// Most common values with their counts, most common first.
    pub top: Vec<(String, u64)>,
}

/// Distinct values tracked per field; beyond this the top list is approximate.
const MAX_TRACKED: usize = 2_000;
/// Separator tantivy puts between JSON path segments.
const PATH_SEP: u8 = 1;
/// Marks the end of the path in a JSON term.
const END_OF_PATH: u8 = 0;

/// Summarizes the fields of `group`'s newest pieces (up to `max_pieces`), keeping `top`
/// values per field.
pub fn field_summary(
    catalog: &Catalog,
    group: &GroupName,
    max_pieces: usize,
    top: usize,
) -> Result<(Vec<FieldSummary>, u64), QueryError> {
    let schema = catalog.schema();
    let mut counts: HashMap<String, (u64, HashMap<String, u64>)> = HashMap::new();
    let mut docs = 0u64;
    for piece in catalog.pieces(group).iter().rev().take(max_pieces) {
        let searcher = piece.searcher();
        for segment in searcher.segment_readers() {
            docs += u64::from(segment.num_docs());
            let inverted = segment.inverted_index(schema.fields)?;
            let mut stream = inverted
                .terms()
                .stream()
                .map_err(|error| QueryError::Search(error.into()))?;
            while stream.advance() {
                let key = stream.key();
                let Some(end) = key.iter().position(|byte| *byte == END_OF_PATH) else {
                    continue;
                };
                let path: String = String::from_utf8_lossy(&key[..end])
                    .chars()
                    .map(|c| {
                        if c as u32 == u32::from(PATH_SEP) {
                            '.'
                        } else {
                            c
                        }
                    })
                    .collect();
                let Some((&kind, value)) = key[end + 1..].split_first() else {
                    continue;
                };
                let frequency = u64::from(stream.value().doc_freq);
                let value = match kind {
                    b's' => String::from_utf8_lossy(value).into_owned(),
                    b'i' => value
                        .try_into()
                        .map(|bytes| tantivy::u64_to_i64(u64::from_be_bytes(bytes)).to_string())
                        .unwrap_or_default(),
                    b'u' => value
                        .try_into()
                        .map(|bytes| u64::from_be_bytes(bytes).to_string())
                        .unwrap_or_default(),
                    b'f' => value
                        .try_into()
                        .map(|bytes| tantivy::u64_to_f64(u64::from_be_bytes(bytes)).to_string())
                        .unwrap_or_default(),
                    b'o' => value
                        .last()
                        .map(|flag| (*flag != 0).to_string())
                        .unwrap_or_default(),
                    _ => continue,
                };
                let entry = counts.entry(path).or_default();
                entry.0 += frequency;
                if entry.1.len() < MAX_TRACKED || entry.1.contains_key(&value) {
                    *entry.1.entry(value).or_default() += frequency;
                }
            }
            // Identifier fields are indexed as hashes: their names and counts, no values.
            let inverted = segment.inverted_index(schema.id_paths)?;
            let mut stream = inverted
                .terms()
                .stream()
                .map_err(|error| QueryError::Search(error.into()))?;
            while stream.advance() {
                let path = String::from_utf8_lossy(stream.key()).into_owned();
                counts.entry(path).or_default().0 += u64::from(stream.value().doc_freq);
            }
        }
    }
    let mut fields: Vec<FieldSummary> = counts
        .into_iter()
        .map(|(name, (count, values))| {
            let mut values: Vec<(String, u64)> = values.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            values.truncate(top);
            FieldSummary {
                name,
                count,
                top: values,
            }
        })
        .collect();
    fields.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    Ok((fields, docs))
}
