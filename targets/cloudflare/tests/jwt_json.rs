//! The Worker reads a token's JSON as the reference gateway does
//! (jsonwebtoken with serde_json) and writes claim values into headers as
//! serde_json writes them: `src/js/jwt.js` run by Node over the same texts
//! as serde_json, answers compared.

use std::process::Command;

include!("../../../tests/data/json_cases.rs");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn json_reads_and_writes_as_serde_json() {
    let nesting = json_nesting_cases();
    let mut all: Vec<&[u8]> = JSON_CASES.to_vec();
    all.extend(nesting.iter().map(Vec::as_slice));
    let list: Vec<String> = all.iter().map(|c| format!("\"{}\"", hex(c))).collect();
    // jwt.js's functions (with core.js's `UTF8`, which they use), then a
    // driver: each case as bytes through the same UTF-8 check and parser
    // as a token's part, then the encoder.
    let program = format!(
        "const UTF8 = new TextEncoder();\n{}\nfor (const h of [{}]) {{\n\
           const bytes = Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));\n\
           let text = null;\n\
           try {{ text = new TextDecoder('utf-8', {{ fatal: true }}).decode(bytes); }} catch (e) {{}}\n\
           const v = text === null ? null : jsonParse(text);\n\
           console.log(v === null ? 'nil' : '=' + Buffer.from(jsonEncode(v)).toString('hex'));\n\
         }}\n",
        include_str!("../src/js/jwt.js"),
        list.join(",")
    );
    let out = Command::new("node")
        .args(["--input-type=commonjs", "-e", &program])
        .output()
        .expect("node runs (Node.js is a test dependency of this target)");
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), all.len(), "{text}");
    for (input, line) in all.iter().zip(lines) {
        let got = line.strip_prefix('=').map(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        });
        let want = serde_json::from_slice::<serde_json::Value>(input)
            .ok()
            .map(|v| serde_json::to_string(&v).unwrap().into_bytes());
        assert_eq!(
            got.as_deref().map(String::from_utf8_lossy),
            want.as_deref().map(String::from_utf8_lossy),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}
