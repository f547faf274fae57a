//! Compiled expressions over rows of slots, the function library and the aggregates.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use crate::error::QueryError;
use crate::value::{GroupKey, Value, format_float};

/// Field names and their slot numbers in a row.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Slots {
    /// The slot of `name`, added if new.
    pub fn slot(&mut self, name: &str) -> usize {
        if let Some(slot) = self.index.get(name) {
            return *slot;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// The slot of `name` if known.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Every name, by slot.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// How `like` matches.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Case-sensitive substring.
    Substr(String),
    /// Regex search (unanchored unless the pattern anchors).
    Regex(Arc<regex::Regex>),
}

impl Matcher {
    /// Whether `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Matcher::Substr(needle) => text.contains(needle.as_str()),
            Matcher::Regex(regex) => regex.is_match(text),
        }
    }
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum CExpr {
    /// A field.
    Slot(usize),
    /// A constant.
    Const(Value),
    /// Logical not.
    Not(Box<CExpr>),
    /// Negation.
    Neg(Box<CExpr>),
    /// `and`.
    And(Box<CExpr>, Box<CExpr>),
    /// `or`.
    Or(Box<CExpr>, Box<CExpr>),
    /// Comparison or arithmetic.
    Binary(BinaryOp, Box<CExpr>, Box<CExpr>),
    /// `like` (negated for `not like`).
    Like(Box<CExpr>, Matcher, bool),
    /// `in` (negated for `not in`).
    In(Box<CExpr>, Vec<CExpr>, bool),
    /// A scalar function.
    Call(Func, Vec<CExpr>),
    /// The result of aggregate number N (inside `stats`).
    Agg(usize),
}

/// Scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `ispresent(f)`.
    IsPresent,
    /// `isempty(f)`.
    IsEmpty,
    /// `isblank(f)`.
    IsBlank,
    /// `coalesce(a, ...)`.
    Coalesce,
    /// `strlen(s)`.
    Strlen,
    /// `toupper(s)`.
    ToUpper,
    /// `tolower(s)`.
    ToLower,
    /// `trim(s[, chars])`.
    Trim,
    /// `ltrim(s[, chars])`.
    Ltrim,
    /// `rtrim(s[, chars])`.
    Rtrim,
    /// `concat(a, ...)`.
    Concat,
    /// `substr(s, start[, len])`.
    Substr,
    /// `replace(s, find, with)`.
    Replace,
    /// `strcontains(s, find[, case_insensitive])`.
    StrContains,
    /// `startswith(s, prefix)`.
    StartsWith,
    /// `endswith(s, suffix)`.
    EndsWith,
    /// `abs(n)`.
    Abs,
    /// `ceil(n)`.
    Ceil,
    /// `floor(n)`.
    Floor,
    /// `round(n[, digits])`.
    Round,
    /// `greatest(a, ...)`.
    Greatest,
    /// `least(a, ...)`.
    Least,
    /// `log(n)`.
    Log,
    /// `sqrt(n)`.
    Sqrt,
    /// `tonumber(s)`.
    ToNumber,
    /// `datefloor(t, period)`; also `bin(period)` on `@timestamp`.
    DateFloor,
    /// `dateceil(t, period)`.
    DateCeil,
    /// `frommillis(n)`.
    FromMillis,
    /// `tomillis(t)`.
    ToMillis,
    /// `now()` (query start, epoch seconds).
    Now,
    /// `isvalidip(s)`.
    IsValidIp,
    /// `isvalidipv4(s)`.
    IsValidIpV4,
    /// `isvalidipv6(s)`.
    IsValidIpV6,
    /// `isipinsubnet(ip, cidr)`.
    IsIpInSubnet,
    /// `isipv4insubnet(ip, cidr)`.
    IsIpv4InSubnet,
    /// `isipv6insubnet(ip, cidr)`.
    IsIpv6InSubnet,
    /// `if(cond, a, b)`.
    If,
}

const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("ispresent", Func::IsPresent, 1, 1),
    ("isempty", Func::IsEmpty, 1, 1),
    ("isblank", Func::IsBlank, 1, 1),
    ("coalesce", Func::Coalesce, 1, 64),
    ("strlen", Func::Strlen, 1, 1),
    ("toupper", Func::ToUpper, 1, 1),
    ("tolower", Func::ToLower, 1, 1),
    ("trim", Func::Trim, 1, 2),
    ("ltrim", Func::Ltrim, 1, 2),
    ("rtrim", Func::Rtrim, 1, 2),
    ("concat", Func::Concat, 1, 64),
    ("substr", Func::Substr, 2, 3),
    ("replace", Func::Replace, 3, 3),
    ("strcontains", Func::StrContains, 2, 3),
    ("startswith", Func::StartsWith, 2, 2),
    ("endswith", Func::EndsWith, 2, 2),
    ("abs", Func::Abs, 1, 1),
    ("ceil", Func::Ceil, 1, 1),
    ("floor", Func::Floor, 1, 1),
    ("round", Func::Round, 1, 2),
    ("greatest", Func::Greatest, 1, 64),
    ("least", Func::Least, 1, 64),
    ("log", Func::Log, 1, 1),
    ("sqrt", Func::Sqrt, 1, 1),
    ("tonumber", Func::ToNumber, 1, 1),
    ("todouble", Func::ToNumber, 1, 1),
    ("tolong", Func::ToNumber, 1, 1),
    ("datefloor", Func::DateFloor, 2, 2),
    ("dateceil", Func::DateCeil, 2, 2),
    ("frommillis", Func::FromMillis, 1, 1),
    ("tomillis", Func::ToMillis, 1, 1),
    ("now", Func::Now, 0, 0),
    ("isvalidip", Func::IsValidIp, 1, 1),
    ("isvalidipv4", Func::IsValidIpV4, 1, 1),
    ("isvalidipv6", Func::IsValidIpV6, 1, 1),
    ("isipinsubnet", Func::IsIpInSubnet, 2, 2),
    ("isipv4insubnet", Func::IsIpv4InSubnet, 2, 2),
    ("isipv6insubnet", Func::IsIpv6InSubnet, 2, 2),
    ("if", Func::If, 3, 3),
];

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `count()`, `count(*)`, `count(f)`.
    Count,
    /// `count_distinct(f)`.
    CountDistinct,
    /// `sum(f)`.
    Sum,
    /// `avg(f)`.
    Avg,
    /// `min(f)`.
    Min,
    /// `max(f)`.
    Max,
    /// `pct(f, p)`.
    Pct,
    /// `stddev(f)`.
    Stddev,
    /// `earliest(f)`.
    Earliest,
    /// `latest(f)`.
    Latest,
    /// `sortsfirst(f)`.
    SortsFirst,
    /// `sortslast(f)`.
    SortsLast,
}

const AGGS: &[(&str, AggFunc)] = &[
    ("count", AggFunc::Count),
    ("count_distinct", AggFunc::CountDistinct),
    ("sum", AggFunc::Sum),
    ("avg", AggFunc::Avg),
    ("min", AggFunc::Min),
    ("max", AggFunc::Max),
    ("pct", AggFunc::Pct),
    ("percentile", AggFunc::Pct),
    ("stddev", AggFunc::Stddev),
    ("earliest", AggFunc::Earliest),
    ("latest", AggFunc::Latest),
    ("sortsfirst", AggFunc::SortsFirst),
    ("sortslast", AggFunc::SortsLast),
];

/// Whether `name` is an aggregate function.
pub fn is_aggregate(name: &str) -> bool {
    AGGS.iter().any(|(agg, _)| agg.eq_ignore_ascii_case(name))
}

/// Whether `name` is any known function (`bin` included).
pub fn is_known_function(name: &str) -> bool {
    is_aggregate(name)
        || name.eq_ignore_ascii_case("bin")
        || FUNCS
            .iter()
            .any(|(func, ..)| func.eq_ignore_ascii_case(name))
}

/// One aggregate of a `stats` command.
#[derive(Debug, Clone)]
pub struct AggSpec {
    /// Which.
    pub func: AggFunc,
    /// Its argument (`None` for `count()`/`count(*)`).
    pub arg: Option<CExpr>,
    /// The percentile for `pct`.
    pub param: f64,
}

/// What compiling needs: the slot table, the query start, and (inside `stats`) where
/// aggregates go.
pub struct Compiler<'a> {
    /// Slots of the query.
    pub slots: &'a mut Slots,
    /// The query text (for error positions).
    pub text: &'a str,
    /// Aggregates collected while compiling a `stats` output.
    pub aggs: Option<&'a mut Vec<AggSpec>>,
    /// `now()` (epoch seconds).
    pub now_secs: i64,
}

impl Compiler<'_> {
    /// Compiles `expr`.
    pub fn compile(&mut self, expr: &Expr) -> Result<CExpr, QueryError> {
        Ok(match &expr.kind {
            ExprKind::Field(name) => CExpr::Slot(self.slots.slot(name)),
            ExprKind::Str(text) => CExpr::Const(Value::str(text)),
            ExprKind::Number(number) => {
                CExpr::Const(if number.fract() == 0.0 && number.abs() < 9e15 {
                    Value::Int(*number as i64)
                } else {
                    Value::Float(*number)
                })
            }
            ExprKind::Duration(nanos) => CExpr::Const(Value::Int(*nanos)),
            ExprKind::Regex(_) | ExprKind::List(_) | ExprKind::Star => {
                return Err(QueryError::parse(
                    self.text,
                    expr.span.start,
                    "not allowed here",
                ));
            }
            ExprKind::Unary(UnaryOp::Not, inner) => CExpr::Not(Box::new(self.compile(inner)?)),
            ExprKind::Unary(UnaryOp::Neg, inner) => CExpr::Neg(Box::new(self.compile(inner)?)),
            ExprKind::Binary(op, left, right) => match op {
                BinaryOp::And => CExpr::And(
                    Box::new(self.compile(left)?),
                    Box::new(self.compile(right)?),
                ),
                BinaryOp::Or => CExpr::Or(
                    Box::new(self.compile(left)?),
                    Box::new(self.compile(right)?),
                ),
                BinaryOp::Like | BinaryOp::NotLike => {
                    let matcher = match &right.kind {
                        ExprKind::Str(text) => Matcher::Substr(text.clone()),
                        ExprKind::Regex(regex) => Matcher::Regex(Arc::new(regex.0.clone())),
                        _ => {
                            return Err(QueryError::parse(
                                self.text,
                                right.span.start,
                                "like needs a string or a regex",
                            ));
                        }
                    };
                    CExpr::Like(
                        Box::new(self.compile(left)?),
                        matcher,
                        *op == BinaryOp::NotLike,
                    )
                }
                BinaryOp::In | BinaryOp::NotIn => {
                    let ExprKind::List(items) = &right.kind else {
                        return Err(QueryError::parse(
                            self.text,
                            right.span.start,
                            "in needs a [list]",
                        ));
                    };
                    let items = items
                        .iter()
                        .map(|item| self.compile(item))
                        .collect::<Result<_, _>>()?;
                    CExpr::In(Box::new(self.compile(left)?), items, *op == BinaryOp::NotIn)
                }
                _ => CExpr::Binary(
                    *op,
                    Box::new(self.compile(left)?),
                    Box::new(self.compile(right)?),
                ),
            },
            ExprKind::Call(name, args) => return self.call(expr, name, args),
        })
    }

    fn call(&mut self, expr: &Expr, name: &str, args: &[Expr]) -> Result<CExpr, QueryError> {
        if let Some((_, func)) = AGGS.iter().find(|(agg, _)| *agg == name) {
            let Some(aggs) = self.aggs.as_deref_mut() else {
                return Err(QueryError::parse(
                    self.text,
                    expr.span.start,
                    format!("{name}() is only allowed in stats"),
                ));
            };
            let _ = aggs;
            let arg = match (func, args) {
                (AggFunc::Count, []) => None,
                (
                    _,
                    [
                        Expr {
                            kind: ExprKind::Star,
                            ..
                        },
                    ],
                ) if *func == AggFunc::Count => None,
                (AggFunc::Pct, [arg, _]) | (_, [arg]) => {
                    let mut inner = Compiler {
                        slots: self.slots,
                        text: self.text,
                        aggs: None,
                        now_secs: self.now_secs,
                    };
                    Some(inner.compile(arg)?)
                }
                _ => {
                    return Err(QueryError::parse(
                        self.text,
                        expr.span.start,
                        format!("wrong number of arguments for {name}()"),
                    ));
                }
            };
            let param = match (func, args) {
                (
                    AggFunc::Pct,
                    [
                        _,
                        Expr {
                            kind: ExprKind::Number(p),
                            ..
                        },
                    ],
                ) if (0.0..=100.0).contains(p) => *p,
                (AggFunc::Pct, _) => {
                    return Err(QueryError::parse(
                        self.text,
                        expr.span.start,
                        "pct(field, percent) needs a percent from 0 to 100",
                    ));
                }
                _ => 0.0,
            };
            let aggs = self.aggs.as_deref_mut().expect("checked above");
            aggs.push(AggSpec {
                func: *func,
                arg,
                param,
            });
            return Ok(CExpr::Agg(aggs.len() - 1));
        }
        if name == "bin" {
            let [
                Expr {
                    kind: ExprKind::Duration(nanos),
                    ..
                },
            ] = args
            else {
                return Err(QueryError::parse(
                    self.text,
                    expr.span.start,
                    "bin takes one period, such as bin(5m)",
                ));
            };
            if *nanos <= 0 {
                return Err(QueryError::parse(
                    self.text,
                    expr.span.start,
                    "the period must be positive",
                ));
            }
            let timestamp = self.slots.slot("@timestamp");
            return Ok(CExpr::Call(
                Func::DateFloor,
                vec![CExpr::Slot(timestamp), CExpr::Const(Value::Int(*nanos))],
            ));
        }
        let Some((_, func, min, max)) = FUNCS.iter().find(|(func, ..)| *func == name) else {
            return Err(QueryError::parse(
                self.text,
                expr.span.start,
                format!("unknown function `{name}`"),
            ));
        };
        if args.len() < *min || args.len() > *max {
            return Err(QueryError::parse(
                self.text,
                expr.span.start,
                format!(
                    "{name}() takes {} argument{}",
                    if min == max {
                        min.to_string()
                    } else {
                        format!("{min} to {max}")
                    },
                    if *max == 1 { "" } else { "s" }
                ),
            ));
        }
        if *func == Func::Now {
            return Ok(CExpr::Const(Value::Int(self.now_secs)));
        }
        let args = args
            .iter()
            .map(|arg| self.compile(arg))
            .collect::<Result<_, _>>()?;
        Ok(CExpr::Call(*func, args))
    }
}

/// Evaluates `expr` on `row`; `aggs` holds aggregate results inside `stats`.
pub fn eval(expr: &CExpr, row: &[Value], aggs: &[Value]) -> Value {
    match expr {
        CExpr::Slot(slot) => row.get(*slot).cloned().unwrap_or_default(),
        CExpr::Const(value) => value.clone(),
        CExpr::Agg(index) => aggs.get(*index).cloned().unwrap_or_default(),
        CExpr::Not(inner) => Value::Bool(!eval(inner, row, aggs).truthy()),
        CExpr::Neg(inner) => match eval(inner, row, aggs) {
            Value::Int(int) => Value::Int(int.wrapping_neg()),
            other => other.as_f64().map_or(Value::Null, |n| Value::Float(-n)),
        },
        CExpr::And(left, right) => {
            Value::Bool(eval(left, row, aggs).truthy() && eval(right, row, aggs).truthy())
        }
        CExpr::Or(left, right) => {
            Value::Bool(eval(left, row, aggs).truthy() || eval(right, row, aggs).truthy())
        }
        CExpr::Like(inner, matcher, negated) => {
            let value = eval(inner, row, aggs);
            let matched = value.to_text().is_some_and(|text| matcher.is_match(&text));
            Value::Bool(matched != *negated)
        }
        CExpr::In(inner, items, negated) => {
            let value = eval(inner, row, aggs);
            let found = items
                .iter()
                .any(|item| value.equals(&eval(item, row, aggs)));
            Value::Bool(found != *negated)
        }
        CExpr::Binary(op, left, right) => {
            binary(*op, &eval(left, row, aggs), &eval(right, row, aggs))
        }
        CExpr::Call(func, args) => {
            let values: smallvec::SmallVec<[Value; 4]> =
                args.iter().map(|arg| eval(arg, row, aggs)).collect();
            call(*func, &values)
        }
    }
}

fn binary(op: BinaryOp, left: &Value, right: &Value) -> Value {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        BinaryOp::Eq => Value::Bool(left.equals(right)),
        // Insights treats a missing field as different from any value.
        BinaryOp::Ne => Value::Bool(!left.equals(right)),
        BinaryOp::Lt => Value::Bool(left.compare(right) == Some(Less)),
        BinaryOp::Le => Value::Bool(matches!(left.compare(right), Some(Less | Equal))),
        BinaryOp::Gt => Value::Bool(left.compare(right) == Some(Greater)),
        BinaryOp::Ge => Value::Bool(matches!(left.compare(right), Some(Greater | Equal))),
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Rem
        | BinaryOp::Pow => arithmetic(op, left, right),
        BinaryOp::And
        | BinaryOp::Or
        | BinaryOp::Like
        | BinaryOp::NotLike
        | BinaryOp::In
        | BinaryOp::NotIn => Value::Null,
    }
}

fn arithmetic(op: BinaryOp, left: &Value, right: &Value) -> Value {
    // Time plus or minus a duration stays a time.
    if let (Value::Time(time), Some(offset)) = (left, right.as_f64()) {
        return match op {
            BinaryOp::Add => Value::Time(time.saturating_add(offset as i64)),
            BinaryOp::Sub => Value::Time(time.saturating_sub(offset as i64)),
            _ => Value::Null,
        };
    }
    if let (Value::Int(a), Value::Int(b)) = (left, right) {
        let result = match op {
            BinaryOp::Add => a.checked_add(*b),
            BinaryOp::Sub => a.checked_sub(*b),
            BinaryOp::Mul => a.checked_mul(*b),
            BinaryOp::Rem => a.checked_rem(*b),
            _ => None,
        };
        if let Some(result) = result {
            return Value::Int(result);
        }
    }
    let (Some(a), Some(b)) = (left.as_f64(), right.as_f64()) else {
        return Value::Null;
    };
    let result = match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Rem => a % b,
        BinaryOp::Pow => a.powf(b),
        _ => return Value::Null,
    };
    if result.is_finite() {
        Value::Float(result)
    } else {
        Value::Null
    }
}

fn text(value: &Value) -> Option<String> {
    value.to_text().map(|text| text.into_owned())
}

fn bool_num(flag: bool) -> Value {
    Value::Bool(flag)
}

fn trim_with(text: &str, chars: Option<&str>, left: bool, right: bool) -> String {
    let keep = |c: char| match chars {
        Some(set) => set.contains(c),
        None => c.is_whitespace(),
    };
    let mut out = text;
    if left {
        out = out.trim_start_matches(keep);
    }
    if right {
        out = out.trim_end_matches(keep);
    }
    out.to_string()
}

fn floor_to(nanos: i64, period: i64) -> i64 {
    nanos.div_euclid(period) * period
}

fn call(func: Func, args: &[Value]) -> Value {
    let arg = |index: usize| args.get(index).cloned().unwrap_or_default();
    let num = |index: usize| args.get(index).and_then(Value::as_f64);
    let txt = |index: usize| args.get(index).and_then(text);
    let number = |n: f64| {
        if n.fract() == 0.0 && n.abs() < 9e15 {
            Value::Int(n as i64)
        } else if n.is_finite() {
            Value::Float(n)
        } else {
            Value::Null
        }
    };
    match func {
        Func::IsPresent => bool_num(!arg(0).is_null()),
        Func::IsEmpty => bool_num(txt(0).is_none_or(|t| t.is_empty())),
        Func::IsBlank => bool_num(txt(0).is_none_or(|t| t.trim().is_empty())),
        Func::Coalesce => args
            .iter()
            .find(|value| !value.is_null())
            .cloned()
            .unwrap_or_default(),
        Func::Strlen => txt(0).map_or(Value::Null, |t| Value::Int(t.chars().count() as i64)),
        Func::ToUpper => txt(0).map_or(Value::Null, |t| Value::str(&t.to_uppercase())),
        Func::ToLower => txt(0).map_or(Value::Null, |t| Value::str(&t.to_lowercase())),
        Func::Trim | Func::Ltrim | Func::Rtrim => txt(0).map_or(Value::Null, |t| {
            let chars = txt(1);
            let (left, right) = match func {
                Func::Ltrim => (true, false),
                Func::Rtrim => (false, true),
                _ => (true, true),
            };
            Value::str(&trim_with(&t, chars.as_deref(), left, right))
        }),
        Func::Concat => Value::str(&args.iter().filter_map(text).collect::<String>()),
        Func::Substr => txt(0).map_or(Value::Null, |t| {
            let start = num(1).unwrap_or(0.0).max(0.0) as usize;
            let chars = t.chars().skip(start);
            let out: String = match num(2) {
                Some(len) => chars.take(len.max(0.0) as usize).collect(),
                None => chars.collect(),
            };
            Value::str(&out)
        }),
        Func::Replace => match (txt(0), txt(1), txt(2)) {
            (Some(t), Some(find), Some(with)) if !find.is_empty() => {
                Value::str(&t.replace(&find, &with))
            }
            (Some(t), ..) => Value::str(&t),
            _ => Value::Null,
        },
        Func::StrContains => match (txt(0), txt(1)) {
            (Some(t), Some(find)) => {
                let insensitive = arg(2).truthy();
                bool_num(if insensitive {
                    t.to_lowercase().contains(&find.to_lowercase())
                } else {
                    t.contains(&find)
                })
            }
            _ => bool_num(false),
        },
        Func::StartsWith => {
            bool_num(matches!((txt(0), txt(1)), (Some(t), Some(p)) if t.starts_with(&p)))
        }
        Func::EndsWith => {
            bool_num(matches!((txt(0), txt(1)), (Some(t), Some(p)) if t.ends_with(&p)))
        }
        Func::Abs => match arg(0) {
            Value::Int(int) => Value::Int(int.saturating_abs()),
            other => other.as_f64().map_or(Value::Null, |n| number(n.abs())),
        },
        Func::Ceil => num(0).map_or(Value::Null, |n| number(n.ceil())),
        Func::Floor => num(0).map_or(Value::Null, |n| number(n.floor())),
        Func::Round => num(0).map_or(Value::Null, |n| {
            let digits = num(1).unwrap_or(0.0) as i32;
            let scale = 10f64.powi(digits);
            number((n * scale).round() / scale)
        }),
        Func::Greatest | Func::Least => {
            let mut best: Option<Value> = None;
            for value in args.iter().filter(|value| !value.is_null()) {
                let better = match &best {
                    None => true,
                    Some(current) => {
                        let order = value
                            .compare(current)
                            .unwrap_or_else(|| value.sort_cmp(current));
                        if func == Func::Greatest {
                            order.is_gt()
                        } else {
                            order.is_lt()
                        }
                    }
                };
                if better {
                    best = Some(value.clone());
                }
            }
            best.unwrap_or_default()
        }
        Func::Log => num(0)
            .filter(|n| *n > 0.0)
            .map_or(Value::Null, |n| Value::Float(n.ln())),
        Func::Sqrt => num(0)
            .filter(|n| *n >= 0.0)
            .map_or(Value::Null, |n| Value::Float(n.sqrt())),
        Func::ToNumber => num(0).map_or(Value::Null, number),
        Func::DateFloor | Func::DateCeil => {
            let (Some(time), Some(period)) = (
                arg(0).as_time(),
                num(1).map(|p| p as i64).filter(|p| *p > 0),
            ) else {
                return Value::Null;
            };
            let floor = floor_to(time, period);
            Value::Time(if func == Func::DateCeil && floor != time {
                floor.saturating_add(period)
            } else {
                floor
            })
        }
        Func::FromMillis => num(0).map_or(Value::Null, |ms| Value::Time((ms * 1e6) as i64)),
        Func::ToMillis => arg(0)
            .as_time()
            .map_or(Value::Null, |nanos| Value::Int(nanos.div_euclid(1_000_000))),
        Func::Now => Value::Null,
        Func::IsValidIp => bool_num(txt(0).is_some_and(|t| t.parse::<IpAddr>().is_ok())),
        Func::IsValidIpV4 => {
            bool_num(txt(0).is_some_and(|t| t.parse::<std::net::Ipv4Addr>().is_ok()))
        }
        Func::IsValidIpV6 => {
            bool_num(txt(0).is_some_and(|t| t.parse::<std::net::Ipv6Addr>().is_ok()))
        }
        Func::IsIpInSubnet | Func::IsIpv4InSubnet | Func::IsIpv6InSubnet => {
            let (Some(ip), Some(cidr)) = (txt(0), txt(1)) else {
                return bool_num(false);
            };
            let Ok(ip) = ip.parse::<IpAddr>() else {
                return bool_num(false);
            };
            let family_ok = match func {
                Func::IsIpv4InSubnet => ip.is_ipv4(),
                Func::IsIpv6InSubnet => ip.is_ipv6(),
                _ => true,
            };
            bool_num(family_ok && in_subnet(ip, &cidr))
        }
        Func::If => {
            if arg(0).truthy() {
                arg(1)
            } else {
                arg(2)
            }
        }
    }
}

/// Whether `ip` lies in `cidr` (`10.0.0.0/8`, `2001:db8::/32`, or a single address).
pub fn in_subnet(ip: IpAddr, cidr: &str) -> bool {
    let (network, bits) = match cidr.split_once('/') {
        Some((network, bits)) => (network, bits.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(network) = network.trim().parse::<IpAddr>() else {
        return false;
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// The running state of one aggregate in one group.
#[derive(Debug, Clone)]
pub enum Acc {
    /// Count.
    Count(u64),
    /// Distinct values.
    Distinct(HashSet<GroupKey>),
    /// Sum (and whether any value was seen).
    Sum(f64, bool),
    /// Sum and count.
    Avg(f64, u64),
    /// Best value so far.
    Extreme(Option<Value>),
    /// Values for a percentile.
    Values(Vec<f64>),
    /// Count, sum, sum of squares.
    Moments(u64, f64, f64),
    /// Value at the best time so far.
    AtTime(Option<(i64, Value)>),
}

impl AggSpec {
    /// A fresh accumulator.
    pub fn start(&self) -> Acc {
        match self.func {
            AggFunc::Count => Acc::Count(0),
            AggFunc::CountDistinct => Acc::Distinct(HashSet::new()),
            AggFunc::Sum => Acc::Sum(0.0, false),
            AggFunc::Avg => Acc::Avg(0.0, 0),
            AggFunc::Min | AggFunc::Max | AggFunc::SortsFirst | AggFunc::SortsLast => {
                Acc::Extreme(None)
            }
            AggFunc::Pct => Acc::Values(Vec::new()),
            AggFunc::Stddev => Acc::Moments(0, 0.0, 0.0),
            AggFunc::Earliest | AggFunc::Latest => Acc::AtTime(None),
        }
    }

    /// Adds one row; returns how many values the accumulator now keeps in addition (for
    /// `count_distinct` and `pct`, which keep values; 0 for the others).
    pub fn add(&self, acc: &mut Acc, row: &[Value], time: i64) -> usize {
        let value = match &self.arg {
            Some(arg) => eval(arg, row, &[]),
            None => Value::Bool(true),
        };
        if value.is_null() {
            return 0;
        }
        match acc {
            Acc::Count(count) => *count += 1,
            Acc::Distinct(seen) => {
                return usize::from(seen.insert(value.group_key()));
            }
            Acc::Sum(sum, any) => {
                if let Some(n) = value.as_f64() {
                    *sum += n;
                    *any = true;
                }
            }
            Acc::Avg(sum, count) => {
                if let Some(n) = value.as_f64() {
                    *sum += n;
                    *count += 1;
                }
            }
            Acc::Extreme(best) => {
                let replace = match best {
                    None => true,
                    Some(current) => {
                        let order = match self.func {
                            AggFunc::Min | AggFunc::Max => value
                                .compare(current)
                                .unwrap_or_else(|| value.sort_cmp(current)),
                            _ => value.sort_cmp(current),
                        };
                        match self.func {
                            AggFunc::Min | AggFunc::SortsFirst => order.is_lt(),
                            _ => order.is_gt(),
                        }
                    }
                };
                if replace {
                    *best = Some(value);
                }
            }
            Acc::Values(values) => {
                if let Some(n) = value.as_f64() {
                    values.push(n);
                    return 1;
                }
            }
            Acc::Moments(count, sum, squares) => {
                if let Some(n) = value.as_f64() {
                    *count += 1;
                    *sum += n;
                    *squares += n * n;
                }
            }
            Acc::AtTime(best) => {
                let replace = match best {
                    None => true,
                    Some((at, _)) => {
                        if self.func == AggFunc::Earliest {
                            time < *at
                        } else {
                            time > *at
                        }
                    }
                };
                if replace {
                    *best = Some((time, value));
                }
            }
        }
        0
    }

    /// The result.
    pub fn finish(&self, acc: Acc) -> Value {
        let number = |n: f64| {
            if n.fract() == 0.0 && n.abs() < 9e15 {
                Value::Int(n as i64)
            } else {
                Value::Float(n)
            }
        };
        match acc {
            Acc::Count(count) => Value::Int(count as i64),
            Acc::Distinct(seen) => Value::Int(seen.len() as i64),
            Acc::Sum(sum, any) => {
                if any {
                    number(sum)
                } else {
                    Value::Null
                }
            }
            Acc::Avg(sum, count) => {
                if count > 0 {
                    Value::Float(sum / count as f64)
                } else {
                    Value::Null
                }
            }
            Acc::Extreme(best) => best.unwrap_or_default(),
            Acc::Values(mut values) => {
                if values.is_empty() {
                    return Value::Null;
                }
                values.sort_by(f64::total_cmp);
                // Nearest rank.
                let rank = ((self.param / 100.0) * values.len() as f64).ceil() as usize;
                number(values[rank.clamp(1, values.len()) - 1])
            }
            Acc::Moments(count, sum, squares) => {
                if count < 2 {
                    return if count == 1 {
                        Value::Int(0)
                    } else {
                        Value::Null
                    };
                }
                let n = count as f64;
                let variance = (squares - sum * sum / n) / (n - 1.0);
                Value::Float(variance.max(0.0).sqrt())
            }
            Acc::AtTime(best) => best.map(|(_, value)| value).unwrap_or_default(),
        }
    }
}

/// Text of a number for display.
pub fn number_text(n: f64) -> String {
    format_float(n)
}
