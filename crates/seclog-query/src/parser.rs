//! Query text to [`Query`]: a hand-written lexer and a precedence-climbing parser that report
//! the byte offset of the first thing they cannot accept.

use std::ops::Range;

use crate::ast::{
    BinaryOp, Command, Expr, ExprKind, ParsePattern, Projection, Query, RegexLit, SearchTerm,
    SortKey, UnaryOp,
};
use crate::error::QueryError;

/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 100_000;

const COMMANDS: &[&str] = &[
    "fields", "display", "filter", "stats", "sort", "limit", "dedup", "parse", "head",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// A backquoted name: never a keyword.
    Quoted(String),
    Str(String),
    Number(f64),
    Duration(i64),
    Regex(String),
    Sym(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    span: Range<usize>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '@' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '$' | '.' | ':')
}

fn unit_nanos(unit: &str) -> Option<i64> {
    const SEC: i64 = 1_000_000_000;
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => SEC / 1000,
        "s" | "sec" | "secs" | "second" | "seconds" => SEC,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * SEC,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600 * SEC,
        "d" | "day" | "days" => 86_400 * SEC,
        "w" | "week" | "weeks" => 7 * 86_400 * SEC,
        "mo" | "mon" | "mons" | "month" | "months" => 30 * 86_400 * SEC,
        "q" | "qtr" | "qtrs" | "quarter" | "quarters" => 91 * 86_400 * SEC,
        "y" | "yr" | "yrs" | "year" | "years" => 365 * 86_400 * SEC,
        _ => return None,
    })
}

fn lex(text: &str, start: usize, end: usize) -> Result<Vec<Token>, QueryError> {
    let bytes = text.as_bytes();
    let mut tokens: Vec<Token> = Vec::new();
    let mut at = start;
    while at < end {
        let Some(c) = text[at..].chars().next() else {
            break;
        };
        if c.is_whitespace() {
            at += c.len_utf8();
            continue;
        }
        if c == '#' {
            while at < end && bytes[at] != b'\n' {
                at += 1;
            }
            continue;
        }
        let begin = at;
        let operand_before = matches!(
            tokens.last().map(|token| &token.tok),
            Some(
                Tok::Ident(_)
                    | Tok::Quoted(_)
                    | Tok::Str(_)
                    | Tok::Number(_)
                    | Tok::Duration(_)
                    | Tok::Sym(")")
                    | Tok::Sym("]")
            )
        ) && !matches!(tokens.last().map(|token| &token.tok), Some(Tok::Ident(word)) if is_keyword_operator(word))
            && !parse_pattern_next(&tokens);
        let tok = if c == '"' || c == '\'' {
            let (value, next) = lex_string(text, at, c)?;
            at = next;
            Tok::Str(value)
        } else if c == '`' {
            let close = text[at + 1..end]
                .find('`')
                .ok_or_else(|| QueryError::parse(text, at, "unclosed backquote"))?;
            let name = text[at + 1..at + 1 + close].to_string();
            at += close + 2;
            Tok::Quoted(name)
        } else if c == '/' && !operand_before {
            let (pattern, next) = lex_regex(text, at)?;
            at = next;
            Tok::Regex(pattern)
        } else if c.is_ascii_digit()
            || (c == '.' && text[at + 1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            let mut next = at;
            while next < end && (bytes[next].is_ascii_digit() || bytes[next] == b'.') {
                next += 1;
            }
            let number: f64 = text[at..next]
                .parse()
                .map_err(|_| QueryError::parse(text, at, "malformed number"))?;
            let mut unit_end = next;
            while unit_end < end && bytes[unit_end].is_ascii_alphabetic() {
                unit_end += 1;
            }
            if unit_end > next {
                let unit = &text[next..unit_end];
                let nanos = unit_nanos(unit).ok_or_else(|| {
                    QueryError::parse(text, next, format!("unknown time unit `{unit}`"))
                })?;
                at = unit_end;
                Tok::Duration((number * nanos as f64) as i64)
            } else {
                at = next;
                Tok::Number(number)
            }
        } else if is_ident_start(c) {
            let mut next = at;
            for ch in text[at..end].chars() {
                if !is_ident_char(ch) {
                    break;
                }
                next += ch.len_utf8();
            }
            let word = text[at..next].trim_end_matches(['.', ':']);
            at += word.len();
            Tok::Ident(word.to_string())
        } else {
            let rest = &text[at..end];
            let sym = [
                "!=", "<=", ">=", "=~", "|", ",", "(", ")", "[", "]", "=", "<", ">", "+", "-", "*",
                "/", "%", "^",
            ]
            .into_iter()
            .find(|sym| rest.starts_with(sym))
            .ok_or_else(|| QueryError::parse(text, at, format!("unexpected character `{c}`")))?;
            at += sym.len();
            Tok::Sym(sym)
        };
        tokens.push(Token {
            tok,
            span: begin..at,
        });
    }
    tokens.push(Token {
        tok: Tok::End,
        span: end..end,
    });
    Ok(tokens)
}

/// After `parse` or `parse <field>`, a `/` starts the pattern, not a division.
fn parse_pattern_next(tokens: &[Token]) -> bool {
    let is_parse = |token: Option<&Token>| matches!(token.map(|token| &token.tok), Some(Tok::Ident(word)) if word.eq_ignore_ascii_case("parse"));
    let starts_command = |index: usize| {
        index == 0
            || matches!(
                tokens.get(index - 1).map(|token| &token.tok),
                Some(Tok::Sym("|"))
            )
    };
    let count = tokens.len();
    (count >= 1 && is_parse(tokens.get(count - 1)) && starts_command(count - 1))
        || (count >= 2
            && is_parse(tokens.get(count - 2))
            && starts_command(count - 2)
            && matches!(
                tokens.get(count - 1).map(|token| &token.tok),
                Some(Tok::Ident(_) | Tok::Quoted(_))
            ))
}

fn is_keyword_operator(word: &str) -> bool {
    ["and", "or", "not", "like", "in"]
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword))
}

fn lex_string(text: &str, at: usize, quote: char) -> Result<(String, usize), QueryError> {
    let mut value = String::new();
    let mut chars = text[at + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            return Ok((value, at + 1 + offset + 1));
        }
        if c == '\\' {
            match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, escaped)) => value.push(escaped),
                None => break,
            }
        } else {
            value.push(c);
        }
    }
    Err(QueryError::parse(text, at, "unclosed string"))
}

fn lex_regex(text: &str, at: usize) -> Result<(String, usize), QueryError> {
    let mut pattern = String::new();
    let mut chars = text[at + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '/' => return Ok((pattern, at + 1 + offset + 1)),
            '\\' => match chars.next() {
                Some((_, '/')) => pattern.push('/'),
                Some((_, escaped)) => {
                    pattern.push('\\');
                    pattern.push(escaped);
                }
                None => break,
            },
            _ => pattern.push(c),
        }
    }
    Err(QueryError::parse(text, at, "unclosed regular expression"))
}

/// Where the leading full-text search ends: the first `|` outside quotes, or the whole text.
fn search_end(text: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (offset, c) in text.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '|' => return offset,
            _ => {}
        }
    }
    text.len()
}

fn starts_with_command(text: &str) -> bool {
    let first_word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let after = text.trim_start()[first_word.len()..].chars().next();
    COMMANDS
        .iter()
        .any(|command| first_word.eq_ignore_ascii_case(command))
        && after.is_none_or(|c| c.is_whitespace() || c == '|')
}

/// Parses a query.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let mut search = Vec::new();
    let mut rest_start = 0;
    if !starts_with_command(text) {
        let end = search_end(text);
        search = parse_search(text, 0..end)?;
        if end == text.len() {
            return Ok(Query {
                search,
                commands: Vec::new(),
            });
        }
        rest_start = end + 1;
    }
    let tokens = lex(text, rest_start, text.len())?;
    let mut commands = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut segment_start = rest_start;
    for token in tokens {
        let boundary = matches!(token.tok, Tok::Sym("|") | Tok::End);
        if !boundary {
            current.push(token);
            continue;
        }
        if current.is_empty() {
            return Err(QueryError::parse(
                text,
                token.span.start.max(segment_start),
                "expected a command (fields, filter, stats, sort, limit, dedup, parse, display)",
            ));
        }
        let span = token.span.clone();
        current.push(Token {
            tok: Tok::End,
            span: span.start..span.start,
        });
        let mut parser = Parser {
            text,
            tokens: std::mem::take(&mut current),
            at: 0,
            depth: 0,
            nodes: 0,
        };
        commands.push(parser.command()?);
        segment_start = span.end;
    }
    Ok(Query { search, commands })
}

fn parse_search(text: &str, range: Range<usize>) -> Result<Vec<SearchTerm>, QueryError> {
    let mut terms = Vec::new();
    let mut at = range.start;
    let mut negate_next = false;
    while at < range.end {
        let rest = &text[at..range.end];
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            at += c.len_utf8();
            continue;
        }
        if c == '"' || c == '\'' {
            let (value, next) = lex_string(text, at, c)?;
            if next > range.end {
                return Err(QueryError::parse(text, at, "unclosed string"));
            }
            terms.push(SearchTerm {
                text: value,
                phrase: true,
                negated: std::mem::take(&mut negate_next),
            });
            at = next;
            continue;
        }
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_len];
        if word == "NOT" {
            negate_next = true;
        } else if word == "AND" {
        } else if let Some(stripped) = word.strip_prefix('-').filter(|w| !w.is_empty()) {
            terms.push(SearchTerm {
                text: stripped.to_string(),
                phrase: false,
                negated: true,
            });
        } else {
            terms.push(SearchTerm {
                text: word.to_string(),
                phrase: false,
                negated: std::mem::take(&mut negate_next),
            });
        }
        at += word_len;
    }
    if negate_next {
        return Err(QueryError::parse(
            text,
            range.end,
            "NOT needs a term after it",
        ));
    }
    Ok(terms)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
    /// Current nesting (parentheses, `not`, unary minus, `^`).
    depth: usize,
    /// Expression nodes built so far in this command.
    nodes: usize,
}

/// Deepest nesting a command may have.
const MAX_DEPTH: usize = 64;
/// Most operators one command may have (evaluation recurses over them).
const MAX_NODES: usize = 2_000;

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens
            .get(self.at)
            .or_else(|| self.tokens.last())
            .expect("the lexer always ends with End")
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError::parse(
            self.text,
            self.peek().span.start,
            message,
        ))
    }

    fn describe(&self) -> String {
        let token = self.peek();
        match &token.tok {
            Tok::End => "end of command".into(),
            _ => format!("`{}`", &self.text[token.span.clone()]),
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(&self.peek().tok, Tok::Ident(ident) if ident.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn keyword_pair(&mut self, first: &str, second: &str) -> bool {
        let matches = |token: Option<&Token>, word: &str| matches!(token.map(|token| &token.tok), Some(Tok::Ident(ident)) if ident.eq_ignore_ascii_case(word));
        if matches(self.tokens.get(self.at), first) && matches(self.tokens.get(self.at + 1), second)
        {
            self.at += 2;
            true
        } else {
            false
        }
    }

    fn sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek().tok, Tok::Sym(s) if s == sym) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), QueryError> {
        if self.sym(sym) {
            Ok(())
        } else {
            self.error(format!("expected `{sym}`, found {}", self.describe()))
        }
    }

    fn expect_end(&self) -> Result<(), QueryError> {
        if matches!(self.peek().tok, Tok::End) {
            Ok(())
        } else {
            self.error(format!("unexpected {}", self.describe()))
        }
    }

    fn command(&mut self) -> Result<Command, QueryError> {
        let command_token = self.next();
        let Tok::Ident(word) = command_token.tok else {
            return Err(QueryError::parse(
                self.text,
                command_token.span.start,
                "expected a command",
            ));
        };
        let command = match word.to_ascii_lowercase().as_str() {
            "fields" => Command::Fields(self.projections()?),
            "display" => Command::Display(self.projections()?),
            "filter" => Command::Filter(self.expr()?),
            "stats" => {
                let aggs = self.projections_until_by()?;
                for agg in &aggs {
                    if !agg.expr.has_aggregate()
                        && !aggs.iter().any(|other| {
                            let mut mentions = false;
                            agg.expr.fields(&mut |name| mentions |= name == other.name);
                            mentions
                        })
                    {
                        return Err(QueryError::parse(
                            self.text,
                            agg.expr.span.start,
                            "stats needs an aggregate function such as count(), sum() or avg()",
                        ));
                    }
                }
                let by = if self.keyword("by") {
                    self.projections()?
                } else {
                    Vec::new()
                };
                Command::Stats { aggs, by }
            }
            "sort" => {
                let mut keys = Vec::new();
                loop {
                    let expr = self.expr()?;
                    let descending = if self.keyword("desc") {
                        true
                    } else {
                        self.keyword("asc");
                        false
                    };
                    keys.push(SortKey { expr, descending });
                    if !self.sym(",") {
                        break;
                    }
                }
                Command::Sort(keys)
            }
            "limit" | "head" => {
                let token = self.next();
                match token.tok {
                    Tok::Number(n) if n >= 1.0 && n.fract() == 0.0 && n <= MAX_LIMIT as f64 => {
                        Command::Limit(n as usize)
                    }
                    _ => {
                        return Err(QueryError::parse(
                            self.text,
                            token.span.start,
                            format!("limit takes a whole number from 1 to {MAX_LIMIT}"),
                        ));
                    }
                }
            }
            "dedup" => {
                let mut names = Vec::new();
                loop {
                    let token = self.next();
                    match token.tok {
                        Tok::Ident(name) | Tok::Quoted(name) => names.push(name),
                        _ => {
                            return Err(QueryError::parse(
                                self.text,
                                token.span.start,
                                "dedup takes field names",
                            ));
                        }
                    }
                    if !self.sym(",") {
                        break;
                    }
                }
                Command::Dedup(names)
            }
            "parse" => self.parse_command()?,
            other => {
                return Err(QueryError::parse(
                    self.text,
                    command_token.span.start,
                    format!(
                        "unknown command `{other}`; expected fields, filter, stats, sort, limit, dedup, parse or display"
                    ),
                ));
            }
        };
        self.expect_end()?;
        Ok(command)
    }

    fn parse_command(&mut self) -> Result<Command, QueryError> {
        let source = if matches!(self.peek().tok, Tok::Str(_) | Tok::Regex(_)) {
            let span = self.peek().span.clone();
            Expr {
                kind: ExprKind::Field("@message".into()),
                span: span.start..span.start,
            }
        } else {
            self.primary()?
        };
        let token = self.next();
        let pattern = match token.tok {
            Tok::Str(glob) => {
                if !self.keyword("as") {
                    return self.error("a glob pattern needs `as name, ...` for its `*`s");
                }
                let mut outputs = Vec::new();
                loop {
                    let token = self.next();
                    match token.tok {
                        Tok::Ident(name) | Tok::Quoted(name) => outputs.push(name),
                        _ => {
                            return Err(QueryError::parse(
                                self.text,
                                token.span.start,
                                "expected a field name",
                            ));
                        }
                    }
                    if !self.sym(",") {
                        break;
                    }
                }
                let stars = glob.matches('*').count();
                if stars != outputs.len() {
                    return Err(QueryError::parse(
                        self.text,
                        token.span.start,
                        format!(
                            "the pattern has {stars} `*` but {} names follow `as`",
                            outputs.len()
                        ),
                    ));
                }
                let mut regex = String::from("(?s)");
                let pieces: Vec<&str> = glob.split('*').collect();
                for (index, piece) in pieces.iter().enumerate() {
                    regex.push_str(&regex::escape(piece));
                    if index + 1 < pieces.len() {
                        regex.push_str(
                            if index + 2 == pieces.len() && pieces[index + 1].is_empty() {
                                "(.*)"
                            } else {
                                "(.*?)"
                            },
                        );
                    }
                }
                let regex = regex::Regex::new(&regex).map_err(|error| {
                    QueryError::parse(self.text, token.span.start, error.to_string())
                })?;
                ParsePattern { regex, outputs }
            }
            Tok::Regex(pattern) => {
                let regex = compile_regex(self.text, token.span.start, &pattern)?;
                let outputs: Vec<String> = regex
                    .capture_names()
                    .skip(1)
                    .map(|name| name.map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        QueryError::parse(
                            self.text,
                            token.span.start,
                            "every group in a parse regex needs a name: (?<name>...)",
                        )
                    })?;
                if outputs.is_empty() {
                    return Err(QueryError::parse(
                        self.text,
                        token.span.start,
                        "a parse regex needs named groups: (?<name>...)",
                    ));
                }
                ParsePattern { regex, outputs }
            }
            _ => {
                return Err(QueryError::parse(
                    self.text,
                    token.span.start,
                    "parse needs a \"glob * pattern\" or a /regex/",
                ));
            }
        };
        Ok(Command::Parse { source, pattern })
    }

    fn projections_until_by(&mut self) -> Result<Vec<Projection>, QueryError> {
        let mut items = Vec::new();
        loop {
            items.push(self.projection()?);
            if !self.sym(",") {
                break;
            }
        }
        Ok(items)
    }

    fn projections(&mut self) -> Result<Vec<Projection>, QueryError> {
        self.projections_until_by()
    }

    fn projection(&mut self) -> Result<Projection, QueryError> {
        let expr = self.expr()?;
        let name = if self.keyword("as") {
            let token = self.next();
            match token.tok {
                Tok::Ident(name) | Tok::Quoted(name) => name,
                _ => {
                    return Err(QueryError::parse(
                        self.text,
                        token.span.start,
                        "expected a name after `as`",
                    ));
                }
            }
        } else {
            match &expr.kind {
                ExprKind::Field(name) => name.clone(),
                _ => self.text[expr.span.clone()].trim().to_string(),
            }
        };
        Ok(Projection { expr, name })
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        self.nested(Self::or)
    }

    /// Runs `inner` one level deeper, refusing queries that nest or chain beyond the limits
    /// (parsing and evaluation recurse over the expression).
    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        self.depth += 1;
        self.nodes += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!(
                "the expression nests more than {MAX_DEPTH} levels deep"
            ));
        }
        if self.nodes > MAX_NODES {
            return self.error(format!("the command has more than {MAX_NODES} operators"));
        }
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn count_node(&mut self) -> Result<(), QueryError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return self.error(format!("the command has more than {MAX_NODES} operators"));
        }
        Ok(())
    }

    fn binary(left: Expr, op: BinaryOp, right: Expr) -> Expr {
        let span = left.span.start..right.span.end;
        Expr {
            kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
            span,
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            let right = self.and()?;
            self.count_node()?;
            left = Self::binary(left, BinaryOp::Or, right);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            let right = self.not()?;
            self.count_node()?;
            left = Self::binary(left, BinaryOp::And, right);
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, QueryError> {
        let start = self.peek().span.start;
        if self.keyword("not") {
            let inner = self.nested(Self::not)?;
            let span = start..inner.span.end;
            return Ok(Expr {
                kind: ExprKind::Unary(UnaryOp::Not, Box::new(inner)),
                span,
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.additive()?;
        let op = if self.sym("=") {
            BinaryOp::Eq
        } else if self.sym("!=") {
            BinaryOp::Ne
        } else if self.sym("<=") {
            BinaryOp::Le
        } else if self.sym(">=") {
            BinaryOp::Ge
        } else if self.sym("<") {
            BinaryOp::Lt
        } else if self.sym(">") {
            BinaryOp::Gt
        } else if self.sym("=~") || self.keyword("like") {
            BinaryOp::Like
        } else if self.keyword_pair("not", "like") {
            BinaryOp::NotLike
        } else if self.keyword("in") {
            BinaryOp::In
        } else if self.keyword_pair("not", "in") {
            BinaryOp::NotIn
        } else {
            return Ok(left);
        };
        let right = match op {
            BinaryOp::In | BinaryOp::NotIn => self.list()?,
            BinaryOp::Like | BinaryOp::NotLike => {
                let token = self.peek().clone();
                match token.tok {
                    Tok::Str(_) | Tok::Regex(_) => self.primary()?,
                    _ => {
                        return self.error(format!(
                            "like needs a \"string\" or a /regex/, found {}",
                            self.describe()
                        ));
                    }
                }
            }
            _ => self.additive()?,
        };
        Ok(Self::binary(left, op, right))
    }

    fn list(&mut self) -> Result<Expr, QueryError> {
        let start = self.peek().span.start;
        self.expect_sym("[")?;
        let mut items = Vec::new();
        if !self.sym("]") {
            loop {
                items.push(self.additive()?);
                if self.sym("]") {
                    break;
                }
                self.expect_sym(",")?;
            }
        }
        let end = self
            .tokens
            .get(self.at.saturating_sub(1))
            .map_or(start, |t| t.span.end);
        Ok(Expr {
            kind: ExprKind::List(items),
            span: start..end,
        })
    }

    fn additive(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.sym("+") {
                BinaryOp::Add
            } else if self.sym("-") {
                BinaryOp::Sub
            } else {
                return Ok(left);
            };
            let right = self.multiplicative()?;
            self.count_node()?;
            left = Self::binary(left, op, right);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.power()?;
        loop {
            let op = if self.sym("*") {
                BinaryOp::Mul
            } else if self.sym("/") {
                BinaryOp::Div
            } else if self.sym("%") {
                BinaryOp::Rem
            } else {
                return Ok(left);
            };
            let right = self.power()?;
            self.count_node()?;
            left = Self::binary(left, op, right);
        }
    }

    fn power(&mut self) -> Result<Expr, QueryError> {
        let base = self.unary()?;
        if self.sym("^") {
            let exponent = self.nested(Self::power)?;
            return Ok(Self::binary(base, BinaryOp::Pow, exponent));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        let start = self.peek().span.start;
        if self.sym("-") {
            let inner = self.nested(Self::unary)?;
            let span = start..inner.span.end;
            return Ok(Expr {
                kind: ExprKind::Unary(UnaryOp::Neg, Box::new(inner)),
                span,
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let token = self.next();
        let span = token.span.clone();
        let kind = match token.tok {
            Tok::Str(value) => ExprKind::Str(value),
            Tok::Number(value) => ExprKind::Number(value),
            Tok::Duration(nanos) => ExprKind::Duration(nanos),
            Tok::Regex(pattern) => {
                ExprKind::Regex(RegexLit(compile_regex(self.text, span.start, &pattern)?))
            }
            Tok::Quoted(name) => ExprKind::Field(name),
            Tok::Sym("(") => {
                let inner = self.expr()?;
                self.expect_sym(")")?;
                let end = self
                    .tokens
                    .get(self.at.saturating_sub(1))
                    .map_or(span.end, |t| t.span.end);
                return Ok(Expr {
                    kind: inner.kind,
                    span: span.start..end,
                });
            }
            Tok::Ident(name) => {
                if self.sym("(") {
                    if !crate::eval::is_known_function(&name) {
                        return Err(QueryError::parse(
                            self.text,
                            span.start,
                            format!("unknown function `{name}`"),
                        ));
                    }
                    let mut args = Vec::new();
                    if !self.sym(")") {
                        loop {
                            if self.sym("*") {
                                args.push(Expr {
                                    kind: ExprKind::Star,
                                    span: self.tokens[self.at - 1].span.clone(),
                                });
                            } else {
                                args.push(self.expr()?);
                            }
                            if self.sym(")") {
                                break;
                            }
                            self.expect_sym(",")?;
                        }
                    }
                    let end = self
                        .tokens
                        .get(self.at.saturating_sub(1))
                        .map_or(span.end, |t| t.span.end);
                    return Ok(Expr {
                        kind: ExprKind::Call(name.to_ascii_lowercase(), args),
                        span: span.start..end,
                    });
                }
                if is_keyword_operator(&name)
                    || ["by", "as", "asc", "desc"]
                        .iter()
                        .any(|k| name.eq_ignore_ascii_case(k))
                {
                    return Err(QueryError::parse(
                        self.text,
                        span.start,
                        format!("expected a field or value, found `{name}`"),
                    ));
                }
                ExprKind::Field(name)
            }
            Tok::End => {
                return Err(QueryError::parse(
                    self.text,
                    span.start,
                    "expression ends too early",
                ));
            }
            _ => {
                return Err(QueryError::parse(
                    self.text,
                    span.start,
                    format!("expected a field or value, found `{}`", &self.text[span]),
                ));
            }
        };
        Ok(Expr { kind, span })
    }
}

fn compile_regex(text: &str, at: usize, pattern: &str) -> Result<regex::Regex, QueryError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|error| {
            QueryError::parse(text, at, format!("invalid regular expression: {error}"))
        })
}
