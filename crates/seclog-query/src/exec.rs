//! Running a query: plan (slots, pushdown, stages), scan the pieces, run the pipeline, and
//! fetch from the journal only what the index does not hold (`@message`, phrase checks).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seclog_index::schema::{names, text_analyzer};
use seclog_index::{Catalog, IndexSchema};
use seclog_journal::{JournalReader, RecordKind, StoredEvent};
use seclog_model::{GroupName, Timestamp};
use tantivy::columnar::{DynamicColumn, StrColumn};
use tantivy::query::EnableScoring;
use tantivy::{DocId, DocSet, SegmentReader};

use crate::ast::{Command, Expr, ExprKind, Query, SearchTerm};
use crate::error::QueryError;
use crate::eval::{AggSpec, CExpr, Compiler, Matcher, Slots, eval};
use crate::parser::parse;
use crate::push::{
    Push, field_paths, for_time_span, is_system_field, reads_identifier, to_query, translate,
};
use crate::value::{GroupKey, Value};

/// Rows an answer holds when the query sets no `limit`.
pub const DEFAULT_LIMIT: usize = 10_000;
const TIMESTAMP: usize = 0;
/// String columns with at most this many distinct values decode each value once per segment
/// into a table indexed by ordinal.
const DENSE_MEMO_TERMS: usize = 1 << 16;
const MESSAGE: usize = 1;
const LOG: usize = 2;
const STREAM: usize = 3;

/// Bounds on one query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop scanning after this long and answer with what was found (partial).
    pub timeout: Duration,
    /// Most rows held in memory at once (sort, dedup, journal reads) and most stats groups.
    pub max_working_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            max_working_rows: 2_000_000,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// The query text.
    pub query: String,
    /// Inclusive start of the event-time range.
    pub start: Timestamp,
    /// Exclusive end of the event-time range.
    pub end: Timestamp,
    /// Groups to search.
    pub groups: Vec<GroupName>,
    /// Bounds.
    pub limits: Limits,
}

/// The answer.
#[derive(Debug, Clone)]
pub struct QueryAnswer {
    /// Column names.
    pub fields: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Value>>,
    /// Events that passed every filter.
    pub matched: u64,
    /// Events in the searched pieces and time range that were examined.
    pub scanned: u64,
    /// Wall time.
    pub took: Duration,
    /// Why the answer is incomplete, when it is.
    pub partial: Option<String>,
}

impl QueryAnswer {
    /// One row as a JSON object keyed by field name.
    pub fn row_object(&self, row: &[Value]) -> serde_json::Map<String, serde_json::Value> {
        self.fields
            .iter()
            .zip(row)
            .map(|(name, value)| (name.clone(), value.to_json()))
            .collect()
    }

    /// The answer as the API returns it: `fields`, `rows` (objects), `stats`, `partial`.
    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| serde_json::Value::Object(self.row_object(row)))
            .collect();
        serde_json::json!({
            "fields": self.fields,
            "rows": rows,
            "stats": self.stats_json(),
            "partial": self.partial.is_some(),
            "partial_reason": self.partial,
        })
    }

    /// `matched`, `scanned`, `took_ms` and the number of rows.
    pub fn stats_json(&self) -> serde_json::Value {
        serde_json::json!({
            "matched": self.matched,
            "scanned": self.scanned,
            "took_ms": u64::try_from(self.took.as_millis()).unwrap_or(u64::MAX),
            "rows": self.rows.len(),
        })
    }
}

/// A row: slot values plus where it came from.
#[derive(Debug, Clone)]
struct Row {
    values: Vec<Value>,
    group: u32,
    seq: u64,
}

#[derive(Debug)]
enum Stage {
    Filter(CExpr),
    Assign(Vec<(usize, CExpr)>),
    Parse {
        source: CExpr,
        regex: regex::Regex,
        outputs: Vec<usize>,
    },
    Stats(StatsPlan),
    Sort {
        keys: Vec<(CExpr, bool)>,
        keep: Option<usize>,
    },
    Limit(usize),
    Dedup(Vec<usize>),
}

#[derive(Debug)]
struct StatsPlan {
    keys: Vec<(usize, CExpr)>,
    aggs: Vec<AggSpec>,
    outputs: Vec<(usize, CExpr)>,
}

impl Stage {
    fn is_barrier(&self) -> bool {
        matches!(self, Stage::Stats(_) | Stage::Sort { .. })
    }
}

/// A compiled query.
struct Plan {
    slots: Slots,
    /// Slots filled from the event, with the paths each reads.
    sources: Vec<(usize, Vec<String>)>,
    push: Push,
    stages: Vec<Stage>,
    /// Stages after which only assignments and limits follow; they are re-run once `@message`
    /// is fetched for the final rows.
    tail_from: usize,
    outputs: Vec<(String, usize)>,
    /// Every row needs the journal record (a stage before the tail reads `@message` or an
    /// identifier field).
    early_journal: bool,
    /// The final rows need `@message` or identifier fields.
    late_journal: bool,
    /// Identifier-field slots the late journal read fills, with their paths.
    late_sources: Vec<(usize, Vec<String>)>,
    has_stats: bool,
    /// `stats count() by` columns and `bin()` only, straight after the index filter: counted
    /// per segment by column value without building rows.
    fast_stats: Option<Vec<FastKey>>,
}

/// A key of the counting fast path.
#[derive(Debug, Clone, Copy)]
enum FastKey {
    /// `bin(period)` of `@timestamp`.
    Bin(i64),
    /// A field read from columns, by slot.
    Field(usize),
}

/// Most keys the counting fast path handles.
const FAST_KEYS: usize = 4;

fn contains_ci(needle: &str) -> Matcher {
    Matcher::Regex(Arc::new(
        regex::RegexBuilder::new(&regex::escape(needle))
            .case_insensitive(true)
            .build()
            .expect("an escaped literal is a valid regex"),
    ))
}

fn words(text: &str) -> Vec<String> {
    let mut analyzer = text_analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

fn search_push(term: &SearchTerm) -> (Option<Push>, Option<CExpr>) {
    let tokens = words(&term.text);
    let exact_word = !term.phrase && tokens.len() == 1 && tokens[0].len() == term.text.len();
    let all_words = Push::And(tokens.into_iter().map(Push::Word).collect());
    let check = || {
        CExpr::Like(
            Box::new(CExpr::Slot(MESSAGE)),
            contains_ci(&term.text),
            term.negated,
        )
    };
    match (term.negated, exact_word) {
        (false, true) => (Some(all_words), None),
        (true, true) => (Some(Push::Not(Box::new(all_words))), None),
        // The words narrow the candidates; the message itself confirms the phrase.
        (false, false) => (Some(all_words), Some(check())),
        (true, false) => (None, Some(check())),
    }
}

fn split_and(expr: &Expr, out: &mut Vec<Expr>) {
    match &expr.kind {
        ExprKind::Binary(crate::ast::BinaryOp::And, left, right) => {
            split_and(left, out);
            split_and(right, out);
        }
        _ => out.push(expr.clone()),
    }
}

fn join_and(mut parts: Vec<Expr>) -> Option<Expr> {
    let first = parts.pop()?;
    Some(parts.into_iter().rev().fold(first, |acc, part| {
        let span = part.span.start..acc.span.end;
        Expr {
            kind: ExprKind::Binary(crate::ast::BinaryOp::And, Box::new(part), Box::new(acc)),
            span,
        }
    }))
}

fn plan(query: &Query, text: &str, start: i64, end: i64) -> Result<Plan, QueryError> {
    let mut slots = Slots::default();
    for name in ["@timestamp", "@message", "@log", "@logStream"] {
        slots.slot(name);
    }
    let now_secs = Timestamp::now().unix_seconds();

    // Pushdown: search terms, the time range, and filters on event fields before anything
    // reshapes the rows.
    let mut push = vec![Push::Time(Bound::Included(start), Bound::Excluded(end))];
    let mut residual_search = Vec::new();
    for term in &query.search {
        let (pushed, check) = search_push(term);
        push.extend(pushed);
        residual_search.extend(check);
    }
    let mut commands = query.commands.clone();
    let mut written: HashSet<String> = HashSet::new();
    for command in commands.iter_mut() {
        match command {
            Command::Filter(expr) => {
                let derived = |name: &str| written.contains(name);
                let mut conjuncts = Vec::new();
                split_and(expr, &mut conjuncts);
                let mut kept = Vec::new();
                for conjunct in conjuncts {
                    match translate(&conjunct, &derived) {
                        Some(pushed) => {
                            push.push(pushed.push);
                            if !pushed.exact {
                                kept.push(conjunct);
                            }
                        }
                        None => kept.push(conjunct),
                    }
                }
                *expr = join_and(kept).unwrap_or(Expr {
                    kind: ExprKind::Number(1.0),
                    span: expr.span.clone(),
                });
            }
            Command::Fields(_) | Command::Display(_) | Command::Parse { .. } => {
                written.extend(command.writes());
            }
            _ => break,
        }
    }

    // Which names come from the event: read before anything writes them (and before stats).
    let mut sources: Vec<String> = Vec::new();
    let mut written: HashSet<String> = HashSet::new();
    let mut after_stats = false;
    let note = |name: &str, written: &HashSet<String>, sources: &mut Vec<String>| {
        if !written.contains(name) && !sources.iter().any(|known| known == name) {
            sources.push(name.to_string());
        }
    };
    for command in &commands {
        if !after_stats {
            command.reads(&mut |name| note(name, &written, &mut sources));
        }
        if matches!(command, Command::Stats { .. }) {
            after_stats = true;
        }
        written.extend(command.writes());
    }
    if !residual_search.is_empty() {
        note("@message", &written, &mut sources);
    }

    let mut stages = Vec::new();
    if !residual_search.is_empty() {
        for check in residual_search {
            stages.push(Stage::Filter(check));
        }
    }
    let mut outputs_fields: Vec<(String, usize)> = Vec::new();
    let mut display: Option<Vec<(String, usize)>> = None;
    let mut has_stats = false;
    let mut has_sort = false;
    let mut stats_outputs: Vec<(String, usize)> = Vec::new();
    for command in &commands {
        let mut compiler = Compiler {
            slots: &mut slots,
            text,
            aggs: None,
            now_secs,
        };
        match command {
            Command::Filter(expr) => {
                if !matches!(expr.kind, ExprKind::Number(n) if n == 1.0) {
                    stages.push(Stage::Filter(compiler.compile(expr)?));
                }
            }
            Command::Fields(items) | Command::Display(items) => {
                let mut assigns = Vec::new();
                let mut names = Vec::new();
                for item in items {
                    let compiled = compiler.compile(&item.expr)?;
                    let slot = compiler.slots.slot(&item.name);
                    if !matches!(compiled, CExpr::Slot(source) if source == slot) {
                        assigns.push((slot, compiled));
                    }
                    names.push((item.name.clone(), slot));
                }
                if !assigns.is_empty() {
                    stages.push(Stage::Assign(assigns));
                }
                if matches!(command, Command::Display(_)) {
                    display = Some(names);
                } else {
                    for name in names {
                        if !outputs_fields.iter().any(|(known, _)| *known == name.0) {
                            outputs_fields.push(name);
                        }
                    }
                }
            }
            Command::Parse { source, pattern } => {
                let source = compiler.compile(source)?;
                let outputs = pattern
                    .outputs
                    .iter()
                    .map(|name| compiler.slots.slot(name))
                    .collect();
                stages.push(Stage::Parse {
                    source,
                    regex: pattern.regex.clone(),
                    outputs,
                });
            }
            Command::Stats { aggs, by } => {
                if has_stats && stats_outputs.is_empty() {
                    return Err(QueryError::Invalid("at most two stats commands".into()));
                }
                let mut keys = Vec::new();
                for key in by {
                    let compiled = compiler.compile(&key.expr)?;
                    keys.push((compiler.slots.slot(&key.name), compiled));
                }
                let mut specs = Vec::new();
                let mut outputs = Vec::new();
                for item in aggs {
                    let mut agg_compiler = Compiler {
                        slots: compiler.slots,
                        text,
                        aggs: Some(&mut specs),
                        now_secs,
                    };
                    let compiled = agg_compiler.compile(&item.expr)?;
                    outputs.push((compiler.slots.slot(&item.name), compiled));
                }
                stats_outputs = by
                    .iter()
                    .map(|key| (key.name.clone(), compiler.slots.get(&key.name).unwrap_or(0)))
                    .chain(aggs.iter().map(|item| {
                        (
                            item.name.clone(),
                            compiler.slots.get(&item.name).unwrap_or(0),
                        )
                    }))
                    .collect();
                outputs_fields.clear();
                display = None;
                has_stats = true;
                stages.push(Stage::Stats(StatsPlan {
                    keys,
                    aggs: specs,
                    outputs,
                }));
            }
            Command::Sort(keys) => {
                has_sort = true;
                let keys = keys
                    .iter()
                    .map(|key| Ok((compiler.compile(&key.expr)?, key.descending)))
                    .collect::<Result<Vec<_>, QueryError>>()?;
                stages.push(Stage::Sort { keys, keep: None });
            }
            Command::Limit(limit) => stages.push(Stage::Limit(*limit)),
            Command::Dedup(names) => {
                if !has_sort && !has_stats {
                    stages.push(Stage::Sort {
                        keys: vec![(CExpr::Slot(TIMESTAMP), true)],
                        keep: None,
                    });
                    has_sort = true;
                }
                stages.push(Stage::Dedup(
                    names.iter().map(|name| compiler.slots.slot(name)).collect(),
                ));
            }
        }
    }
    // Without an explicit order, events come newest first.
    if !has_sort && !has_stats {
        let insert_at = stages
            .iter()
            .position(|stage| matches!(stage, Stage::Limit(_)))
            .unwrap_or(stages.len());
        stages.insert(
            insert_at,
            Stage::Sort {
                keys: vec![(CExpr::Slot(TIMESTAMP), true)],
                keep: None,
            },
        );
    }
    if !stages.iter().any(|stage| matches!(stage, Stage::Limit(_))) {
        stages.push(Stage::Limit(DEFAULT_LIMIT));
    }
    // A sort followed only by assignments and a limit keeps just the top rows.
    for index in 0..stages.len() {
        if !matches!(stages[index], Stage::Sort { .. }) {
            continue;
        }
        let mut keep = None;
        for later in &stages[index + 1..] {
            match later {
                Stage::Assign(_) => continue,
                Stage::Limit(limit) => {
                    keep = Some(*limit);
                    break;
                }
                _ => break,
            }
        }
        if let Stage::Sort { keep: slot, .. } = &mut stages[index] {
            *slot = keep;
        }
    }

    let outputs = if let Some(display) = display {
        display
    } else if !outputs_fields.is_empty() {
        outputs_fields
    } else if has_stats {
        stats_outputs
    } else {
        vec![
            ("@timestamp".to_string(), TIMESTAMP),
            ("@message".to_string(), MESSAGE),
        ]
    };

    let tail_from = stages
        .iter()
        .rposition(|stage| !matches!(stage, Stage::Assign(_) | Stage::Limit(_)))
        .map_or(0, |index| index + 1);
    // Identifier fields have no columns: like `@message`, they are read from the journal.
    let journal_slots: Vec<usize> = sources
        .iter()
        .filter(|name| reads_identifier(name))
        .filter_map(|name| slots.get(name))
        .collect();
    let written_slots: HashSet<usize> = stages.iter().flat_map(stage_writes).collect();
    let reads_journal = |stage: &Stage| {
        stage_reads(stage, MESSAGE) || journal_slots.iter().any(|slot| stage_reads(stage, *slot))
    };
    let shows_journal = outputs
        .iter()
        .any(|(_, slot)| *slot == MESSAGE || journal_slots.contains(slot))
        || stages[tail_from..].iter().any(reads_journal);
    let early_journal = stages[..tail_from].iter().any(reads_journal)
        || (shows_journal
            && journal_slots
                .iter()
                .any(|slot| written_slots.contains(slot)));
    let fast_stats = match stages.first() {
        Some(Stage::Stats(stats))
            if !early_journal
                && stats.keys.len() <= FAST_KEYS
                && stats
                    .aggs
                    .iter()
                    .all(|agg| agg.func == crate::eval::AggFunc::Count && agg.arg.is_none()) =>
        {
            stats
                .keys
                .iter()
                .map(|(_, expr)| match expr {
                    CExpr::Slot(slot)
                        if sources.iter().any(|name| {
                            slots.get(name) == Some(*slot) && !is_system_field(name)
                        }) =>
                    {
                        Some(FastKey::Field(*slot))
                    }
                    CExpr::Call(crate::eval::Func::DateFloor, args) => match args.as_slice() {
                        [CExpr::Slot(TIMESTAMP), CExpr::Const(Value::Int(period))]
                            if *period > 0 =>
                        {
                            Some(FastKey::Bin(*period))
                        }
                        _ => None,
                    },
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
        }
        _ => None,
    };
    // Rows made by `stats` are not events: they have no message to fetch.
    let late_journal = !early_journal && !has_stats && shows_journal;
    if (early_journal || late_journal) && !sources.iter().any(|name| name == "@message") {
        sources.push("@message".into());
    }
    let late_sources = if late_journal {
        sources
            .iter()
            .filter(|name| reads_identifier(name))
            .filter_map(|name| Some((slots.get(name)?, field_paths(name))))
            .collect()
    } else {
        Vec::new()
    };
    let sources = sources
        .into_iter()
        .filter_map(|name| {
            let slot = slots.get(&name)?;
            Some((
                slot,
                if is_system_field(&name) {
                    Vec::new()
                } else {
                    field_paths(&name)
                },
            ))
        })
        .collect();
    Ok(Plan {
        slots,
        sources,
        push: Push::And(push),
        stages,
        tail_from,
        outputs,
        early_journal,
        late_journal,
        late_sources,
        has_stats,
        fast_stats,
    })
}

/// The slots a stage assigns.
fn stage_writes(stage: &Stage) -> Vec<usize> {
    match stage {
        Stage::Assign(assigns) => assigns.iter().map(|(slot, _)| *slot).collect(),
        Stage::Parse { outputs, .. } => outputs.clone(),
        Stage::Stats(stats) => stats
            .keys
            .iter()
            .chain(stats.outputs.iter())
            .map(|(slot, _)| *slot)
            .collect(),
        Stage::Filter(_) | Stage::Sort { .. } | Stage::Limit(_) | Stage::Dedup(_) => Vec::new(),
    }
}

fn cexpr_reads(expr: &CExpr, slot: usize) -> bool {
    match expr {
        CExpr::Slot(read) => *read == slot,
        CExpr::Const(_) | CExpr::Agg(_) => false,
        CExpr::Not(inner) | CExpr::Neg(inner) => cexpr_reads(inner, slot),
        CExpr::And(a, b) | CExpr::Or(a, b) | CExpr::Binary(_, a, b) => {
            cexpr_reads(a, slot) || cexpr_reads(b, slot)
        }
        CExpr::Like(inner, ..) => cexpr_reads(inner, slot),
        CExpr::In(inner, items, _) => {
            cexpr_reads(inner, slot) || items.iter().any(|item| cexpr_reads(item, slot))
        }
        CExpr::Call(_, args) => args.iter().any(|arg| cexpr_reads(arg, slot)),
    }
}

fn stage_reads(stage: &Stage, slot: usize) -> bool {
    match stage {
        Stage::Filter(expr) => cexpr_reads(expr, slot),
        Stage::Assign(assigns) => assigns.iter().any(|(_, expr)| cexpr_reads(expr, slot)),
        Stage::Parse { source, .. } => cexpr_reads(source, slot),
        Stage::Stats(stats) => {
            stats.keys.iter().any(|(_, expr)| cexpr_reads(expr, slot))
                || stats
                    .aggs
                    .iter()
                    .any(|agg| agg.arg.as_ref().is_some_and(|arg| cexpr_reads(arg, slot)))
        }
        Stage::Sort { keys, .. } => keys.iter().any(|(expr, _)| cexpr_reads(expr, slot)),
        Stage::Limit(_) => false,
        Stage::Dedup(slots) => slots.contains(&slot),
    }
}

/// Runs queries against an index and its journal.
#[derive(Debug, Clone)]
pub struct Engine {
    catalog: Arc<Catalog>,
    reader: JournalReader,
}

/// Per-segment column readers for the source slots.
struct Columns {
    seq: tantivy::columnar::Column<u64>,
    time: tantivy::columnar::Column<i64>,
    stream: Option<StrColumn>,
    fields: Vec<(usize, Vec<DynamicColumn>)>,
    memo: Vec<HashMap<(usize, u64), Value>>,
    /// Per field, per column: decoded values by term ordinal (small dictionaries).
    dense: Vec<Vec<Option<Vec<Option<Value>>>>>,
    need_stream: bool,
}

impl Columns {
    fn open(segment: &SegmentReader, sources: &[(usize, Vec<String>)]) -> tantivy::Result<Columns> {
        let fast = segment.fast_fields();
        let mut fields = Vec::new();
        let mut need_stream = false;
        for (slot, paths) in sources {
            if *slot == STREAM {
                need_stream = true;
            }
            if paths.is_empty() {
                continue;
            }
            let mut columns = Vec::new();
            for path in paths {
                for handle in fast.dynamic_column_handles(&format!("{}.{path}", names::FIELDS))? {
                    columns.push(handle.open()?);
                }
            }
            fields.push((*slot, columns));
        }
        let memo = fields.iter().map(|_| HashMap::new()).collect();
        let dense = fields
            .iter()
            .map(|(_, columns)| {
                columns
                    .iter()
                    .map(|column| match column {
                        DynamicColumn::Str(column) if column.num_terms() <= DENSE_MEMO_TERMS => {
                            Some(vec![None; column.num_terms()])
                        }
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        Ok(Columns {
            seq: fast.u64(names::SEQ)?,
            time: fast.i64(names::TIME)?,
            stream: if need_stream {
                fast.str(names::STREAM)?
            } else {
                None
            },
            fields,
            memo,
            dense,
            need_stream,
        })
    }

    fn fill(&mut self, doc: DocId, values: &mut [Value]) {
        if let Some(time) = self.time.first(doc) {
            values[TIMESTAMP] = Value::Time(time);
        }
        if self.need_stream
            && let Some(stream) = &self.stream
            && let Some(ord) = stream.term_ords(doc).next()
        {
            values[STREAM] = term_text(stream, ord);
        }
        for (index, (slot, columns)) in self.fields.iter().enumerate() {
            let mut found = Value::Null;
            for (column_index, column) in columns.iter().enumerate() {
                found = match column {
                    DynamicColumn::Str(column) => match column.term_ords(doc).next() {
                        Some(ord) => {
                            if let Some(Some(dense)) = self.dense[index].get_mut(column_index)
                                && let Some(slot) = dense.get_mut(ord as usize)
                            {
                                slot.get_or_insert_with(|| term_text(column, ord)).clone()
                            } else {
                                let memo = &mut self.memo[index];
                                memo.entry((column_index, ord))
                                    .or_insert_with(|| term_text(column, ord))
                                    .clone()
                            }
                        }
                        None => Value::Null,
                    },
                    DynamicColumn::I64(column) => column.first(doc).map_or(Value::Null, Value::Int),
                    DynamicColumn::U64(column) => column.first(doc).map_or(Value::Null, |v| {
                        i64::try_from(v).map_or(Value::Float(v as f64), Value::Int)
                    }),
                    DynamicColumn::F64(column) => {
                        column.first(doc).map_or(Value::Null, Value::Float)
                    }
                    DynamicColumn::Bool(column) => {
                        column.first(doc).map_or(Value::Null, Value::Bool)
                    }
                    DynamicColumn::DateTime(column) => column
                        .first(doc)
                        .map_or(Value::Null, |date| Value::Time(date.into_timestamp_nanos())),
                    DynamicColumn::IpAddr(_) | DynamicColumn::Bytes(_) => Value::Null,
                };
                if !found.is_null() {
                    break;
                }
            }
            values[*slot] = found;
        }
    }
}

/// The string a string column's term ordinal stands for (absent if the ordinal is unknown).
fn term_text(column: &StrColumn, ord: u64) -> Value {
    let mut text = String::new();
    match column.ord_to_str(ord, &mut text) {
        Ok(true) => Value::Str(Arc::from(text)),
        _ => Value::Null,
    }
}

/// Fills source slots from a journal record.
fn fill_from_record(event: &StoredEvent, sources: &[(usize, Vec<String>)], values: &mut [Value]) {
    values[TIMESTAMP] = Value::Time(event.record.time.unix_nanos());
    values[STREAM] = Value::str(&event.record.source);
    values[MESSAGE] = Value::str(&String::from_utf8_lossy(&event.record.raw));
    fill_fields(event, sources, values);
}

/// Fills the event-field slots among `sources` from a journal record.
fn fill_fields(event: &StoredEvent, sources: &[(usize, Vec<String>)], values: &mut [Value]) {
    let wanted: HashMap<&str, (usize, usize)> = sources
        .iter()
        .flat_map(|(slot, paths)| {
            paths
                .iter()
                .enumerate()
                .map(move |(rank, path)| (path.as_str(), (*slot, rank)))
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let mut best: HashMap<usize, usize> = HashMap::new();
    let mut visit = |json: &serde_json::Value, prefix: &str| {
        seclog_index::fields::flatten(json, &mut |path, scalar| {
            let full;
            let path = if prefix.is_empty() {
                path
            } else {
                full = format!("{prefix}{path}");
                &full
            };
            if let Some((slot, rank)) = wanted.get(path) {
                if best.get(slot).is_some_and(|known| *known <= *rank) {
                    return;
                }
                best.insert(*slot, *rank);
                values[*slot] = match scalar {
                    seclog_index::fields::Scalar::Str(text) => Value::str(text),
                    seclog_index::fields::Scalar::Int(int) => Value::Int(int),
                    seclog_index::fields::Scalar::UInt(uint) => {
                        i64::try_from(uint).map_or(Value::Float(uint as f64), Value::Int)
                    }
                    seclog_index::fields::Scalar::Float(float) => {
                        if float.fract() == 0.0 && float.abs() < 9e15 {
                            Value::Int(float as i64)
                        } else {
                            Value::Float(float)
                        }
                    }
                    seclog_index::fields::Scalar::Bool(flag) => Value::Bool(flag),
                };
            }
        });
    };
    let mut raw_is_json = false;
    let mut raw_json = None;
    if event.record.kind == RecordKind::Json
        && let Ok(json) = serde_json::from_slice::<serde_json::Value>(&event.record.raw)
    {
        raw_is_json = true;
        visit(&json, "");
        raw_json = Some(json);
    }
    if let Ok(serde_json::Value::Object(mut attrs)) =
        serde_json::from_slice::<serde_json::Value>(&event.record.attrs)
    {
        let ocsf = attrs.remove(seclog_index::schema::OCSF_ATTR);
        let taken = |key: &str| {
            let used = |value: Option<&serde_json::Value>| {
                value.is_some_and(|value| match value {
                    serde_json::Value::Null => false,
                    serde_json::Value::Object(map) => !map.is_empty(),
                    serde_json::Value::Array(items) => !items.is_empty(),
                    _ => true,
                })
            };
            if raw_is_json {
                used(raw_json.as_ref().and_then(|json| json.get(key)))
            } else {
                used(attrs.get(key))
            }
        };
        if let Some(serde_json::Value::Object(ocsf)) = ocsf {
            for (key, value) in ocsf {
                let prefix = seclog_index::schema::ocsf_prefix(&key, taken);
                let single = serde_json::Value::Object([(key, value)].into_iter().collect());
                visit(&single, prefix);
            }
        }
        visit(
            &serde_json::Value::Object(attrs),
            seclog_index::schema::attrs_prefix(raw_is_json),
        );
    }
}

struct Run<'a> {
    plan: &'a Plan,
    /// Rows that passed every filter before the first stage that reshapes rows.
    matched: u64,
    match_boundary: usize,
    states: Vec<StageState>,
    limits: Limits,
    partial: Option<String>,
    output: Vec<Row>,
    /// Reused group key of `stats`.
    scratch: Vec<GroupKey>,
    /// Values kept by `count_distinct` and `pct` accumulators.
    kept_values: usize,
}

enum StageState {
    None,
    Stats(HashMap<Vec<GroupKey>, Vec<crate::eval::Acc>>),
    Sort(Vec<Row>),
    Limit(usize),
    Dedup(HashSet<Vec<GroupKey>>),
}

impl<'a> Run<'a> {
    fn new(plan: &'a Plan, limits: Limits) -> Self {
        let states = plan
            .stages
            .iter()
            .map(|stage| match stage {
                Stage::Stats(_) => StageState::Stats(HashMap::new()),
                Stage::Sort { .. } => StageState::Sort(Vec::new()),
                Stage::Limit(_) => StageState::Limit(0),
                Stage::Dedup(_) => StageState::Dedup(HashSet::new()),
                _ => StageState::None,
            })
            .collect();
        let match_boundary = plan
            .stages
            .iter()
            .position(|stage| {
                !matches!(
                    stage,
                    Stage::Filter(_) | Stage::Assign(_) | Stage::Parse { .. }
                )
            })
            .unwrap_or(plan.stages.len());
        Run {
            plan,
            matched: 0,
            match_boundary,
            states,
            limits,
            partial: None,
            output: Vec::new(),
            scratch: Vec::new(),
            kept_values: 0,
        }
    }

    /// Pushes a row through stages from `from`; returns false once no more rows can change
    /// the answer.
    fn push(&mut self, from: usize, row: &mut Row) -> bool {
        let mut index = from;
        if from == 0 && self.match_boundary == 0 {
            self.matched += 1;
        }
        while let Some(stage) = self.plan.stages.get(index) {
            if from == 0 && index == self.match_boundary && index > 0 {
                self.matched += 1;
            }
            match stage {
                Stage::Filter(expr) => {
                    if !eval(expr, &row.values, &[]).truthy() {
                        return true;
                    }
                }
                Stage::Assign(assigns) => assign(assigns, &mut row.values),
                Stage::Parse {
                    source,
                    regex,
                    outputs,
                } => {
                    let value = eval(source, &row.values, &[]);
                    if let Some(text) = value.to_text()
                        && let Some(captures) = regex.captures(&text)
                    {
                        let found: Vec<(usize, Value)> = outputs
                            .iter()
                            .enumerate()
                            .map(|(group, slot)| {
                                (
                                    *slot,
                                    captures
                                        .get(group + 1)
                                        .map_or(Value::Null, |m| Value::str(m.as_str())),
                                )
                            })
                            .collect();
                        for (slot, value) in found {
                            row.values[slot] = value;
                        }
                    }
                }
                Stage::Stats(stats) => {
                    let StageState::Stats(groups) = &mut self.states[index] else {
                        return true;
                    };
                    self.scratch.clear();
                    self.scratch.extend(
                        stats
                            .keys
                            .iter()
                            .map(|(_, expr)| eval(expr, &row.values, &[]).group_key()),
                    );
                    let time = row.values[TIMESTAMP].as_time().unwrap_or(0);
                    let accs = match groups.get_mut(self.scratch.as_slice()) {
                        Some(accs) => accs,
                        None => {
                            if groups.len() >= self.limits.max_working_rows {
                                self.partial.get_or_insert_with(|| {
                                    "too many stats groups; some were left out".into()
                                });
                                return true;
                            }
                            groups
                                .entry(self.scratch.clone())
                                .or_insert_with(|| stats.aggs.iter().map(AggSpec::start).collect())
                        }
                    };
                    let mut kept = 0;
                    for (spec, acc) in stats.aggs.iter().zip(accs.iter_mut()) {
                        kept += spec.add(acc, &row.values, time);
                    }
                    self.kept_values += kept;
                    if self.kept_values > self.limits.max_working_rows.saturating_mul(4) {
                        self.partial.get_or_insert_with(|| {
                            "count_distinct/pct kept too many values; the answer covers the events read so far".into()
                        });
                        return false;
                    }
                    return true;
                }
                Stage::Sort { keys, keep } => {
                    let StageState::Sort(rows) = &mut self.states[index] else {
                        return true;
                    };
                    rows.push(row.clone());
                    let cap = keep.unwrap_or(self.limits.max_working_rows);
                    if rows.len() >= cap.saturating_mul(2).max(1024) {
                        sort_rows(rows, keys);
                        rows.truncate(cap);
                        if keep.is_none() {
                            self.partial.get_or_insert_with(|| {
                                "too many rows to sort; the answer holds the first of them".into()
                            });
                        }
                    }
                    return true;
                }
                Stage::Limit(limit) => {
                    let StageState::Limit(seen) = &mut self.states[index] else {
                        return true;
                    };
                    if *seen >= *limit {
                        return false;
                    }
                    *seen += 1;
                }
                Stage::Dedup(slots) => {
                    let StageState::Dedup(seen) = &mut self.states[index] else {
                        return true;
                    };
                    if slots.iter().all(|slot| !row.values[*slot].is_null()) {
                        let key: Vec<GroupKey> = slots
                            .iter()
                            .map(|slot| row.values[*slot].group_key())
                            .collect();
                        if !seen.insert(key) {
                            return true;
                        }
                    }
                }
            }
            index += 1;
        }
        if from == 0 && index == self.match_boundary && index > 0 {
            self.matched += 1;
        }
        self.output.push(row.clone());
        true
    }

    fn timed_out(&mut self) {
        self.partial.get_or_insert_with(|| {
            "the query timed out; the answer covers part of the range".into()
        });
    }

    /// Adds `count` rows with group key `key` to the first stage (a counting `stats`).
    fn add_counts(&mut self, key: Vec<GroupKey>, count: u64) {
        let (Some(Stage::Stats(stats)), Some(StageState::Stats(groups))) =
            (self.plan.stages.first(), self.states.first_mut())
        else {
            return;
        };
        if !groups.contains_key(&key) && groups.len() >= self.limits.max_working_rows {
            self.partial
                .get_or_insert_with(|| "too many stats groups; some were left out".into());
            return;
        }
        let accs = groups
            .entry(key)
            .or_insert_with(|| stats.aggs.iter().map(AggSpec::start).collect());
        for acc in accs.iter_mut() {
            if let crate::eval::Acc::Count(total) = acc {
                *total += count;
            }
        }
        self.matched += count;
    }

    fn push_owned(&mut self, from: usize, mut row: Row) -> bool {
        self.push(from, &mut row)
    }

    /// Flushes barriers in order.
    fn finish(&mut self) {
        for index in 0..self.plan.stages.len() {
            let stage = &self.plan.stages[index];
            if !stage.is_barrier() {
                continue;
            }
            let state = std::mem::replace(&mut self.states[index], StageState::None);
            let rows: Vec<Row> = match (stage, state) {
                (Stage::Stats(stats), StageState::Stats(groups)) => {
                    let width = self.plan.slots.len();
                    let mut rows: Vec<Row> = groups
                        .into_iter()
                        .map(|(key, accs)| {
                            let mut values = vec![Value::Null; width];
                            for ((slot, _), value) in stats.keys.iter().zip(&key) {
                                values[*slot] = value.to_value();
                            }
                            let results: Vec<Value> = stats
                                .aggs
                                .iter()
                                .zip(accs)
                                .map(|(spec, acc)| spec.finish(acc))
                                .collect();
                            for (slot, expr) in &stats.outputs {
                                values[*slot] = eval(expr, &values, &results);
                            }
                            Row {
                                values,
                                group: 0,
                                seq: 0,
                            }
                        })
                        .collect();
                    // Groups in key order, for a stable answer.
                    let key_slots: Vec<usize> = stats.keys.iter().map(|(slot, _)| *slot).collect();
                    rows.sort_by(|a, b| {
                        key_slots
                            .iter()
                            .map(|slot| a.values[*slot].sort_cmp(&b.values[*slot]))
                            .find(|order| order.is_ne())
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                    rows
                }
                (Stage::Sort { keys, keep }, StageState::Sort(mut rows)) => {
                    sort_rows(&mut rows, keys);
                    if let Some(keep) = keep {
                        rows.truncate(*keep);
                    }
                    rows
                }
                _ => Vec::new(),
            };
            for mut row in rows {
                if !self.push(index + 1, &mut row) {
                    break;
                }
            }
        }
    }
}

/// `fields … as name`: every expression sees the row as it was before the command.
fn assign(assigns: &[(usize, CExpr)], values: &mut [Value]) {
    let computed: smallvec::SmallVec<[(usize, Value); 4]> = assigns
        .iter()
        .map(|(slot, expr)| (*slot, eval(expr, values, &[])))
        .collect();
    for (slot, value) in computed {
        values[slot] = value;
    }
}

fn sort_rows(rows: &mut [Row], keys: &[(CExpr, bool)]) {
    let mut keyed: Vec<(Vec<Value>, usize)> = rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            (
                keys.iter()
                    .map(|(expr, _)| eval(expr, &row.values, &[]))
                    .collect(),
                index,
            )
        })
        .collect();
    keyed.sort_by(|(a, ai), (b, bi)| {
        for ((left, right), (_, descending)) in a.iter().zip(b).zip(keys) {
            let order = left.sort_cmp(right);
            let order = if *descending { order.reverse() } else { order };
            if order.is_ne() {
                return order;
            }
        }
        ai.cmp(bi)
    });
    let order: Vec<usize> = keyed.into_iter().map(|(_, index)| index).collect();
    let mut taken: Vec<Option<Row>> = rows
        .iter_mut()
        .map(|row| {
            Some(std::mem::replace(
                row,
                Row {
                    values: Vec::new(),
                    group: 0,
                    seq: 0,
                },
            ))
        })
        .collect();
    for (position, index) in order.into_iter().enumerate() {
        if let Some(row) = taken[index].take() {
            rows[position] = row;
        }
    }
}

/// The counting fast path: `stats count() by` column fields and `bin()`, per segment by
/// column value (term ordinals, not strings), decoded once per distinct key.
fn count_by_columns(
    weight: &dyn tantivy::query::Weight,
    part: &Part<'_>,
    columns: &Columns,
    keys: &[FastKey],
    out: &mut Counts,
) -> Result<(), QueryError> {
    const MISSING: u64 = u64::MAX;
    if let [FastKey::Bin(period)] = keys
        && count_by_bin(weight, part, &columns.time, *period, out)?
    {
        return Ok(());
    }
    let fields: Vec<Option<usize>> = keys
        .iter()
        .map(|key| match key {
            FastKey::Field(slot) => columns.fields.iter().position(|(known, _)| known == slot),
            FastKey::Bin(_) => None,
        })
        .collect();
    let mut counts: rustc_hash::FxHashMap<[u64; 2 * FAST_KEYS], u64> =
        rustc_hash::FxHashMap::default();
    // One key over string columns (the common `stats count() by name`): counted per term
    // ordinal in arrays instead of a map.
    let single_field = match keys {
        [FastKey::Field(_)] => fields[0],
        _ => None,
    };
    let mut dense: Vec<Option<Vec<u64>>> = single_field
        .map(|field| {
            columns.fields[field]
                .1
                .iter()
                .map(|column| match column {
                    DynamicColumn::Str(column) if column.num_terms() <= DENSE_COUNT_TERMS => {
                        Some(vec![0; column.num_terms()])
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    // One string column: ordinals read a batch at a time.
    let only_column = match single_field.map(|field| columns.fields[field].1.as_slice()) {
        Some([DynamicColumn::Str(column)]) if dense.first().is_some_and(Option::is_some) => {
            Some(column)
        }
        _ => None,
    };
    let mut ords_buffer = Vec::new();
    part.for_each(weight, &mut |docs| {
        if let (Some(column), Some(Some(ords))) = (only_column, dense.first_mut()) {
            ords_buffer.clear();
            ords_buffer.resize(docs.len(), None);
            column.ords().first_vals(docs, &mut ords_buffer);
            for ord in &ords_buffer {
                match ord.and_then(|ord| ords.get_mut(ord as usize)) {
                    Some(count) => *count += 1,
                    None => *counts.entry([MISSING; 2 * FAST_KEYS]).or_insert(0) += 1,
                }
            }
            return;
        }
        'docs: for &doc in docs {
            if let Some(field) = single_field {
                for (column_index, column) in columns.fields[field].1.iter().enumerate() {
                    if let (DynamicColumn::Str(column), Some(Some(ords))) =
                        (column, dense.get_mut(column_index))
                    {
                        if let Some(ord) = column.term_ords(doc).next() {
                            if let Some(count) = ords.get_mut(ord as usize) {
                                *count += 1;
                                continue 'docs;
                            }
                        } else {
                            continue;
                        }
                    }
                    break;
                }
            }
            let mut key = [MISSING; 2 * FAST_KEYS];
            for (index, fast) in keys.iter().enumerate() {
                match fast {
                    FastKey::Bin(period) => {
                        if let Some(time) = columns.time.first(doc) {
                            key[2 * index] = 0;
                            key[2 * index + 1] = time.div_euclid(*period) as u64;
                        }
                    }
                    FastKey::Field(_) => {
                        let Some(field) = fields[index] else { continue };
                        for (column_index, column) in columns.fields[field].1.iter().enumerate() {
                            let value = match column {
                                DynamicColumn::Str(column) => column.term_ords(doc).next(),
                                DynamicColumn::I64(column) => column.first(doc).map(|v| v as u64),
                                DynamicColumn::U64(column) => column.first(doc),
                                DynamicColumn::F64(column) => column.first(doc).map(f64::to_bits),
                                DynamicColumn::Bool(column) => column.first(doc).map(u64::from),
                                DynamicColumn::DateTime(column) => column
                                    .first(doc)
                                    .map(|date| date.into_timestamp_nanos() as u64),
                                DynamicColumn::IpAddr(_) | DynamicColumn::Bytes(_) => None,
                            };
                            if let Some(value) = value {
                                key[2 * index] = column_index as u64;
                                key[2 * index + 1] = value;
                                break;
                            }
                        }
                    }
                }
            }
            *counts.entry(key).or_insert(0) += 1;
        }
    })?;
    for (column_index, ords) in dense.iter().enumerate() {
        for (ord, count) in ords.iter().flatten().enumerate() {
            if *count > 0 {
                let mut key = [MISSING; 2 * FAST_KEYS];
                key[0] = column_index as u64;
                key[1] = ord as u64;
                *counts.entry(key).or_insert(0) += count;
            }
        }
    }
    for (key, count) in counts {
        let mut group = Vec::with_capacity(keys.len());
        for (index, fast) in keys.iter().enumerate() {
            let (column_index, value) = (key[2 * index], key[2 * index + 1]);
            if column_index == MISSING {
                group.push(GroupKey::Null);
                continue;
            }
            group.push(match fast {
                FastKey::Bin(period) => GroupKey::Time((value as i64).saturating_mul(*period)),
                FastKey::Field(_) => {
                    let column = fields[index]
                        .and_then(|field| columns.fields[field].1.get(column_index as usize));
                    match column {
                        Some(DynamicColumn::Str(column)) => term_text(column, value).group_key(),
                        Some(DynamicColumn::I64(_)) => GroupKey::Int(value as i64),
                        Some(DynamicColumn::U64(_)) => i64::try_from(value)
                            .map_or(Value::Float(value as f64), Value::Int)
                            .group_key(),
                        Some(DynamicColumn::F64(_)) => {
                            Value::Float(f64::from_bits(value)).group_key()
                        }
                        Some(DynamicColumn::Bool(_)) => GroupKey::Bool(value != 0),
                        Some(DynamicColumn::DateTime(_)) => GroupKey::Time(value as i64),
                        _ => GroupKey::Null,
                    }
                }
            });
        }
        out.push((group, count));
    }
    Ok(())
}

/// Fewest documents in a part of a segment counted on its own.
const MIN_PART_DOCS: u32 = 1 << 16;

/// A range of one segment's documents.
struct Part<'a> {
    /// The segment's place among the piece's segments.
    ord: usize,
    segment: &'a SegmentReader,
    docs: std::ops::Range<DocId>,
}

impl Part<'_> {
    /// Calls `callback` with the part's documents that match `weight`, in batches.
    fn for_each(
        &self,
        weight: &dyn tantivy::query::Weight,
        callback: &mut dyn FnMut(&[DocId]),
    ) -> tantivy::Result<()> {
        if self.docs.start == 0 && self.docs.end >= self.segment.max_doc() {
            return weight.for_each_no_score(self.segment, callback);
        }
        let mut scorer = weight.scorer(self.segment, 1.0)?;
        if scorer.doc() < self.docs.start {
            scorer.seek(self.docs.start);
        }
        let mut buffer = [0 as DocId; tantivy::COLLECT_BLOCK_BUFFER_LEN];
        loop {
            let filled = scorer.fill_buffer(&mut buffer);
            let docs = &buffer[..filled];
            let inside = docs.partition_point(|doc| *doc < self.docs.end);
            if inside > 0 {
                callback(&docs[..inside]);
            }
            if inside < buffer.len() {
                return Ok(());
            }
        }
    }
}

/// Event counts per group key, as the counting fast path produces them.
type Counts = Vec<(Vec<GroupKey>, u64)>;

/// Counts a piece's segments on the counting fast path, spread over the machine's cores; a
/// part not started before the time-out is left out (the caller reports the answer as
/// partial).
fn count_segments(
    weight: &dyn tantivy::query::Weight,
    segments: &[SegmentReader],
    every: bool,
    plan: &Plan,
    keys: &[FastKey],
    started: Instant,
    request: &QueryRequest,
) -> Result<Counts, QueryError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .max(1);
    // Merges leave one segment holding most of a piece: when every document is counted,
    // segments are cut into parts of about an even share each, so that every core gets the
    // same work.
    let total: u64 = segments
        .iter()
        .map(|segment| u64::from(segment.max_doc()))
        .sum();
    let chunk = if every {
        u32::try_from(total.div_ceil(workers as u64 * 2))
            .unwrap_or(u32::MAX)
            .max(MIN_PART_DOCS)
    } else {
        u32::MAX
    };
    let mut parts: Vec<Part<'_>> = Vec::new();
    for (ord, segment) in segments.iter().enumerate() {
        let mut start = 0;
        while start < segment.max_doc() {
            let end = start.saturating_add(chunk).min(segment.max_doc());
            parts.push(Part {
                ord,
                segment,
                docs: start..end,
            });
            start = end;
        }
    }
    // Larger parts first, dealt round-robin, so that the shares come out even.
    parts.sort_by_key(|part| std::cmp::Reverse(part.docs.len()));
    let workers = workers.min(parts.len()).max(1);
    let parts = &parts;
    let count_share = |share: usize| -> Result<Counts, QueryError> {
        let mut out = Vec::new();
        // Opening a segment's columns reads their headers: once per segment and thread.
        let mut opened: Vec<(usize, Columns)> = Vec::new();
        for part in parts.iter().skip(share).step_by(workers) {
            if started.elapsed() >= request.limits.timeout {
                break;
            }
            let index = match opened.iter().position(|(ord, _)| *ord == part.ord) {
                Some(index) => index,
                None => {
                    opened.push((part.ord, Columns::open(part.segment, &plan.sources)?));
                    opened.len() - 1
                }
            };
            count_by_columns(weight, part, &opened[index].1, keys, &mut out)?;
        }
        Ok(out)
    };
    if workers == 1 {
        return count_share(0);
    }
    let shares: Vec<Result<Counts, QueryError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (1..workers)
                .map(|share| scope.spawn(move || count_share(share)))
                .collect();
            let mut shares = vec![count_share(0)];
            for handle in handles {
                shares.push(handle.join().unwrap_or_else(|_| {
                    Err(QueryError::Invalid("a counting thread failed".into()))
                }));
            }
            shares
        });
    let mut all = Vec::new();
    for share in shares {
        all.extend(share?);
    }
    Ok(all)
}

/// Most terms a string column may have to be counted in an array.
const DENSE_COUNT_TERMS: usize = 1 << 20;
/// Most time buckets one segment's `bin()` counts are kept in an array for.
const DENSE_BINS: i64 = 1 << 20;

/// Counts the matching documents of a segment per `bin(period)` in an array spanning the
/// segment's time range; `false` if that range has too many buckets.
fn count_by_bin(
    weight: &dyn tantivy::query::Weight,
    part: &Part<'_>,
    time: &tantivy::columnar::Column<i64>,
    period: i64,
    out: &mut Counts,
) -> Result<bool, QueryError> {
    let low = time.min_value().div_euclid(period);
    let high = time.max_value().div_euclid(period);
    if high.saturating_sub(low) >= DENSE_BINS {
        return Ok(false);
    }
    let mut counts = vec![0u64; (high - low + 1) as usize];
    let mut missing = 0u64;
    let mut values = Vec::new();
    // Events of a segment come mostly in time order: the bucket of the previous one is
    // tried before dividing.
    let (mut from, mut until, mut current) = (i64::MAX, i64::MIN, 0usize);
    part.for_each(weight, &mut |docs| {
        values.clear();
        values.resize(docs.len(), None);
        time.first_vals(docs, &mut values);
        for value in &values {
            let Some(at) = *value else {
                missing += 1;
                continue;
            };
            if !(from <= at && at < until) {
                let bucket = at.div_euclid(period);
                from = bucket.saturating_mul(period);
                until = from.saturating_add(period);
                current = (bucket - low) as usize;
            }
            if let Some(count) = counts.get_mut(current) {
                *count += 1;
            }
        }
    })?;
    for (index, count) in counts.into_iter().enumerate() {
        if count > 0 {
            let bucket = (low + index as i64).saturating_mul(period);
            out.push((vec![GroupKey::Time(bucket)], count));
        }
    }
    if missing > 0 {
        out.push((vec![GroupKey::Null], missing));
    }
    Ok(true)
}

/// The request's time range in Unix nanoseconds, checked.
fn time_bounds(request: &QueryRequest) -> Result<(i64, i64), QueryError> {
    let (start, end) = (request.start.unix_nanos(), request.end.unix_nanos());
    if end <= start {
        return Err(QueryError::Invalid(
            "the end of the time range must be after its start".into(),
        ));
    }
    Ok((start, end))
}

impl Engine {
    /// An engine over `catalog`, reading event content with `reader`.
    pub fn new(catalog: Arc<Catalog>, reader: JournalReader) -> Self {
        Engine { catalog, reader }
    }

    /// The catalog searched.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Runs a query.
    pub fn run(&self, request: &QueryRequest) -> Result<QueryAnswer, QueryError> {
        let started = Instant::now();
        let query = parse(&request.query)?;
        let (start, end) = time_bounds(request)?;
        let plan = plan(&query, &request.query, start, end)?;
        let mut run = Run::new(&plan, request.limits);
        let (matched, scanned) = self.scan(&plan, request, started, &mut run)?;
        run.finish();
        let mut rows = std::mem::take(&mut run.output);
        if plan.late_journal {
            self.fill_messages(&plan, request, &mut rows)?;
        }
        let fields: Vec<String> = plan.outputs.iter().map(|(name, _)| name.clone()).collect();
        let rows = rows
            .into_iter()
            .map(|row| {
                plan.outputs
                    .iter()
                    .map(|(_, slot)| row.values[*slot].clone())
                    .collect()
            })
            .collect();
        Ok(QueryAnswer {
            fields,
            rows,
            matched,
            scanned,
            took: started.elapsed(),
            partial: run.partial,
        })
    }

    /// Counts matching events per time bucket (the stages before the first `stats`, `sort`,
    /// `dedup` or `limit` decide what matches).
    pub fn histogram(
        &self,
        request: &QueryRequest,
        bucket: Duration,
    ) -> Result<(Vec<(i64, u64)>, QueryAnswer), QueryError> {
        let started = Instant::now();
        let mut query = parse(&request.query)?;
        let cut = query
            .commands
            .iter()
            .position(|command| {
                !matches!(
                    command,
                    Command::Filter(_)
                        | Command::Fields(_)
                        | Command::Parse { .. }
                        | Command::Display(_)
                )
            })
            .unwrap_or(query.commands.len());
        query.commands.truncate(cut);
        let bucket_nanos = i64::try_from(bucket.as_nanos()).unwrap_or(i64::MAX).max(1);
        let bin = Expr {
            kind: ExprKind::Call(
                "datefloor".into(),
                vec![
                    Expr {
                        kind: ExprKind::Field("@timestamp".into()),
                        span: 0..0,
                    },
                    Expr {
                        kind: ExprKind::Duration(bucket_nanos),
                        span: 0..0,
                    },
                ],
            ),
            span: 0..0,
        };
        query.commands.push(Command::Stats {
            aggs: vec![crate::ast::Projection {
                expr: Expr {
                    kind: ExprKind::Call("count".into(), vec![]),
                    span: 0..0,
                },
                name: "count".into(),
            }],
            by: vec![crate::ast::Projection {
                expr: bin,
                name: "bucket".into(),
            }],
        });
        let (start, end) = time_bounds(request)?;
        let plan = plan(&query, &request.query, start, end)?;
        let mut run = Run::new(&plan, request.limits);
        let (matched, scanned) = self.scan(&plan, request, started, &mut run)?;
        run.finish();
        let counts = run
            .output
            .iter()
            .filter_map(|row| {
                let time = row.values[plan.outputs[0].1].as_time()?;
                let count = row.values[plan.outputs[1].1].as_f64()? as u64;
                Some((time, count))
            })
            .collect();
        Ok((
            counts,
            QueryAnswer {
                fields: vec!["bucket".into(), "count".into()],
                rows: Vec::new(),
                matched,
                scanned,
                took: started.elapsed(),
                partial: run.partial,
            },
        ))
    }

    fn scan(
        &self,
        plan: &Plan,
        request: &QueryRequest,
        started: Instant,
        run: &mut Run<'_>,
    ) -> Result<(u64, u64), QueryError> {
        let (start, end) = (request.start.unix_nanos(), request.end.unix_nanos());
        let schema: &IndexSchema = self.catalog.schema();
        let width = plan.slots.len();
        let mut scanned = 0u64;
        let mut stopped = false;
        'groups: for (group_index, group) in request.groups.iter().enumerate() {
            let group_value = Value::str(group.as_str());
            let mut row = Row {
                values: vec![Value::Null; width],
                group: group_index as u32,
                seq: 0,
            };
            let mut pending: Vec<(u64, Vec<Value>)> = Vec::new();
            for piece in self.catalog.pieces(group) {
                // The searcher first: a piece's bounds widen before its reader sees new events.
                let searcher = piece.searcher();
                let meta = piece.meta();
                if !meta.overlaps(start, end) {
                    continue;
                }
                let push = for_time_span(&plan.push, meta.min_time, meta.max_time);
                let query = to_query(&push, schema, &searcher)?;
                let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
                if let Some(keys) = &plan.fast_stats {
                    let segments = searcher.segment_readers();
                    scanned += segments
                        .iter()
                        .map(|segment| u64::from(segment.num_docs()))
                        .sum::<u64>();
                    // Every document of the piece matches: segments can be cut into parts
                    // (a filter's own per-segment iteration is faster than cutting it).
                    let every = matches!(push, Push::All);
                    for (key, count) in
                        count_segments(&*weight, segments, every, plan, keys, started, request)?
                    {
                        run.add_counts(key, count);
                    }
                    if started.elapsed() >= request.limits.timeout {
                        run.timed_out();
                        break 'groups;
                    }
                    continue;
                }
                for segment in searcher.segment_readers() {
                    if started.elapsed() >= request.limits.timeout {
                        run.timed_out();
                        break 'groups;
                    }
                    scanned += u64::from(segment.num_docs());
                    // Opened at the first match: a selective query skips most segments.
                    let mut columns: Option<Columns> = None;
                    let mut error = None;
                    let mut count = 0usize;
                    weight.for_each_no_score(segment, &mut |docs| {
                        if stopped || error.is_some() {
                            return;
                        }
                        for &doc in docs {
                            count += 1;
                            if count.is_multiple_of(4096) && started.elapsed() >= request.limits.timeout {
                                run.timed_out();
                                stopped = true;
                                return;
                            }
                            if columns.is_none() {
                                match Columns::open(segment, &plan.sources) {
                                    Ok(opened) => columns = Some(opened),
                                    Err(failed) => {
                                        error = Some(QueryError::from(failed));
                                        return;
                                    }
                                }
                            }
                            let Some(columns) = columns.as_mut() else { return };
                            row.values.fill(Value::Null);
                            row.values[LOG] = group_value.clone();
                            columns.fill(doc, &mut row.values);
                            let Some(seq) = columns.seq.first(doc) else { continue };
                            row.seq = seq;
                            if plan.early_journal {
                                if pending.len() >= request.limits.max_working_rows {
                                    run.partial.get_or_insert_with(|| "too many events need their message read; the answer covers the first of them".into());
                                    stopped = true;
                                    return;
                                }
                                pending.push((seq, row.values.clone()));
                                continue;
                            }
                            if !run.push(0, &mut row) {
                                stopped = true;
                                return;
                            }
                        }
                    })?;
                    if let Some(error) = error {
                        return Err(error);
                    }
                    if stopped {
                        break 'groups;
                    }
                }
            }
            if plan.early_journal && !pending.is_empty() {
                pending.sort_by_key(|(seq, _)| *seq);
                let seqs: Vec<u64> = pending.iter().map(|(seq, _)| *seq).collect();
                let mut by_seq: BTreeMap<u64, Vec<Value>> = pending.into_iter().collect();
                let mut keep_going = true;
                let mut read = 0usize;
                self.reader.fetch(group, &seqs, |event| {
                    read += 1;
                    if read.is_multiple_of(1024) && started.elapsed() >= request.limits.timeout {
                        run.timed_out();
                        keep_going = false;
                    }
                    if keep_going && let Some(mut values) = by_seq.remove(&event.seq) {
                        fill_from_record(&event, &plan.sources, &mut values);
                        keep_going = run.push_owned(
                            0,
                            Row {
                                values,
                                group: group_index as u32,
                                seq: event.seq,
                            },
                        );
                    }
                    Ok(keep_going)
                })?;
                if !keep_going || started.elapsed() >= request.limits.timeout {
                    if started.elapsed() >= request.limits.timeout {
                        run.timed_out();
                    }
                    break;
                }
            }
        }
        Ok((run.matched, scanned))
    }

    fn fill_messages(
        &self,
        plan: &Plan,
        request: &QueryRequest,
        rows: &mut [Row],
    ) -> Result<(), QueryError> {
        let mut by_group: BTreeMap<u32, Vec<(u64, usize)>> = BTreeMap::new();
        for (index, row) in rows.iter().enumerate() {
            by_group
                .entry(row.group)
                .or_default()
                .push((row.seq, index));
        }
        for (group_index, mut wanted) in by_group {
            let Some(group) = request.groups.get(group_index as usize) else {
                continue;
            };
            wanted.sort();
            let seqs: Vec<u64> = wanted.iter().map(|(seq, _)| *seq).collect();
            let mut positions: HashMap<u64, Vec<usize>> = HashMap::new();
            for (seq, index) in wanted {
                positions.entry(seq).or_default().push(index);
            }
            self.reader.fetch(group, &seqs, |event| {
                for index in positions.get(&event.seq).into_iter().flatten() {
                    if let Some(row) = rows.get_mut(*index) {
                        row.values[MESSAGE] =
                            Value::str(&String::from_utf8_lossy(&event.record.raw));
                        fill_fields(&event, &plan.late_sources, &mut row.values);
                    }
                }
                Ok(true)
            })?;
        }
        // Re-run the trailing assignments now that the message is known.
        for row in rows.iter_mut() {
            for stage in &plan.stages[plan.tail_from..] {
                if let Stage::Assign(assigns) = stage {
                    assign(assigns, &mut row.values);
                }
            }
        }
        let _ = plan.has_stats;
        Ok(())
    }
}
