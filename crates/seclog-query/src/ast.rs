//! The parsed form of a query.

use std::ops::Range;

/// A whole query: optional full-text search, then commands.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Bare terms and quoted phrases before the first command (all must match).
    pub search: Vec<SearchTerm>,
    /// The commands in order.
    pub commands: Vec<Command>,
}

/// A full-text term.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchTerm {
    /// The text (a word or a phrase).
    pub text: String,
    /// Whether it was quoted.
    pub phrase: bool,
    /// `-term` or `NOT term`: the event must not contain it.
    pub negated: bool,
}

/// One pipeline command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `fields a, expr as b`: add or compute fields, and show them.
    Fields(Vec<Projection>),
    /// `display a, b`: which fields the answer shows.
    Display(Vec<Projection>),
    /// `filter expr`.
    Filter(Expr),
    /// `stats aggs by keys`.
    Stats {
        /// Aggregate outputs (expressions containing aggregate calls).
        aggs: Vec<Projection>,
        /// Grouping keys.
        by: Vec<Projection>,
    },
    /// `sort key [asc|desc], ...`.
    Sort(Vec<SortKey>),
    /// `limit n`.
    Limit(usize),
    /// `dedup a, b`.
    Dedup(Vec<String>),
    /// `parse field "glob * pattern" as a, b` or `parse field /(?<a>re)/`.
    Parse {
        /// The field parsed (`@message` when omitted).
        source: Expr,
        /// The pattern, compiled to a regex with named groups.
        pattern: ParsePattern,
    },
}

/// The pattern of a `parse` command.
#[derive(Debug, Clone)]
pub struct ParsePattern {
    /// The compiled regex.
    pub regex: regex::Regex,
    /// Output field of each capture group, in order.
    pub outputs: Vec<String>,
}

impl PartialEq for ParsePattern {
    fn eq(&self, other: &Self) -> bool {
        self.regex.as_str() == other.regex.as_str() && self.outputs == other.outputs
    }
}

/// An expression with the name it is shown under.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// The expression.
    pub expr: Expr,
    /// `as name`, else the expression's text.
    pub name: String,
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// What to sort by.
    pub expr: Expr,
    /// Descending?
    pub descending: bool,
}

/// An expression with its place in the query text.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Byte range in the query.
    pub span: Range<usize>,
}

/// Expression forms.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A field by name.
    Field(String),
    /// A string literal.
    Str(String),
    /// A number literal.
    Number(f64),
    /// A duration literal (`5m`), in nanoseconds.
    Duration(i64),
    /// A regex literal `/.../`.
    Regex(RegexLit),
    /// `[a, b]` (only after `in`).
    List(Vec<Expr>),
    /// A unary operator.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// A function call; `count(*)` has the argument [`ExprKind::Star`].
    Call(String, Vec<Expr>),
    /// `*` as a function argument.
    Star,
}

/// A regex literal, compiled once.
#[derive(Debug, Clone)]
pub struct RegexLit(pub regex::Regex);

impl PartialEq for RegexLit {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `not`.
    Not,
    /// `-`.
    Neg,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `or`.
    Or,
    /// `and`.
    And,
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `like` / `=~`.
    Like,
    /// `not like`.
    NotLike,
    /// `in [...]`.
    In,
    /// `not in [...]`.
    NotIn,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
    /// `^`.
    Pow,
}

impl Expr {
    /// Calls `visit` for every field name the expression reads.
    pub fn fields(&self, visit: &mut impl FnMut(&str)) {
        match &self.kind {
            ExprKind::Field(name) => visit(name),
            ExprKind::List(items) | ExprKind::Call(_, items) => {
                for item in items {
                    item.fields(visit);
                }
            }
            ExprKind::Unary(_, inner) => inner.fields(visit),
            ExprKind::Binary(_, left, right) => {
                left.fields(visit);
                right.fields(visit);
            }
            ExprKind::Str(_)
            | ExprKind::Number(_)
            | ExprKind::Duration(_)
            | ExprKind::Regex(_)
            | ExprKind::Star => {}
        }
    }

    /// Whether the expression contains an aggregate call.
    pub fn has_aggregate(&self) -> bool {
        match &self.kind {
            ExprKind::Call(name, args) => {
                crate::eval::is_aggregate(name) || args.iter().any(Expr::has_aggregate)
            }
            ExprKind::List(items) => items.iter().any(Expr::has_aggregate),
            ExprKind::Unary(_, inner) => inner.has_aggregate(),
            ExprKind::Binary(_, left, right) => left.has_aggregate() || right.has_aggregate(),
            _ => false,
        }
    }
}

impl Command {
    /// Calls `visit` for every field name the command reads.
    pub fn reads(&self, visit: &mut impl FnMut(&str)) {
        match self {
            Command::Fields(items) | Command::Display(items) => {
                for item in items {
                    item.expr.fields(visit);
                }
            }
            Command::Filter(expr) => expr.fields(visit),
            Command::Stats { aggs, by } => {
                for item in aggs.iter().chain(by) {
                    item.expr.fields(visit);
                }
                if by.iter().any(|key| key.expr.mentions_bin()) {
                    visit("@timestamp");
                }
            }
            Command::Sort(keys) => {
                for key in keys {
                    key.expr.fields(visit);
                }
            }
            Command::Limit(_) => {}
            Command::Dedup(names) => {
                for name in names {
                    visit(name);
                }
            }
            Command::Parse { source, .. } => source.fields(visit),
        }
    }

    /// Field names the command creates or overwrites.
    pub fn writes(&self) -> Vec<String> {
        match self {
            Command::Fields(items) | Command::Display(items) => items
                .iter()
                .filter(
                    |item| !matches!(&item.expr.kind, ExprKind::Field(name) if *name == item.name),
                )
                .map(|item| item.name.clone())
                .collect(),
            Command::Stats { aggs, by } => by
                .iter()
                .chain(aggs)
                .map(|item| item.name.clone())
                .collect(),
            Command::Parse { pattern, .. } => pattern.outputs.clone(),
            Command::Filter(_) | Command::Sort(_) | Command::Limit(_) | Command::Dedup(_) => {
                Vec::new()
            }
        }
    }
}

impl Expr {
    fn mentions_bin(&self) -> bool {
        match &self.kind {
            ExprKind::Call(name, args) => {
                name.eq_ignore_ascii_case("bin") || args.iter().any(Expr::mentions_bin)
            }
            ExprKind::Unary(_, inner) => inner.mentions_bin(),
            ExprKind::Binary(_, left, right) => left.mentions_bin() || right.mentions_bin(),
            _ => false,
        }
    }
}
