//! Portable scripts, compiled: the statements and expressions of the
//! script subset with every name resolved (locals to slots, the API to its
//! operations), never the source text. Every back end reads this; the
//! reference gateway evaluates it directly.
//!
//! # Meaning
//!
//! The semantics are JavaScript's (strict equality, `+` concatenating when
//! either side is a string, `""`, `0`, `NaN`, `null` and `undefined` falsy,
//! 0-based string indexes counted in UTF-16 code units as `length` and
//! `slice` count them). Where a script would do something JavaScript
//! allows but no target can bound (a list longer than [`MAX_LIST`], a
//! string longer than [`MAX_STRING`], a header value with CR or LF, a
//! method of `null`), it fails at run time: the gateway answers 500
//! `{"error":"script failed"}` and logs the [`Site`]'s spec position.
//!
//! # Cost
//!
//! [`Program::cost`] bounds the number of evaluation steps (one per
//! statement and per expression node evaluated): loops are `for ... of`
//! over lists of at most [`MAX_LIST`] items, so the bound is computed from
//! the program's shape. The compiler refuses a program whose bound passes
//! [`MAX_COST`]; gateways stop one that would exceed its bound.

use serde::{Deserialize, Serialize};

/// Most items a list may hold: `split()` giving more fails at run time,
/// and `for ... of` iterates at most this many times.
pub const MAX_LIST: u64 = 100;
/// Longest string a script may build, in bytes of UTF-8.
pub const MAX_STRING: usize = 65_536;
/// Highest cost bound the compiler accepts for one program.
pub const MAX_COST: u64 = 1_000_000;

/// The `script` policy: one program per side, at least one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Script {
    /// Runs at phase 8 (request script); may end the request with `respond()`.
    pub request: Option<Program>,
    /// Runs at phase 13, after `response-headers`.
    pub response: Option<Program>,
}

/// One compiled script.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Program {
    /// How many local slots the program uses (`const`, `let`, loop variables).
    pub slots: u16,
    /// Upper bound of evaluation steps (see the module docs).
    pub cost: u64,
    pub body: Vec<Stmt>,
}

/// Index of a place in the script that can fail at run time; the source
/// map's `scripts` entry for the policy gives its spec position, so the
/// position stays out of the content hash.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Site(pub u32);

/// Which message a header operation reads or changes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// `req.*`: the request as it goes upstream.
    Request,
    /// `res.*`: the response as it goes to the client.
    Response,
}

/// A statement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stmt {
    /// `const x = e;`, `let x = e;` and `x = e;` (a `let`): store into a slot.
    Set { slot: u16, value: Expr },
    /// `ctx.key = e;`: stores `String(e)`; `null`/`undefined` remove the key.
    SetCtx { key: String, value: Expr },
    /// `req.setHeader(n, v)` / `res.setHeader(n, v)`.
    SetHeader {
        side: Side,
        name: Expr,
        value: Expr,
        site: Site,
    },
    /// `req.removeHeader(n)` / `res.removeHeader(n)`.
    RemoveHeader { side: Side, name: Expr, site: Site },
    /// `req.setPath(p)`: the path sent upstream (phase 10 applies after it).
    SetPath { path: Expr, site: Site },
    /// `log(msg)`.
    Log { message: Expr },
    /// Evaluates an expression for its failures only (a bare `s.trim();`).
    Eval { value: Expr },
    If {
        test: Expr,
        then: Vec<Stmt>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        otherwise: Vec<Stmt>,
    },
    /// `for (const x of list) ...`: the list has at most [`MAX_LIST`] items.
    ForOf {
        slot: u16,
        list: Expr,
        body: Vec<Stmt>,
        site: Site,
    },
    /// `return;`: ends the script, the request goes on.
    Return,
    /// `respond(status, body[, headers])`: ends the request with this answer.
    Respond {
        status: Expr,
        body: Option<Expr>,
        headers: Option<Expr>,
        site: Site,
    },
}

/// Request properties a script reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReqField {
    Method,
    Path,
    Ip,
    Consumer,
}

/// String (and list) methods of the subset.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    StartsWith,
    EndsWith,
    /// On a string, or on a list (SameValueZero, as `Array.prototype.includes`).
    Includes,
    ToLowerCase,
    ToUpperCase,
    Trim,
    Split,
    Slice,
}

impl Method {
    /// The JavaScript name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::StartsWith => "startsWith",
            Method::EndsWith => "endsWith",
            Method::Includes => "includes",
            Method::ToLowerCase => "toLowerCase",
            Method::ToUpperCase => "toUpperCase",
            Method::Trim => "trim",
            Method::Split => "split",
            Method::Slice => "slice",
        }
    }

    /// Every method, for lookups and help lines.
    pub const ALL: [Method; 8] = [
        Method::StartsWith,
        Method::EndsWith,
        Method::Includes,
        Method::ToLowerCase,
        Method::ToUpperCase,
        Method::Trim,
        Method::Split,
        Method::Slice,
    ];

    /// Fewest and most arguments.
    pub fn arity(self) -> (usize, usize) {
        match self {
            Method::StartsWith | Method::EndsWith | Method::Includes => (1, 1),
            Method::ToLowerCase | Method::ToUpperCase | Method::Trim => (0, 0),
            Method::Split => (1, 2),
            Method::Slice => (0, 2),
        }
    }
}

/// Unary operators.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unary {
    Not,
    Neg,
}

/// Binary operators (no coercing `==`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binary {
    StrictEq,
    StrictNe,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Short-circuit operators.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Logical {
    And,
    Or,
    /// `??`: the right side only when the left is `null` or `undefined`.
    Coalesce,
}

/// An expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expr {
    Undefined,
    Null,
    Bool(bool),
    /// A finite number (the compiler refuses literals that are not).
    Num(f64),
    Str(String),
    Local(u16),
    /// `ctx.key`: a string, or `undefined` when not set.
    Ctx(String),
    Req(ReqField),
    /// `res.status`.
    Status,
    /// `req.header(n)` / `res.header(n)`: the values joined by `, `, or
    /// `null` when absent; names are case-insensitive.
    Header {
        side: Side,
        name: Box<Expr>,
    },
    /// `req.query(n)`: the first value, decoded as `URLSearchParams` does,
    /// or `null`.
    Query(Box<Expr>),
    /// A template literal: the parts' strings concatenated.
    Template(Vec<Expr>),
    List(Vec<Expr>),
    /// An object literal, keys as written (a later duplicate wins, as in JS).
    Object(Vec<(String, Expr)>),
    Unary {
        op: Unary,
        arg: Box<Expr>,
    },
    Binary {
        op: Binary,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Logical {
        op: Logical,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Cond {
        test: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `target.method(args)`: fails when the target is not a string (or,
    /// for `includes`, a list).
    Call {
        method: Method,
        target: Box<Expr>,
        args: Vec<Expr>,
        site: Site,
    },
    /// `x.length` of a string (UTF-16 code units) or list.
    Length {
        target: Box<Expr>,
        site: Site,
    },
    /// `x[i]`: a list's item or a string's UTF-16 code unit; `undefined`
    /// out of range.
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
        site: Site,
    },
    /// `o.key` / `o["key"]` of an object: `undefined` when absent.
    Prop {
        target: Box<Expr>,
        key: String,
        site: Site,
    },
    /// `parseInt(s[, radix])`, by JavaScript's rules.
    ParseInt {
        arg: Box<Expr>,
        radix: Option<Box<Expr>>,
    },
}

/// Calls `f` on every expression of `body`, nested ones included (an
/// operand after the expression holding it), statement by statement and
/// into `if` and `for ... of` bodies: for a back end that looks for one
/// kind of expression (a header read) without a walk of its own.
pub fn visit_exprs(body: &[Stmt], f: &mut dyn FnMut(&Expr)) {
    for s in body {
        let (exprs, nested): (Vec<&Expr>, [&[Stmt]; 2]) = match s {
            Stmt::Set { value, .. }
            | Stmt::SetCtx { value, .. }
            | Stmt::Eval { value }
            | Stmt::Log { message: value }
            | Stmt::SetPath { path: value, .. } => (vec![value], [&[], &[]]),
            Stmt::SetHeader { name, value, .. } => (vec![name, value], [&[], &[]]),
            Stmt::RemoveHeader { name, .. } => (vec![name], [&[], &[]]),
            Stmt::If {
                test,
                then,
                otherwise,
            } => (vec![test], [then, otherwise]),
            Stmt::ForOf { list, body, .. } => (vec![list], [body, &[]]),
            Stmt::Return => (Vec::new(), [&[], &[]]),
            Stmt::Respond {
                status,
                body,
                headers,
                ..
            } => (
                std::iter::once(status)
                    .chain(body.iter())
                    .chain(headers.iter())
                    .collect(),
                [&[], &[]],
            ),
        };
        for e in exprs {
            e.visit(f);
        }
        for b in nested {
            visit_exprs(b, f);
        }
    }
}

impl Expr {
    /// Calls `f` on this expression, then on each one inside it.
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Undefined
            | Expr::Null
            | Expr::Bool(_)
            | Expr::Num(_)
            | Expr::Str(_)
            | Expr::Local(_)
            | Expr::Ctx(_)
            | Expr::Req(_)
            | Expr::Status => {}
            Expr::Header { name: x, .. }
            | Expr::Query(x)
            | Expr::Unary { arg: x, .. }
            | Expr::Length { target: x, .. }
            | Expr::Prop { target: x, .. } => x.visit(f),
            Expr::Template(xs) | Expr::List(xs) => xs.iter().for_each(|x| x.visit(f)),
            Expr::Object(fields) => fields.iter().for_each(|(_, x)| x.visit(f)),
            Expr::Binary { left, right, .. } | Expr::Logical { left, right, .. } => {
                left.visit(f);
                right.visit(f);
            }
            Expr::Cond {
                test,
                then,
                otherwise,
            } => {
                test.visit(f);
                then.visit(f);
                otherwise.visit(f);
            }
            Expr::Call { target, args, .. } => {
                target.visit(f);
                args.iter().for_each(|x| x.visit(f));
            }
            Expr::Index { target, index, .. } => {
                target.visit(f);
                index.visit(f);
            }
            Expr::ParseInt { arg, radix } => {
                arg.visit(f);
                if let Some(r) = radix {
                    r.visit(f);
                }
            }
        }
    }
}

impl Program {
    /// The cost bound of a statement list, saturating.
    pub fn cost_of(body: &[Stmt]) -> u64 {
        body.iter()
            .fold(0u64, |acc, s| acc.saturating_add(stmt_cost(s)))
    }
}

fn stmt_cost(s: &Stmt) -> u64 {
    let e = expr_cost;
    1u64.saturating_add(match s {
        Stmt::Set { value, .. } | Stmt::SetCtx { value, .. } | Stmt::Eval { value } => e(value),
        Stmt::SetHeader { name, value, .. } => e(name).saturating_add(e(value)),
        Stmt::RemoveHeader { name, .. } => e(name),
        Stmt::SetPath { path, .. } => e(path),
        Stmt::Log { message } => e(message),
        Stmt::If {
            test,
            then,
            otherwise,
        } => e(test).saturating_add(Program::cost_of(then).max(Program::cost_of(otherwise))),
        Stmt::ForOf { list, body, .. } => e(list)
            .saturating_add(MAX_LIST.saturating_mul(1u64.saturating_add(Program::cost_of(body)))),
        Stmt::Return => 0,
        Stmt::Respond {
            status,
            body,
            headers,
            ..
        } => e(status)
            .saturating_add(body.as_ref().map_or(0, e))
            .saturating_add(headers.as_ref().map_or(0, e)),
    })
}

fn expr_cost(x: &Expr) -> u64 {
    let sum = |xs: &mut dyn Iterator<Item = &Expr>| {
        xs.fold(0u64, |acc, x| acc.saturating_add(expr_cost(x)))
    };
    1u64.saturating_add(match x {
        Expr::Undefined
        | Expr::Null
        | Expr::Bool(_)
        | Expr::Num(_)
        | Expr::Str(_)
        | Expr::Local(_)
        | Expr::Ctx(_)
        | Expr::Req(_)
        | Expr::Status => 0,
        Expr::Header { name, .. } => expr_cost(name),
        Expr::Query(name) => expr_cost(name),
        Expr::Template(parts) | Expr::List(parts) => sum(&mut parts.iter()),
        Expr::Object(fields) => sum(&mut fields.iter().map(|(_, v)| v)),
        Expr::Unary { arg, .. } => expr_cost(arg),
        Expr::Binary { left, right, .. } | Expr::Logical { left, right, .. } => {
            expr_cost(left).saturating_add(expr_cost(right))
        }
        Expr::Cond {
            test,
            then,
            otherwise,
        } => expr_cost(test).saturating_add(expr_cost(then).max(expr_cost(otherwise))),
        Expr::Call { target, args, .. } => expr_cost(target).saturating_add(sum(&mut args.iter())),
        Expr::Length { target, .. } | Expr::Prop { target, .. } => expr_cost(target),
        Expr::Index { target, index, .. } => expr_cost(target).saturating_add(expr_cost(index)),
        Expr::ParseInt { arg, radix } => {
            expr_cost(arg).saturating_add(radix.as_deref().map_or(0, expr_cost))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_costs_its_body_times_the_list_bound() {
        let body = vec![Stmt::Log {
            message: Expr::Local(0),
        }];
        let loop_ = Stmt::ForOf {
            slot: 0,
            list: Expr::List(vec![]),
            body,
            site: Site(0),
        };
        // list (1) + MAX_LIST * (1 for the iteration + log statement 1 + its local 1) + the for 1
        assert_eq!(Program::cost_of(&[loop_]), 1 + 1 + MAX_LIST * 3);
    }

    #[test]
    fn an_if_costs_its_dearer_branch() {
        let s = Stmt::If {
            test: Expr::Bool(true),
            then: vec![Stmt::Return, Stmt::Return],
            otherwise: vec![Stmt::Return],
        };
        assert_eq!(Program::cost_of(&[s]), 1 + 1 + 2);
    }
}
