//! `match` conditions (language 1.1), exactly as the spec reads them.
//!
//! Kong's expressions router has fields for them (`http.headers.NAME`,
//! `http.queries.NAME`, kong/router/fields.lua), but not the spec's
//! meaning: a header or parameter sent several times gives the predicate
//! every value, and `==` must then hold for all of them (atc-router's
//! interpreter, "all" mode), where the spec compares the first line or
//! occurrence only; `ngx.req.get_uri_args` reads `+` as a space, which the
//! spec keeps a plus; and parameter names holding `-` are no ATC field
//! name at all. So the global `pre-function`'s `rewrite` chunk, which
//! Kong runs for every request before it routes (`Kong.rewrite`, global
//! plugins only), evaluates each distinct condition of the spec once, as
//! the spec says, and marks the ones that hold with an internal request
//! header (`gatefold-cond-N: 1`, any client copy removed first). Route
//! expressions require the markers (`http.headers.gatefold_cond_N ==
//! "1"`: no user string reaches an ATC expression), and every
//! pre-function's first access chunk removes them before anything else
//! reads the request.

use gatefold_compiler::dispatch::conditions::Condition;
pub use gatefold_compiler::dispatch::conditions::ConditionTable;
use gatefold_compiler::ir::Conditions;
use gatefold_lua_script::lua::string as s;

/// What the Kong target writes from the spec's condition table.
pub trait KongConditions {
    /// The numbers of the markers `c` requires, ascending.
    fn sorted_numbers(&self, c: &Conditions) -> Vec<usize>;
    /// The ATC predicates requiring every condition of `c`.
    fn predicates(&self, c: &Conditions) -> Vec<String>;
    /// The global pre-function's `rewrite` chunk setting the markers.
    fn rewrite_chunk(&self) -> Option<String>;
    /// The chunk removing the markers before anything else reads them.
    fn clear_chunk(&self) -> Option<String>;
}

impl KongConditions for ConditionTable {
    fn sorted_numbers(&self, c: &Conditions) -> Vec<usize> {
        let mut out = self.numbers(c);
        out.sort_unstable();
        out
    }

    /// The ATC predicates requiring every condition of `c` (none when it
    /// has none). Field names are Kong's `http.headers.` plus the header
    /// name lower-cased with `-` as `_` (`ngx.req.get_headers` finds
    /// `gatefold-cond-1` under `gatefold_cond_1`).
    fn predicates(&self, c: &Conditions) -> Vec<String> {
        self.sorted_numbers(c)
            .into_iter()
            .map(|n| format!("http.headers.gatefold_cond_{n} == \"1\""))
            .collect()
    }

    /// The global pre-function's `rewrite` chunk: sets the marker of each
    /// condition that holds, removes the others (and so any client copy).
    fn rewrite_chunk(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let rows: Vec<String> = self
            .by_number()
            .iter()
            .map(|(_, c)| match c {
                Condition::Header { name, value } => {
                    format!("{{ true, {}, {} }}", s(name), s(value))
                }
                Condition::Query { name, value } => {
                    format!("{{ false, {}, {} }}", s(name), s(value))
                }
            })
            .collect();
        Some(format!(
            r#"-- gatefold: `match` conditions, evaluated before Kong routes
local CONDITIONS = {{
  {}
}}
-- Percent-decoding as the spec compares query names and values: `%XX`
-- is a byte, any other `%` is itself, `+` stays a plus.
local function decode(x)
  return (x:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
-- The first occurrence of each parameter of the raw query, decoded.
local function params()
  local out = {{}}
  for part in (kong.request.get_raw_query() .. "&"):gmatch("([^&]*)&") do
    local eq = part:find("=", 1, true)
    local k, v = part, ""
    if eq then k, v = part:sub(1, eq - 1), part:sub(eq + 1) end
    k = decode(k)
    if out[k] == nil then out[k] = decode(v) end
  end
  return out
end
return function()
  local query
  for n, c in ipairs(CONDITIONS) do
    local holds
    if c[1] then
      -- The header's first field line, as received.
      holds = kong.request.get_header(c[2]) == c[3]
    else
      query = query or params()
      holds = query[c[2]] == c[3]
    end
    local name = "gatefold-cond-" .. n
    -- With underscores_in_headers on, a client's `gatefold_cond_N` would
    -- be what the router finds under that field name: removed too.
    kong.service.request.clear_header("gatefold_cond_" .. n)
    if holds then
      kong.service.request.set_header(name, "1")
    else
      kong.service.request.clear_header(name)
    end
  end
end
"#,
            rows.join(",\n  ")
        ))
    }

    /// The first access chunk of every pre-function: the markers are the
    /// gateway's own, never sent upstream.
    fn clear_chunk(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        Some(format!(
            "-- gatefold: the `match` markers stay in Kong\nlocal COUNT = {}\nreturn function()\n  for n = 1, COUNT do kong.service.request.clear_header(\"gatefold-cond-\" .. n) end\nend\n",
            self.len()
        ))
    }
}

/// Adds `chunk` to the global pre-function's `rewrite` (`plugins` holds
/// one after `functions::scope`; a global one is made when it does not),
/// tagging the plugin with `tag` when given.
pub fn add_rewrite(plugins: &mut Vec<crate::model::Plugin>, chunk: String, tag: Option<&str>) {
    use crate::model::{Plugin, PluginConfig};
    let global = plugins
        .iter_mut()
        .find(|p| p.name == "pre-function" && p.route.is_none() && p.service.is_none());
    match global {
        Some(Plugin {
            config: PluginConfig::Functions { rewrite, .. },
            tags,
            ..
        }) => {
            rewrite.push(chunk);
            tags.extend(tag.map(crate::tag));
        }
        _ => plugins.push(Plugin {
            name: "pre-function",
            route: None,
            service: None,
            config: PluginConfig::Functions {
                rewrite: vec![chunk],
                access: Vec::new(),
                header_filter: Vec::new(),
                body_filter: Vec::new(),
            },
            tags: tag.map(crate::tag).into_iter().collect(),
        }),
    }
}

/// The pre-function of a 405 route whose path group has routes with
/// `match` conditions: the spec's answer counts only the routes whose
/// conditions hold, so `allow` is the methods of those (in the spec's
/// method order), and 404 when none holds. `None` for a group without
/// conditions (its service's pre-function answers).
pub fn fallback_plugin(f: &crate::routing::Fallback) -> Option<crate::model::Plugin> {
    use crate::model::{Plugin, PluginConfig};
    use gatefold_compiler::ir::Method;
    if f.choices.is_empty() {
        return None;
    }
    let rows: Vec<String> = f
        .choices
        .iter()
        .map(|(methods, needs)| {
            let names: Vec<String> = methods.methods().map(|m| s(m.as_str())).collect();
            let needs: Vec<String> = needs.iter().map(|n| n.to_string()).collect();
            format!("{{ {}, {} }}", table(&names), table(&needs))
        })
        .collect();
    let order: Vec<String> = Method::ALL.iter().map(|m| s(m.as_str())).collect();
    let chunk = format!(
        r#"-- gatefold: no route takes the method (405), counting the routes whose `match` conditions hold
local ORDER = {{ {order} }}
local GROUPS = {{ {rows} }}
return function()
  local on = {{}}
  for _, g in ipairs(GROUPS) do
    local holds = true
    for _, n in ipairs(g[2]) do
      if kong.request.get_header("gatefold-cond-" .. n) ~= "1" then holds = false end
    end
    if holds then
      for _, m in ipairs(g[1]) do on[m] = true end
    end
  end
  local allow = {{}}
  for _, m in ipairs(ORDER) do
    if on[m] then allow[#allow + 1] = m end
  end
  if #allow == 0 then
    {not_found}
  end
  return kong.response.exit(405, '{{"error":"method not allowed"}}', {{ ["content-type"] = "application/json", ["allow"] = table.concat(allow, ", ") }})
end
"#,
        order = order.join(", "),
        rows = rows.join(", "),
        not_found = crate::functions::exit(404, "no route"),
    );
    Some(Plugin {
        name: "pre-function",
        route: Some(f.name.clone()),
        service: None,
        config: PluginConfig::Functions {
            rewrite: Vec::new(),
            access: vec![chunk],
            header_filter: Vec::new(),
            body_filter: Vec::new(),
        },
        tags: vec![crate::tag("dispatch/405")],
    })
}

/// A header condition naming a header nginx drops while reading the
/// request (`ignore_invalid_headers`: names of letters, digits and `-`
/// only, `_` too only with `underscores_in_headers`, which would then make
/// `x_key` and `x-key` one name for `kong.request.get_header`) could never
/// hold: refused, one error per route and header.
pub fn refusals(
    ir: &gatefold_compiler::ir::ValidIr,
    out: &mut gatefold_compiler::diag::Diagnostics,
) {
    use gatefold_compiler::diag::Diagnostic;
    use gatefold_compiler::ir::Loc;
    use gatefold_compiler::target::span_of;
    for r in &ir.routes {
        for name in r.matcher.conditions.headers.keys() {
            let n = name.as_str();
            if n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                continue;
            }
            let loc = ir.sources.routes.get(&r.id).copied().unwrap_or(Loc::START);
            out.push(
                Diagnostic::error(
                    "unsupported-feature",
                    span_of(loc),
                    format!("target `kong` cannot match header `{n}` (a `match` condition of route `{}`): nginx drops request header lines whose name holds characters other than letters, digits and `-` before Kong reads them", r.id),
                )
                .with_help("name a header of letters, digits and `-` in `match` for the Kong target"),
            );
        }
    }
}

/// A Lua list of `items` (already Lua expressions): `{ a, b }`, or `{}`.
pub(crate) fn table(items: &[String]) -> String {
    if items.is_empty() {
        "{}".to_string()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}
