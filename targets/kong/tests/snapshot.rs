//! The output for a petstore-like spec, reviewed as a snapshot: a change
//! to what the target emits shows up as a diff here. Also: the same IR
//! gives the same bytes (deterministic output).

use crate::common;

use common::*;

#[test]
fn a_petstore_like_spec_emits_this_kong_config() {
    let ir = compile(PETSTORE);
    let out = emit(&ir);
    insta::assert_snapshot!("petstore_kong_yaml", text(&out));
    assert_eq!(text(&out), text(&emit(&ir)), "output is deterministic");
    let m = &out.manifest;
    let secrets: Vec<String> = m.secrets.iter().map(|s| format!("{s:?}")).collect();
    insta::assert_snapshot!("petstore_manifest_secrets", secrets.join("\n"));
}

#[test]
fn secrets_are_vault_references_never_values() {
    let ir = compile(PETSTORE);
    let yaml = text(&emit(&ir));
    // The consumers' credentials name variables; no literal key appears.
    let v: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let consumers = v["consumers"].as_array().unwrap();
    let keys: Vec<&serde_json::Value> = consumers
        .iter()
        .flat_map(|c| c["keyauth_credentials"].as_array().into_iter().flatten())
        .map(|k| &k["key"])
        .collect();
    assert!(
        keys.contains(&&"{vault://env/ACME_API_KEY}".into()),
        "{yaml}"
    );
    assert!(
        consumers
            .iter()
            .any(|c| c["basicauth_credentials"][0]["password"] == "{vault://env/STAFF_PASSWORD}"),
        "{yaml}"
    );
}

#[test]
fn a_gateway_level_policy_is_one_global_plugin() {
    let ir = compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080, policies: [{ key-auth: { in: header, name: x-key } }] }
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
consumers: { a: { credentials: { key: { env: A_KEY } } } }
apis:
  a:
    upstream: u
    routes:
      one: { path: /one }
      two: { path: /two }
      three: { path: /three }
"#,
    );
    let yaml = text(&emit(&ir));
    let v: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    // Besides the pre-function and post-function every route shares.
    let plugins: Vec<&serde_json::Value> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "pre-function" && p["name"] != "post-function")
        .collect();
    assert_eq!(plugins.len(), 1, "{yaml}");
    assert_eq!(plugins[0]["name"], "key-auth");
    assert!(
        plugins[0].get("route").is_none(),
        "global, not scoped: {yaml}"
    );
}

#[test]
fn earlier_routes_get_higher_priorities() {
    let ir = compile(PETSTORE);
    let yaml = text(&emit(&ir));
    let v: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let priorities: Vec<u64> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["priority"].as_u64().unwrap())
        .collect();
    assert!(
        priorities.windows(2).all(|w| w[0] > w[1]),
        "strictly decreasing in IR order: {priorities:?}"
    );
}
