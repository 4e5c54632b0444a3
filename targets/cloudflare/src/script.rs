//! `script`: JavaScript emitted from the script IR (never the user's
//! source). JavaScript is the Worker's own language, so most of the
//! subset's meaning is native; what the IR bounds or validates and
//! JavaScript does not (lists of at most `MAX_LIST` items, strings of at
//! most `MAX_STRING` bytes, header names and values, `respond()` statuses,
//! methods only on strings, properties only of object literals, UTF-16
//! halves as U+FFFD) goes through the small helpers of `js/script.js`,
//! which fail exactly where the reference gateway's evaluator fails.
//!
//! Each program becomes one function: `function NAME(H, S, X)`, where `H`
//! is the message's `Headers` (the upstream request's at phase 8, the
//! response's at phase 13), `S` the request state (`S.vars` is `ctx`) and
//! `X` the method (request side) or the status (response side). It returns
//! `undefined` to let the request go on, or the `Response` of `respond()`;
//! a failure throws a `ScriptFail` carrying the failing site.

use crate::router::js_str;
use gatefold_compiler::ir::script::{
    Binary, Expr, Logical, Method, Program, ReqField, Side, Site, Stmt, Unary,
};
use std::fmt::Write;

/// Emits `function name(H, S, X) { ... }` for one side of a script.
/// `id` names the policy instance in the script's `log()` lines.
pub fn function(name: &str, id: &str, program: &Program, side: Side) -> String {
    let mut e = Emitter {
        out: String::new(),
        side,
        id: js_str(id),
    };
    let _ = writeln!(
        e.out,
        "// cost bound: {} evaluation steps\nfunction {name}(H, S, X) {{",
        program.cost
    );
    if program.slots > 0 {
        let locals: Vec<String> = (0..program.slots).map(|i| format!("l{i}")).collect();
        let _ = writeln!(e.out, "  let {};", locals.join(", "));
    }
    e.block(&program.body, 1, None);
    e.out.push_str("}\n");
    e.out
}

struct Emitter {
    out: String,
    side: Side,
    /// The policy id as a JavaScript string literal.
    id: String,
}

/// The site a failure without one of its own is reported at: the nearest
/// enclosing operation with a site, as the reference's evaluator does.
fn site_js(site: Option<Site>) -> String {
    site.map_or_else(|| "-1".to_string(), |s| s.0.to_string())
}

fn num(n: f64) -> String {
    // Debug gives the shortest text that reads back as the same double
    // (`1e21`, `0.1`, `-0.0`), all valid JavaScript number literals.
    format!("({n:?})")
}

impl Emitter {
    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn block(&mut self, body: &[Stmt], depth: usize, site: Option<Site>) {
        for s in body {
            self.stmt(s, depth, site);
        }
    }

    fn stmt(&mut self, s: &Stmt, depth: usize, outer: Option<Site>) {
        match s {
            Stmt::Set { slot, value } => {
                let v = self.expr(value, outer);
                self.line(depth, &format!("l{slot} = {v};"));
            }
            Stmt::SetCtx { key, value } => {
                let v = self.expr(value, outer);
                self.line(depth, &format!("scCtxSet(S, {}, {v});", js_str(key)));
            }
            Stmt::SetHeader {
                name, value, site, ..
            } => {
                let n = self.expr(name, Some(*site));
                let v = self.expr(value, Some(*site));
                // The name is checked before the value is evaluated.
                self.line(
                    depth,
                    &format!("scSetHeader(H, scName({n}, {s}), {v}, {s});", s = site.0),
                );
            }
            Stmt::RemoveHeader { name, site, .. } => {
                let n = self.expr(name, Some(*site));
                self.line(depth, &format!("H.delete(scName({n}, {}));", site.0));
            }
            Stmt::SetPath { path, site } => {
                let p = self.expr(path, Some(*site));
                self.line(depth, &format!("scSetPath(S, {p}, {});", site.0));
            }
            Stmt::Log { message } => {
                let m = self.expr(message, outer);
                let line = format!("scLog({}, {m});", self.id);
                self.line(depth, &line);
            }
            Stmt::Eval { value } => {
                let v = self.expr(value, outer);
                self.line(depth, &format!("{v};"));
            }
            Stmt::If {
                test,
                then,
                otherwise,
            } => {
                let t = self.expr(test, outer);
                self.line(depth, &format!("if ({t}) {{"));
                self.block(then, depth + 1, outer);
                if otherwise.is_empty() {
                    self.line(depth, "}");
                } else {
                    self.line(depth, "} else {");
                    self.block(otherwise, depth + 1, outer);
                    self.line(depth, "}");
                }
            }
            Stmt::ForOf {
                slot,
                list,
                body,
                site,
            } => {
                let l = self.expr(list, Some(*site));
                self.line(
                    depth,
                    &format!("for (l{slot} of scList({l}, {})) {{", site.0),
                );
                // A failure in the body without a site of its own is
                // placed at the loop.
                self.block(body, depth + 1, Some(*site));
                self.line(depth, "}");
            }
            Stmt::Return => self.line(depth, "return;"),
            Stmt::Respond {
                status,
                body,
                headers,
                site,
            } => {
                let s = Some(*site);
                let st = self.expr(status, s);
                let b = body
                    .as_ref()
                    .map_or_else(|| "undefined".to_string(), |b| self.expr(b, s));
                let h = headers
                    .as_ref()
                    .map_or_else(|| "undefined".to_string(), |h| self.expr(h, s));
                // The status is checked before the body is evaluated.
                self.line(
                    depth,
                    &format!(
                        "return scRespond(scStatus({st}, {n}), {b}, {h}, {n});",
                        n = site.0
                    ),
                );
            }
        }
    }

    fn exprs(&mut self, xs: &[Expr], site: Option<Site>) -> Vec<String> {
        xs.iter().map(|x| self.expr(x, site)).collect()
    }

    /// The expression as JavaScript, parenthesized wherever precedence
    /// could matter. `site` is the enclosing failure site.
    fn expr(&mut self, x: &Expr, site: Option<Site>) -> String {
        let request = self.side == Side::Request;
        match x {
            Expr::Undefined => "undefined".into(),
            Expr::Null => "null".into(),
            Expr::Bool(b) => b.to_string(),
            Expr::Num(n) => num(*n),
            Expr::Str(s) => js_str(s),
            Expr::Local(slot) => format!("l{slot}"),
            Expr::Ctx(key) => format!("scCtxGet(S, {})", js_str(key)),
            // The response side sees no request (`null`), the request
            // side no status (0), as the reference's hosts answer.
            Expr::Req(field) if request => match field {
                ReqField::Method => "X".into(),
                ReqField::Path => "(S.scriptPath !== undefined ? S.scriptPath : S.path)".into(),
                ReqField::Ip => "S.client".into(),
                ReqField::Consumer => "S.consumer".into(),
            },
            Expr::Req(_) => "null".into(),
            Expr::Status if request => "0".into(),
            Expr::Status => "X".into(),
            Expr::Header { name, .. } => {
                let n = self.expr(name, site);
                format!("scHeader(H, {n})")
            }
            Expr::Query(name) => {
                let n = self.expr(name, site);
                if request {
                    format!("scQuery(S, {n})")
                } else {
                    format!("({n}, null)")
                }
            }
            Expr::Template(parts) => {
                let mut t = String::from("`");
                for p in self.exprs(parts, site) {
                    let _ = write!(t, "${{{p}}}");
                }
                t.push('`');
                format!("scCheck({t}, {})", site_js(site))
            }
            Expr::List(items) => format!("[{}]", self.exprs(items, site).join(", ")),
            Expr::Object(fields) => {
                let entries: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("[{}, {}]", js_str(k), self.expr(v, site)))
                    .collect();
                format!("new ScObj([{}])", entries.join(", "))
            }
            Expr::Unary { op, arg } => {
                let a = self.expr(arg, site);
                match op {
                    Unary::Not => format!("(!{a})"),
                    Unary::Neg => format!("(-{a})"),
                }
            }
            Expr::Binary { op, left, right } => {
                let (l, r) = (self.expr(left, site), self.expr(right, site));
                let op = match op {
                    Binary::Add => return format!("scAdd({l}, {r}, {})", site_js(site)),
                    Binary::StrictEq => "===",
                    Binary::StrictNe => "!==",
                    Binary::Lt => "<",
                    Binary::Le => "<=",
                    Binary::Gt => ">",
                    Binary::Ge => ">=",
                    Binary::Sub => "-",
                    Binary::Mul => "*",
                    Binary::Div => "/",
                    Binary::Rem => "%",
                };
                format!("({l} {op} {r})")
            }
            Expr::Logical { op, left, right } => {
                let (l, r) = (self.expr(left, site), self.expr(right, site));
                let op = match op {
                    Logical::And => "&&",
                    Logical::Or => "||",
                    Logical::Coalesce => "??",
                };
                format!("({l} {op} {r})")
            }
            Expr::Cond {
                test,
                then,
                otherwise,
            } => {
                let t = self.expr(test, site);
                let a = self.expr(then, site);
                let b = self.expr(otherwise, site);
                format!("({t} ? {a} : {b})")
            }
            Expr::Call {
                method,
                target,
                args,
                site: own,
            } => {
                let s = Some(*own);
                let t = self.expr(target, s);
                let mut a = self.exprs(args, s);
                // The helpers take every argument, `undefined` when left out.
                let (_, most) = method.arity();
                while a.len() < most {
                    a.push("undefined".into());
                }
                let helper = match method {
                    Method::StartsWith => "scStartsWith",
                    Method::EndsWith => "scEndsWith",
                    Method::Includes => "scIncludes",
                    Method::ToLowerCase => "scLower",
                    Method::ToUpperCase => "scUpper",
                    Method::Trim => "scTrim",
                    Method::Split => "scSplit",
                    Method::Slice => "scSlice",
                };
                let mut all = vec![t];
                all.extend(a);
                all.push(own.0.to_string());
                format!("{helper}({})", all.join(", "))
            }
            Expr::Length { target, site: own } => {
                let t = self.expr(target, Some(*own));
                format!("scLen({t}, {})", own.0)
            }
            Expr::Index {
                target,
                index,
                site: own,
            } => {
                let t = self.expr(target, Some(*own));
                let i = self.expr(index, Some(*own));
                format!("scIndex({t}, {i}, {})", own.0)
            }
            Expr::Prop {
                target,
                key,
                site: own,
            } => {
                let t = self.expr(target, Some(*own));
                format!("scProp({t}, {}, {})", js_str(key), own.0)
            }
            Expr::ParseInt { arg, radix } => {
                let a = self.expr(arg, site);
                match radix {
                    Some(r) => {
                        let r = self.expr(r, site);
                        format!("parseInt(String({a}), {r})")
                    }
                    None => format!("parseInt(String({a}))"),
                }
            }
        }
    }
}
