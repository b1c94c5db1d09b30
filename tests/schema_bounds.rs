//! The job schema (`imgworker schema`) against the worker, at both sides of
//! every limit the schema states.
//!
//! Every property of the job, of an output and of each op that carries a
//! `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
//! `minLength`, `maxLength`, `pattern`, `enum` (or `const`, or a `oneOf` of
//! `const`s), `minItems` or `maxItems` gets values on both sides of each
//! limit, put into an otherwise valid job. The worker's verdict
//! (`Job::parse`) and a real JSON Schema validator's must agree on each one.
//! The validator is Python's `jsonschema`, what producers use, run once for
//! all cases from the test virtualenv `target/test-venv` (scripts/test.sh
//! installs it there).
//!
//! Rules between fields are not in the schema (a `rotate` by 45 degrees
//! needs a `background`, `x` needs `y`, a purge has no `source`), so each
//! value is tried in a few otherwise valid jobs ("bases") and the first one
//! the worker accepts is used (the first base when it accepts none). A
//! value that is valid somewhere is thus judged where it is valid, and one
//! that is valid nowhere must be refused by the schema too.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use imgworker::config::WorkerConfig;
use imgworker::job::Job;
use imgworker::ops::OP_NAMES;
use serde_json::{json, Value};

const IMAGE: &str = "users/42/images/7";
/// Overlays from another image are only allowed under a configured
/// watermark prefix, an allow-list the schema does not state; cases whose
/// overlay `source` names another image run with this one configured.
const WATERMARKS: &str = "watermarks";

/// How far a float steps outside (or inside) a limit.
const EPSILON: f64 = 0.001;

/// What both verdicts must be, where the case knows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Valid,
    Invalid,
    /// Only that the two agree.
    Either,
}

/// One value of one property, in the job it is judged in.
struct Case {
    label: String,
    job: Value,
    /// Run the worker with [`WATERMARKS`] configured.
    watermarks: bool,
    expect: Expect,
    /// The worker's verdict: `None` when it accepts, else its error.
    worker: Option<String>,
}

fn edit_job() -> Value {
    json!({"schema": 1, "id": "job-1", "type": "edit", "image": IMAGE, "source": "original.jpg",
           "outputs": [{"version": "v2", "format": "jpeg"}]})
}

fn purge_job() -> Value {
    json!({"schema": 1, "id": "job-1", "type": "purge", "image": IMAGE})
}

/// Minimal valid ops, by name: the bases an op's values are tried in.
fn op_bases(name: &str) -> Vec<Value> {
    let ops = match name {
        "auto_orient" | "grayscale" | "invert" | "sepia" | "sharpen" | "pad" | "trim" => {
            vec![json!({})]
        }
        "resize" => vec![
            json!({"width": 100}),
            json!({"width": 100, "height": 100, "fit": "contain"}),
            json!({"width": 100, "height": 100, "fit": "cover"}),
        ],
        "crop" => vec![
            json!({"x": 0, "y": 0, "width": 1, "height": 1}),
            json!({"width": 1, "height": 1, "gravity": "attention"}),
        ],
        "rotate" => vec![
            json!({"degrees": 90}),
            json!({"degrees": 45, "background": "#000"}),
        ],
        "flip" => vec![json!({"axis": "horizontal"})],
        "adjust" => vec![json!({"brightness": 0.1}), json!({"contrast": 1.5})],
        "blur" => vec![json!({"sigma": 1.5})],
        "lut" => vec![json!({"object": "grade.cube"})],
        "pixelate" => vec![
            json!({"size": 8}),
            json!({"size": 8, "x": 0, "y": 0, "width": 1, "height": 1}),
        ],
        "levels" => vec![json!({"gamma": 1.2}), json!({"black": 0.1})],
        "curves" => vec![json!({"points": [[0, 0], [1, 1]]})],
        "composite" => vec![
            json!({"source": "logo.png"}),
            json!({"source": "logo.png", "x": 0, "y": 0}),
        ],
        _ => panic!("no minimal `{name}` op: add its bases to op_bases"),
    };
    ops.into_iter()
        .map(|mut op| {
            op["op"] = json!(name);
            op
        })
        .collect()
}

/// Known-good and known-bad strings for each property with a `pattern`,
/// by the property's name in [`Scope`] terms or the schema definition that
/// holds the pattern.
fn pattern_cases(key: &str) -> (Vec<String>, Vec<String>) {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (mut good, mut bad) = match key {
        "job.id" => (
            s(&[
                "a",
                "job-1",
                "A_b-9",
                "123e4567-e89b-12d3-a456-426614174000",
            ]),
            s(&[
                "",
                "rg bad/id",
                "a b",
                "a/b",
                "a.b",
                "é",
                "a\n",
                "a\r\n",
                "\na",
                "a\r",
                "a\u{85}",
                "a\u{2028}",
                "a\0",
                "a\t",
            ]),
        ),
        "job.image" => (
            s(&["a", IMAGE, "A_b-9/x"]),
            s(&[
                "",
                "/a",
                "a/",
                "a//b",
                "../a",
                "a/../b",
                "a/./b",
                "a\\b",
                "a b",
                "a\0b",
                "ä",
                "a\n",
                "users/42\n",
                "a\n/b",
                "a/b\r",
            ]),
        ),
        "job.source" => (
            s(&["original.jpg", "v1", "v1-thumb.webp", "a_b.JPEG"]),
            s(&[
                "",
                ".jpg",
                "a.",
                "../x.jpg",
                "a/b.jpg",
                "a.b.c",
                "x.jp g",
                "%2e%2e",
                "a.j_g",
                "original.jpg\n",
                "original.jpg ",
                "ä.jpg",
                "a\n.jpg",
            ]),
        ),
        "output.version" => (
            s(&["v3", "thumb_2x-b", "A"]),
            s(&["", "v2.jpg", "..", "a/b", "v 2", "v2\n", "v2\u{2029}", "ü"]),
        ),
        "composite.source" | "lut.object" | "mask.object" => (
            s(&[
                "logo.png",
                "logo",
                "watermarks/logo.png",
                "watermarks/acme/logo.png",
                "watermarks/a-b/c_d/logo.WEBP",
            ]),
            s(&[
                "",
                "/logo.png",
                "logo.png/",
                "watermarks//logo.png",
                "watermarks/acme/",
                "../logo.png",
                "watermarks/../logo.png",
                "watermarks/a b/logo.png",
                "watermarks/acme/lo go.png",
                "watermarks\\logo.png",
                "logo.png\n",
                "watermarks/acme/logo.png\n",
                "watermarks/acme\n/logo.png",
                "logo.p-g",
                "logo.png.png",
            ]),
        ),
        "Color" => (
            s(&["#fff", "#FFF", "#1234", "#0a0B0c", "#01020304"]),
            s(&[
                "",
                "fff",
                "#ff",
                "#fffff",
                "#fffffff",
                "#fffffffff",
                "#gggggg",
                "#+1+2+3",
                "#fff\n",
                "#ffffff\n",
                " #fff",
                "#fff ",
                "##fff",
                "#ＦＦＦ",
            ]),
        ),
        _ => panic!("a pattern on {key} has no known strings: add them to pattern_cases"),
    };
    // Strings at and beyond the lengths of names inside the grammar.
    let at = |n: usize, c: &str| c.repeat(n);
    match key {
        "job.id" => {
            good.push(at(128, "x"));
            bad.push(at(129, "x"));
        }
        "job.image" => {
            good.push(at(256, "a"));
            good.push(format!("{}a", "ab/".repeat(85)));
            bad.push(at(257, "a"));
            bad.push(format!("{}ab", "ab/".repeat(85)));
        }
        "job.source" => {
            good.push(at(64, "s"));
            good.push(format!("{}.{}", at(64, "s"), at(10, "e")));
            bad.push(at(65, "s"));
            bad.push(format!("{}.{}", at(65, "s"), at(10, "e")));
            bad.push(format!("a.{}", at(11, "e")));
        }
        "output.version" => {
            good.push(at(64, "v"));
            bad.push(at(65, "v"));
        }
        "composite.source" | "lut.object" | "mask.object" => {
            let object = format!("{}.{}", at(64, "s"), at(10, "e"));
            // An image part of exactly 256 characters, then one more.
            let image = format!("{WATERMARKS}/{}", at(256 - WATERMARKS.len() - 1, "a"));
            good.push(object.clone());
            good.push(format!("{image}/{object}"));
            bad.push(format!("{image}a/logo.png"));
            bad.push(format!("{}.png", at(65, "s")));
            bad.push(format!("logo.{}", at(11, "e")));
        }
        _ => {}
    }
    (good, bad)
}

/// Items for arrays with `minItems`/`maxItems`: the `i`th valid item.
fn array_item(key: &str, i: usize) -> Value {
    match key {
        "job.ops" | "output.ops" => json!({"op": "invert"}),
        "job.outputs" => json!({"version": format!("v{i}"), "format": "png"}),
        "curves.points" => json!([i as f64 / 32.0, 0.5]),
        // Distinct formats while there are any; a fifth repeats one.
        "output.candidates" => json!(["avif", "webp", "jpeg", "png"][i % 4]),
        _ => panic!("an array {key} has item limits but no items: add them to array_item"),
    }
}

/// Where a property lives.
#[derive(Clone)]
enum Scope {
    /// The job message itself.
    Job,
    /// The first output.
    Output,
    /// An op's parameters, in the job's shared ops or the first output's.
    Op { name: String, in_output: bool },
    /// The mask of an op (`invert`), in either place.
    Mask { in_output: bool },
}

impl Scope {
    fn name(&self) -> String {
        match self {
            Scope::Job => "job".into(),
            Scope::Output => "output".into(),
            Scope::Op { name, .. } => name.clone(),
            Scope::Mask { .. } => "mask".into(),
        }
    }

    fn label(&self, prop: &str) -> String {
        match self {
            Scope::Job => prop.to_string(),
            Scope::Output => format!("outputs[0].{prop}"),
            Scope::Op { name, in_output } => {
                let at = if *in_output {
                    "outputs[0].ops[0]"
                } else {
                    "ops[0]"
                };
                format!("{at}({name}).{prop}")
            }
            Scope::Mask { in_output } => {
                let at = if *in_output {
                    "outputs[0].ops[0]"
                } else {
                    "ops[0]"
                };
                format!("{at}(invert).mask.{prop}")
            }
        }
    }

    /// The jobs to try `prop = value` in.
    fn jobs(&self, prop: &str, value: &Value) -> Vec<Value> {
        match self {
            Scope::Job => [edit_job(), purge_job()]
                .into_iter()
                .map(|mut j| {
                    j[prop] = value.clone();
                    j
                })
                .collect(),
            Scope::Output => {
                let mut j = edit_job();
                // Format-specific settings are tried on an output of the
                // format they apply to.
                let format = match prop {
                    "speed" => "avif",
                    "lossless" => "webp",
                    "candidates" => "auto",
                    _ => "jpeg",
                };
                j["outputs"][0]["format"] = json!(format);
                // A byte budget's floor is tried under a budget, up to the
                // highest quality.
                if prop == "min_quality" {
                    j["outputs"][0]["max_bytes"] = json!(1 << 30);
                    j["outputs"][0]["quality"] = json!(100);
                }
                j["outputs"][0][prop] = value.clone();
                vec![j]
            }
            Scope::Op { name, in_output } => op_bases(name)
                .into_iter()
                .map(|mut op| {
                    op[prop] = value.clone();
                    op_job(op, *in_output)
                })
                .collect(),
            Scope::Mask { in_output } => {
                let mut mask = json!({"object": "mask.png"});
                mask[prop] = value.clone();
                vec![op_job(json!({"op": "invert", "mask": mask}), *in_output)]
            }
        }
    }
}

/// An edit job carrying `op` in its shared ops or in its output's.
fn op_job(op: Value, in_output: bool) -> Value {
    let mut j = edit_job();
    if in_output {
        j["outputs"][0]["ops"] = json!([op]);
    } else {
        j["ops"] = json!([op]);
    }
    j
}

/// Follow a local `$ref`, returning the definition's name with it.
fn deref<'a>(root: &'a Value, s: &'a Value) -> (Option<String>, &'a Value) {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/$defs/").expect("a local $ref");
            let target = &root["$defs"][name];
            assert!(!target.is_null(), "dangling $ref {r}");
            (Some(name.to_string()), target)
        }
        None => (None, s),
    }
}

/// The schemas a non-null value of a property must match: the property
/// itself and its `anyOf` branches (`null` ones left out), `$ref`s followed.
fn branches<'a>(root: &'a Value, prop: &'a Value) -> Vec<(Option<String>, &'a Value)> {
    let mut out = vec![deref(root, prop)];
    if let Some(any) = prop.get("anyOf").and_then(Value::as_array) {
        for b in any {
            if b.get("type") != Some(&json!("null")) {
                out.push(deref(root, b));
            }
        }
    }
    out
}

fn has_type(s: &Value, t: &str) -> bool {
    match s.get("type") {
        Some(Value::String(x)) => x == t,
        Some(Value::Array(xs)) => xs.iter().any(|x| x == t),
        _ => false,
    }
}

/// The values an enumeration allows: `enum`, `const`, or a `oneOf` of them.
fn enum_values(s: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        out.extend(e.iter().cloned());
    }
    if let Some(c) = s.get("const") {
        out.push(c.clone());
    }
    if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
        for v in one {
            out.extend(enum_values(v));
        }
    }
    out
}

/// Misspellings of an enumeration's string value: in capitals, a letter
/// more, a letter less, a leading space.
fn misspellings(v: &str) -> Vec<String> {
    vec![
        v.to_uppercase(),
        format!("{v}x"),
        v[..v.len() - 1].to_string(),
        format!(" {v}"),
    ]
}

/// What the walk over the schema found.
#[derive(Default)]
struct Walk {
    /// `{scope}.{property} {kind}` for every limit walked (kind: `number`,
    /// `length`, `pattern`, `enum` or `items`).
    covered: BTreeSet<String>,
    /// Numbers without both bounds and strings without a pattern or list
    /// of values: looser than the worker, which bounds every one.
    loose: BTreeSet<String>,
    cases: Vec<Case>,
}

/// The values to try for one property, with what each must give.
fn values_for(root: &Value, key: &str, prop: &Value, w: &mut Walk) -> Vec<(Value, Expect)> {
    let covered = &mut w.covered;
    let loose = &mut w.loose;
    let mut out: Vec<(Value, Expect)> = Vec::new();
    for (def, s) in branches(root, prop) {
        let values = enum_values(s);
        let numeric = has_type(s, "integer") || has_type(s, "number");
        let integer = has_type(s, "integer");
        // Numbers.
        let lo = s.get("minimum").map(|v| (v, false));
        let lo = lo.or(s.get("exclusiveMinimum").map(|v| (v, true)));
        let hi = s.get("maximum").map(|v| (v, false));
        let hi = hi.or(s.get("exclusiveMaximum").map(|v| (v, true)));
        if numeric && values.is_empty() && (lo.is_none() || hi.is_none()) {
            loose.insert(format!("{key}: a number without both bounds: {s}"));
        }
        let inside = if values.is_empty() {
            Expect::Valid
        } else {
            Expect::Either
        };
        for (bound, exclusive, dir) in [
            lo.map(|(b, e)| (b, e, -1i64)),
            hi.map(|(b, e)| (b, e, 1i64)),
        ]
        .into_iter()
        .flatten()
        {
            covered.insert(format!("{key} number"));
            if integer {
                let b = bound.as_i64().expect("an integer bound");
                // Outward is `dir`; an exclusive bound is itself outside.
                let edge = if exclusive { b - dir } else { b };
                out.push((json!(edge), inside));
                out.push((json!(edge + dir), Expect::Invalid));
                out.push((json!(edge + 10 * dir), Expect::Invalid));
                out.push((json!(edge - dir), inside));
            } else {
                let b = bound.as_f64().expect("a numeric bound");
                let d = dir as f64;
                if exclusive {
                    out.push((json!(b), Expect::Invalid));
                } else {
                    out.push((json!(b), inside));
                }
                out.push((json!(b - d * EPSILON), inside));
                out.push((json!(b + d * EPSILON), Expect::Invalid));
                out.push((json!(b + d), Expect::Invalid));
            }
        }
        // Strings.
        let is_string = has_type(s, "string");
        if is_string {
            let pattern = s.get("pattern").and_then(Value::as_str);
            if pattern.is_none() && values.is_empty() {
                loose.insert(format!("{key}: a string without a pattern: {s}"));
            }
            if pattern.is_some() {
                let pkey = def.clone().unwrap_or_else(|| key.to_string());
                covered.insert(format!("{key} pattern"));
                let (good, bad) = pattern_cases(&pkey);
                out.extend(good.into_iter().map(|g| (json!(g), Expect::Valid)));
                out.extend(bad.into_iter().map(|b| (json!(b), Expect::Invalid)));
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
                covered.insert(format!("{key} length"));
                let min = min as usize;
                out.push((json!("a".repeat(min)), Expect::Either));
                if min > 0 {
                    out.push((json!("a".repeat(min - 1)), Expect::Invalid));
                }
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
                covered.insert(format!("{key} length"));
                let max = max as usize;
                out.push((json!("a".repeat(max)), Expect::Either));
                out.push((json!("a".repeat(max + 1)), Expect::Invalid));
            }
        }
        // Enumerations.
        if !values.is_empty() {
            covered.insert(format!("{key} enum"));
            for v in &values {
                out.push((v.clone(), Expect::Valid));
                match v {
                    Value::String(text) => {
                        for m in misspellings(text) {
                            if !values.contains(&json!(m)) {
                                out.push((json!(m), Expect::Invalid));
                            }
                        }
                    }
                    Value::Number(n) => {
                        let n = n.as_i64().expect("an integer constant");
                        for m in [n - 1, n + 1] {
                            if !values.contains(&json!(m)) {
                                out.push((json!(m), Expect::Invalid));
                            }
                        }
                    }
                    other => panic!("{key}: an enumeration of {other}"),
                }
            }
        }
        // Arrays.
        let min_items = s.get("minItems").and_then(Value::as_u64);
        let max_items = s.get("maxItems").and_then(Value::as_u64);
        let items = |n: u64| Value::Array((0..n as usize).map(|i| array_item(key, i)).collect());
        if let Some(min) = min_items {
            covered.insert(format!("{key} items"));
            out.push((items(min), Expect::Valid));
            if min > 0 {
                out.push((items(min - 1), Expect::Invalid));
            }
        }
        if let Some(max) = max_items {
            covered.insert(format!("{key} items"));
            out.push((items(max), Expect::Valid));
            out.push((items(max + 1), Expect::Invalid));
        }
    }
    out
}

/// Judge `job` by the worker.
fn worker_verdict(job: &Value, watermarks: bool) -> Option<String> {
    let mut cfg = WorkerConfig::new();
    if watermarks {
        cfg.watermark_prefixes = vec![WATERMARKS.into()];
    }
    Job::parse(&serde_json::to_vec(job).unwrap(), &cfg)
        .err()
        .map(|e| format!("{:?}: {}", e.code, e.message))
}

/// Whether a case's job names an overlay from another image.
fn names_foreign_overlay(job: &Value) -> bool {
    let ops = [&job["ops"], &job["outputs"][0]["ops"]];
    ops.iter().filter_map(|o| o.as_array()).flatten().any(|op| {
        let foreign = |v: &Value| v.as_str().is_some_and(|s| s.contains('/'));
        let named = match op["op"].as_str() {
            Some("composite" | "overlay") => &op["source"],
            Some("lut") => &op["object"],
            _ => &Value::Null,
        };
        foreign(named) || foreign(&op["mask"]["object"])
    })
}

/// Build the case for `prop = value`: the first job the worker accepts, or
/// the first job.
fn case(scope: &Scope, prop: &str, value: Value, expect: Expect) -> Case {
    let shown: String = value.to_string().chars().take(80).collect();
    let label = format!("{} = {shown}", scope.label(prop));
    let jobs = scope.jobs(prop, &value);
    let judged: Vec<(Value, bool, Option<String>)> = jobs
        .into_iter()
        .map(|j| {
            let w = names_foreign_overlay(&j);
            let v = worker_verdict(&j, w);
            (j, w, v)
        })
        .collect();
    let pick = judged.iter().position(|(_, _, v)| v.is_none()).unwrap_or(0);
    let (job, watermarks, worker) = judged.into_iter().nth(pick).unwrap();
    Case {
        label,
        job,
        watermarks,
        expect,
        worker,
    }
}

/// Every case for every constrained property of one object schema.
fn walk(root: &Value, object: &Value, scope: &Scope, w: &mut Walk) {
    let props = object["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no properties", scope.name()));
    for (prop, schema) in props {
        // The tag is the op itself; the mask is walked on its own.
        if matches!(scope, Scope::Op { .. }) && (prop == "op" || prop == "mask") {
            continue;
        }
        let key = format!("{}.{prop}", scope.name());
        for (value, expect) in values_for(root, &key, schema, w) {
            w.cases.push(case(scope, prop, value, expect));
        }
    }
}

const VALIDATE_PY: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit(3)
request = json.load(sys.stdin)
schema = request["schema"]
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema)
verdicts = []
for instance in request["instances"]:
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    verdicts.append(None if error is None else error.message[:300])
json.dump(verdicts, sys.stdout)
"#;

const INSTALL: &str = "install it into the test virtualenv (scripts/test.sh does): \
     `python3 -m venv target/test-venv && target/test-venv/bin/pip install 'jsonschema==4.*'`";

/// Judge every instance by Python's `jsonschema`: `None` where valid, else
/// its message.
fn schema_verdicts(schema: &Value, instances: &[&Value]) -> Vec<Option<String>> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: this test validates with Python's jsonschema; {INSTALL}",
        python.display()
    );
    let mut child = Command::new(&python)
        .args(["-c", VALIDATE_PY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let request = json!({"schema": schema, "instances": instances});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&request).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(3),
        "Python's jsonschema is not installed in target/test-venv; {INSTALL}"
    );
    assert!(
        out.status.success(),
        "the jsonschema validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Option<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdicts.len(), instances.len());
    verdicts
}

#[test]
fn schema_and_worker_agree_at_every_limit() {
    let schema = imgworker::schema::all()["job"].clone();
    let defs = &schema["$defs"];
    let mut w = Walk::default();

    // The job, its first output, every op in either place.
    walk(&schema, &schema, &Scope::Job, &mut w);
    walk(&schema, &defs["OutputSpec"], &Scope::Output, &mut w);
    let variants = defs["OpSpec"]["oneOf"]
        .as_array()
        .expect("OpSpec is a oneOf");
    let mut op_names = Vec::new();
    for variant in variants {
        // An op with aliases lists its name first under `enum`.
        let tag = &variant["properties"]["op"];
        let name = tag["const"]
            .as_str()
            .or_else(|| tag["enum"][0].as_str())
            .expect("each op variant has its tag as a const");
        op_names.push(name.to_string());
        for in_output in [false, true] {
            let scope = Scope::Op {
                name: name.into(),
                in_output,
            };
            // The minimal op itself must be valid (ops without parameters
            // get only this case).
            for op in op_bases(name) {
                let job = op_job(op.clone(), in_output);
                w.cases.push(Case {
                    label: format!("{} minimal: {op}", scope.label("")),
                    worker: worker_verdict(&job, false),
                    job,
                    watermarks: false,
                    expect: Expect::Valid,
                });
            }
            walk(&schema, variant, &scope, &mut w);
        }
    }
    for in_output in [false, true] {
        walk(
            &schema,
            &defs["MaskSpec"],
            &Scope::Mask { in_output },
            &mut w,
        );
    }
    assert_eq!(op_names, OP_NAMES, "the schema's ops are the registry's");

    // The four values a producer found the schema accepting.
    let reported: Vec<(&str, Value)> = vec![
        (
            "resize width 0",
            op_job(json!({"op": "resize", "width": 0}), false),
        ),
        ("quality 101", {
            let mut j = edit_job();
            j["outputs"][0]["quality"] = json!(101);
            j
        }),
        (
            "sigma 100",
            op_job(json!({"op": "blur", "sigma": 100}), false),
        ),
        ("id \"rg bad/id\"", {
            let mut j = edit_job();
            j["id"] = json!("rg bad/id");
            j
        }),
    ];
    let Walk {
        covered,
        loose,
        mut cases,
    } = w;
    for (label, job) in &reported {
        cases.push(Case {
            label: format!("reported: {label}"),
            worker: worker_verdict(job, false),
            job: job.clone(),
            watermarks: false,
            expect: Expect::Invalid,
        });
    }

    let instances: Vec<&Value> = cases.iter().map(|c| &c.job).collect();
    let verdicts = schema_verdicts(&schema, &instances);

    let mut failures: Vec<String> = loose
        .iter()
        .map(|l| format!("looser than the worker: {l}"))
        .collect();
    let (mut both_valid, mut both_invalid) = (0, 0);
    for (c, by_schema) in cases.iter().zip(&verdicts) {
        let worker_ok = c.worker.is_none();
        let schema_ok = by_schema.is_none();
        let cfg = if c.watermarks {
            " (watermark prefix configured)"
        } else {
            ""
        };
        if worker_ok != schema_ok {
            failures.push(format!(
                "{}{cfg}: worker {}, schema {}",
                c.label,
                c.worker.as_deref().unwrap_or("accepts"),
                by_schema.as_deref().unwrap_or("accepts"),
            ));
        } else if (c.expect == Expect::Valid && !worker_ok)
            || (c.expect == Expect::Invalid && worker_ok)
        {
            failures.push(format!(
                "{}{cfg}: expected {:?}, both say {}",
                c.label,
                c.expect,
                c.worker.as_deref().unwrap_or("valid"),
            ));
        }
        if worker_ok && schema_ok {
            both_valid += 1;
        } else if !worker_ok && !schema_ok {
            both_invalid += 1;
        }
    }
    println!(
        "{} boundary cases checked: {both_valid} valid and {both_invalid} invalid by both; {} failures",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures in {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // The reported values are refused by the schema now.
    for (c, by_schema) in cases.iter().zip(&verdicts).rev().take(reported.len()) {
        assert!(by_schema.is_some(), "{}: the schema accepts it", c.label);
    }

    // Every ranged parameter of every op was walked, in both places.
    let ranged = [
        ("resize", "width"),
        ("resize", "height"),
        ("crop", "x"),
        ("crop", "y"),
        ("crop", "width"),
        ("crop", "height"),
        ("rotate", "degrees"),
        ("adjust", "brightness"),
        ("adjust", "contrast"),
        ("adjust", "saturation"),
        ("adjust", "hue"),
        ("adjust", "gamma"),
        ("adjust", "exposure"),
        ("sepia", "strength"),
        ("levels", "black"),
        ("levels", "white"),
        ("levels", "gamma"),
        ("levels", "output_black"),
        ("levels", "output_white"),
        ("blur", "sigma"),
        ("sharpen", "sigma"),
        ("sharpen", "amount"),
        ("sharpen", "threshold"),
        ("pad", "top"),
        ("pad", "right"),
        ("pad", "bottom"),
        ("pad", "left"),
        ("composite", "x"),
        ("composite", "y"),
        ("composite", "opacity"),
        ("pixelate", "size"),
        ("trim", "threshold"),
        ("pixelate", "x"),
        ("pixelate", "width"),
        ("mask", "feather"),
    ];
    for (op, param) in ranged {
        assert!(
            covered.contains(&format!("{op}.{param} number")),
            "{op}.{param} has no range in the schema"
        );
    }
    for walked in [
        "job.schema enum",
        "job.id pattern",
        "job.id length",
        "job.image pattern",
        "job.image length",
        "job.source pattern",
        "job.type enum",
        "job.ops items",
        "job.outputs items",
        "output.version pattern",
        "output.format enum",
        "output.quality number",
        "output.metadata enum",
        "output.ops items",
        "resize.fit enum",
        "resize.filter enum",
        "resize.gravity enum",
        "resize.background pattern",
        "rotate.background pattern",
        "flip.axis enum",
        "crop.gravity enum",
        "levels.channel enum",
        "curves.channel enum",
        "curves.points items",
        "pad.color pattern",
        "trim.background pattern",
        "composite.source pattern",
        "composite.source length",
        "composite.gravity enum",
        "composite.blend enum",
        "mask.object pattern",
        "mask.object length",
        "mask.fit enum",
        "job.from enum",
        "lut.object pattern",
        "lut.object length",
        "lut.interpolation enum",
    ] {
        assert!(covered.contains(walked), "{walked} was not walked");
    }
    assert!(
        cases.len() >= 900,
        "only {} boundary cases: the walk missed properties",
        cases.len()
    );
}
