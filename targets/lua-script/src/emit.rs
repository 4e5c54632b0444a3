//! The generator: one script IR [`Program`] to a Lua function.
//!
//! Every expression node is evaluated into a register (`r1`, `r2`, ...:
//! a node's value in `r{d}`, its operands in `r{d}`, `r{d+1}`, ...), in
//! the reference evaluator's order, and each statement, expression node and
//! loop iteration takes one step of fuel first, as the evaluator counts
//! them. The site a failing operation reports is known statically: the
//! innermost enclosing node with a [`Site`] (the evaluator's `at`), passed
//! down as `k` (-1: none, the host logs the policy's place).

use crate::lua;
use gatefold_compiler::ir::script::{
    Binary, Expr, Logical, Method, Program, ReqField, Side, Site, Stmt, Unary,
};
use std::fmt::Write;

/// Runtime functions the generated code calls, bound once as upvalues.
const IMPORTS: &[&str] = &[
    "U",
    "N",
    "truthy",
    "over",
    "add",
    "sub",
    "mul",
    "div",
    "rem",
    "neg",
    "lt",
    "le",
    "gt",
    "ge",
    "cat",
    "pint",
    "len",
    "prop",
    "idx",
    "iter",
    "includes",
    "startsWith",
    "endsWith",
    "trim",
    "toLowerCase",
    "toUpperCase",
    "slice",
    "split",
    "field",
    "status",
    "hdr",
    "query",
    "ctx",
    "setctx",
    "hname",
    "seth",
    "remh",
    "setpath",
    "log",
    "rstatus",
    "answer",
    "mkl",
    "mko",
];

/// Registers past this many go to a table: Lua allows 200 locals.
const MAX_LOCAL_REGS: usize = 120;

/// The Lua expression `function(R) ... return function(F) ... end end`:
/// given the runtime it returns the program, a function of its fuel that
/// returns `nil` (the request goes on) or `respond()`'s answer, and raises
/// the runtime's failure.
pub fn program(p: &Program) -> String {
    let mut g = Gen::new(false);
    g.body(p);
    if g.max_reg > MAX_LOCAL_REGS {
        g = Gen::new(true);
        g.body(p);
    }
    let mut out = String::from("function(R)\n  local ");
    out.push_str(&IMPORTS.join(", "));
    out.push_str(" =\n    ");
    let values: Vec<String> = IMPORTS.iter().map(|n| format!("R.{n}")).collect();
    out.push_str(&values.join(", "));
    out.push_str("\n  return function(F)\n");
    let slots = usize::from(p.slots);
    out.push_str("    local V = {}\n");
    if slots > 0 {
        let _ = writeln!(out, "    for i = 1, {slots} do V[i] = U end");
    }
    if g.table_regs {
        out.push_str("    local T = {}\n");
    } else if g.max_reg > 0 {
        let regs: Vec<String> = (1..=g.max_reg).map(|i| format!("r{i}")).collect();
        let _ = writeln!(out, "    local {}", regs.join(", "));
    }
    out.push_str(&g.out);
    out.push_str("  end\nend");
    out
}

/// Whether the program calls `toLowerCase` or `toUpperCase` (its chunk
/// then carries the Unicode case tables).
pub fn uses_case(body: &[Stmt]) -> bool {
    fn e(x: &Expr) -> bool {
        match x {
            Expr::Call {
                method: Method::ToLowerCase | Method::ToUpperCase,
                ..
            } => true,
            Expr::Call { target, args, .. } => e(target) || args.iter().any(e),
            Expr::Header { name: a, .. }
            | Expr::Query(a)
            | Expr::Unary { arg: a, .. }
            | Expr::Length { target: a, .. }
            | Expr::Prop { target: a, .. } => e(a),
            Expr::Template(xs) | Expr::List(xs) => xs.iter().any(e),
            Expr::Object(fields) => fields.iter().any(|(_, v)| e(v)),
            Expr::Binary { left, right, .. } | Expr::Logical { left, right, .. } => {
                e(left) || e(right)
            }
            Expr::Index { target, index, .. } => e(target) || e(index),
            Expr::Cond {
                test,
                then,
                otherwise,
            } => e(test) || e(then) || e(otherwise),
            Expr::ParseInt { arg, radix } => e(arg) || radix.as_deref().is_some_and(e),
            Expr::Undefined
            | Expr::Null
            | Expr::Bool(_)
            | Expr::Num(_)
            | Expr::Str(_)
            | Expr::Local(_)
            | Expr::Ctx(_)
            | Expr::Req(_)
            | Expr::Status => false,
        }
    }
    body.iter().any(|s| match s {
        Stmt::Set { value, .. }
        | Stmt::SetCtx { value, .. }
        | Stmt::Eval { value }
        | Stmt::Log { message: value }
        | Stmt::SetPath { path: value, .. }
        | Stmt::RemoveHeader { name: value, .. } => e(value),
        Stmt::SetHeader { name, value, .. } => e(name) || e(value),
        Stmt::If {
            test,
            then,
            otherwise,
        } => e(test) || uses_case(then) || uses_case(otherwise),
        Stmt::ForOf { list, body, .. } => e(list) || uses_case(body),
        Stmt::Return => false,
        Stmt::Respond {
            status,
            body,
            headers,
            ..
        } => e(status) || body.as_ref().is_some_and(e) || headers.as_ref().is_some_and(e),
    })
}

struct Gen {
    out: String,
    depth: usize,
    max_reg: usize,
    table_regs: bool,
    /// Names of loop locals, unique in the function.
    loops: usize,
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Request => "\"request\"",
        Side::Response => "\"response\"",
    }
}

fn site(s: &Site) -> i64 {
    i64::from(s.0)
}

impl Gen {
    fn new(table_regs: bool) -> Gen {
        Gen {
            out: String::new(),
            depth: 2,
            max_reg: 0,
            table_regs,
            loops: 0,
        }
    }

    fn reg(&mut self, d: usize) -> String {
        self.max_reg = self.max_reg.max(d);
        if self.table_regs {
            format!("T[{d}]")
        } else {
            format!("r{d}")
        }
    }

    fn line(&mut self, text: &str) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn step(&mut self, k: i64) {
        self.line(&format!("F = F - 1 if F < 0 then over({k}) end"));
    }

    fn body(&mut self, p: &Program) {
        self.block(&p.body, -1);
    }

    fn block(&mut self, body: &[Stmt], k: i64) {
        for s in body {
            self.stmt(s, k);
        }
    }

    fn stmt(&mut self, s: &Stmt, k: i64) {
        self.step(k);
        match s {
            Stmt::Set { slot, value } => {
                let r = self.expr(value, 1, k);
                self.line(&format!("V[{}] = {r}", usize::from(*slot) + 1));
            }
            Stmt::SetCtx { key, value } => {
                let r = self.expr(value, 1, k);
                self.line(&format!("setctx({}, {r})", lua::string(key)));
            }
            Stmt::SetHeader {
                side: sd,
                name,
                value,
                site: st,
            } => {
                let k = site(st);
                // The name is checked before the value is evaluated.
                let n = self.expr(name, 1, k);
                self.line(&format!("{n} = hname({n}, {k})"));
                let v = self.expr(value, 2, k);
                self.line(&format!("seth({}, {n}, {v}, {k})", side(*sd)));
            }
            Stmt::RemoveHeader {
                side: sd,
                name,
                site: st,
            } => {
                let k = site(st);
                let n = self.expr(name, 1, k);
                self.line(&format!("remh({}, {n}, {k})", side(*sd)));
            }
            Stmt::SetPath { path, site: st } => {
                let k = site(st);
                let p = self.expr(path, 1, k);
                self.line(&format!("setpath({p}, {k})"));
            }
            Stmt::Log { message } => {
                let m = self.expr(message, 1, k);
                self.line(&format!("log({m})"));
            }
            Stmt::Eval { value } => {
                self.expr(value, 1, k);
            }
            Stmt::If {
                test,
                then,
                otherwise,
            } => {
                let t = self.expr(test, 1, k);
                self.line(&format!("if truthy({t}) then"));
                self.depth += 1;
                self.block(then, k);
                self.depth -= 1;
                if !otherwise.is_empty() {
                    self.line("else");
                    self.depth += 1;
                    self.block(otherwise, k);
                    self.depth -= 1;
                }
                self.line("end");
            }
            Stmt::ForOf {
                slot,
                list,
                body,
                site: st,
            } => {
                let ks = site(st);
                let l = self.expr(list, 1, ks);
                self.loops += 1;
                let n = self.loops;
                self.line("do");
                self.depth += 1;
                self.line(&format!("local l{n} = iter({l}, {ks})"));
                self.line(&format!("for i{n} = 1, l{n}.n do"));
                self.depth += 1;
                // The iteration's step is the loop statement's, outside its site.
                self.step(k);
                self.line(&format!("V[{}] = l{n}[i{n}]", usize::from(*slot) + 1));
                self.block(body, ks);
                self.depth -= 1;
                self.line("end");
                self.depth -= 1;
                self.line("end");
            }
            Stmt::Return => self.line("do return end"),
            Stmt::Respond {
                status,
                body,
                headers,
                site: st,
            } => {
                let k = site(st);
                let s = self.expr(status, 1, k);
                self.line(&format!("{s} = rstatus({s}, {k})"));
                let b = match body {
                    Some(b) => self.expr(b, 2, k),
                    None => "nil".to_string(),
                };
                let h = match headers {
                    Some(h) => self.expr(h, 3, k),
                    None => "nil".to_string(),
                };
                self.line(&format!("do return answer({s}, {b}, {h}, {k}) end"));
            }
        }
    }

    /// Emits the evaluation of `e` into register `d`; returns its name.
    fn expr(&mut self, e: &Expr, d: usize, k: i64) -> String {
        self.step(k);
        let r = self.reg(d);
        match e {
            Expr::Undefined => self.line(&format!("{r} = U")),
            Expr::Null => self.line(&format!("{r} = N")),
            Expr::Bool(b) => self.line(&format!("{r} = {b}")),
            Expr::Num(n) => self.line(&format!("{r} = {}", lua::number(*n))),
            Expr::Str(s) => self.line(&format!("{r} = {}", lua::string(s))),
            Expr::Local(slot) => self.line(&format!("{r} = V[{}]", usize::from(*slot) + 1)),
            Expr::Ctx(key) => self.line(&format!("{r} = ctx({})", lua::string(key))),
            Expr::Req(f) => {
                let name = match f {
                    ReqField::Method => "method",
                    ReqField::Path => "path",
                    ReqField::Ip => "ip",
                    ReqField::Consumer => "consumer",
                };
                self.line(&format!("{r} = field(\"{name}\")"));
            }
            Expr::Status => self.line(&format!("{r} = status()")),
            Expr::Header { side: sd, name } => {
                self.expr(name, d, k);
                self.line(&format!("{r} = hdr({}, {r})", side(*sd)));
            }
            Expr::Query(name) => {
                self.expr(name, d, k);
                self.line(&format!("{r} = query({r})"));
            }
            Expr::Template(parts) => {
                self.line(&format!("{r} = \"\""));
                for p in parts {
                    let x = self.expr(p, d + 1, k);
                    self.line(&format!("{r} = cat({r}, {x}, {k})"));
                }
            }
            Expr::List(items) => {
                self.line(&format!("{r} = mkl({})", items.len()));
                for (i, item) in items.iter().enumerate() {
                    let x = self.expr(item, d + 1, k);
                    self.line(&format!("{r}[{}] = {x}", i + 1));
                }
            }
            Expr::Object(fields) => {
                self.line(&format!("{r} = mko()"));
                for (i, (key, v)) in fields.iter().enumerate() {
                    let x = self.expr(v, d + 1, k);
                    self.line(&format!("{r}[{}] = {{{}, {x}}}", i + 1, lua::string(key)));
                }
            }
            Expr::Unary { op, arg } => {
                self.expr(arg, d, k);
                match op {
                    Unary::Not => self.line(&format!("{r} = not truthy({r})")),
                    Unary::Neg => self.line(&format!("{r} = neg({r})")),
                }
            }
            Expr::Binary { op, left, right } => {
                self.expr(left, d, k);
                let x = self.expr(right, d + 1, k);
                let call = match op {
                    Binary::StrictEq => format!("({r} == {x})"),
                    Binary::StrictNe => format!("({r} ~= {x})"),
                    Binary::Add => format!("add({r}, {x}, {k})"),
                    Binary::Sub => format!("sub({r}, {x})"),
                    Binary::Mul => format!("mul({r}, {x})"),
                    Binary::Div => format!("div({r}, {x})"),
                    Binary::Rem => format!("rem({r}, {x})"),
                    Binary::Lt => format!("lt({r}, {x})"),
                    Binary::Le => format!("le({r}, {x})"),
                    Binary::Gt => format!("gt({r}, {x})"),
                    Binary::Ge => format!("ge({r}, {x})"),
                };
                self.line(&format!("{r} = {call}"));
            }
            Expr::Logical { op, left, right } => {
                self.expr(left, d, k);
                let test = match op {
                    Logical::And => format!("truthy({r})"),
                    Logical::Or => format!("not truthy({r})"),
                    Logical::Coalesce => format!("{r} == U or {r} == N"),
                };
                self.line(&format!("if {test} then"));
                self.depth += 1;
                self.expr(right, d, k);
                self.depth -= 1;
                self.line("end");
            }
            Expr::Cond {
                test,
                then,
                otherwise,
            } => {
                self.expr(test, d, k);
                self.line(&format!("if truthy({r}) then"));
                self.depth += 1;
                self.expr(then, d, k);
                self.depth -= 1;
                self.line("else");
                self.depth += 1;
                self.expr(otherwise, d, k);
                self.depth -= 1;
                self.line("end");
            }
            Expr::Call {
                method,
                target,
                args,
                site: st,
            } => {
                let k = site(st);
                self.expr(target, d, k);
                let mut a: Vec<String> = args
                    .iter()
                    .enumerate()
                    .map(|(i, x)| self.expr(x, d + 1 + i, k))
                    .collect();
                // Absent optional arguments are `nil` (the runtime's undefined).
                let want = method.arity().1;
                while a.len() < want {
                    a.push("nil".to_string());
                }
                let name = match method {
                    Method::StartsWith => "startsWith",
                    Method::EndsWith => "endsWith",
                    Method::Includes => "includes",
                    Method::ToLowerCase => "toLowerCase",
                    Method::ToUpperCase => "toUpperCase",
                    Method::Trim => "trim",
                    Method::Split => "split",
                    Method::Slice => "slice",
                };
                let mut call_args = vec![r.clone()];
                call_args.extend(a);
                call_args.push(k.to_string());
                self.line(&format!("{r} = {name}({})", call_args.join(", ")));
            }
            Expr::Length { target, site: st } => {
                let k = site(st);
                self.expr(target, d, k);
                self.line(&format!("{r} = len({r}, {k})"));
            }
            Expr::Index {
                target,
                index,
                site: st,
            } => {
                let k = site(st);
                self.expr(target, d, k);
                let x = self.expr(index, d + 1, k);
                self.line(&format!("{r} = idx({r}, {x}, {k})"));
            }
            Expr::Prop {
                target,
                key,
                site: st,
            } => {
                let k = site(st);
                self.expr(target, d, k);
                self.line(&format!("{r} = prop({r}, {}, {k})", lua::string(key)));
            }
            Expr::ParseInt { arg, radix } => {
                self.expr(arg, d, k);
                let x = match radix {
                    Some(x) => self.expr(x, d + 1, k),
                    None => "nil".to_string(),
                };
                self.line(&format!("{r} = pint({r}, {x})"));
            }
        }
        r
    }
}
