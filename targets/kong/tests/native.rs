//! `native: { kong: { plugins: [...] } }`: accepted observing plugins go
//! into kong.yaml scoped like the policy instance; every other plugin, an
//! Enterprise or unknown name, and a config that breaks the plugin's 3.15
//! schema are refused at the policy's place with the reason and a help
//! line.

use crate::common;

use common::*;
use gatefold_compiler::target::Target;
use gatefold_target_kong::Kong;

fn spec(plugins: &str) -> String {
    format!(
        r#"gatefold: 1
gateway:
  name: g
  listen: 8080
  policies:
    - native:
        kong: {{ plugins: [{{ name: correlation-id, config: {{ header_name: x-request-id, echo_downstream: true }} }}] }}
upstreams: {{ u: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }} }}
apis:
  a:
    upstream: u
    routes:
      one:
        path: /one
        policies:
          - native:
              kong: {{ plugins: {plugins} }}
      two: {{ path: /two }}
"#
    )
}

/// Each diagnostic as `LINE:COL message | help`.
fn messages(text: &str) -> Vec<String> {
    let ir = compile(text);
    Kong.spec_diagnostics(&ir)
        .iter()
        .map(|d| {
            let span = d.span.expect("a place in the spec");
            format!(
                "{}:{} {} | {}",
                span.start.line,
                span.start.col,
                d.message,
                d.help.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn accepted_plugins_are_scoped_like_the_policy_instance() {
    let text = spec(r#"[{ name: prometheus, config: { per_consumer: false } }, { name: zipkin }]"#);
    assert_eq!(messages(&text), Vec::<String>::new());
    let yaml = text_of(&text);
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let plugins: Vec<&serde_json::Value> = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            ["correlation-id", "prometheus", "zipkin"].contains(&p["name"].as_str().unwrap())
        })
        .collect();
    let summary: Vec<String> = plugins
        .iter()
        .map(|p| {
            format!(
                "{} route={} config={} tags={}",
                p["name"].as_str().unwrap(),
                p.get("route")
                    .map_or("-".to_string(), |r| r.as_str().unwrap().to_string()),
                p["config"],
                p["tags"]
            )
        })
        .collect();
    // The route's own `native` replaces the gateway's on that route (one
    // instance of a kind per chain), so the gateway's is on route `two`
    // only, not global.
    assert_eq!(
        summary,
        [
            r#"correlation-id route=a.two config={"echo_downstream":true,"header_name":"x-request-id"} tags=["gatefold:gateway:native"]"#,
            r#"prometheus route=a.one config={"per_consumer":false} tags=["gatefold:route:a.one:native"]"#,
            r#"zipkin route=a.one config={} tags=["gatefold:route:a.one:native"]"#,
        ],
        "{yaml}"
    );
}

#[test]
fn a_gateway_native_on_every_route_is_one_global_plugin() {
    let text = spec("[]").replace(
        "        policies:\n          - native:\n              kong: { plugins: [] }\n",
        "",
    );
    let yaml = text_of(&text);
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let ids: Vec<&serde_json::Value> = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "correlation-id")
        .collect();
    assert_eq!(ids.len(), 1, "{yaml}");
    assert!(ids[0].get("route").is_none(), "{yaml}");
}

fn text_of(spec: &str) -> String {
    text(&emit(&compile(spec)))
}

/// The one refusal of the route's `native` (at its `native:` key, 16:13).
fn refusal(plugins: &str) -> String {
    let m = messages(&spec(plugins));
    assert_eq!(m.len(), 1, "{m:#?}");
    assert!(
        m[0].starts_with("16:13 target `kong`, policy `route/a.one/native`: "),
        "{m:#?}"
    );
    m[0].clone()
}

#[test]
fn plugins_that_would_bypass_or_contradict_gatefold_are_refused_with_why() {
    for (name, why) in [
        ("key-auth", "it decides who may pass"),
        ("jwt", "it decides who may pass"),
        ("acl", "it decides who may pass"),
        (
            "basic-auth",
            "a second authentication would bypass or contradict them",
        ),
        ("ip-restriction", "use `ip-filter`"),
        ("rate-limiting", "beside gatefold's `rate-limit`"),
        ("request-termination", "answers requests itself"),
        ("pre-function", "arbitrary Lua"),
        ("post-function", "arbitrary Lua"),
        ("cors", "gatefold's `cors` policy emits it"),
    ] {
        let m = refusal(&format!("[{{ name: {name} }}]"));
        assert!(
            m.contains(&format!("Kong plugin `{name}` is refused: ")) && m.contains(why),
            "{name}: {m}"
        );
        assert!(
            m.contains("| plugins passed through to Kong: correlation-id,"),
            "{m}"
        );
    }
}

#[test]
fn enterprise_and_unknown_plugins_are_refused() {
    let m = refusal("[{ name: openid-connect }]");
    assert!(
        m.contains("`openid-connect` is a Kong Enterprise plugin"),
        "{m}"
    );
    let m = refusal("[{ name: no-such-plugin }]");
    assert!(
        m.contains("`no-such-plugin` is not a bundled Kong plugin"),
        "{m}"
    );
}

#[test]
fn configs_that_break_the_plugins_schema_are_refused() {
    for (plugins, want) in [
        (
            "[{ name: correlation-id, config: { header: x } }]",
            "`config.header` is not an option of this plugin",
        ),
        (
            "[{ name: correlation-id, config: { generator: random } }]",
            r#"`config.generator` must be one of "tracker", "uuid", "uuid#counter""#,
        ),
        (
            "[{ name: correlation-id, config: { echo_downstream: yes-please } }]",
            "`config.echo_downstream` must be of type boolean",
        ),
        ("[{ name: tcp-log, config: { host: h } }]", "`config` needs `port`"),
        (
            "[{ name: tcp-log, config: { host: h, port: 70000 } }]",
            "`config.port` must be at most 65535",
        ),
        (
            "[{ name: http-log, config: { http_endpoint: \"https://user:pw@logs.example\" } }]",
            "`config.http_endpoint` is a secret Kong encrypts: write a vault reference",
        ),
        (
            "[{ name: file-log, config: { path: /tmp/k.log, custom_fields_by_lua: { a: \"return 1\" } } }]",
            "`config.custom_fields_by_lua` runs Lua",
        ),
        (
            "[{ name: zipkin }, { name: zipkin }]",
            "`zipkin` is listed twice",
        ),
        (
            "[{ name: zipkin, enabled: false }]",
            "takes only `name` and `config`",
        ),
        // What Kong's YAML reader (lyaml) cannot read back, however
        // kong.yaml spells it: a NUL cuts the string.
        (
            r#"[{ name: http-log, config: { http_endpoint: "{vault://env/U}", headers: { x-a: "a\0b" } } }]"#,
            "`config.headers.x-a` holds a NUL character",
        ),
        (
            r#"[{ name: http-log, config: { http_endpoint: "{vault://env/U}", headers: { "x\0": b } } }]"#,
            "`config.headers` has a key with a NUL character",
        ),
    ] {
        let m = refusal(plugins);
        assert!(m.contains(want), "{plugins}: {m}");
    }
}

#[test]
fn a_vault_reference_for_an_encrypted_field_is_accepted_and_valid() {
    let text = spec(
        r#"[{ name: http-log, config: { http_endpoint: "{vault://env/LOG_URL}", headers: { x-a: b } } }]"#,
    );
    assert_eq!(messages(&text), Vec::<String>::new());
    assert!(text_of(&text).contains("{vault://env/LOG_URL}"));
}

#[test]
fn the_embedded_schemas_use_only_keywords_the_check_implements() {
    // A keyword the check does not know would be silently ignored.
    fn walk(s: &serde_json::Value, at: &str) {
        const KNOWN: &[&str] = &[
            "type",
            "enum",
            "minimum",
            "maximum",
            "minLength",
            "properties",
            "additionalProperties",
            "items",
            "required",
            "description",
            "default",
            "x-referenceable",
            "x-encrypted",
            "x-foreign",
            "x-lua-required",
        ];
        let obj = s.as_object().unwrap();
        for (k, v) in obj {
            assert!(KNOWN.contains(&k.as_str()), "{at}: `{k}`");
            match k.as_str() {
                "properties" => {
                    for (p, ps) in v.as_object().unwrap() {
                        walk(ps, &format!("{at}.{p}"));
                    }
                }
                "items" | "additionalProperties" if v.is_object() => walk(v, &format!("{at}.{k}")),
                _ => {}
            }
        }
    }
    for name in gatefold_target_kong::native_plugins() {
        walk(&gatefold_target_kong::native_schema(name).unwrap(), name);
    }
}
