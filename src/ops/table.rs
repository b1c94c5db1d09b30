//! The op table of the docs, generated from the registry (`imgworker ops
//! --markdown`): each op's name, its parameters (from the JSON Schema of its
//! parameter struct, with their doc comments), what it does, and the C2PA
//! action a version's Content Credentials record it as.

use serde_json::Value;

use super::{OpInfo, OPS};

/// The Markdown op table: a header and one row per op, in registry order.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| op | parameters | what it does | C2PA action |\n| --- | --- | --- | --- |\n",
    );
    for op in OPS {
        let aliases: String = op
            .aliases
            .iter()
            .map(|a| format!("; `{a}` is another name for it"))
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {}{aliases} | `{}` |\n",
            op.name,
            parameters(op),
            op.summary,
            op.c2pa_action
        ));
    }
    out.push_str(
        "\nAny op that keeps the image size also takes `mask`: `object` (required; an object of the image, or under an allowed watermark prefix), `feather` (Gaussian sigma in pixels, `0..=64`), `invert` (boolean), `fit` (`fill`, `contain`, `cover`).\n",
    );
    out
}

/// The parameters of an op, one `name`: description per property; required
/// ones say so.
fn parameters(op: &OpInfo) -> String {
    let schema = (op.params_schema)();
    let schema = schema.as_value();
    let props = schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = props.filter(|p| !p.is_empty()) else {
        return "none".into();
    };
    props
        .iter()
        .map(|(name, p)| {
            let mut text = format!("`{name}`");
            if required.contains(&name.as_str()) {
                text.push_str(" (required)");
            }
            let desc = describe(p, schema);
            if !desc.is_empty() {
                text.push_str(": ");
                text.push_str(&desc);
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A property's description, and the values of an enumeration it refers to.
fn describe(p: &Value, root: &Value) -> String {
    let mut desc = p
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .replace('\n', " ")
        .replace('|', "\\|")
        .trim_end_matches('.')
        .to_string();
    if let Some(values) = enum_values(p, root) {
        let list: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        if !desc.is_empty() {
            desc.push(' ');
        }
        desc.push_str(&format!("({})", list.join(", ")));
    }
    desc
}

/// The string values of an enumeration the property holds, following a
/// `$ref` (possibly inside `anyOf` with `null` for optional ones).
fn enum_values(p: &Value, root: &Value) -> Option<Vec<String>> {
    let target = if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        resolve(r, root)?
    } else if let Some(any) = p.get("anyOf").and_then(Value::as_array) {
        let r = any.iter().find_map(|v| v.get("$ref")?.as_str())?;
        resolve(r, root)?
    } else {
        p
    };
    let mut values = Vec::new();
    if let Some(e) = target.get("enum").and_then(Value::as_array) {
        values.extend(e.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if let Some(one) = target.get("oneOf").and_then(Value::as_array) {
        for v in one {
            if let Some(c) = v.get("const").and_then(Value::as_str) {
                values.push(c.to_owned());
            }
            if let Some(e) = v.get("enum").and_then(Value::as_array) {
                values.extend(e.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
    }
    (!values.is_empty()).then_some(values)
}

fn resolve<'a>(reference: &str, root: &'a Value) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    path.split('/').try_fold(root, |v, key| v.get(key))
}
