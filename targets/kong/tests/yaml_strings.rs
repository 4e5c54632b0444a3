//! Every string in kong.yaml reads back as the same string. DB-less Kong
//! parses the file with lyaml (libyaml) and resolves plain scalars the
//! YAML 1.1 way (`yes`, `on`, `0o17`, `1_000`, `2001-12-14`, `<<` are not
//! strings there); decK reads it with Go yaml. So hostile strings are put
//! in each kind of place the model has (map values, list items, map keys,
//! Lua chunks, PEM), and the text is checked twice: (a) serde_yaml (libyaml
//! too) reads back exactly the model's data, and (b) every scalar left
//! plain is one that no YAML 1.1 or 1.2 resolver takes for anything but
//! that string.

use crate::common;

use common::*;
use gatefold_compiler::target::Target;
use gatefold_target_kong::model::{
    Certificate, Config, Plugin, PluginConfig, Route, TransformList,
};
use gatefold_target_kong::{to_yaml, Kong};
use regex::Regex;
use serde_json::{json, Value};

/// Strings a YAML reader may take for something else, or that break a
/// scalar's syntax.
fn hostile() -> Vec<String> {
    let mut all: Vec<String> = [
        // YAML 1.1 booleans, in any case, and 1.2's.
        "yes",
        "Yes",
        "YES",
        "yEs",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "y",
        "Y",
        "n",
        "N",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        // Nulls.
        "null",
        "Null",
        "NULL",
        "~",
        "",
        // Numbers, YAML 1.1 and 1.2, and Go yaml's underscores.
        "0",
        "12",
        "-1",
        "+1",
        "012",
        "0x1f",
        "0X1F",
        "-0x1A",
        "0o17",
        "0b101",
        "1_000",
        "685_230.15",
        "1e3",
        "1E3",
        "1e-3",
        "6.8523015e+5",
        "1.",
        ".5",
        "+.5",
        "1.5",
        "1.2.3.4",
        ".inf",
        "-.inf",
        "+.INF",
        ".nan",
        ".NaN",
        "inf",
        "nan",
        "3:25:45",
        "190:20:30.15",
        "1:20",
        // Timestamps, merge key, value key.
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "<<",
        "=",
        // Syntax.
        " lead",
        "trail ",
        " ",
        "a # b",
        "#x",
        "a: b",
        "a:",
        ":a",
        "- x",
        "-",
        "--",
        "---",
        "--- x",
        "...",
        "? a",
        "?",
        "*a",
        "&a",
        "!a",
        "!!str",
        "|a",
        ">a",
        "'a",
        "\"a",
        "%a",
        "@a",
        "`a",
        ",a",
        "[a",
        "{a",
        "]",
        "}",
        "a, b",
        "[a, b]",
        "{a: b}",
        "a'b",
        "a\"b",
        "a\\b",
        "\\",
        // Tabs, controls, line breaks YAML 1.1 knows (NEL, LS, PS), BOM.
        "a\tb",
        "\tx",
        "x\t",
        "\t",
        "a\u{0}b",
        "\u{7}",
        "\u{1b}[0m",
        "\u{7f}",
        "\u{85}x",
        "a\u{2028}b",
        "a\u{2029}b",
        "\u{feff}x",
        "a\rb",
        "a\r\nb",
        // Non-ASCII.
        "é",
        "日本語",
        "café ",
        "\u{a0}x",
        "x\u{a0}",
        "ü: x",
        "😀",
        // Lines.
        "a\nb",
        "\nlead",
        "trail\n",
        "two\n\n",
        "\n",
        "\n\n",
        "  indented\nx",
        "\n  indented",
        "x\n  \n",
        "x\n  ",
        "\t\nx",
        "\n\tx",
        "x\n\ty",
        "# c\nx",
        "key: value\n- item\n# c",
        "|\n>\n",
        "'\n\"",
        "---\n...",
        "a\n---\nb",
        "return function()\n  local x = \"a: b # c\"\n  if x then\n\treturn 1\n  end\nend\n",
        "-- gatefold\n\n\nreturn 1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    all.push("x".repeat(5000));
    all.push(format!("{}z", "word ".repeat(200)));
    all.push(format!("a  b {}", "c ".repeat(100)));
    all.push("line with spaces\n".repeat(300));
    all
}

/// Short random strings over the characters that matter to YAML, the
/// same every run (xorshift).
fn fuzzed(count: usize) -> Vec<String> {
    let alphabet = [
        ' ', '\t', '\n', 'a', '1', '.', '#', ':', '-', '\r', '"', '\'', '|', '>', '!', 'é',
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|_| {
            let len = (next() % 14) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// A config holding each string as a route's name, expression and tag, a
/// Lua chunk (alone and inside lines), a header, a native plugin's map key
/// and value, and a certificate's PEM and key.
fn config(strings: &[String]) -> Config {
    let routes = strings
        .iter()
        .map(|s| Route {
            name: s.clone(),
            expression: s.clone(),
            priority: 1,
            protocols: vec!["http"],
            strip_path: false,
            preserve_host: false,
            service: None,
            tags: vec![s.clone(), format!("t:{s}")],
        })
        .collect();
    let chunks: Vec<String> = strings
        .iter()
        .flat_map(|s| {
            [
                s.clone(),
                format!("-- a\n{s}"),
                format!("{s}\n"),
                format!("\n{s}\n-- z"),
            ]
        })
        .collect();
    let mut native = serde_json::Map::new();
    for (i, s) in strings.iter().enumerate() {
        native.insert(format!("k{i}"), json!([s, { "v": s }]));
        native.insert(s.clone(), json!(i));
    }
    let plugins = vec![
        Plugin {
            name: "pre-function",
            route: None,
            service: None,
            config: PluginConfig::Functions {
                rewrite: chunks.clone(),
                access: vec![],
                header_filter: vec![],
                body_filter: chunks,
            },
            tags: strings.to_vec(),
        },
        Plugin {
            name: "request-transformer",
            route: None,
            service: None,
            config: PluginConfig::Transformer {
                remove: TransformList::default(),
                replace: TransformList::default(),
                add: TransformList {
                    headers: strings.iter().map(|s| format!("x-h:{s}")).collect(),
                },
                append: TransformList::default(),
            },
            tags: vec![],
        },
        Plugin {
            name: "http-log",
            route: None,
            service: None,
            config: PluginConfig::Native(Value::Object(native)),
            tags: vec![],
        },
    ];
    let certificates = strings
        .iter()
        .map(|s| Certificate {
            id: s.clone(),
            cert: s.clone(),
            key: s.clone(),
            snis: vec![],
            tags: vec![],
        })
        .collect();
    Config {
        _format_version: "3.0",
        services: vec![],
        routes,
        upstreams: vec![],
        consumers: vec![],
        plugins,
        certificates,
    }
}

/// (a) libyaml reads back the model's data, exactly.
fn reads_back(config: &Config, text: &str) {
    let back: Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let expected = serde_json::to_value(config).unwrap();
    if back != expected {
        // Name the first string that differs, not 13 MB of text.
        for (b, e) in back["routes"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected["routes"].as_array().unwrap())
        {
            assert_eq!(b, e, "a route read back differently");
        }
        for key in ["plugins", "certificates"] {
            for (b, e) in back[key]
                .as_array()
                .unwrap()
                .iter()
                .zip(expected[key].as_array().unwrap())
            {
                assert_eq!(b, e, "a {key} entry read back differently");
            }
        }
        panic!("the text read back differently");
    }
}

/// What a YAML 1.1 resolver (the type repository's regular expressions)
/// or a YAML 1.2 core schema one takes for a bool, null, int, float,
/// timestamp, merge or value key; matched case-insensitively and with Go
/// yaml's underscores left out, to be strict.
fn resolvers() -> Vec<Regex> {
    [
        r"^(y|yes|n|no|true|false|on|off)$",
        r"^(~|null|)$",
        r"^[-+]?0b[0-1_]+$",
        r"^[-+]?0o?[0-7_]+$",
        r"^[-+]?(0|[1-9][0-9_]*)$",
        r"^[-+]?[0-9]+$",
        r"^[-+]?0x[0-9a-f_]+$",
        r"^[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$",
        r"^[-+]?([0-9][0-9_]*)?\.[0-9.]*([e][-+]?[0-9]+)?$",
        r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([e][-+]?[0-9]+)?$",
        r"^[-+]?\.?(inf|nan)$",
        r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
        r"^(<<|=)$",
    ]
    .iter()
    .map(|r| Regex::new(&format!("(?i){r}")).unwrap())
    .collect()
}

/// (b) `plain`, written unquoted, is that string in every reader: no
/// resolver's pattern, no indicator that starts other syntax, no comment
/// or mapping inside, nothing lost at the edges, no character a reader
/// could take for a line break or refuse.
fn plain_is_safe(plain: &str, resolvers: &[Regex]) -> bool {
    let squeezed = plain.replace('_', "");
    let mut chars = plain.chars();
    let (first, second) = (chars.next(), chars.next());
    let document_marker = Regex::new(r"^(---|\.\.\.)([ \t]|$)").unwrap();
    let unsafe_because = [
        plain.is_empty(),
        resolvers
            .iter()
            .any(|r| r.is_match(plain) || r.is_match(&squeezed)),
        plain.trim_matches([' ', '\t']) != plain,
        plain
            .chars()
            .any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')),
        first.is_some_and(|c| ",[]{}#&*!|>'\"%@`:".contains(c)),
        matches!(first, Some('-' | '?')) && second.is_none_or(|c| c == ' '),
        document_marker.is_match(plain),
        plain.contains(": ") || plain.contains(" #") || plain.ends_with(':'),
    ];
    !unsafe_because.contains(&true)
}

/// The scalar starting `rest` (the text after `key: ` or `- ` on a line):
/// `None` when quoted or a block, else the plain scalar.
fn plain_scalar(rest: &str) -> Option<&str> {
    match rest.chars().next() {
        Some('"' | '\'' | '|' | '>') => None,
        _ => Some(rest),
    }
}

/// Checks (b) on the route names (`- name: `), expressions
/// (`  expression: `) and route tags (`  - `), the places that hold each
/// string whole on one line; returns how many were plain.
fn no_unsafe_plain(strings: &[String], text: &str) -> usize {
    let resolvers = resolvers();
    let routes = text
        .split_once("\nroutes:\n")
        .and_then(|(_, rest)| rest.split_once("\nplugins:\n"))
        .map(|(routes, _)| routes)
        .expect("the routes, then the plugins");
    let mut names = vec![];
    let mut expressions = vec![];
    let mut tags = vec![];
    let mut in_tags = false;
    for line in routes.lines() {
        if let Some(rest) = line.strip_prefix("- name: ") {
            names.push(rest);
        } else if let Some(rest) = line.strip_prefix("  expression: ") {
            expressions.push(rest);
        } else if line == "  tags:" {
            in_tags = true;
            continue;
        } else if let Some(rest) = line.strip_prefix("  - ").filter(|_| in_tags) {
            // The first tag is the string, the second `t:` and the string.
            if !rest.starts_with("t:") && !rest.starts_with("\"t:") {
                tags.push(rest);
            }
            continue;
        }
        in_tags = false;
    }
    assert_eq!(names.len(), strings.len(), "one `- name:` line per route");
    assert_eq!(expressions.len(), strings.len());
    assert_eq!(tags.len(), strings.len());
    let mut plain = 0;
    for (s, written) in strings
        .iter()
        .zip(names.iter().zip(&expressions).zip(&tags))
        .flat_map(|(s, ((n, e), t))| [(s, n), (s, e), (s, t)])
    {
        if let Some(p) = plain_scalar(written) {
            assert_eq!(p, s, "a plain scalar is the string itself, on one line");
            assert!(plain_is_safe(p, &resolvers), "{s:?} left plain as `{p}`");
            plain += 1;
        }
    }
    plain
}

#[test]
fn hostile_strings_read_back_the_same_and_none_is_left_plain_unsafely() {
    let strings = hostile();
    let text = to_yaml(&config(&strings));
    reads_back(&config(&strings), &text);
    let plain = no_unsafe_plain(&strings, &text);
    // Some are plain (`é`, `a, b`, `--`): the check looked at them.
    assert!(plain >= 10, "{plain} plain scalars");
    assert_eq!(text, to_yaml(&config(&strings)), "deterministic");
}

#[test]
fn fuzzed_strings_read_back_the_same_and_none_is_left_plain_unsafely() {
    let strings = fuzzed(3000);
    let text = to_yaml(&config(&strings));
    reads_back(&config(&strings), &text);
    no_unsafe_plain(&strings, &text);
}

/// Multi-line code stays readable: a `|` block, in the Lua chunks and the
/// PEM, unless the block would not read back in libyaml (a first line
/// starting with a tab), which is double-quoted instead.
#[test]
fn code_is_a_literal_block_unless_libyaml_would_refuse_it() {
    let lua = "-- gatefold: x\nreturn function()\n  return 1\nend\n";
    let tabbed = "\tlocal x = 1\nreturn x";
    let text = to_yaml(&config(&[lua.to_string(), tabbed.to_string()]));
    reads_back(&config(&[lua.to_string(), tabbed.to_string()]), &text);
    assert!(
        text.contains(
            "    - |\n      -- gatefold: x\n      return function()\n        return 1\n      end\n"
        ),
        "{text}"
    );
    assert!(text.contains("  cert: |\n    -- gatefold: x\n"), "{text}");
    assert!(
        text.contains("    - \"\\tlocal x = 1\\nreturn x\"\n"),
        "{text}"
    );
}

/// A spec's own strings get there the same way: a native plugin's config
/// values go through the emitter as given.
#[test]
fn a_native_plugins_hostile_values_read_back_the_same() {
    let values = [
        "yes",
        "off",
        "0o17",
        "1_000",
        "2001-12-14",
        "<<",
        "~",
        "é: x",
        "- a",
    ];
    let headers: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("x-h{i}: {}", serde_json::to_string(v).unwrap()))
        .collect();
    let spec = format!(
        r#"gatefold: 1
gateway:
  name: g
  listen: 8080
  policies:
    - native:
        kong: {{ plugins: [{{ name: http-log, config: {{ http_endpoint: "{{vault://env/LOG_URL}}", headers: {{ {} }} }} }}] }}
upstreams: {{ u: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }} }}
apis:
  a:
    upstream: u
    routes:
      one: {{ path: /one }}
"#,
        headers.join(", ")
    );
    let ir = compile(&spec);
    let refused: Vec<String> = Kong
        .spec_diagnostics(&ir)
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(refused, Vec::<String>::new());
    let yaml = text(&emit(&ir));
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let log = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http-log")
        .unwrap_or_else(|| panic!("{yaml}"));
    for (i, v) in values.iter().enumerate() {
        assert_eq!(log["config"]["headers"][format!("x-h{i}")], *v, "{yaml}");
        assert!(
            !yaml.contains(&format!("x-h{i}: {v}\n")),
            "{v:?} left plain: {yaml}"
        );
    }
}
