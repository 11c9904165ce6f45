//! The text filter language: what users type in a search box, e.g.
//! `status:new score>=60 owner:me created>2025-01-01 "acme roofing"`.
//!
//! [`parse`] turns it into the same [`Filter`] tree as typed filters, with **raw** values: every value is
//! `Value::Text` holding the text as typed (unquoted, unescaped); [`super::bind`] later resolves field
//! names and types the values by field. [`to_text`] prints a tree back (the inverse of [`parse`]).
//!
//! # Language
//!
//! | Input                        | Filter                                                     |
//! |------------------------------|------------------------------------------------------------|
//! | `status:new`, `status=new`   | `Cmp { status, Eq, "new" }`                                |
//! | `status!=new`                | `Cmp { status, Ne, "new" }`                                |
//! | `score>=60` `score>60` `score<=60` `score<60` | `Cmp` with `Ge`, `Gt`, `Le`, `Lt`         |
//! | `name~smith`                 | `Cmp { name, Contains, "smith" }` (substring / list has)   |
//! | `name^smi`                   | `Cmp { name, StartsWith, "smi" }`                          |
//! | `source:web,referral`        | `In { source, ["web", "referral"] }`                       |
//! | `source!=web,referral`       | `Not(In { .. })`                                           |
//! | `email:*`                    | `Not(IsNull { email })`: has a value                       |
//! | `-email:*`, `email!=*`       | `IsNull { email }`: has no value                           |
//! | `company:"Acme Roofing"`     | quoted value; `\"` and `\\` are the only escapes           |
//! | `acme`, `"acme roofing"`     | `Search(..)`: free text over the entity's search fields   |
//! | `-term`, `NOT term`          | `Not(term)` (double negation cancels out)                  |
//! | `a b`, `a AND b`             | `And([a, b])`                                              |
//! | `a OR b`                     | `Or([a, b])`; AND binds tighter than OR                    |
//! | `(a OR b) c`                 | parentheses group                                          |
//! | empty or only whitespace     | `All`                                                      |
//!
//! ```text
//! query   := or?                                  (surrounding whitespace ignored)
//! or      := and ( "OR" and )*
//! and     := unary ( "AND"? unary )*              (terms separated by whitespace)
//! unary   := ( "-" | "NOT" )* primary             ("-" directly before its term)
//! primary := "(" or ")" | term
//! term    := field op values | phrase | word
//! field   := [A-Za-z] [A-Za-z0-9_.]*              (e.g. custom.roof_type)
//! op      := ":" | "=" | "!=" | ">=" | "<=" | ">" | "<" | "~" | "^"
//! values  := value ( "," value )*                 (lists only after ":", "=", "!=")
//! value   := phrase | [^ whitespace ( ) " ,]+     (a bare "*" means "has a value")
//! phrase  := '"' ( [^"\\] | '\"' | '\\' )* '"'
//! word    := [^ whitespace ( ) "]+                (not starting with "-" or an operator)
//! ```
//!
//! Details:
//! - `OR`, `AND` and `NOT` are keywords only in upper case and as whole words, so `or` and `oregon` are
//!   searched as text; quote a keyword to search for it (`"OR"`).
//! - A word is a field term only when it starts with a field name immediately followed by an operator;
//!   otherwise it is free text (`10:30`, `e-mail:x`). No spaces around the operator: `score >= 60` is an
//!   error. Quote free text that looks like a field term: `"re:invoice"`.
//! - A bare value runs until whitespace, `(`, `)` or `,`; quote values containing those or `"`. Inside
//!   quotes `\"` is a quote and `\\` a backslash; any other backslash is kept literally. A quoted `"*"`
//!   is the literal text `*`.
//! - Terms must be separated by whitespace or parentheses: `(a)(b)` is fine, but `a(b)` and `"a"b` are
//!   errors (quote values containing `(`, `)` or `"`).
//! - Limits: at most [`MAX_QUERY_LEN`] bytes ([`Error::LimitExceeded`] "query length"), at most
//!   [`MAX_FILTER_NODES`] terms ([`Error::LimitExceeded`] "filter terms"), and parentheses nested at
//!   most [`MAX_FILTER_DEPTH`] deep ([`Error::InvalidQuery`]).
//! - Every syntax error is an [`Error::InvalidQuery`] whose `position` is the byte offset (always a char
//!   boundary) to underline: the opening quote of an unterminated quote, the unclosed `(` or unmatched
//!   `)`, the operator missing a value (`score>=`) or a field (`>=5`), the `OR`/`AND`/`NOT`/`-` missing a
//!   term, the `(` of empty parentheses.
//!
//! ```
//! use crm_core::query::{Filter, Op, text};
//! use crm_core::value::Value;
//!
//! let f = text::parse(r#"(status:new OR status:contacted) score>=60 "acme roofing""#).unwrap();
//! assert_eq!(
//!     f,
//!     Filter::And(vec![
//!         Filter::Or(vec![Filter::eq("status", "new"), Filter::eq("status", "contacted")]),
//!         Filter::cmp("score", Op::Ge, "60"),
//!         Filter::Search("acme roofing".into()),
//!     ])
//! );
//! assert_eq!(text::parse("email:*").unwrap(), Filter::Not(Box::new(Filter::IsNull { field: "email".into() })));
//! assert_eq!(text::to_text(&f).unwrap(), r#"(status:new OR status:contacted) score>=60 "acme roofing""#);
//! assert!(text::parse("score>=").is_err());
//! ```

use super::{Filter, MAX_FILTER_DEPTH, MAX_FILTER_NODES, Op};
use crate::error::{Error, Result};
use crate::value::Value;

/// Longest accepted query, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;

/// Parses the text filter language (see the [module docs](self)). Never panics; errors carry the byte
/// position of the problem.
pub fn parse(input: &str) -> Result<Filter> {
    parse_spanned(input).map(|(f, _)| f)
}

/// Where one term of a text query stands, for errors found after parsing ([`super::bind_text`]):
/// byte offsets of its field name (or its free text) and of each of its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub field: usize,
    pub values: Vec<usize>,
}

/// [`parse`], also returning the [`Span`] of every term: one per leaf of the tree (`Cmp`, `In`,
/// `IsNull`, `Search`), in the order a depth-first, left-to-right walk meets them.
pub fn parse_spanned(input: &str) -> Result<(Filter, Vec<Span>)> {
    if input.len() > MAX_QUERY_LEN {
        return Err(Error::LimitExceeded {
            what: "query length".into(),
            limit: MAX_QUERY_LEN as u64,
        });
    }
    let (toks, spans) = Lexer::run(input)?;
    if toks.is_empty() {
        return Ok((Filter::All, spans));
    }
    let mut p = Parser {
        toks: toks.into_iter().peekable(),
        len: input.len(),
    };
    let f = p.or_expr(0)?;
    match p.toks.next() {
        None => Ok((f, spans)),
        Some(t) => Err(Error::invalid_query("unmatched `)`", t.pos)),
    }
}

/// Prints a filter in the text language, such that `parse(&to_text(f)?) == Ok(f.clone())`.
///
/// Returns `None` for trees the language cannot express or that [`parse`] would never produce: non-text
/// values, invalid field names, `In` with fewer than two values, nested `All`, `Not(Not(..))`, an `And`
/// directly in an `And` (or `Or` in an `Or`), one-element `And`/`Or`, or a result beyond the limits.
pub fn to_text(f: &Filter) -> Option<String> {
    if let Filter::All = f {
        return Some(String::new());
    }
    let mut p = Printer {
        out: String::new(),
        terms: 0,
    };
    p.or_level(f, 0)?;
    (p.out.len() <= MAX_QUERY_LEN && p.terms <= MAX_FILTER_NODES).then_some(p.out)
}

// ---------------------------------------------------------------------------------------------------
// Shared lexical rules (the printer relies on the same ones to decide what needs quoting).

/// The operator at the start of `s` (longest match first) and its spelling.
fn op_at(s: &str) -> Option<(Op, &'static str)> {
    const OPS: [(&str, Op); 9] = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
        (":", Op::Eq),
        ("~", Op::Contains),
        ("^", Op::StartsWith),
    ];
    OPS.iter().find(|(t, _)| s.starts_with(t)).map(|&(t, op)| (op, t))
}

/// Length in bytes of the field name at the start of `s` (0 if none).
fn field_name_len(s: &str) -> usize {
    let b = s.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    b.iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.'))
        .unwrap_or(b.len())
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty() && field_name_len(s) == s.len()
}

/// Ends a bare word (free text or keyword).
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

/// Ends a bare value.
fn ends_value(c: char) -> bool {
    ends_word(c) || c == ','
}

fn keyword(w: &str) -> Option<Kind> {
    match w {
        "AND" => Some(Kind::And),
        "OR" => Some(Kind::Or),
        "NOT" => Some(Kind::Not),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------
// Lexer: the input as a flat list of tokens; terms (field terms, phrases, words) are complete filters.

#[derive(Debug)]
enum Kind {
    Open,
    Close,
    Minus,
    And,
    Or,
    Not,
    Term(Filter),
}

#[derive(Debug)]
struct Token {
    pos: usize,
    kind: Kind,
}

struct Lexer<'a> {
    s: &'a str,
    /// Byte offset; always on a char boundary.
    i: usize,
    toks: Vec<Token>,
    /// One per term, in input order.
    spans: Vec<Span>,
    terms: usize,
}

impl<'a> Lexer<'a> {
    fn run(s: &'a str) -> Result<(Vec<Token>, Vec<Span>)> {
        let mut lx = Lexer {
            s,
            i: 0,
            toks: Vec::new(),
            spans: Vec::new(),
            terms: 0,
        };
        loop {
            lx.skip_while(char::is_whitespace);
            let start = lx.i;
            let Some(c) = lx.peek() else { break };
            match c {
                '(' => {
                    lx.i += 1;
                    lx.toks.push(Token {
                        pos: start,
                        kind: Kind::Open,
                    });
                }
                ')' => {
                    lx.i += 1;
                    lx.toks.push(Token {
                        pos: start,
                        kind: Kind::Close,
                    });
                    lx.expect_separator(true)?;
                }
                '-' => {
                    lx.i += 1;
                    match lx.peek() {
                        Some(n) if !n.is_whitespace() && n != ')' => {}
                        _ => {
                            return Err(Error::invalid_query("`-` must be directly followed by a term", start));
                        }
                    }
                    lx.toks.push(Token {
                        pos: start,
                        kind: Kind::Minus,
                    });
                }
                '"' => {
                    let text = lx.quoted()?;
                    lx.term(Filter::Search(text), start, vec![start])?;
                    lx.expect_separator(false)?;
                }
                _ => lx.word(start)?,
            }
        }
        Ok((lx.toks, lx.spans))
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.i..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Advances over chars matching `f`; returns the text passed over.
    fn skip_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.char_indices().find(|&(_, c)| !f(c)).map_or(rest.len(), |(k, _)| k);
        self.i += n;
        rest.get(..n).unwrap_or("")
    }

    /// After a term, keyword or `)`: whitespace, `)`, the end, or (after a keyword or `)`) `(`.
    fn expect_separator(&self, open_ok: bool) -> Result<()> {
        match self.peek() {
            None | Some(')') => Ok(()),
            Some(c) if c.is_whitespace() => Ok(()),
            Some('(') if open_ok => Ok(()),
            Some('"') => Err(Error::invalid_query(
                "unexpected `\"`: a quote must start a term or a value; quote the whole value",
                self.i,
            )),
            Some(c) => Err(Error::invalid_query(
                format!("unexpected `{c}`: separate terms with a space, or quote the value"),
                self.i,
            )),
        }
    }

    fn term(&mut self, f: Filter, pos: usize, values: Vec<usize>) -> Result<()> {
        self.terms += 1;
        if self.terms > MAX_FILTER_NODES {
            return Err(Error::LimitExceeded {
                what: "filter terms".into(),
                limit: MAX_FILTER_NODES as u64,
            });
        }
        self.toks.push(Token {
            pos,
            kind: Kind::Term(f),
        });
        self.spans.push(Span { field: pos, values });
        Ok(())
    }

    /// A quoted string starting at the current `"`; returns its unescaped content.
    fn quoted(&mut self) -> Result<String> {
        let open = self.i;
        let body = self.s.get(open + 1..).unwrap_or("");
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.i = open + 1 + k + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(Error::invalid_query("unterminated quote", open))
    }

    /// A keyword, a field term or a free-text word starting at `start`.
    fn word(&mut self, start: usize) -> Result<()> {
        let rest = self.rest();
        if let Some((_, t)) = op_at(rest) {
            return Err(Error::invalid_query(
                format!("`{t}` needs a field name before it"),
                start,
            ));
        }
        let n = field_name_len(rest);
        if n > 0
            && let Some((op, t)) = rest.get(n..).and_then(op_at)
        {
            return self.field_term(start, n, op, t);
        }
        let w = self.skip_while(|c| !ends_word(c));
        match keyword(w) {
            Some(kind) => {
                self.toks.push(Token { pos: start, kind });
                self.expect_separator(true)
            }
            None => {
                self.term(Filter::Search(w.to_owned()), start, vec![start])?;
                self.expect_separator(false)
            }
        }
    }

    /// `field op value[,value...]` with the field name `n` bytes long at `start`.
    fn field_term(&mut self, start: usize, n: usize, op: Op, op_text: &'static str) -> Result<()> {
        let field = self.s.get(start..start + n).unwrap_or("").to_owned();
        let op_pos = start + n;
        self.i = op_pos + op_text.len();
        let list_ok = matches!(op, Op::Eq | Op::Ne);
        // (text, quoted, position)
        let mut items: Vec<(String, bool, usize)> = Vec::new();
        loop {
            let pos = self.i;
            let item = if self.peek() == Some('"') {
                (self.quoted()?, true, pos)
            } else {
                (self.skip_while(|c| !ends_value(c)).to_owned(), false, pos)
            };
            if !item.1 && item.0.is_empty() {
                if items.is_empty() && self.peek() != Some(',') {
                    return Err(Error::invalid_query(
                        format!("`{op_text}` needs a value after it"),
                        op_pos,
                    ));
                }
                return Err(Error::invalid_query("empty value in the list", pos));
            }
            items.push(item);
            if self.peek() != Some(',') {
                break;
            }
            if !list_ok {
                return Err(Error::invalid_query(
                    format!(
                        "only `:`, `=` and `!=` take a list of values, not `{op_text}`; quote a value containing `,`"
                    ),
                    self.i,
                ));
            }
            self.i += 1;
        }
        if let Some((_, _, pos)) = items.iter().find(|(v, quoted, _)| !quoted && v == "*") {
            if items.len() > 1 {
                return Err(Error::invalid_query(
                    "`*` (has a value) cannot be part of a list; quote it",
                    *pos,
                ));
            }
            let f = match op {
                Op::Eq => Filter::Not(Box::new(Filter::IsNull { field })),
                Op::Ne => Filter::IsNull { field },
                _ => {
                    return Err(Error::invalid_query(
                        format!("`*` (has a value) only goes with `:`, `=` or `!=`, not `{op_text}`; quote it"),
                        *pos,
                    ));
                }
            };
            self.term(f, start, vec![*pos])?;
            return self.expect_separator(false);
        }
        let positions = items.iter().map(|(_, _, pos)| *pos).collect();
        let mut values: Vec<Value> = items.into_iter().map(|(v, _, _)| Value::Text(v)).collect();
        let f = if values.len() == 1 {
            let value = values.pop().unwrap_or_default();
            Filter::Cmp { field, op, value }
        } else if op == Op::Ne {
            Filter::Not(Box::new(Filter::In { field, values }))
        } else {
            Filter::In { field, values }
        };
        self.term(f, start, positions)?;
        self.expect_separator(false)
    }
}

// ---------------------------------------------------------------------------------------------------
// Parser: precedence climbing over the tokens. Recursion only through parentheses, which are capped.

struct Parser {
    toks: std::iter::Peekable<std::vec::IntoIter<Token>>,
    len: usize,
}

/// `Not`, cancelling a double negation.
fn negate(f: Filter) -> Filter {
    match f {
        Filter::Not(inner) => *inner,
        f => Filter::Not(Box::new(f)),
    }
}

/// Disjunction that flattens nested `Or`s; one part is returned as is.
fn or_of(parts: Vec<Filter>) -> Filter {
    let mut v = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Filter::Or(inner) => v.extend(inner),
            p => v.push(p),
        }
    }
    if v.len() == 1 {
        v.pop().unwrap_or(Filter::All)
    } else {
        Filter::Or(v)
    }
}

impl Parser {
    fn peek_kind(&mut self) -> Option<&Kind> {
        self.toks.peek().map(|t| &t.kind)
    }

    fn starts_unary(&mut self) -> bool {
        matches!(
            self.peek_kind(),
            Some(Kind::Open | Kind::Minus | Kind::Not | Kind::Term(_))
        )
    }

    fn or_expr(&mut self, depth: usize) -> Result<Filter> {
        let mut parts = vec![self.and_expr(depth)?];
        while let Some(Token { kind: Kind::Or, pos }) = self.toks.peek() {
            let pos = *pos;
            self.toks.next();
            if !self.starts_unary() {
                return Err(Error::invalid_query("`OR` needs a term after it", pos));
            }
            parts.push(self.and_expr(depth)?);
        }
        Ok(or_of(parts))
    }

    fn and_expr(&mut self, depth: usize) -> Result<Filter> {
        let mut parts = Vec::new();
        loop {
            match self.toks.peek() {
                Some(Token {
                    kind: kind @ (Kind::And | Kind::Or),
                    pos,
                }) if parts.is_empty() => {
                    let kw = if matches!(kind, Kind::And) { "AND" } else { "OR" };
                    return Err(Error::invalid_query(format!("`{kw}` needs a term before it"), *pos));
                }
                Some(Token { kind: Kind::And, pos }) => {
                    let pos = *pos;
                    self.toks.next();
                    if !self.starts_unary() {
                        return Err(Error::invalid_query("`AND` needs a term after it", pos));
                    }
                }
                Some(Token { kind: Kind::Close, pos }) if parts.is_empty() => {
                    return Err(Error::invalid_query("unmatched `)`", *pos));
                }
                Some(Token {
                    kind: Kind::Or | Kind::Close,
                    ..
                }) => break,
                None if parts.is_empty() => {
                    return Err(Error::invalid_query("expected a term", self.len));
                }
                None => break,
                Some(_) => {}
            }
            parts.push(self.unary(depth)?);
        }
        Ok(Filter::and(parts))
    }

    fn unary(&mut self, depth: usize) -> Result<Filter> {
        let mut negated = false;
        while let Some(Token {
            kind: kind @ (Kind::Minus | Kind::Not),
            pos,
        }) = self.toks.peek()
        {
            let (what, pos) = (if matches!(kind, Kind::Minus) { "-" } else { "NOT" }, *pos);
            self.toks.next();
            negated = !negated;
            if !self.starts_unary() {
                return Err(Error::invalid_query(format!("`{what}` needs a term after it"), pos));
            }
        }
        let f = self.primary(depth)?;
        Ok(if negated { negate(f) } else { f })
    }

    fn primary(&mut self, depth: usize) -> Result<Filter> {
        match self.toks.next() {
            Some(Token {
                kind: Kind::Term(f), ..
            }) => Ok(f),
            Some(Token { kind: Kind::Open, pos }) => {
                if depth >= MAX_FILTER_DEPTH {
                    return Err(Error::invalid_query(
                        format!("parentheses nested deeper than {MAX_FILTER_DEPTH}"),
                        pos,
                    ));
                }
                match self.peek_kind() {
                    Some(Kind::Close) => {
                        return Err(Error::invalid_query("empty parentheses", pos));
                    }
                    None => return Err(Error::invalid_query("unclosed `(`", pos)),
                    _ => {}
                }
                let f = self.or_expr(depth + 1)?;
                match self.toks.next() {
                    Some(Token { kind: Kind::Close, .. }) => Ok(f),
                    _ => Err(Error::invalid_query("unclosed `(`", pos)),
                }
            }
            Some(Token { kind: Kind::Close, pos }) => Err(Error::invalid_query("unmatched `)`", pos)),
            Some(Token { pos, .. }) => Err(Error::invalid_query("expected a term", pos)),
            None => Err(Error::invalid_query("expected a term", self.len)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Printer.

struct Printer {
    out: String,
    terms: usize,
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => ":",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Contains => "~",
        Op::StartsWith => "^",
    }
}

/// Would `s`, unquoted at the start of a term, lex as the free-text word `s`?
fn is_bare_word(s: &str) -> bool {
    let n = field_name_len(s);
    let field_term = n > 0 && s.get(n..).and_then(op_at).is_some();
    let special = s.contains(ends_word) || s.starts_with('-') || keyword(s).is_some() || op_at(s).is_some();
    !s.is_empty() && !special && !field_term
}

/// Would `s`, unquoted after `op`, lex as the value `s`?
fn is_bare_value(op: Op, s: &str) -> bool {
    // `<` + `=5` would read as `<=` + `5`.
    let merges_with_op = matches!(op, Op::Lt | Op::Gt) && s.starts_with('=');
    !s.is_empty() && s != "*" && !s.contains(ends_value) && !merges_with_op
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

impl Printer {
    fn or_level(&mut self, f: &Filter, depth: usize) -> Option<()> {
        match f {
            Filter::Or(v) => {
                if v.len() < 2 {
                    return None;
                }
                for (k, g) in v.iter().enumerate() {
                    if matches!(g, Filter::Or(_)) {
                        return None;
                    }
                    if k > 0 {
                        self.out.push_str(" OR ");
                    }
                    self.and_level(g, depth)?;
                }
                Some(())
            }
            f => self.and_level(f, depth),
        }
    }

    fn and_level(&mut self, f: &Filter, depth: usize) -> Option<()> {
        match f {
            Filter::And(v) => {
                if v.len() < 2 {
                    return None;
                }
                for (k, g) in v.iter().enumerate() {
                    if matches!(g, Filter::And(_)) {
                        return None;
                    }
                    if k > 0 {
                        self.out.push(' ');
                    }
                    self.unary_level(g, depth)?;
                }
                Some(())
            }
            f => self.unary_level(f, depth),
        }
    }

    fn unary_level(&mut self, f: &Filter, depth: usize) -> Option<()> {
        match f {
            Filter::All => None,
            Filter::Not(inner) => match &**inner {
                Filter::Not(_) | Filter::All => None,
                Filter::IsNull { field } if is_field_name(field) => {
                    self.terms += 1;
                    self.out.push_str(field);
                    self.out.push_str(":*");
                    Some(())
                }
                g => {
                    self.out.push('-');
                    self.unary_level(g, depth)
                }
            },
            Filter::And(_) | Filter::Or(_) => {
                if depth >= MAX_FILTER_DEPTH {
                    return None;
                }
                self.out.push('(');
                self.or_level(f, depth + 1)?;
                self.out.push(')');
                Some(())
            }
            leaf => self.term(leaf),
        }
    }

    fn term(&mut self, f: &Filter) -> Option<()> {
        self.terms += 1;
        match f {
            Filter::Cmp {
                field,
                op,
                value: Value::Text(v),
            } if is_field_name(field) => {
                self.out.push_str(field);
                self.out.push_str(op_text(*op));
                self.value(*op, v);
            }
            Filter::In { field, values } if is_field_name(field) && values.len() >= 2 => {
                self.out.push_str(field);
                self.out.push(':');
                for (k, v) in values.iter().enumerate() {
                    let Value::Text(v) = v else { return None };
                    if k > 0 {
                        self.out.push(',');
                    }
                    self.value(Op::Eq, v);
                }
            }
            Filter::IsNull { field } if is_field_name(field) => {
                self.out.push('-');
                self.out.push_str(field);
                self.out.push_str(":*");
            }
            Filter::Search(s) if is_bare_word(s) => self.out.push_str(s),
            Filter::Search(s) => push_quoted(&mut self.out, s),
            _ => return None,
        }
        Some(())
    }

    fn value(&mut self, op: Op, v: &str) {
        if is_bare_value(op, v) {
            self.out.push_str(v);
        } else {
            push_quoted(&mut self.out, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
    fn eq(f: &str, v: &str) -> Filter {
        Filter::eq(f, v)
    }
    fn cmp(f: &str, op: Op, v: &str) -> Filter {
        Filter::cmp(f, op, v)
    }
    fn search(s: &str) -> Filter {
        Filter::Search(s.to_owned())
    }
    fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }
    fn null(f: &str) -> Filter {
        Filter::IsNull { field: f.to_owned() }
    }
    fn p(s: &str) -> Filter {
        match parse(s) {
            Ok(f) => f,
            Err(e) => panic!("parse({s:?}) failed: {e}"),
        }
    }
    /// The error position and message of a failing parse.
    fn err(s: &str) -> (usize, String) {
        match parse(s) {
            Err(Error::InvalidQuery { message, position }) => (position, message),
            other => panic!("parse({s:?}) = {other:?}, expected InvalidQuery"),
        }
    }
    fn err_at(s: &str, pos: usize, needle: &str) {
        let (p, m) = err(s);
        assert_eq!(p, pos, "position for {s:?} ({m})");
        assert!(m.contains(needle), "message for {s:?}: {m:?} lacks {needle:?}");
    }

    #[test]
    fn empty_is_all() {
        assert_eq!(p(""), Filter::All);
        assert_eq!(p("  \t\n "), Filter::All);
        assert_eq!(p("\u{a0}\u{3000}"), Filter::All);
    }

    #[test]
    fn single_term_is_not_wrapped() {
        assert_eq!(p("status:new"), eq("status", "new"));
        assert_eq!(p("  status:new  "), eq("status", "new"));
        assert_eq!(p("(status:new)"), eq("status", "new"));
        assert_eq!(p("((acme))"), search("acme"));
    }

    #[test]
    fn brief_example() {
        assert_eq!(
            p(r#"status:new score>=60 owner:me created>2025-01-01 "acme roofing""#),
            Filter::And(vec![
                eq("status", "new"),
                cmp("score", Op::Ge, "60"),
                eq("owner", "me"),
                cmp("created", Op::Gt, "2025-01-01"),
                search("acme roofing"),
            ])
        );
    }

    #[test]
    fn operators() {
        assert_eq!(p("a:1"), cmp("a", Op::Eq, "1"));
        assert_eq!(p("a=1"), cmp("a", Op::Eq, "1"));
        assert_eq!(p("a!=1"), cmp("a", Op::Ne, "1"));
        assert_eq!(p("a>=1"), cmp("a", Op::Ge, "1"));
        assert_eq!(p("a<=1"), cmp("a", Op::Le, "1"));
        assert_eq!(p("a>1"), cmp("a", Op::Gt, "1"));
        assert_eq!(p("a<1"), cmp("a", Op::Lt, "1"));
        assert_eq!(p("a~smith"), cmp("a", Op::Contains, "smith"));
        assert_eq!(p("a^smi"), cmp("a", Op::StartsWith, "smi"));
        // The value is everything up to the separator, operators included.
        assert_eq!(p("a:>5"), cmp("a", Op::Eq, ">5"));
        assert_eq!(p("a>-5"), cmp("a", Op::Gt, "-5"));
        assert_eq!(p("website:http://x.test/a?b=c"), eq("website", "http://x.test/a?b=c"));
        assert_eq!(p("a!==x"), cmp("a", Op::Ne, "=x"));
    }

    #[test]
    fn field_names() {
        assert_eq!(p("custom.roof_type:metal"), eq("custom.roof_type", "metal"));
        assert_eq!(p("A9_b.c:x"), eq("A9_b.c", "x"));
        // Keywords are fields when followed by an operator.
        assert_eq!(p("OR:x"), eq("OR", "x"));
        // Not a field name: free text.
        assert_eq!(p("10:30"), search("10:30"));
        assert_eq!(p("_a:b"), search("_a:b"));
        assert_eq!(p("e-mail:x"), search("e-mail:x"));
        assert_eq!(p("ünï:x"), search("ünï:x"));
        // A quoted phrase is never a field term.
        assert_eq!(p(r#""re:invoice""#), search("re:invoice"));
    }

    #[test]
    fn lists() {
        assert_eq!(
            p("source:referral,website,door_knock"),
            Filter::In {
                field: "source".into(),
                values: vec![t("referral"), t("website"), t("door_knock")]
            }
        );
        assert_eq!(
            p(r#"city="New York",Paris"#),
            Filter::In {
                field: "city".into(),
                values: vec![t("New York"), t("Paris")]
            }
        );
        assert_eq!(
            p("a!=x,y"),
            not(Filter::In {
                field: "a".into(),
                values: vec![t("x"), t("y")]
            })
        );
        assert_eq!(p(r#"a:"x,y""#), eq("a", "x,y"));
        assert_eq!(
            p(r#"a:"","*""#),
            Filter::In {
                field: "a".into(),
                values: vec![t(""), t("*")]
            }
        );
        // Commas in free text are just text.
        assert_eq!(p("a,b"), search("a,b"));
    }

    #[test]
    fn presence() {
        assert_eq!(p("email:*"), not(null("email")));
        assert_eq!(p("email=*"), not(null("email")));
        assert_eq!(p("-email:*"), null("email"));
        assert_eq!(p("NOT email:*"), null("email"));
        assert_eq!(p("email!=*"), null("email"));
        assert_eq!(p("-email!=*"), not(null("email")));
        // Quoted, `*` is literal text.
        assert_eq!(p(r#"email:"*""#), eq("email", "*"));
        assert_eq!(p("email:**"), eq("email", "**"));
        assert_eq!(p("*"), search("*"));
    }

    #[test]
    fn quoting_and_escapes() {
        assert_eq!(p(r#"company_name:"Acme Roofing""#), eq("company_name", "Acme Roofing"));
        assert_eq!(p(r#"a:"say \"hi\"""#), eq("a", r#"say "hi""#));
        assert_eq!(p(r#"a:"c:\\dir""#), eq("a", r"c:\dir"));
        // Other backslashes are literal.
        assert_eq!(p(r#""a\nb""#), search(r"a\nb"));
        assert_eq!(p(r"a:x\y"), eq("a", r"x\y"));
        assert_eq!(p(r#""""#), search(""));
        assert_eq!(p(r#"a:"""#), eq("a", ""));
        assert_eq!(p(r#""(a OR b)""#), search("(a OR b)"));
    }

    #[test]
    fn free_text() {
        assert_eq!(p("acme"), search("acme"));
        assert_eq!(p("acme roofing"), Filter::And(vec![search("acme"), search("roofing")]));
        assert_eq!(
            p("O'Neil_x 100%"),
            Filter::And(vec![search("O'Neil_x"), search("100%")])
        );
        assert_eq!(p("a-b !x"), Filter::And(vec![search("a-b"), search("!x")]));
        // Lower-case keywords are words.
        assert_eq!(
            p("this or that"),
            Filter::And(vec![search("this"), search("or"), search("that")])
        );
        assert_eq!(p("and not"), Filter::And(vec![search("and"), search("not")]));
        assert_eq!(p("ORacle NOTE"), Filter::And(vec![search("ORacle"), search("NOTE")]));
        assert_eq!(p(r#""OR""#), search("OR"));
    }

    #[test]
    fn negation() {
        assert_eq!(p("-status:new"), not(eq("status", "new")));
        assert_eq!(p("NOT status:new"), not(eq("status", "new")));
        assert_eq!(p("-acme"), not(search("acme")));
        assert_eq!(p(r#"-"acme roofing""#), not(search("acme roofing")));
        assert_eq!(p("--acme"), search("acme"));
        assert_eq!(p("NOT -acme"), search("acme"));
        assert_eq!(p("---acme"), not(search("acme")));
        assert_eq!(p("-(-acme)"), search("acme"));
        assert_eq!(p("NOT(a b)"), not(Filter::And(vec![search("a"), search("b")])));
        assert_eq!(
            p("-(a OR b) c"),
            Filter::And(vec![not(Filter::Or(vec![search("a"), search("b")])), search("c")])
        );
        // Negation binds tighter than AND and OR.
        assert_eq!(p("NOT a OR b"), Filter::Or(vec![not(search("a")), search("b")]));
        assert_eq!(p(&format!("{}a", "-".repeat(4000))), search("a"));
    }

    #[test]
    fn and_or_precedence() {
        let (a, b, c, d) = (search("a"), search("b"), search("c"), search("d"));
        assert_eq!(p("a OR b"), Filter::Or(vec![a.clone(), b.clone()]));
        assert_eq!(
            p("a b OR c"),
            Filter::Or(vec![Filter::And(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(
            p("a OR b c"),
            Filter::Or(vec![a.clone(), Filter::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(p("a AND b OR c"), p("a b OR c"));
        assert_eq!(p("a OR b OR c"), Filter::Or(vec![a.clone(), b.clone(), c.clone()]));
        assert_eq!(
            p("status:new OR status:contacted"),
            Filter::Or(vec![eq("status", "new"), eq("status", "contacted")])
        );
        // Flattening: groups of the same connective merge.
        assert_eq!(
            p("a (b c) d"),
            Filter::And(vec![a.clone(), b.clone(), c.clone(), d.clone()])
        );
        assert_eq!(p("a OR (b OR c)"), Filter::Or(vec![a.clone(), b.clone(), c.clone()]));
        assert_eq!(
            p("(a b) AND (c d)"),
            Filter::And(vec![a.clone(), b.clone(), c.clone(), d.clone()])
        );
        assert_eq!(
            p("(a OR b) (c OR d)"),
            Filter::And(vec![
                Filter::Or(vec![a.clone(), b.clone()]),
                Filter::Or(vec![c.clone(), d.clone()])
            ])
        );
        assert_eq!(
            p("(status:new OR status:contacted) score>=60"),
            Filter::And(vec![
                Filter::Or(vec![eq("status", "new"), eq("status", "contacted")]),
                cmp("score", Op::Ge, "60"),
            ])
        );
        assert_eq!(p("(a)(b)"), Filter::And(vec![a, b]));
    }

    #[test]
    fn unicode() {
        assert_eq!(
            p(r#"name:Zoë "café crème" città~mü 名前 tag:日本,中国"#),
            Filter::And(vec![
                eq("name", "Zoë"),
                search("café crème"),
                search("città~mü"),
                search("名前"),
                Filter::In {
                    field: "tag".into(),
                    values: vec![t("日本"), t("中国")]
                },
            ])
        );
        assert_eq!(p("a:🦀\u{200d}x"), eq("a", "🦀\u{200d}x"));
        err_at(r#"ü "x"#, 3, "unterminated quote");
        err_at("ü a:ü,", 8, "empty value");
        err_at("ü a:ü,,", 8, "empty value");
        err_at("a~ü,b", 4, "take a list");
    }

    #[test]
    fn errors_with_positions() {
        err_at(r#"a "acme roofing"#, 2, "unterminated quote");
        err_at(r#"company:"Acme"#, 8, "unterminated quote");
        err_at(r#"a:x,"y\""#, 4, "unterminated quote");
        err_at(r#""abc\"#, 0, "unterminated quote");
        err_at("(a OR b", 0, "unclosed `(`");
        err_at("x ((a) b", 2, "unclosed `(`");
        err_at("(", 0, "unclosed `(`");
        err_at("a)", 1, "unmatched `)`");
        err_at(")", 0, "unmatched `)`");
        err_at("(a))", 3, "unmatched `)`");
        err_at("score>=", 5, "`>=` needs a value");
        err_at("x score>= 60", 7, "`>=` needs a value");
        err_at("(score:)", 6, "`:` needs a value");
        err_at(">=5", 0, "`>=` needs a field");
        err_at("a :x", 2, "`:` needs a field");
        err_at("x =5", 2, "`=` needs a field");
        err_at("!=5", 0, "`!=` needs a field");
        err_at("a OR", 2, "`OR` needs a term after");
        err_at("a OR OR b", 2, "`OR` needs a term after");
        err_at("OR a", 0, "`OR` needs a term before");
        err_at("(OR a)", 1, "`OR` needs a term before");
        err_at("(a OR)", 3, "`OR` needs a term after");
        err_at("a AND", 2, "`AND` needs a term after");
        err_at("AND a", 0, "`AND` needs a term before");
        err_at("a AND OR b", 2, "`AND` needs a term after");
        err_at("NOT", 0, "`NOT` needs a term after");
        err_at("a NOT )", 2, "`NOT` needs a term after");
        err_at("-OR", 0, "`-` needs a term after");
        err_at("a -", 2, "`-` must be directly followed");
        err_at("a - b", 2, "`-` must be directly followed");
        err_at("(a -)", 3, "`-` must be directly followed");
        err_at("()", 0, "empty parentheses");
        err_at("a ( ) b", 2, "empty parentheses");
        err_at("a(b)", 1, "unexpected `(`");
        err_at(r#""a"b"#, 3, "unexpected `b`");
        err_at(r#"name:"a"b"#, 8, "unexpected `b`");
        err_at(r#"ab"c""#, 2, "unexpected `\"`");
        err_at("(a)b", 3, "unexpected `b`");
        err_at("NOT\"x\"", 3, "unexpected `\"`");
        err_at("a:x,,y", 4, "empty value");
        err_at("a:x,", 4, "empty value");
        err_at("a:,x", 2, "empty value");
        err_at("a>1,2", 3, "only `:`, `=` and `!=` take a list");
        err_at("a~x,y", 3, "only `:`, `=` and `!=` take a list");
        err_at("a>*", 2, "`*` (has a value) only goes with");
        err_at("a:x,*", 4, "cannot be part of a list");
    }

    #[test]
    fn limits() {
        // Length.
        let long = "a ".repeat(2049);
        assert_eq!(
            parse(&long),
            Err(Error::LimitExceeded {
                what: "query length".into(),
                limit: 4096
            })
        );
        assert!(matches!(parse(&"x".repeat(4096)), Ok(Filter::Search(s)) if s.len() == 4096));
        // Terms.
        let terms = |n: usize| (0..n).map(|i| format!("f:{i}")).collect::<Vec<_>>().join(" ");
        assert!(matches!(parse(&terms(MAX_FILTER_NODES)), Ok(Filter::And(v)) if v.len() == MAX_FILTER_NODES));
        assert_eq!(
            parse(&terms(MAX_FILTER_NODES + 1)),
            Err(Error::LimitExceeded {
                what: "filter terms".into(),
                limit: MAX_FILTER_NODES as u64
            })
        );
        // Depth.
        let nested = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(p(&nested(MAX_FILTER_DEPTH)), search("a"));
        err_at(&nested(MAX_FILTER_DEPTH + 1), MAX_FILTER_DEPTH, "nested deeper");
        err_at(&"(".repeat(4000), MAX_FILTER_DEPTH, "nested deeper");
        assert!(parse(&"(a OR ".repeat(600)).is_err());
        assert!(parse(&"NOT ".repeat(1000)).is_err());
    }

    #[test]
    fn printer() {
        for s in [
            "",
            "status:new",
            r#"status:new score>=60 owner:me created>2025-01-01 "acme roofing""#,
            "(status:new OR status:contacted) score>=60",
            "a b OR c",
            "-(a OR b) -c",
            "email:* -phone:*",
            r#"a:"x y","z,w",v"#,
            r#"a<"=5" b>"=x" c<=5"#,
            r#""OR" "-x" "a:b" "" * "say \"hi\" \\""#,
            "-a:x,y",
            "name^Zoë city~città",
        ] {
            let f = p(s);
            assert_eq!(to_text(&f).as_deref(), Some(s), "{f:?}");
        }
        // Normalised spellings.
        assert_eq!(to_text(&p("a=1 AND NOT b")).as_deref(), Some("a:1 -b"));
        assert_eq!(to_text(&p("x!=*")).as_deref(), Some("-x:*"));
        assert_eq!(to_text(&p("x!=a,b")).as_deref(), Some("-x:a,b"));
        // Inexpressible trees.
        assert_eq!(to_text(&Filter::eq("a", 1i64)), None);
        assert_eq!(to_text(&Filter::eq("1a", "x")), None);
        assert_eq!(to_text(&Filter::eq("a b", "x")), None);
        assert_eq!(
            to_text(&Filter::In {
                field: "a".into(),
                values: vec![t("x")]
            }),
            None
        );
        assert_eq!(
            to_text(&Filter::In {
                field: "a".into(),
                values: vec![t("x"), Value::Int(1)]
            }),
            None
        );
        assert_eq!(to_text(&not(not(search("a")))), None);
        assert_eq!(to_text(&Filter::And(vec![search("a")])), None);
        assert_eq!(to_text(&Filter::And(vec![search("a"), Filter::All])), None);
        assert_eq!(
            to_text(&Filter::And(vec![
                search("a"),
                Filter::And(vec![search("b"), search("c")])
            ])),
            None
        );
        assert_eq!(
            to_text(&Filter::Or(vec![
                search("a"),
                Filter::Or(vec![search("b"), search("c")])
            ])),
            None
        );
        // Each level needs one more pair of parentheses.
        let nest = |n: usize| {
            (0..n).fold(search("a"), |deep, _| {
                Filter::And(vec![search("x"), Filter::Or(vec![search("y"), deep])])
            })
        };
        let ok = nest(MAX_FILTER_DEPTH);
        assert_eq!(parse(&to_text(&ok).unwrap_or_default()), Ok(ok));
        assert_eq!(to_text(&nest(MAX_FILTER_DEPTH + 1)), None);
        assert_eq!(
            to_text(&Filter::And((0..65).map(|i| search(&i.to_string())).collect())),
            None
        );
    }

    // --- property tests -------------------------------------------------------------------------------

    /// The parser's normal form: nested `And`/`Or` flattened, one-element ones unwrapped, `Not(Not(x))`
    /// cancelled.
    fn norm(f: Filter) -> Filter {
        match f {
            Filter::And(v) => Filter::and(v.into_iter().map(norm)),
            Filter::Or(v) => or_of(v.into_iter().map(norm).collect()),
            Filter::Not(inner) => negate(norm(*inner)),
            f => f,
        }
    }

    fn text_value() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-z0-9]{1,6}",
            2 => "\\PC{0,6}",
            1 => any::<String>(),
            1 => prop::sample::select(vec![
                "", "*", "**", "OR", "AND", "NOT", "-x", "a:b", "=5", ">", "(", ")", ",", "\"", "\\", "a b", "é",
                "\u{a0}", "x\"y\\z", "\\\"",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9_.]{0,6}",
            Just("OR".to_owned()),
            Just("custom.roof_type".to_owned())
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop::sample::select(vec![
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Le,
            Op::Gt,
            Op::Ge,
            Op::Contains,
            Op::StartsWith,
        ])
    }

    fn leaf() -> impl Strategy<Value = Filter> {
        prop_oneof![
            (field(), op(), text_value()).prop_map(|(f, op, v)| Filter::cmp(&f, op, v)),
            (field(), prop::collection::vec(text_value(), 2..4)).prop_map(|(field, v)| {
                Filter::In {
                    field,
                    values: v.into_iter().map(Value::Text).collect(),
                }
            }),
            field().prop_map(|field| Filter::IsNull { field }),
            text_value().prop_map(Filter::Search),
        ]
    }

    fn tree() -> impl Strategy<Value = Filter> {
        leaf().prop_recursive(4, 32, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::And),
                prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    fn token_soup() -> impl Strategy<Value = String> {
        let tok = prop::sample::select(vec![
            "(", ")", "\"", ":", ">=", "<=", "!=", ">", "<", "=", "~", "^", "OR", "AND", "NOT", "-", "*", ",", "\\",
            " ", " ", "\t", "a", "status", "x.y", "1", "é", "日本", "🦀", "\u{a0}",
        ]);
        prop::collection::vec(tok, 0..40).prop_map(|v| v.concat())
    }

    /// Whatever `parse` says about `s` is well-formed, and a parsed tree prints and re-parses to itself.
    fn check_any(s: &str) -> std::result::Result<(), TestCaseError> {
        match parse(s) {
            Ok(f) => {
                if let Some(text) = to_text(&f) {
                    prop_assert_eq!(parse(&text), Ok(f), "printed as {:?}", text);
                }
            }
            Err(Error::InvalidQuery { position, .. }) => {
                prop_assert!(
                    position <= s.len() && s.is_char_boundary(position),
                    "position {}",
                    position
                );
            }
            Err(Error::LimitExceeded { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error kind {:?}", e),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_text(s in any::<String>()) {
            check_any(&s)?;
        }

        #[test]
        fn never_panics_on_token_soup(s in token_soup()) {
            check_any(&s)?;
        }

        #[test]
        fn round_trips(f in tree()) {
            let f = norm(f);
            prop_assume!(f.size().0 <= MAX_FILTER_NODES);
            let text = to_text(&f);
            prop_assert!(text.is_some(), "not printable: {:?}", f);
            let text = text.unwrap_or_default();
            prop_assert_eq!(parse(&text), Ok(f.clone()), "printed as {:?}", text);
            prop_assert_eq!(to_text(&f), Some(text));
        }
    }
}
