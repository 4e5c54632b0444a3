//! Native evaluation of compiled scripts (the script IR): a tree walk over
//! the IR, no JavaScript engine. The gateway supplies a [`Host`] (the
//! request or response the script sees); the evaluator validates what a
//! script writes (header names, values without CR/LF, statuses), bounds its
//! work by the program's cost bound, and reports a run-time failure with
//! the [`Site`] it happened at.

mod value;

use gatefold_compiler::ir::script::{
    Binary, Expr, Logical, Method, Program, ReqField, Side, Site, Stmt, Unary, MAX_LIST, MAX_STRING,
};
use gatefold_compiler::ir::values::check_header_value;
use gatefold_compiler::ir::HeaderName;
use std::collections::BTreeMap;
use std::rc::Rc;
pub use value::Value;
use value::{is_js_space, number_to_string, parse_int, relative, slice_utf16, to_json, utf16_len};

/// What a script reads and changes: the gateway's view of one message.
pub trait Host {
    /// `req.method`, `req.path`, `req.ip`; `req.consumer` (`None` is `null`).
    fn req_field(&self, field: ReqField) -> Option<String>;
    /// `res.status`.
    fn status(&self) -> u16;
    /// A header's values joined by `, `, or `None`; `name` is lowercase.
    fn header(&self, side: Side, name: &str) -> Option<String>;
    /// The first value of a query parameter, decoded, or `None`.
    fn query(&self, name: &str) -> Option<String>;
    /// Replaces a header (the name is a lowercase token, the value checked).
    fn set_header(&mut self, side: Side, name: &str, value: &str);
    fn remove_header(&mut self, side: Side, name: &str);
    fn set_path(&mut self, path: &str);
    fn log(&mut self, message: &str);
}

/// How a script ended, when it did not fail.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Ran to its end or to a `return`: the request goes on.
    Continue,
    /// `respond(...)`: the answer to send instead.
    Respond(Answer),
}

/// The answer a script's `respond()` makes.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `application/json` for a list or object body, `text/plain;
    /// charset=utf-8` for text, none for an empty body, unless `headers`
    /// set `content-type`.
    pub content_type: Option<&'static str>,
    /// Lowercase names, checked values.
    pub headers: Vec<(String, String)>,
}

/// A run-time failure: the gateway answers 500 `{"error":"script failed"}`.
#[derive(Debug, PartialEq)]
pub struct Failure {
    /// Where it happened, when the failing operation has a site.
    pub site: Option<Site>,
    pub reason: String,
}

/// The `ctx` map carried from the request script to the response script.
pub type Vars = BTreeMap<String, String>;

/// Runs `program` against `host`, reading and writing `vars` (`ctx`).
pub fn run(program: &Program, host: &mut dyn Host, vars: &mut Vars) -> Result<Outcome, Failure> {
    let mut ev = Eval {
        host,
        vars,
        locals: vec![Value::Undefined; usize::from(program.slots)],
        fuel: program.cost,
    };
    match ev.block(&program.body)? {
        Some(Exit::Respond(a)) => Ok(Outcome::Respond(a)),
        Some(Exit::Return) | None => Ok(Outcome::Continue),
    }
}

enum Exit {
    Return,
    Respond(Answer),
}

struct Eval<'a> {
    host: &'a mut dyn Host,
    vars: &'a mut Vars,
    locals: Vec<Value>,
    /// Steps left of the program's cost bound.
    fuel: u64,
}

fn fail(reason: impl Into<String>) -> Failure {
    Failure {
        site: None,
        reason: reason.into(),
    }
}

/// Gives a failure without a place the place of the operation around it.
fn at<T>(site: Site, r: Result<T, Failure>) -> Result<T, Failure> {
    r.map_err(|mut f| {
        f.site.get_or_insert(site);
        f
    })
}

fn checked(s: String) -> Result<Value, Failure> {
    if s.len() > MAX_STRING {
        return Err(fail(format!("a string grew past {MAX_STRING} bytes")));
    }
    Ok(Value::str(s))
}

impl Eval<'_> {
    fn step(&mut self) -> Result<(), Failure> {
        self.fuel = self
            .fuel
            .checked_sub(1)
            .ok_or_else(|| fail("the script ran past its cost bound"))?;
        Ok(())
    }

    fn block(&mut self, body: &[Stmt]) -> Result<Option<Exit>, Failure> {
        for s in body {
            if let Some(exit) = self.stmt(s)? {
                return Ok(Some(exit));
            }
        }
        Ok(None)
    }

    fn stmt(&mut self, s: &Stmt) -> Result<Option<Exit>, Failure> {
        self.step()?;
        match s {
            Stmt::Set { slot, value } => {
                let v = self.expr(value)?;
                self.locals[usize::from(*slot)] = v;
            }
            Stmt::SetCtx { key, value } => {
                let v = self.expr(value)?;
                if v.is_nullish() {
                    self.vars.remove(key);
                } else {
                    self.vars.insert(key.clone(), v.to_js_string().to_string());
                }
            }
            Stmt::SetHeader {
                side,
                name,
                value,
                site,
            } => at(*site, self.set_header(*side, name, value))?,
            Stmt::RemoveHeader { side, name, site } => {
                let name = at(*site, self.header_name(name))?;
                self.host.remove_header(*side, &name);
            }
            Stmt::SetPath { path, site } => {
                let p = at(*site, self.expr(path))?.to_js_string();
                if !p.starts_with('/') || check_header_value(&p).is_err() || p.contains(['?', '#'])
                {
                    return Err(Failure {
                        site: Some(*site),
                        reason: format!(
                            "req.setPath() takes a path that starts with `/`, in printable ASCII, without `?` or `#`; got {:?}",
                            truncate(&p)
                        ),
                    });
                }
                self.host.set_path(&p);
            }
            Stmt::Log { message } => {
                let m = self.expr(message)?.to_js_string();
                self.host.log(&m);
            }
            Stmt::Eval { value } => {
                self.expr(value)?;
            }
            Stmt::If {
                test,
                then,
                otherwise,
            } => {
                let branch = if self.expr(test)?.truthy() {
                    then
                } else {
                    otherwise
                };
                return self.block(branch);
            }
            Stmt::ForOf {
                slot,
                list,
                body,
                site,
            } => {
                let items = match at(*site, self.expr(list))? {
                    Value::List(items) => items,
                    other => {
                        return Err(Failure {
                            site: Some(*site),
                            reason: format!("for ... of needs a list, got {}", kind(&other)),
                        })
                    }
                };
                for item in items.iter() {
                    self.step()?;
                    self.locals[usize::from(*slot)] = item.clone();
                    // A failure in the body without a site of its own is
                    // placed at the loop.
                    if let Some(exit) = at(*site, self.block(body))? {
                        return Ok(Some(exit));
                    }
                }
            }
            Stmt::Return => return Ok(Some(Exit::Return)),
            Stmt::Respond {
                status,
                body,
                headers,
                site,
            } => {
                let answer = at(*site, self.respond(status, body.as_ref(), headers.as_ref()))?;
                return Ok(Some(Exit::Respond(answer)));
            }
        }
        Ok(None)
    }

    fn header_name(&mut self, name: &Expr) -> Result<Rc<str>, Failure> {
        let n = self.expr(name)?.to_js_string();
        // Most names are written as lowercase tokens: no parse, no copy.
        if !n.is_empty() && n.len() <= 256 && n.bytes().all(is_lowercase_tchar) {
            return Ok(n);
        }
        n.parse::<HeaderName>()
            .map(|h| Rc::from(h.as_str()))
            .map_err(fail)
    }

    fn set_header(&mut self, side: Side, name: &Expr, value: &Expr) -> Result<(), Failure> {
        let name = self.header_name(name)?;
        let value = self.expr(value)?.to_js_string();
        check_header_value(&value).map_err(|e| fail(format!("header `{name}`: {e}")))?;
        self.host.set_header(side, &name, &value);
        Ok(())
    }

    fn respond(
        &mut self,
        status: &Expr,
        body: Option<&Expr>,
        headers: Option<&Expr>,
    ) -> Result<Answer, Failure> {
        let s = self.expr(status)?.to_number();
        if s.fract() != 0.0 || !(100.0..=599.0).contains(&s) {
            return Err(fail(format!(
                "respond() status must be an integer from 100 to 599, got {}",
                number_to_string(s)
            )));
        }
        let body = match body {
            Some(b) => self.expr(b)?,
            None => Value::Undefined,
        };
        let (bytes, content_type) = match &body {
            Value::Undefined | Value::Null => (Vec::new(), None),
            Value::List(_) | Value::Obj(_) => {
                let mut out = String::new();
                to_json(&body, &mut out);
                (out.into_bytes(), Some("application/json"))
            }
            other => (
                other.to_js_string().as_bytes().to_vec(),
                Some("text/plain; charset=utf-8"),
            ),
        };
        let mut answer = Answer {
            status: s as u16,
            body: bytes,
            content_type,
            headers: Vec::new(),
        };
        if let Some(h) = headers {
            match self.expr(h)? {
                Value::Obj(fields) => {
                    for (k, v) in fields.iter() {
                        let name = k.parse::<HeaderName>().map_err(fail)?;
                        let value = v.to_js_string();
                        check_header_value(&value)
                            .map_err(|e| fail(format!("header `{name}`: {e}")))?;
                        let name = name.as_str().to_string();
                        answer.headers.retain(|(n, _)| *n != name);
                        answer.headers.push((name, value.to_string()));
                    }
                }
                Value::Undefined | Value::Null => {}
                other => {
                    return Err(fail(format!(
                        "respond() headers must be an object, got {}",
                        kind(&other)
                    )))
                }
            }
        }
        Ok(answer)
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, Failure> {
        self.step()?;
        Ok(match e {
            Expr::Undefined => Value::Undefined,
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Num(n) => Value::Num(*n),
            Expr::Str(s) => Value::str(s.as_str()),
            Expr::Local(slot) => self.locals[usize::from(*slot)].clone(),
            Expr::Ctx(key) => self
                .vars
                .get(key)
                .map_or(Value::Undefined, |v| Value::str(v.as_str())),
            Expr::Req(field) => match self.host.req_field(*field) {
                Some(v) => Value::str(v),
                None => Value::Null,
            },
            Expr::Status => Value::Num(f64::from(self.host.status())),
            Expr::Header { side, name } => {
                let name = self.expr(name)?.to_js_string();
                let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                    self.host.header(*side, &name.to_ascii_lowercase())
                } else {
                    self.host.header(*side, &name)
                };
                match found {
                    Some(v) => Value::str(v),
                    None => Value::Null,
                }
            }
            Expr::Query(name) => {
                let name = self.expr(name)?.to_js_string();
                match self.host.query(&name) {
                    Some(v) => Value::str(v),
                    None => Value::Null,
                }
            }
            Expr::Template(parts) => {
                let mut out = String::new();
                for p in parts {
                    out.push_str(&self.expr(p)?.to_js_string());
                    if out.len() > MAX_STRING {
                        break;
                    }
                }
                checked(out)?
            }
            Expr::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.expr(i)?);
                }
                Value::List(Rc::new(out))
            }
            Expr::Object(fields) => {
                let mut out = Vec::with_capacity(fields.len());
                for (k, v) in fields {
                    out.push((k.clone(), self.expr(v)?));
                }
                Value::Obj(Rc::new(out))
            }
            Expr::Unary { op, arg } => {
                let v = self.expr(arg)?;
                match op {
                    Unary::Not => Value::Bool(!v.truthy()),
                    Unary::Neg => Value::Num(-v.to_number()),
                }
            }
            Expr::Binary { op, left, right } => {
                let l = self.expr(left)?;
                let r = self.expr(right)?;
                binary(*op, &l, &r)?
            }
            Expr::Logical { op, left, right } => {
                let l = self.expr(left)?;
                let take_left = match op {
                    Logical::And => !l.truthy(),
                    Logical::Or => l.truthy(),
                    Logical::Coalesce => !l.is_nullish(),
                };
                if take_left {
                    l
                } else {
                    self.expr(right)?
                }
            }
            Expr::Cond {
                test,
                then,
                otherwise,
            } => {
                if self.expr(test)?.truthy() {
                    self.expr(then)?
                } else {
                    self.expr(otherwise)?
                }
            }
            Expr::Call {
                method,
                target,
                args,
                site,
            } => {
                let t = at(*site, self.expr(target))?;
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(at(*site, self.expr(a))?);
                }
                at(*site, call(*method, &t, &vals))?
            }
            Expr::Length { target, site } => match at(*site, self.expr(target))? {
                Value::Str(s) => Value::Num(utf16_len(&s) as f64),
                Value::List(l) => Value::Num(l.len() as f64),
                Value::Obj(f) => prop(&f, "length"),
                v @ (Value::Undefined | Value::Null) => {
                    return Err(Failure {
                        site: Some(*site),
                        reason: format!("cannot read `length` of {}", kind(&v)),
                    })
                }
                _ => Value::Undefined,
            },
            Expr::Index {
                target,
                index,
                site,
            } => {
                let t = at(*site, self.expr(target))?;
                let i = at(*site, self.expr(index))?;
                at(*site, index_of(&t, &i))?
            }
            Expr::Prop { target, key, site } => match at(*site, self.expr(target))? {
                Value::Obj(f) => prop(&f, key),
                v @ (Value::Undefined | Value::Null) => {
                    return Err(Failure {
                        site: Some(*site),
                        reason: format!("cannot read `{key}` of {}", kind(&v)),
                    })
                }
                _ => Value::Undefined,
            },
            Expr::ParseInt { arg, radix } => {
                let s = self.expr(arg)?.to_js_string();
                let r = match radix {
                    Some(r) => {
                        let v = self.expr(r)?;
                        (!matches!(v, Value::Undefined)).then(|| v.to_number())
                    }
                    None => None,
                };
                Value::Num(parse_int(&s, r))
            }
        })
    }
}

/// A byte of an HTTP token that is not an uppercase letter (a name made of
/// these is already what `HeaderName` would make of it).
fn is_lowercase_tchar(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~' | b'-')
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Undefined => "undefined",
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Num(_) => "a number",
        Value::Str(_) => "a string",
        Value::List(_) => "a list",
        Value::Obj(_) => "an object",
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn prop(fields: &[(String, Value)], key: &str) -> Value {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map_or(Value::Undefined, |(_, v)| v.clone())
}

/// A string that is a canonical array index (`"0"`, `"12"`, not `"01"`,
/// `"1.0"` or `" 1"`) as its number: JavaScript reads `list["1"]` as
/// `list[1]`. Lists and strings are far shorter than 15 digits can count.
fn canonical_index(s: &str) -> Option<f64> {
    let canonical = s == "0"
        || (s.len() < 16
            && s.starts_with(|c: char| ('1'..='9').contains(&c))
            && s.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| s.parse().ok()).flatten()
}

fn index_of(t: &Value, i: &Value) -> Result<Value, Failure> {
    let i = match (t, i) {
        (Value::List(_) | Value::Str(_), Value::Str(s)) => match canonical_index(s) {
            Some(n) => &Value::Num(n),
            None => return Ok(Value::Undefined),
        },
        _ => i,
    };
    let Value::Num(n) = i else {
        return match t {
            Value::Undefined | Value::Null => Err(fail(format!("cannot index {}", kind(t)))),
            Value::Obj(f) => Ok(prop(f, &i.to_js_string())),
            _ => Ok(Value::Undefined),
        };
    };
    let at = (n.fract() == 0.0 && *n >= 0.0).then_some(*n as usize);
    Ok(match t {
        Value::List(items) => at
            .and_then(|i| items.get(i))
            .cloned()
            .unwrap_or(Value::Undefined),
        Value::Str(s) => match at {
            Some(i) if i < utf16_len(s) => Value::str(slice_utf16(s, i, i + 1)),
            _ => Value::Undefined,
        },
        Value::Obj(f) => prop(f, &number_to_string(*n)),
        Value::Undefined | Value::Null => return Err(fail(format!("cannot index {}", kind(t)))),
        _ => Value::Undefined,
    })
}

fn binary(op: Binary, l: &Value, r: &Value) -> Result<Value, Failure> {
    Ok(match op {
        Binary::StrictEq => Value::Bool(l.strict_eq(r)),
        Binary::StrictNe => Value::Bool(!l.strict_eq(r)),
        Binary::Add => {
            let (l, r) = (l.to_primitive(), r.to_primitive());
            if matches!(l, Value::Str(_)) || matches!(r, Value::Str(_)) {
                let (a, b) = (l.to_js_string(), r.to_js_string());
                if a.len() + b.len() > MAX_STRING {
                    return Err(fail(format!("a string grew past {MAX_STRING} bytes")));
                }
                let mut s = String::with_capacity(a.len() + b.len());
                s.push_str(&a);
                s.push_str(&b);
                Value::str(s)
            } else {
                Value::Num(l.to_number() + r.to_number())
            }
        }
        Binary::Sub => Value::Num(l.to_number() - r.to_number()),
        Binary::Mul => Value::Num(l.to_number() * r.to_number()),
        Binary::Div => Value::Num(l.to_number() / r.to_number()),
        // `%` is fmod in JavaScript and in Rust alike.
        Binary::Rem => Value::Num(l.to_number() % r.to_number()),
        Binary::Lt | Binary::Le | Binary::Gt | Binary::Ge => {
            let (l, r) = (l.to_primitive(), r.to_primitive());
            let ord = match (&l, &r) {
                // Strings compare by UTF-16 code units.
                (Value::Str(a), Value::Str(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
                _ => l.to_number().partial_cmp(&r.to_number()),
            };
            use std::cmp::Ordering::*;
            Value::Bool(match (op, ord) {
                (_, None) => false,
                (Binary::Lt, Some(o)) => o == Less,
                (Binary::Le, Some(o)) => o != Greater,
                (Binary::Gt, Some(o)) => o == Greater,
                (_, Some(o)) => o != Less,
            })
        }
    })
}

fn call(method: Method, t: &Value, args: &[Value]) -> Result<Value, Failure> {
    if let (Method::Includes, Value::List(items)) = (method, t) {
        let x = args.first().cloned().unwrap_or(Value::Undefined);
        return Ok(Value::Bool(items.iter().any(|i| i.same_value_zero(&x))));
    }
    let Value::Str(s) = t else {
        return Err(fail(format!(
            "`{}` is a string method, called on {}",
            method.as_str(),
            kind(t)
        )));
    };
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Undefined);
    Ok(match method {
        Method::StartsWith => Value::Bool(s.starts_with(&*arg(0).to_js_string())),
        Method::EndsWith => Value::Bool(s.ends_with(&*arg(0).to_js_string())),
        Method::Includes => Value::Bool(s.contains(&*arg(0).to_js_string())),
        Method::ToLowerCase => checked(s.to_lowercase())?,
        Method::ToUpperCase => checked(s.to_uppercase())?,
        Method::Trim => Value::str(s.trim_matches(is_js_space)),
        Method::Slice => {
            let len = utf16_len(s);
            let start = match arg(0) {
                Value::Undefined => 0,
                v => relative(v.to_number(), len),
            };
            let end = match arg(1) {
                Value::Undefined => len,
                v => relative(v.to_number(), len),
            };
            Value::str(slice_utf16(s, start, end))
        }
        Method::Split => {
            let limit = match arg(1) {
                Value::Undefined => u32::MAX as usize,
                v => {
                    let n = v.to_number();
                    if n.is_finite() {
                        (n.trunc().rem_euclid(4_294_967_296.0)) as usize
                    } else {
                        0
                    }
                }
            };
            let parts: Vec<Value> = match arg(0) {
                Value::Undefined => vec![Value::Str(s.clone())],
                sep => {
                    let sep = sep.to_js_string();
                    if sep.is_empty() {
                        let units: Vec<u16> = s.encode_utf16().collect();
                        units
                            .iter()
                            .take(limit.min(MAX_LIST as usize + 1))
                            .map(|u| Value::str(String::from_utf16_lossy(&[*u])))
                            .collect()
                    } else {
                        s.split(&*sep)
                            .take(limit.min(MAX_LIST as usize + 1))
                            .map(Value::str)
                            .collect()
                    }
                }
            };
            let parts: Vec<Value> = parts.into_iter().take(limit).collect();
            if parts.len() as u64 > MAX_LIST {
                return Err(fail(format!("split() gave more than {MAX_LIST} items")));
            }
            Value::List(Rc::new(parts))
        }
    })
}

#[cfg(test)]
mod tests;
