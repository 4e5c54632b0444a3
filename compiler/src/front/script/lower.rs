//! A parsed script (oxc's AST) to the script IR, checking the subset: every
//! construct outside it is an error at its byte range in the script, with
//! what to write instead. Names are resolved here (locals to slots, the API
//! to its operations), and what is checkable statically is type-checked.

use crate::ir::script::{
    Binary, Expr, Logical, Method, Program, ReqField, Side, Site, Stmt, Unary, MAX_COST, MAX_LIST,
};
use crate::ir::values::HeaderName;
use oxc_ast::ast::{self as js, Argument, Expression, Statement};
use oxc_span::GetSpan;
use std::ops::Range;

/// One problem in a script, at a byte range of its source.
#[derive(Debug)]
pub struct ScriptError {
    pub range: Range<usize>,
    pub code: &'static str,
    pub message: String,
    pub help: String,
}

/// What a compiled script carries besides its program: the byte range of
/// each run-time failure site, in [`Site`] order.
pub struct Lowered {
    pub program: Program,
    pub sites: Vec<Range<usize>>,
}

/// Statically known type of an expression, for the checks that can be made
/// before run time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    Num,
    Bool,
    Null,
    Undef,
    List,
    Obj,
    /// A string or `null` (a header, a query parameter, the consumer).
    StrOrNull,
    Any,
}

impl Ty {
    fn describe(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Num => "a number",
            Ty::Bool => "a boolean",
            Ty::Null => "null",
            Ty::Undef => "undefined",
            Ty::List => "a list",
            Ty::Obj => "an object",
            Ty::StrOrNull => "a string or null",
            Ty::Any => "a value",
        }
    }
    fn may_be_str(self) -> bool {
        matches!(self, Ty::Str | Ty::StrOrNull | Ty::Any)
    }
}

struct Binding {
    name: String,
    slot: u16,
    mutable: bool,
    ty: Ty,
}

#[derive(Default)]
struct Scope {
    bindings: Vec<Binding>,
    /// Names declared in this block but further down: using one before its
    /// declaration is JavaScript's temporal dead zone, an error here.
    later: Vec<String>,
}

const GLOBALS: &str = "req, res, ctx, respond, log, parseInt, undefined";
const REQ_API: &str = "req.method, req.path, req.ip, req.consumer, req.header(n), req.query(n), req.setHeader(n, v), req.removeHeader(n), req.setPath(p)";
const RES_API: &str = "res.status, res.header(n), res.setHeader(n, v), res.removeHeader(n)";
const API_NAMES: [&str; 6] = ["req", "res", "ctx", "respond", "log", "parseInt"];

/// Lowers one script (`side` says which phase it runs in); its sites are
/// numbered from `first_site` (a policy's response script follows its
/// request script in the source map's one list of sites).
pub fn lower(
    program: &js::Program<'_>,
    side: Side,
    first_site: u32,
) -> Result<Lowered, Vec<ScriptError>> {
    let mut l = Lower {
        side,
        first_site,
        scopes: Vec::new(),
        slots: 0,
        sites: Vec::new(),
        errors: Vec::new(),
    };
    for d in &program.directives {
        l.err(
            d.span,
            "script-not-in-subset",
            "a directive (`\"use strict\"`) is not part of the script subset",
            "remove it: scripts are always strict",
        );
    }
    let body = l.block(&program.body);
    let cost = Program::cost_of(&body);
    if cost > MAX_COST && l.errors.is_empty() {
        l.err(
            program.span,
            "script-too-costly",
            format!("this script may take up to {cost} steps, more than the {MAX_COST} allowed"),
            format!("each `for ... of` may run {MAX_LIST} times, so nested loops multiply; loop over fewer lists, or split the work"),
        );
    }
    if !l.errors.is_empty() {
        return Err(l.errors);
    }
    Ok(Lowered {
        program: Program {
            slots: l.slots,
            cost,
            body,
        },
        sites: l.sites,
    })
}

struct Lower {
    side: Side,
    first_site: u32,
    scopes: Vec<Scope>,
    slots: u16,
    sites: Vec<Range<usize>>,
    errors: Vec<ScriptError>,
}

fn range(span: oxc_span::Span) -> Range<usize> {
    span.start as usize..span.end as usize
}

impl Lower {
    fn err(
        &mut self,
        span: oxc_span::Span,
        code: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.errors.push(ScriptError {
            range: range(span),
            code,
            message: message.into(),
            help: help.into(),
        });
    }

    fn not_in_subset(&mut self, span: oxc_span::Span, what: &str, help: &str) {
        self.err(
            span,
            "script-not-in-subset",
            format!("{what} is not part of the script subset"),
            help,
        );
    }

    fn site(&mut self, span: oxc_span::Span) -> Site {
        self.sites.push(range(span));
        Site(self.first_site + self.sites.len() as u32 - 1)
    }

    // ---- statements ----

    fn block(&mut self, stmts: &[Statement<'_>]) -> Vec<Stmt> {
        let mut scope = Scope::default();
        for s in stmts {
            if let Statement::VariableDeclaration(d) = s {
                for decl in &d.declarations {
                    if let js::BindingPatternKind::BindingIdentifier(id) = &decl.id.kind {
                        scope.later.push(id.name.to_string());
                    }
                }
            }
        }
        self.scopes.push(scope);
        let mut out = Vec::new();
        for s in stmts {
            self.stmt(s, &mut out);
        }
        self.scopes.pop();
        out
    }

    /// A statement that is its own block (an `if` branch, a loop body).
    fn nested(&mut self, s: &Statement<'_>) -> Vec<Stmt> {
        match s {
            Statement::BlockStatement(b) => self.block(&b.body),
            other => self.block(std::slice::from_ref(other)),
        }
    }

    fn stmt(&mut self, s: &Statement<'_>, out: &mut Vec<Stmt>) {
        const LOOP_HELP: &str =
            "iterate over a finite list instead: `for (const part of value.split(\",\")) { ... }`";
        match s {
            Statement::BlockStatement(b) => {
                let inner = self.block(&b.body);
                out.extend(inner);
            }
            Statement::EmptyStatement(_) => {}
            Statement::ExpressionStatement(e) => {
                if let Some(s) = self.expr_stmt(&e.expression) {
                    out.push(s);
                }
            }
            Statement::VariableDeclaration(d) => self.declaration(d, out),
            Statement::IfStatement(i) => {
                let (test, _) = self.expr(&i.test);
                let then = self.nested(&i.consequent);
                let otherwise = i.alternate.as_ref().map_or_else(Vec::new, |a| self.nested(a));
                out.push(Stmt::If {
                    test,
                    then,
                    otherwise,
                });
            }
            Statement::ForOfStatement(f) => {
                if let Some(s) = self.for_of(f) {
                    out.push(s);
                }
            }
            Statement::ReturnStatement(r) => match &r.argument {
                None => out.push(Stmt::Return),
                Some(Expression::CallExpression(c)) if is_ident(&c.callee, "respond") => {
                    if let Some(s) = self.respond(c) {
                        out.push(s);
                    }
                }
                Some(other) => self.err(
                    other.span(),
                    "script-bad-return",
                    "a script returns nothing or `respond(...)`, not a value",
                    "write `return;` to stop here, or `return respond(400, { error: \"...\" });` to answer",
                ),
            },
            Statement::WhileStatement(w) => {
                self.not_in_subset(w.span, "a `while` loop", LOOP_HELP)
            }
            Statement::DoWhileStatement(w) => {
                self.not_in_subset(w.span, "a `do ... while` loop", LOOP_HELP)
            }
            Statement::ForStatement(w) => {
                self.not_in_subset(w.span, "a `for (;;)` loop", LOOP_HELP)
            }
            Statement::ForInStatement(w) => self.not_in_subset(
                w.span,
                "a `for ... in` loop",
                "iterate over a list with `for (const x of list)`",
            ),
            Statement::FunctionDeclaration(f) => self.not_in_subset(
                f.span,
                "a function",
                "write the code inline: scripts have no user functions, so every script terminates",
            ),
            Statement::ClassDeclaration(c) => {
                self.not_in_subset(c.span, "a class", "write the code inline")
            }
            Statement::TryStatement(t) => self.not_in_subset(
                t.span,
                "`try`",
                "a failing script answers 500 `{\"error\":\"script failed\"}`; check values with `if` before using them",
            ),
            Statement::ThrowStatement(t) => self.not_in_subset(
                t.span,
                "`throw`",
                "answer with `return respond(500, { error: \"...\" });`",
            ),
            Statement::SwitchStatement(t) => self.not_in_subset(
                t.span,
                "`switch`",
                "write `if (x === \"a\") { ... } else if (x === \"b\") { ... }`",
            ),
            Statement::BreakStatement(t) => self.not_in_subset(
                t.span,
                "`break`",
                "guard the loop body with `if` instead",
            ),
            Statement::ContinueStatement(t) => self.not_in_subset(
                t.span,
                "`continue`",
                "guard the rest of the loop body with `if` instead",
            ),
            Statement::LabeledStatement(t) => {
                self.not_in_subset(t.span, "a label", "remove the label")
            }
            Statement::WithStatement(t) => {
                self.not_in_subset(t.span, "`with`", "name the value you mean")
            }
            Statement::DebuggerStatement(t) => {
                self.not_in_subset(t.span, "`debugger`", "use `log(...)`")
            }
            other => self.not_in_subset(
                other.span(),
                "this statement (an import, export or type declaration)",
                "scripts are plain statements: const/let, if/else, for...of, return and calls of the API",
            ),
        }
    }

    fn declaration(&mut self, d: &js::VariableDeclaration<'_>, out: &mut Vec<Stmt>) {
        use js::VariableDeclarationKind as K;
        let mutable = match d.kind {
            K::Const => false,
            K::Let => true,
            K::Var => {
                return self.not_in_subset(
                    d.span,
                    "`var`",
                    "use `const` (or `let` for a value you reassign)",
                )
            }
            _ => {
                return self.not_in_subset(d.span, "`using`", "use `const`");
            }
        };
        for decl in &d.declarations {
            let value = match &decl.init {
                Some(init) => self.expr(init),
                None => (Expr::Undefined, Ty::Undef),
            };
            let js::BindingPatternKind::BindingIdentifier(id) = &decl.id.kind else {
                self.not_in_subset(
                    decl.id.span(),
                    "destructuring",
                    "declare one name per value: `const a = list[0];`",
                );
                continue;
            };
            let ty = if mutable { Ty::Any } else { value.1 };
            if let Some(slot) = self.declare(&id.name, id.span, mutable, ty) {
                out.push(Stmt::Set {
                    slot,
                    value: value.0,
                });
            }
        }
    }

    fn declare(&mut self, name: &str, span: oxc_span::Span, mutable: bool, ty: Ty) -> Option<u16> {
        if API_NAMES.contains(&name) || name == "undefined" {
            self.err(
                span,
                "script-shadows-api",
                format!("`{name}` is a name of the script API and cannot be declared"),
                "choose another name",
            );
            return None;
        }
        let scope = self.scopes.last_mut().expect("a scope is open");
        if scope.bindings.iter().any(|b| b.name == name) {
            self.err(
                span,
                "script-redeclared",
                format!("`{name}` is declared twice in this block"),
                "choose another name, or assign the `let` with `name = value;`",
            );
            return None;
        }
        scope.later.retain(|n| n != name);
        let slot = self.slots;
        if slot == u16::MAX {
            self.err(
                span,
                "script-too-large",
                "this script declares too many names",
                "split it",
            );
            return None;
        }
        self.slots += 1;
        self.scopes
            .last_mut()
            .expect("a scope is open")
            .bindings
            .push(Binding {
                name: name.to_string(),
                slot,
                mutable,
                ty,
            });
        Some(slot)
    }

    fn lookup(&self, name: &str) -> Option<Result<&Binding, ()>> {
        for scope in self.scopes.iter().rev() {
            if let Some(b) = scope.bindings.iter().rev().find(|b| b.name == name) {
                return Some(Ok(b));
            }
            if scope.later.iter().any(|n| n == name) {
                return Some(Err(()));
            }
        }
        None
    }

    fn for_of(&mut self, f: &js::ForOfStatement<'_>) -> Option<Stmt> {
        if f.r#await {
            self.not_in_subset(
                f.span,
                "`for await`",
                "scripts are synchronous: write `for (const x of list)`",
            );
            return None;
        }
        let (list, ty) = self.expr(&f.right);
        match ty {
            Ty::List | Ty::Any => {}
            Ty::Str | Ty::StrOrNull => {
                self.err(
                    f.right.span(),
                    "script-type",
                    "`for ... of` iterates over a list; this is a string",
                    "split it first: `for (const part of s.split(\",\"))`",
                );
                return None;
            }
            other => {
                self.err(
                    f.right.span(),
                    "script-type",
                    format!(
                        "`for ... of` iterates over a list; this is {}",
                        other.describe()
                    ),
                    "iterate over a `split()` result or a list literal",
                );
                return None;
            }
        }
        let js::ForStatementLeft::VariableDeclaration(d) = &f.left else {
            self.not_in_subset(
                f.left.span(),
                "a loop over an existing variable",
                "declare the loop variable: `for (const x of list)`",
            );
            return None;
        };
        let mutable = d.kind == js::VariableDeclarationKind::Let;
        if !matches!(
            d.kind,
            js::VariableDeclarationKind::Const | js::VariableDeclarationKind::Let
        ) {
            self.not_in_subset(d.span, "`var`", "write `for (const x of list)`");
            return None;
        }
        let [decl] = d.declarations.as_slice() else {
            return None;
        };
        let js::BindingPatternKind::BindingIdentifier(id) = &decl.id.kind else {
            self.not_in_subset(
                decl.id.span(),
                "destructuring",
                "write `for (const x of list)`",
            );
            return None;
        };
        self.scopes.push(Scope::default());
        let slot = self.declare(&id.name, id.span, mutable, Ty::Any);
        let body = self.nested(&f.body);
        self.scopes.pop();
        let site = self.site(f.right.span());
        Some(Stmt::ForOf {
            slot: slot?,
            list,
            body,
            site,
        })
    }

    fn expr_stmt(&mut self, e: &Expression<'_>) -> Option<Stmt> {
        match e {
            Expression::AssignmentExpression(a) => self.assign(a),
            Expression::CallExpression(c) => {
                if is_ident(&c.callee, "respond") {
                    return self.respond(c);
                }
                if is_ident(&c.callee, "log") {
                    let [arg] = self.args(c, 1, 1, "log(\"message\")")?.try_into().ok()?;
                    return Some(Stmt::Log { message: arg.0 });
                }
                if let Expression::StaticMemberExpression(m) = &c.callee {
                    if let Some(side) = self.api_object(&m.object) {
                        let name = m.property.name.as_str();
                        match (side, name) {
                            (_, "setHeader") => {
                                let side = self.writable(side, m.object.span())?;
                                let args =
                                    self.args(c, 2, 2, "setHeader(\"x-name\", \"value\")")?;
                                let mut args = args.into_iter();
                                let (name, nty) = args.next()?;
                                let (value, vty) = args.next()?;
                                self.check_header_name(&c.arguments[0], nty);
                                self.check_header_value(&c.arguments[1], vty);
                                let site = self.site(c.span);
                                return Some(Stmt::SetHeader {
                                    side,
                                    name,
                                    value,
                                    site,
                                });
                            }
                            (_, "removeHeader") => {
                                let side = self.writable(side, m.object.span())?;
                                let (name, nty) =
                                    self.args(c, 1, 1, "removeHeader(\"x-name\")")?.pop()?;
                                self.check_header_name(&c.arguments[0], nty);
                                let site = self.site(c.span);
                                return Some(Stmt::RemoveHeader { side, name, site });
                            }
                            (Side::Request, "setPath") => {
                                self.writable(side, m.object.span())?;
                                let (path, ty) =
                                    self.args(c, 1, 1, "setPath(\"/v2/items\")")?.pop()?;
                                if !ty.may_be_str() {
                                    self.err(
                                        c.arguments[0].span(),
                                        "script-type",
                                        format!(
                                            "`req.setPath` takes a path string; this is {}",
                                            ty.describe()
                                        ),
                                        "write `req.setPath(\"/v2\" + req.path)`",
                                    );
                                }
                                if let Expression::StringLiteral(s) =
                                    &c.arguments[0].as_expression()?
                                {
                                    if !s.value.starts_with('/') {
                                        self.err(
                                            s.span,
                                            "script-bad-path",
                                            "a path starts with `/`",
                                            format!("write `\"/{}\"`", s.value),
                                        );
                                    }
                                }
                                let site = self.site(c.span);
                                return Some(Stmt::SetPath { path, site });
                            }
                            _ => {}
                        }
                    }
                }
                let (value, _) = self.expr(e);
                Some(Stmt::Eval { value })
            }
            Expression::UpdateExpression(u) => {
                self.not_in_subset(u.span, "`++` / `--`", "write `n = n + 1;` on a `let`");
                None
            }
            other => {
                let (value, _) = self.expr(other);
                Some(Stmt::Eval { value })
            }
        }
    }

    /// The side an API object stands for, if `e` is `req` or `res`.
    fn api_object(&self, e: &Expression<'_>) -> Option<Side> {
        match e {
            Expression::Identifier(i) if i.name == "req" => Some(Side::Request),
            Expression::Identifier(i) if i.name == "res" => Some(Side::Response),
            _ => None,
        }
    }

    /// Checks that this script may use the API object `side` at all.
    fn available(&mut self, side: Side, span: oxc_span::Span) -> bool {
        match (self.side, side) {
            (Side::Request, Side::Response) => {
                self.err(
                    span,
                    "script-wrong-phase",
                    "`res` is not there yet in the request script",
                    "use `res` in the `response:` script",
                );
                false
            }
            (Side::Response, Side::Request) => {
                self.err(
                    span,
                    "script-wrong-phase",
                    "the response script cannot read `req`",
                    "copy what you need in the request script: `ctx.path = req.path;`, then read `ctx.path`",
                );
                false
            }
            _ => true,
        }
    }

    /// `side` when this script may change it.
    fn writable(&mut self, side: Side, span: oxc_span::Span) -> Option<Side> {
        self.available(side, span).then_some(side)
    }

    fn check_header_name(&mut self, arg: &Argument<'_>, ty: Ty) {
        match arg.as_expression() {
            Some(Expression::StringLiteral(s)) => {
                if let Err(e) = s.value.parse::<HeaderName>() {
                    self.err(
                        s.span,
                        "script-bad-header-name",
                        e,
                        "header names are letters, digits and `-`: `\"x-tenant\"`",
                    );
                }
            }
            _ if !ty.may_be_str() => self.err(
                arg.span(),
                "script-type",
                format!("a header name is a string; this is {}", ty.describe()),
                "write the name as a string: `\"x-tenant\"`",
            ),
            _ => {}
        }
    }

    fn check_header_value(&mut self, arg: &Argument<'_>, _ty: Ty) {
        if let Some(Expression::StringLiteral(s)) = arg.as_expression() {
            if let Err(e) = crate::ir::values::check_header_value(&s.value) {
                self.err(
                    s.span,
                    "script-bad-header-value",
                    e,
                    "write the value on one line, in printable ASCII",
                );
            }
        }
    }

    fn assign(&mut self, a: &js::AssignmentExpression<'_>) -> Option<Stmt> {
        use js::AssignmentOperator as Op;
        let op = match a.operator {
            Op::Assign => None,
            Op::Addition => Some(Binary::Add),
            _ => {
                self.not_in_subset(
                    a.span,
                    &format!("the `{}` operator", a.operator.as_str()),
                    "write `x = x + y;` style assignments",
                );
                return None;
            }
        };
        let (value, vty) = self.expr(&a.right);
        match &a.left {
            js::AssignmentTarget::AssignmentTargetIdentifier(id) => {
                let name = id.name.as_str();
                match self.lookup(name) {
                    Some(Ok(b)) if b.mutable => {
                        let slot = b.slot;
                        let value = match op {
                            None => value,
                            Some(op) => Expr::Binary {
                                op,
                                left: Box::new(Expr::Local(slot)),
                                right: Box::new(value),
                            },
                        };
                        Some(Stmt::Set { slot, value })
                    }
                    Some(Ok(_)) => {
                        self.err(
                            id.span,
                            "script-assign-const",
                            format!("`{name}` is a `const`"),
                            format!("declare it with `let {name} = ...;` to reassign it"),
                        );
                        None
                    }
                    Some(Err(())) => {
                        self.before_declaration(id.span, name);
                        None
                    }
                    None => {
                        self.unknown_name(id.span, name);
                        None
                    }
                }
            }
            js::AssignmentTarget::StaticMemberExpression(m) => match &m.object {
                Expression::Identifier(o) if o.name == "ctx" && op.is_none() => {
                    let _ = vty;
                    Some(Stmt::SetCtx {
                        key: m.property.name.to_string(),
                        value,
                    })
                }
                Expression::Identifier(o) if o.name == "ctx" => {
                    let key = m.property.name.to_string();
                    Some(Stmt::SetCtx {
                        key: key.clone(),
                        value: Expr::Binary {
                            op: Binary::Add,
                            left: Box::new(Expr::Ctx(key)),
                            right: Box::new(value),
                        },
                    })
                }
                Expression::Identifier(o) if o.name == "req" || o.name == "res" => {
                    let prop = m.property.name.as_str();
                    let help = match (o.name.as_str(), prop) {
                            ("req", "path") => "change the upstream path with `req.setPath(\"/new\")`",
                            ("req", "method") => "a script cannot change the method; route on it with `match`, or answer with `respond()`",
                            ("res", "status") => "a script cannot change the upstream's status; answer with `respond()` in the request script",
                            ("req", _) => "change headers with `req.setHeader(name, value)`",
                            _ => "change headers with `res.setHeader(name, value)`",
                        };
                    self.err(
                        m.span,
                        "script-read-only",
                        format!("`{}.{prop}` is read-only", o.name),
                        help,
                    );
                    None
                }
                _ => {
                    self.not_in_subset(
                        m.span,
                        "assigning to a property",
                        "assign to a `let`, or to `ctx.name`",
                    );
                    None
                }
            },
            other => {
                self.not_in_subset(
                    other.span(),
                    "this assignment target",
                    "assign to a `let` variable or to `ctx.name`",
                );
                None
            }
        }
    }

    fn respond(&mut self, c: &js::CallExpression<'_>) -> Option<Stmt> {
        if self.side == Side::Response {
            self.err(
                c.span,
                "script-wrong-phase",
                "`respond()` ends the request, so it belongs in the request script",
                "in the response script, change the response with `res.setHeader(...)`",
            );
            return None;
        }
        let mut args = self
            .args(c, 1, 3, "respond(400, { error: \"tenant required\" })")?
            .into_iter();
        let (status, sty) = args.next()?;
        match (&c.arguments[0].as_expression(), sty) {
            (Some(Expression::NumericLiteral(n)), _) => {
                if n.value.fract() != 0.0 || !(100.0..=599.0).contains(&n.value) {
                    self.err(
                        n.span,
                        "script-bad-status",
                        format!(
                            "`{}` is not an HTTP status: a status is an integer from 100 to 599",
                            n.raw
                                .as_ref()
                                .map_or_else(|| n.value.to_string(), |r| r.to_string())
                        ),
                        "write a status such as `400` or `503`",
                    );
                }
            }
            (_, Ty::Num | Ty::Any) => {}
            (_, ty) => self.err(
                c.arguments[0].span(),
                "script-type",
                format!(
                    "a status is an integer from 100 to 599; this is {}",
                    ty.describe()
                ),
                "write a status such as `400`, or `parseInt(s)` of a string",
            ),
        }
        let body = args.next().map(|b| b.0);
        let headers = args.next();
        if let Some((_, ty)) = &headers {
            if !matches!(ty, Ty::Obj | Ty::Any) {
                self.err(
                    c.arguments[2].span(),
                    "script-type",
                    format!(
                        "`respond()`'s headers are an object; this is {}",
                        ty.describe()
                    ),
                    "write `{ \"retry-after\": \"60\" }`",
                );
            }
            if let Some(Expression::ObjectExpression(o)) = c.arguments[2].as_expression() {
                for p in &o.properties {
                    if let js::ObjectPropertyKind::ObjectProperty(p) = p {
                        if let Some(name) = static_key(&p.key) {
                            if let Err(e) = name.parse::<HeaderName>() {
                                self.err(
                                    p.key.span(),
                                    "script-bad-header-name",
                                    e,
                                    "header names are letters, digits and `-`: `\"retry-after\"`",
                                );
                            }
                        }
                    }
                }
            }
        }
        let site = self.site(c.span);
        Some(Stmt::Respond {
            status,
            body,
            headers: headers.map(|h| h.0),
            site,
        })
    }

    fn args(
        &mut self,
        c: &js::CallExpression<'_>,
        min: usize,
        max: usize,
        example: &str,
    ) -> Option<Vec<(Expr, Ty)>> {
        if c.optional {
            self.not_in_subset(
                c.span,
                "optional call `?.()`",
                "check the value with `if` first",
            );
            return None;
        }
        let n = c.arguments.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            self.err(
                c.span,
                "script-arity",
                format!("this call takes {want} argument(s), found {n}"),
                format!("write `{example}`"),
            );
            return None;
        }
        let mut out = Vec::new();
        for a in &c.arguments {
            match a.as_expression() {
                Some(e) => out.push(self.expr(e)),
                None => {
                    self.not_in_subset(a.span(), "a spread argument `...`", "pass each argument");
                    return None;
                }
            }
        }
        Some(out)
    }

    fn unknown_name(&mut self, span: oxc_span::Span, name: &str) {
        let help = match name {
            "eval" | "Function" => "scripts cannot run code they build".to_string(),
            "fetch" | "XMLHttpRequest" | "WebSocket" | "require" | "process" | "Deno" | "globalThis" | "window" => {
                "scripts cannot reach the network, the file system or the environment; they see only the API".to_string()
            }
            "console" => "write `log(message)`".to_string(),
            "Number" => "write `parseInt(s)`".to_string(),
            "String" => "write a template literal: `${value}`".to_string(),
            _ => format!("a script sees the names it declares and the API: {GLOBALS}"),
        };
        self.err(
            span,
            "script-unknown-name",
            format!("`{name}` is not declared and is not part of the script API"),
            help,
        );
    }

    fn before_declaration(&mut self, span: oxc_span::Span, name: &str) {
        self.err(
            span,
            "script-before-declaration",
            format!("`{name}` is used before its declaration"),
            "move the declaration above its first use",
        );
    }

    // ---- expressions ----

    fn boxed(&mut self, e: &Expression<'_>) -> (Box<Expr>, Ty) {
        let (x, t) = self.expr(e);
        (Box::new(x), t)
    }

    fn expr(&mut self, e: &Expression<'_>) -> (Expr, Ty) {
        const NONE: (Expr, Ty) = (Expr::Undefined, Ty::Any);
        match e {
            Expression::BooleanLiteral(b) => (Expr::Bool(b.value), Ty::Bool),
            Expression::NullLiteral(_) => (Expr::Null, Ty::Null),
            Expression::NumericLiteral(n) => {
                if !n.value.is_finite() {
                    self.err(
                        n.span,
                        "script-bad-number",
                        "this number is too large",
                        "write a smaller number",
                    );
                }
                (Expr::Num(n.value), Ty::Num)
            }
            Expression::StringLiteral(s) => (Expr::Str(s.value.to_string()), Ty::Str),
            Expression::TemplateLiteral(t) => {
                let mut parts = Vec::new();
                for (i, q) in t.quasis.iter().enumerate() {
                    match &q.value.cooked {
                        Some(c) if !c.is_empty() => parts.push(Expr::Str(c.to_string())),
                        Some(_) => {}
                        None => self.err(
                            q.span,
                            "script-bad-escape",
                            "this template holds an invalid escape",
                            "write `\\\\` for a backslash",
                        ),
                    }
                    if let Some(x) = t.expressions.get(i) {
                        parts.push(self.expr(x).0);
                    }
                }
                (Expr::Template(parts), Ty::Str)
            }
            Expression::Identifier(id) => {
                let name = id.name.as_str();
                match self.lookup(name) {
                    Some(Ok(b)) => (Expr::Local(b.slot), b.ty),
                    Some(Err(())) => {
                        self.before_declaration(id.span, name);
                        NONE
                    }
                    None if name == "undefined" => (Expr::Undefined, Ty::Undef),
                    None if matches!(name, "req" | "res" | "ctx") => {
                        self.err(
                            id.span,
                            "script-api-value",
                            format!("`{name}` is used through its properties and methods, not as a value"),
                            format!("the API: {REQ_API}; {RES_API}; ctx.name"),
                        );
                        NONE
                    }
                    None if matches!(name, "respond" | "log" | "parseInt") => {
                        self.err(
                            id.span,
                            "script-api-value",
                            format!("`{name}` is a function of the API: call it"),
                            format!("write `{name}(...)`"),
                        );
                        NONE
                    }
                    None => {
                        self.unknown_name(id.span, name);
                        NONE
                    }
                }
            }
            Expression::ParenthesizedExpression(p) => self.expr(&p.expression),
            Expression::StaticMemberExpression(m) => {
                if m.optional {
                    self.not_in_subset(
                        m.span,
                        "optional chaining `?.`",
                        "check the value first: `x ? x.length : 0`, or use `??`",
                    );
                    return NONE;
                }
                let prop = m.property.name.as_str();
                if let Some(side) = self.api_object(&m.object) {
                    if !self.available(side, m.object.span()) {
                        return NONE;
                    }
                    return match (side, prop) {
                        (Side::Request, "method") => (Expr::Req(ReqField::Method), Ty::Str),
                        (Side::Request, "path") => (Expr::Req(ReqField::Path), Ty::Str),
                        (Side::Request, "ip") => (Expr::Req(ReqField::Ip), Ty::Str),
                        (Side::Request, "consumer") => {
                            (Expr::Req(ReqField::Consumer), Ty::StrOrNull)
                        }
                        (Side::Response, "status") => (Expr::Status, Ty::Num),
                        _ => {
                            self.unknown_api(m.span, side, prop);
                            NONE
                        }
                    };
                }
                if is_ident(&m.object, "ctx") {
                    return (Expr::Ctx(prop.to_string()), Ty::Any);
                }
                let (target, ty) = self.boxed(&m.object);
                if prop == "length" {
                    if !matches!(ty, Ty::Str | Ty::StrOrNull | Ty::List | Ty::Any) {
                        self.err(
                            m.span,
                            "script-type",
                            format!(
                                "`length` is a string's or a list's; this is {}",
                                ty.describe()
                            ),
                            "check the value first",
                        );
                        return NONE;
                    }
                    let site = self.site(m.span);
                    return (Expr::Length { target, site }, Ty::Num);
                }
                if Method::ALL.iter().any(|x| x.as_str() == prop) {
                    self.err(
                        m.span,
                        "script-api-value",
                        format!("`{prop}` is a method: call it"),
                        format!("write `.{prop}(...)`"),
                    );
                    return NONE;
                }
                if !matches!(ty, Ty::Obj | Ty::Any) {
                    self.err(
                        m.property.span,
                        "script-unknown-property",
                        format!("{} has no property `{prop}` in the subset", ty.describe()),
                        "strings and lists have `length`; objects the keys they were written with",
                    );
                    return NONE;
                }
                let site = self.site(m.span);
                (
                    Expr::Prop {
                        target,
                        key: prop.to_string(),
                        site,
                    },
                    Ty::Any,
                )
            }
            Expression::ComputedMemberExpression(m) => {
                if m.optional {
                    self.not_in_subset(m.span, "optional chaining `?.[]`", "check the value first");
                    return NONE;
                }
                if let Expression::StringLiteral(k) = &m.expression {
                    if is_ident(&m.object, "ctx") {
                        return (Expr::Ctx(k.value.to_string()), Ty::Any);
                    }
                }
                if let Some(side) = self.api_object(&m.object) {
                    self.err(
                        m.span,
                        "script-unknown-property",
                        "the API's properties are named, not computed",
                        if side == Side::Request {
                            REQ_API
                        } else {
                            RES_API
                        },
                    );
                    return NONE;
                }
                let (target, ty) = self.boxed(&m.object);
                if let Expression::StringLiteral(k) = &m.expression {
                    if matches!(ty, Ty::Obj | Ty::Any) {
                        let site = self.site(m.span);
                        return (
                            Expr::Prop {
                                target,
                                key: k.value.to_string(),
                                site,
                            },
                            Ty::Any,
                        );
                    }
                }
                if !matches!(ty, Ty::Str | Ty::StrOrNull | Ty::List | Ty::Any) {
                    self.err(
                        m.span,
                        "script-type",
                        format!(
                            "only strings and lists are indexed; this is {}",
                            ty.describe()
                        ),
                        "check the value first",
                    );
                    return NONE;
                }
                let (index, ity) = self.boxed(&m.expression);
                if !matches!(ity, Ty::Num | Ty::Any) {
                    self.err(
                        m.expression.span(),
                        "script-type",
                        format!("an index is a number; this is {}", ity.describe()),
                        "write `list[0]`",
                    );
                }
                let site = self.site(m.span);
                (
                    Expr::Index {
                        target,
                        index,
                        site,
                    },
                    Ty::Any,
                )
            }
            Expression::CallExpression(c) => self.call(c),
            Expression::UnaryExpression(u) => {
                use js::UnaryOperator as U;
                let op = match u.operator {
                    U::LogicalNot => Unary::Not,
                    U::UnaryNegation => Unary::Neg,
                    U::UnaryPlus => {
                        self.not_in_subset(
                            u.span,
                            "unary `+`",
                            "write `parseInt(s)` to read a number",
                        );
                        return NONE;
                    }
                    U::Typeof => {
                        self.not_in_subset(u.span, "`typeof`", "compare with `=== null` or `=== undefined`, or test truthiness with `if (x)`");
                        return NONE;
                    }
                    other => {
                        self.not_in_subset(
                            u.span,
                            &format!("the `{}` operator", other.as_str()),
                            "use `!`, `-` and the comparison operators",
                        );
                        return NONE;
                    }
                };
                let (arg, _) = self.boxed(&u.argument);
                let ty = if op == Unary::Not { Ty::Bool } else { Ty::Num };
                (Expr::Unary { op, arg }, ty)
            }
            Expression::BinaryExpression(b) => {
                use js::BinaryOperator as B;
                let op = match b.operator {
                    B::StrictEquality => Binary::StrictEq,
                    B::StrictInequality => Binary::StrictNe,
                    B::LessThan => Binary::Lt,
                    B::LessEqualThan => Binary::Le,
                    B::GreaterThan => Binary::Gt,
                    B::GreaterEqualThan => Binary::Ge,
                    B::Addition => Binary::Add,
                    B::Subtraction => Binary::Sub,
                    B::Multiplication => Binary::Mul,
                    B::Division => Binary::Div,
                    B::Remainder => Binary::Rem,
                    B::Equality | B::Inequality => {
                        let strict = if b.operator == B::Equality {
                            "==="
                        } else {
                            "!=="
                        };
                        self.err(
                            oxc_span::Span::new(b.left.span().end, b.right.span().start),
                            "script-loose-equality",
                            format!("`{}` converts types before comparing, so it is not part of the script subset", b.operator.as_str()),
                            format!("write `{strict}`: it never converts"),
                        );
                        return NONE;
                    }
                    other => {
                        self.not_in_subset(
                            b.span,
                            &format!("the `{}` operator", other.as_str()),
                            "use + - * / %, === !== < <= > >=, && || ??",
                        );
                        return NONE;
                    }
                };
                let (left, lt) = self.boxed(&b.left);
                let (right, rt) = self.boxed(&b.right);
                let ty = match op {
                    Binary::Add if lt == Ty::Str || rt == Ty::Str => Ty::Str,
                    Binary::Add if lt == Ty::Num && rt == Ty::Num => Ty::Num,
                    Binary::Add => Ty::Any,
                    Binary::Sub | Binary::Mul | Binary::Div | Binary::Rem => Ty::Num,
                    _ => Ty::Bool,
                };
                (Expr::Binary { op, left, right }, ty)
            }
            Expression::LogicalExpression(l) => {
                use js::LogicalOperator as L;
                let op = match l.operator {
                    L::And => Logical::And,
                    L::Or => Logical::Or,
                    L::Coalesce => Logical::Coalesce,
                };
                let (left, lt) = self.boxed(&l.left);
                let (right, rt) = self.boxed(&l.right);
                let ty = if lt == rt {
                    lt
                } else if op == Logical::Coalesce && lt == Ty::StrOrNull && rt == Ty::Str {
                    Ty::Str
                } else {
                    Ty::Any
                };
                (Expr::Logical { op, left, right }, ty)
            }
            Expression::ConditionalExpression(c) => {
                let (test, _) = self.boxed(&c.test);
                let (then, a) = self.boxed(&c.consequent);
                let (otherwise, b) = self.boxed(&c.alternate);
                (
                    Expr::Cond {
                        test,
                        then,
                        otherwise,
                    },
                    if a == b { a } else { Ty::Any },
                )
            }
            Expression::ArrayExpression(a) => {
                if a.elements.len() as u64 > MAX_LIST {
                    self.err(
                        a.span,
                        "script-list-too-long",
                        format!("a list holds at most {MAX_LIST} items"),
                        "shorten the list",
                    );
                    return NONE;
                }
                let mut items = Vec::new();
                for el in &a.elements {
                    match el.as_expression() {
                        Some(x) => items.push(self.expr(x).0),
                        None => {
                            self.not_in_subset(
                                el.span(),
                                "a spread or a hole in a list",
                                "write each item",
                            );
                            return NONE;
                        }
                    }
                }
                (Expr::List(items), Ty::List)
            }
            Expression::ObjectExpression(o) => {
                let mut fields = Vec::new();
                for p in &o.properties {
                    let js::ObjectPropertyKind::ObjectProperty(p) = p else {
                        self.not_in_subset(
                            p.span(),
                            "a spread `...` in an object",
                            "write each key",
                        );
                        return NONE;
                    };
                    if p.method || p.kind != js::PropertyKind::Init {
                        self.not_in_subset(
                            p.span,
                            "a method or accessor",
                            "objects hold plain values: `{ error: \"...\" }`",
                        );
                        return NONE;
                    }
                    let Some(key) = static_key(&p.key).filter(|_| !p.computed) else {
                        self.not_in_subset(
                            p.key.span(),
                            "a computed key",
                            "write the key as a name or a string",
                        );
                        return NONE;
                    };
                    let (v, _) = self.expr(&p.value);
                    fields.push((key, v));
                }
                (Expr::Object(fields), Ty::Obj)
            }
            Expression::AssignmentExpression(a) => {
                self.not_in_subset(
                    a.span,
                    "an assignment inside an expression",
                    "assign in its own statement",
                );
                NONE
            }
            Expression::ArrowFunctionExpression(f) => {
                self.not_in_subset(
                    f.span,
                    "a function (closure)",
                    "write the code inline: scripts have no functions",
                );
                NONE
            }
            Expression::FunctionExpression(f) => {
                self.not_in_subset(
                    f.span,
                    "a function",
                    "write the code inline: scripts have no functions",
                );
                NONE
            }
            Expression::AwaitExpression(a) => {
                self.not_in_subset(
                    a.span,
                    "`await` (async code)",
                    "scripts are synchronous; the API answers at once",
                );
                NONE
            }
            Expression::ChainExpression(c) => {
                self.not_in_subset(
                    c.span,
                    "optional chaining `?.`",
                    "check the value first, or use `??`",
                );
                NONE
            }
            Expression::NewExpression(n) => {
                self.not_in_subset(n.span, "`new`", "scripts use literals and the API only");
                NONE
            }
            Expression::ThisExpression(t) => {
                self.not_in_subset(t.span, "`this`", "name the value: `req`, `res` or `ctx`");
                NONE
            }
            Expression::RegExpLiteral(r) => {
                self.not_in_subset(
                    r.span,
                    "a regular expression",
                    "use `startsWith`, `endsWith`, `includes` or `split`",
                );
                NONE
            }
            Expression::UpdateExpression(u) => {
                self.not_in_subset(u.span, "`++` / `--`", "write `n = n + 1;` on a `let`");
                NONE
            }
            other => {
                self.not_in_subset(
                    other.span(),
                    "this expression",
                    "scripts use literals, names, the API, string methods and operators",
                );
                NONE
            }
        }
    }

    fn unknown_api(&mut self, span: oxc_span::Span, side: Side, prop: &str) {
        let (obj, api) = match side {
            Side::Request => ("req", REQ_API),
            Side::Response => ("res", RES_API),
        };
        let help = match (side, prop) {
            (Side::Request, "headers") => "read one header with `req.header(\"name\")`".to_string(),
            (Side::Request, "url" | "query") => {
                "read the path with `req.path` and a parameter with `req.query(\"name\")`"
                    .to_string()
            }
            (Side::Request, "body") => "scripts do not read bodies".to_string(),
            _ => format!(
                "the {} API: {api}",
                if side == Side::Request {
                    "request"
                } else {
                    "response"
                }
            ),
        };
        self.err(
            span,
            "script-unknown-api",
            format!("`{obj}.{prop}` is not part of the script API"),
            help,
        );
    }

    fn call(&mut self, c: &js::CallExpression<'_>) -> (Expr, Ty) {
        const NONE: (Expr, Ty) = (Expr::Undefined, Ty::Any);
        if c.optional {
            self.not_in_subset(c.span, "optional call `?.()`", "check the value first");
            return NONE;
        }
        match &c.callee {
            Expression::Identifier(id) => match id.name.as_str() {
                "parseInt" if self.lookup("parseInt").is_none() => {
                    let Some(args) = self.args(c, 1, 2, "parseInt(s, 10)") else {
                        return NONE;
                    };
                    let mut args = args.into_iter().map(|a| Box::new(a.0));
                    let arg = args.next().expect("one argument at least");
                    (
                        Expr::ParseInt {
                            arg,
                            radix: args.next(),
                        },
                        Ty::Num,
                    )
                }
                "respond" => {
                    self.err(
                        c.span,
                        "script-respond-position",
                        "`respond()` ends the request: it is a statement, not a value",
                        "write `return respond(...);`",
                    );
                    NONE
                }
                "log" => {
                    self.err(
                        c.span,
                        "script-not-a-value",
                        "`log()` is a statement, not a value",
                        "write `log(message);` on its own",
                    );
                    NONE
                }
                name => {
                    if self.lookup(name).is_some() {
                        self.not_in_subset(
                            c.span,
                            "calling a value",
                            "scripts have no functions; call the API and string methods",
                        );
                    } else {
                        self.unknown_name(id.span, name);
                    }
                    NONE
                }
            },
            Expression::StaticMemberExpression(m) if !m.optional => {
                let name = m.property.name.as_str();
                if let Some(side) = self.api_object(&m.object) {
                    if !self.available(side, m.object.span()) {
                        return NONE;
                    }
                    return match (side, name) {
                        (_, "header") => {
                            let Some(mut args) = self.args(c, 1, 1, "header(\"x-name\")") else {
                                return NONE;
                            };
                            let (n, ty) = args.pop().expect("one argument");
                            self.check_header_name(&c.arguments[0], ty);
                            (
                                Expr::Header {
                                    side,
                                    name: Box::new(n),
                                },
                                Ty::StrOrNull,
                            )
                        }
                        (Side::Request, "query") => {
                            let Some(mut args) = self.args(c, 1, 1, "query(\"name\")") else {
                                return NONE;
                            };
                            let (n, _) = args.pop().expect("one argument");
                            (Expr::Query(Box::new(n)), Ty::StrOrNull)
                        }
                        (_, "setHeader" | "removeHeader" | "setPath") => {
                            self.err(c.span, "script-not-a-value", format!("`{name}()` changes the message: it is a statement, not a value"), format!("write it on its own: `{}.{name}(...);`", if side == Side::Request { "req" } else { "res" }));
                            NONE
                        }
                        _ => {
                            self.unknown_api(m.span, side, name);
                            NONE
                        }
                    };
                }
                if is_ident(&m.object, "ctx") {
                    self.not_in_subset(
                        c.span,
                        "calling a `ctx` entry",
                        "`ctx` holds strings: `ctx.name = value;` and `ctx.name`",
                    );
                    return NONE;
                }
                let Some(method) = Method::ALL.into_iter().find(|x| x.as_str() == name) else {
                    let names: Vec<&str> = Method::ALL.iter().map(|x| x.as_str()).collect();
                    self.err(
                        m.property.span,
                        "script-unknown-method",
                        format!("`{name}` is not a method of the script subset"),
                        crate::front::decode::did_you_mean(name, &names),
                    );
                    return NONE;
                };
                let (target, ty) = self.boxed(&m.object);
                let ok = ty.may_be_str() || (ty == Ty::List && method == Method::Includes);
                if !ok {
                    self.err(
                        m.object.span(),
                        "script-type",
                        format!("`{name}` is a string method; this is {}", ty.describe()),
                        "call it on a string: a header, the path, or a template literal",
                    );
                    return NONE;
                }
                let (min, max) = method.arity();
                let Some(args) = self.args(c, min, max, &format!("s.{name}(...)")) else {
                    return NONE;
                };
                let site = self.site(c.span);
                let rty = match method {
                    Method::StartsWith | Method::EndsWith | Method::Includes => Ty::Bool,
                    Method::Split => Ty::List,
                    _ => Ty::Str,
                };
                (
                    Expr::Call {
                        method,
                        target,
                        args: args.into_iter().map(|a| a.0).collect(),
                        site,
                    },
                    rty,
                )
            }
            other => {
                self.not_in_subset(other.span(), "calling this", "call the API (`req.header(n)`, `respond(...)`, `log(...)`, `parseInt(s)`) or a string method");
                NONE
            }
        }
    }
}

fn is_ident(e: &Expression<'_>, name: &str) -> bool {
    matches!(e, Expression::Identifier(i) if i.name == name)
}

fn static_key(k: &js::PropertyKey<'_>) -> Option<String> {
    match k {
        js::PropertyKey::StaticIdentifier(i) => Some(i.name.to_string()),
        js::PropertyKey::StringLiteral(s) => Some(s.value.to_string()),
        _ => None,
    }
}
