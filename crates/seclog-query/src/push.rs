//! The part of a filter the index answers exactly: terms, ranges, existence and value scans.

use std::ops::Bound;

use seclog_index::IndexSchema;
use seclog_index::fields::alias_targets;
use seclog_index::schema::{identifier_hash, is_identifier_path};
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, Query, RangeQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{Searcher, Term};

use crate::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use crate::eval::Matcher;
use crate::value::Value;

/// An index-side filter. Every form is exact (a document matches it if and only if the
/// corresponding query expression is true for the event) except equality on identifier
/// fields, which matches a hash and so a superset (see [`Translated::exact`]).
#[derive(Debug, Clone)]
pub enum Push {
    /// Every document.
    All,
    /// All must match.
    And(Vec<Push>),
    /// Any may match.
    Or(Vec<Push>),
    /// Must not match.
    Not(Box<Push>),
    /// Field (any of the paths) equals the value.
    Equals(Vec<String>, Value),
    /// Field is present.
    Exists(Vec<String>),
    /// Field's string value matches (scanned in the term dictionary, not per event).
    Matches(Vec<String>, Matcher),
    /// `@logStream` equals.
    Stream(String),
    /// Event time in range (Unix ns).
    Time(Bound<i64>, Bound<i64>),
    /// `@message` contains the word.
    Word(String),
}

/// The fields every event has, which are not among its JSON fields.
pub fn is_system_field(name: &str) -> bool {
    matches!(name, "@timestamp" | "@message" | "@log" | "@logStream")
}

/// Paths a query field name reads: itself, then its aliases.
pub fn field_paths(name: &str) -> Vec<String> {
    let mut paths = vec![name.to_string()];
    paths.extend(alias_targets(name).iter().map(|target| target.to_string()));
    paths
}

fn literal(expr: &Expr) -> Option<Value> {
    match &expr.kind {
        ExprKind::Str(text) => Some(Value::str(text)),
        ExprKind::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => Some(Value::Int(*n as i64)),
        ExprKind::Number(n) => Some(Value::Float(*n)),
        ExprKind::Unary(UnaryOp::Neg, inner) => match literal(inner)? {
            Value::Int(int) => Some(Value::Int(-int)),
            Value::Float(float) => Some(Value::Float(-float)),
            _ => None,
        },
        _ => None,
    }
}

fn plain_field(expr: &Expr) -> Option<&str> {
    match &expr.kind {
        ExprKind::Field(name) => Some(name),
        _ => None,
    }
}

/// A filter condition as the index answers it.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The index-side filter.
    pub push: Push,
    /// Whether the index answers it exactly; otherwise it selects a superset of the matching
    /// events (identifier hashes) and the condition must still be checked on each of them.
    pub exact: bool,
}

fn exact(push: Push) -> Option<Translated> {
    Some(Translated { push, exact: true })
}

/// Whether any path `name` reads is an identifier field (indexed as hashes, read from the
/// journal).
pub fn reads_identifier(name: &str) -> bool {
    !is_system_field(name)
        && field_paths(name)
            .iter()
            .any(|path| is_identifier_path(path))
}

/// Translates `expr` when the index can answer it; `derived` says whether a name is computed
/// by the query (then it is not in the index).
pub fn translate(expr: &Expr, derived: &dyn Fn(&str) -> bool) -> Option<Translated> {
    fn source_field<'e>(expr: &'e Expr, derived: &dyn Fn(&str) -> bool) -> Option<&'e str> {
        plain_field(expr).filter(|name| !derived(name))
    }
    let field = |expr| source_field(expr, derived);
    match &expr.kind {
        ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), left, right) => {
            let (left, right) = (translate(left, derived)?, translate(right, derived)?);
            let parts = vec![left.push, right.push];
            Some(Translated {
                push: if *op == BinaryOp::And {
                    Push::And(parts)
                } else {
                    Push::Or(parts)
                },
                exact: left.exact && right.exact,
            })
        }
        // A superset cannot be negated.
        ExprKind::Unary(UnaryOp::Not, inner) => {
            let inner = translate(inner, derived).filter(|inner| inner.exact)?;
            exact(Push::Not(Box::new(inner.push)))
        }
        ExprKind::Binary(op @ (BinaryOp::Eq | BinaryOp::Ne), left, right) => {
            let ((Some(name), Some(value), ..) | (_, _, Some(name), Some(value))) =
                (field(left), literal(right), field(right), literal(left))
            else {
                return None;
            };
            let equals = equals(name, value)?;
            if *op == BinaryOp::Eq {
                Some(equals)
            } else if equals.exact {
                exact(Push::Not(Box::new(equals.push)))
            } else {
                None
            }
        }
        ExprKind::Binary(op @ (BinaryOp::In | BinaryOp::NotIn), left, right) => {
            let name = field(left)?;
            let ExprKind::List(items) = &right.kind else {
                return None;
            };
            let items = items
                .iter()
                .map(|item| equals(name, literal(item)?))
                .collect::<Option<Vec<_>>>()?;
            let all_exact = items.iter().all(|item| item.exact);
            let any = Push::Or(items.into_iter().map(|item| item.push).collect());
            match (*op == BinaryOp::In, all_exact) {
                (true, exact) => Some(Translated { push: any, exact }),
                (false, true) => self::exact(Push::Not(Box::new(any))),
                (false, false) => None,
            }
        }
        ExprKind::Binary(op @ (BinaryOp::Like | BinaryOp::NotLike), left, right) => {
            let name = field(left)?;
            if is_system_field(name) || !single_path(name) || reads_identifier(name) {
                return None;
            }
            let matcher = match &right.kind {
                ExprKind::Str(text) => Matcher::Substr(text.clone()),
                ExprKind::Regex(regex) => Matcher::Regex(std::sync::Arc::new(regex.0.clone())),
                _ => return None,
            };
            let matches = Push::Matches(field_paths(name), matcher);
            exact(if *op == BinaryOp::Like {
                matches
            } else {
                Push::Not(Box::new(matches))
            })
        }
        ExprKind::Binary(
            op @ (BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge),
            left,
            right,
        ) => {
            // Only event time ranges: other fields may hold numbers as text, which the
            // index keeps apart from numbers.
            let (op, value) = match (field(left), literal(right), field(right), literal(left)) {
                (Some("@timestamp"), Some(value), ..) => (*op, value),
                (_, _, Some("@timestamp"), Some(value)) => (flip(*op), value),
                _ => return None,
            };
            let time = value.as_time()?;
            exact(match op {
                BinaryOp::Lt => Push::Time(Bound::Unbounded, Bound::Excluded(time)),
                BinaryOp::Le => Push::Time(Bound::Unbounded, Bound::Included(time)),
                BinaryOp::Gt => Push::Time(Bound::Excluded(time), Bound::Unbounded),
                _ => Push::Time(Bound::Included(time), Bound::Unbounded),
            })
        }
        ExprKind::Call(name, args) if name == "ispresent" => {
            let name = field(args.first()?)?;
            match name {
                "@timestamp" | "@message" | "@log" | "@logStream" => exact(Push::All),
                _ => exact(Push::Exists(field_paths(name))),
            }
        }
        _ => None,
    }
}

/// Whether a name reads one path, or an alias with a single original: a row reads the first
/// of its paths that is present, which the index matches exactly only when there is one
/// (an event holding both an alias name and its original as fields is not expected).
fn single_path(name: &str) -> bool {
    field_paths(name).len() <= 2
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        other => other,
    }
}

fn equals(name: &str, value: Value) -> Option<Translated> {
    match name {
        "@logStream" => match value {
            Value::Str(text) => exact(Push::Stream(text.to_string())),
            other => exact(Push::Stream(other.to_text()?.into_owned())),
        },
        _ if is_system_field(name) || !single_path(name) => None,
        _ if reads_identifier(name) => {
            // Hashes of the text: only a string that does not read as a number equals
            // exactly the values with that text.
            let Value::Str(text) = &value else {
                return None;
            };
            if text.trim().parse::<f64>().is_ok() {
                return None;
            }
            Some(Translated {
                push: Push::Equals(field_paths(name), value),
                exact: false,
            })
        }
        _ => exact(Push::Equals(field_paths(name), value)),
    }
}

/// `push` for a piece whose events all have times in `min..=max`: time ranges that hold for
/// every such event are dropped (opening the time column of every segment only to keep every
/// document is most of a selective query's cost).
pub fn for_time_span(push: &Push, min: i64, max: i64) -> Push {
    match push {
        Push::Time(lower, upper) => {
            let above = match lower {
                Bound::Included(bound) => min >= *bound,
                Bound::Excluded(bound) => min > *bound,
                Bound::Unbounded => true,
            };
            let below = match upper {
                Bound::Included(bound) => max <= *bound,
                Bound::Excluded(bound) => max < *bound,
                Bound::Unbounded => true,
            };
            if above && below {
                Push::All
            } else {
                push.clone()
            }
        }
        Push::And(parts) => {
            let mut kept: Vec<Push> = parts
                .iter()
                .map(|part| for_time_span(part, min, max))
                .filter(|part| !matches!(part, Push::All))
                .collect();
            match kept.len() {
                0 => Push::All,
                1 => kept.remove(0),
                _ => Push::And(kept),
            }
        }
        Push::Or(parts) => {
            let parts: Vec<Push> = parts
                .iter()
                .map(|part| for_time_span(part, min, max))
                .collect();
            if parts.iter().any(|part| matches!(part, Push::All)) {
                Push::All
            } else {
                Push::Or(parts)
            }
        }
        Push::Not(inner) => Push::Not(Box::new(for_time_span(inner, min, max))),
        other => other.clone(),
    }
}

/// Builds the tantivy query for one piece (value scans read that piece's dictionaries).
pub fn to_query(
    push: &Push,
    schema: &IndexSchema,
    searcher: &Searcher,
) -> tantivy::Result<Box<dyn Query>> {
    Ok(match push {
        Push::All => Box::new(AllQuery),
        Push::And(parts) if parts.is_empty() => Box::new(AllQuery),
        Push::And(parts) => {
            let mut clauses = Vec::new();
            for part in parts {
                clauses.push((Occur::Must, to_query(part, schema, searcher)?));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        Push::Or(parts) => {
            if parts.is_empty() {
                return Ok(Box::new(EmptyQuery));
            }
            let mut clauses = Vec::new();
            for part in parts {
                clauses.push((Occur::Should, to_query(part, schema, searcher)?));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        Push::Not(inner) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
            (Occur::MustNot, to_query(inner, schema, searcher)?),
        ])),
        Push::Equals(paths, value) => {
            let mut terms = Vec::new();
            for path in paths {
                if is_identifier_path(path) {
                    if let Some(text) = value.to_text() {
                        terms.push(Term::from_field_u64(
                            schema.ids,
                            identifier_hash(path, &text),
                        ));
                    }
                } else {
                    equal_terms(schema, path, value, &mut terms);
                }
            }
            Box::new(TermSetQuery::new(terms))
        }
        Push::Exists(paths) => {
            let clauses = paths
                .iter()
                .map(|path| {
                    let query: Box<dyn Query> = if is_identifier_path(path) {
                        Box::new(TermQuery::new(
                            Term::from_field_text(schema.id_paths, path),
                            IndexRecordOption::Basic,
                        ))
                    } else {
                        Box::new(ExistsQuery::new(
                            format!("{}.{path}", seclog_index::schema::names::FIELDS),
                            false,
                        ))
                    };
                    (Occur::Should, query)
                })
                .collect();
            Box::new(BooleanQuery::new(clauses))
        }
        Push::Matches(paths, matcher) => {
            let mut terms = Vec::new();
            for path in paths {
                matching_terms(schema, searcher, path, matcher, &mut terms)?;
            }
            Box::new(TermSetQuery::new(terms))
        }
        Push::Stream(stream) => Box::new(TermQuery::new(
            Term::from_field_text(schema.stream, stream),
            IndexRecordOption::Basic,
        )),
        Push::Time(lower, upper) => {
            let term = |value: &i64| Term::from_field_i64(schema.time, *value);
            Box::new(RangeQuery::new(
                lower.as_ref().map(term),
                upper.as_ref().map(term),
            ))
        }
        Push::Word(word) => Box::new(TermQuery::new(
            Term::from_field_text(schema.text, word),
            IndexRecordOption::Basic,
        )),
    })
}

fn json_term(schema: &IndexSchema, path: &str) -> Term {
    Term::from_field_json_path(schema.fields, path, true)
}

/// Every indexed form of `value` at `path` that `Value::equals` would accept: its text, and
/// the number (or boolean) that text is the canonical spelling of.
fn equal_terms(schema: &IndexSchema, path: &str, value: &Value, terms: &mut Vec<Term>) {
    let Some(text) = value.to_text().map(|text| text.into_owned()) else {
        return;
    };
    let mut term = json_term(schema, path);
    term.append_type_and_str(&text);
    terms.push(term);
    let number = match value {
        Value::Int(int) => Some(*int as f64),
        Value::Float(float) => Some(*float),
        Value::Str(_) => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && canonical_number_text(*n) == text),
        _ => None,
    };
    if let Some(number) = number {
        if number.fract() == 0.0 && number.abs() < 9.2e18 {
            let mut term = json_term(schema, path);
            term.append_type_and_fast_value(number as i64);
            terms.push(term);
        }
        if number.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&number) {
            let mut term = json_term(schema, path);
            term.append_type_and_fast_value(number as u64);
            terms.push(term);
        }
        let mut term = json_term(schema, path);
        term.append_type_and_fast_value(number);
        terms.push(term);
    }
    if matches!(value, Value::Str(_) | Value::Bool(_))
        && let Ok(flag) = text.parse::<bool>()
    {
        let mut term = json_term(schema, path);
        term.append_type_and_fast_value(flag);
        terms.push(term);
    }
}

/// How a number stored in an event prints (whole numbers without a fraction).
fn canonical_number_text(number: f64) -> String {
    let value = if number.fract() == 0.0 && number.abs() < 9e15 {
        Value::Int(number as i64)
    } else {
        Value::Float(number)
    };
    value
        .to_text()
        .map(|text| text.into_owned())
        .unwrap_or_default()
}

/// Text of a typed JSON term value (`type byte`, value bytes), as [`Value::to_text`] prints it.
fn term_value_text(kind: u8, bytes: &[u8]) -> Option<String> {
    let fixed = || -> Option<u64> { Some(u64::from_be_bytes(bytes.try_into().ok()?)) };
    match kind {
        b's' => std::str::from_utf8(bytes).ok().map(str::to_string),
        b'i' => Some(tantivy::u64_to_i64(fixed()?).to_string()),
        b'u' => Some(fixed()?.to_string()),
        b'f' => Some(canonical_number_text(tantivy::u64_to_f64(fixed()?))),
        b'o' => Some((fixed()? != 0).to_string()),
        _ => None,
    }
}

/// The terms at `path` (of any type) whose text `matcher` accepts, in every segment of the
/// piece. Only distinct values are tested, not events.
fn matching_terms(
    schema: &IndexSchema,
    searcher: &Searcher,
    path: &str,
    matcher: &Matcher,
    terms: &mut Vec<Term>,
) -> tantivy::Result<()> {
    // The path, ending with its end-of-path byte; values of every type follow it.
    let prefix = json_term(schema, path).serialized_value_bytes().to_vec();
    let mut end = prefix.clone();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut seen = std::collections::HashSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(schema.fields)?;
        let mut stream = inverted
            .terms()
            .range()
            .ge(&prefix)
            .lt(&end)
            .into_stream()?;
        while stream.advance() {
            let key = stream.key();
            let Some((&kind, value)) = key.get(prefix.len()..).and_then(<[u8]>::split_first) else {
                continue;
            };
            let Some(text) = term_value_text(kind, value) else {
                continue;
            };
            if matcher.is_match(&text) && seen.insert(key.to_vec()) {
                let mut term = json_term(schema, path);
                term.append_bytes(&[kind]);
                term.append_bytes(value);
                terms.push(term);
            }
        }
    }
    Ok(())
}
