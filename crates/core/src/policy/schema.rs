//! The policy's JSON Schema (generated from the documented model) and a structural check of a
//! parsed TOML document against it that reports every problem at once, each with its span.
//!
//! One source of truth: the Rust structs make the schema, the schema drives the check, and
//! editors get the same schema from `swarmpilot policy schema`.

use std::ops::Range;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::Policy;

/// The JSON Schema of a policy file.
pub fn policy_schema() -> Value {
    let mut schema = schemars::schema_for!(Policy).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), Value::String("swarmpilot policy".into()));
    }
    schema
}

/// One structural problem: where, which field, what.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Byte range in the file.
    pub span: Range<usize>,
    /// Dotted path of the field, e.g. `pools.worker.min_agents`.
    pub field: String,
    /// The same path as segments: keys, and `[i]` for array items.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
}

/// Checks a parsed document against the schema; returns every finding.
pub fn check_document(schema: &Value, document: &Spanned<DeTable<'_>>) -> Vec<Finding> {
    let mut walker = Walker {
        root: schema,
        findings: Vec::new(),
    };
    let mut path = Vec::new();
    walker.table(schema, document.get_ref(), document.span(), &mut path);
    walker.findings
}

struct Walker<'s> {
    root: &'s Value,
    findings: Vec<Finding>,
}

impl<'s> Walker<'s> {
    fn resolve(&self, mut schema: &'s Value) -> &'s Value {
        // Follow `$ref: "#/$defs/Name"` (possibly chained).
        while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let Some(name) = reference.strip_prefix("#/$defs/") else {
                break;
            };
            match self.root.get("$defs").and_then(|defs| defs.get(name)) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn report(&mut self, span: Range<usize>, path: &[String], message: String) {
        self.findings.push(Finding {
            span,
            field: display_path(path),
            path: path.to_vec(),
            message,
        });
    }

    fn value(&mut self, schema: &'s Value, value: &Spanned<DeValue<'_>>, path: &mut Vec<String>) {
        let schema = self.resolve(schema);
        // Option<T> is `anyOf: [T, null]` or `type: [T, "null"]`: a present value must be T.
        if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
            let non_null: Vec<&Value> = variants
                .iter()
                .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if let [only] = non_null.as_slice() {
                return self.value(only, value, path);
            }
        }
        if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
            return self.one_of(variants, value, path);
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
            return self.choice(&names, value, path);
        }
        let Some(expected) = expected_type(schema) else {
            return; // no constraint
        };
        let span = value.span();
        match (expected, value.get_ref()) {
            ("object", DeValue::Table(table)) => self.table(schema, table, span, path),
            ("array", DeValue::Array(items)) => {
                let item_schema = schema.get("items").unwrap_or(&Value::Bool(true));
                for (index, item) in items.iter().enumerate() {
                    path.push(format!("[{index}]"));
                    self.value(item_schema, item, path);
                    path.pop();
                }
            }
            ("string", DeValue::String(_)) | ("boolean", DeValue::Boolean(_)) => {}
            ("integer", DeValue::Integer(integer)) => {
                match integer.to_string().replace('_', "").parse::<f64>() {
                    Ok(number) => self.range(schema, number, span, path),
                    Err(_) => self.report(span, path, "not a valid integer".into()),
                }
            }
            ("number", DeValue::Integer(_) | DeValue::Float(_)) => {
                let text = match value.get_ref() {
                    DeValue::Integer(i) => i.to_string(),
                    DeValue::Float(f) => f.to_string(),
                    _ => String::new(),
                };
                if let Ok(number) = text.replace('_', "").parse::<f64>() {
                    self.range(schema, number, span, path);
                }
            }
            (expected, found) => {
                let wanted = match expected {
                    "object" => "a table",
                    "array" => "an array",
                    "string" => "a string",
                    "boolean" => "true or false",
                    "integer" => "an integer",
                    "number" => "a number",
                    other => other,
                };
                self.report(
                    span,
                    path,
                    format!("expected {wanted}, found {}", describe(found)),
                );
            }
        }
    }

    fn range(&mut self, schema: &Value, number: f64, span: Range<usize>, path: &[String]) {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && number < min
        {
            self.report(
                span.clone(),
                path,
                format!("{number} is below the minimum {min}"),
            );
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && number > max
        {
            self.report(span, path, format!("{number} is above the maximum {max}"));
        }
    }

    fn choice(&mut self, names: &[&str], value: &Spanned<DeValue<'_>>, path: &[String]) {
        match value.get_ref() {
            DeValue::String(text) if names.contains(&text.as_ref()) => {}
            DeValue::String(text) => {
                let hint = suggest(text, names.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                let list = names.join("`, `");
                self.report(
                    value.span(),
                    path,
                    format!("unknown value `{text}`, expected one of `{list}`{hint}"),
                );
            }
            other => self.report(
                value.span(),
                path,
                format!(
                    "expected one of `{}`, found {}",
                    names.join("`, `"),
                    describe(other)
                ),
            ),
        }
    }

    fn one_of(
        &mut self,
        variants: &'s [Value],
        value: &Spanned<DeValue<'_>>,
        path: &mut Vec<String>,
    ) {
        // Unit enums with documented variants: `oneOf: [{const: "a"}, ...]`.
        let consts: Vec<&str> = variants
            .iter()
            .map(|v| self.resolve(v))
            .filter_map(|v| {
                v.get("const")
                    .or_else(|| v.get("enum").and_then(|e| e.get(0)))
            })
            .filter_map(Value::as_str)
            .collect();
        if consts.len() == variants.len() {
            return self.choice(&consts, value, path);
        }
        // Internally tagged enums: pick the branch by its `type`.
        let DeValue::Table(table) = value.get_ref() else {
            return self.report(
                value.span(),
                path,
                format!("expected a table, found {}", describe(value.get_ref())),
            );
        };
        let tags: Vec<(&str, &'s Value)> = variants
            .iter()
            .map(|v| self.resolve(v))
            .filter_map(|v| {
                let tag = v
                    .pointer("/properties/type/const")
                    .or_else(|| v.pointer("/properties/type/enum/0"))?;
                Some((tag.as_str()?, v))
            })
            .collect();
        let names: Vec<&str> = tags.iter().map(|(t, _)| *t).collect();
        let tag = table.iter().find(|(k, _)| k.get_ref().as_ref() == "type");
        match tag {
            None => self.report(
                value.span(),
                path,
                format!("missing field `type` (one of `{}`)", names.join("`, `")),
            ),
            Some((_, tag_value)) => match tags.iter().find(
                |(t, _)| matches!(tag_value.get_ref(), DeValue::String(s) if s.as_ref() == *t),
            ) {
                Some((_, branch)) => self.table(branch, table, value.span(), path),
                None => {
                    path.push("type".into());
                    self.choice(&names, tag_value, path);
                    path.pop();
                }
            },
        }
    }

    fn table(
        &mut self,
        schema: &'s Value,
        table: &DeTable<'_>,
        span: Range<usize>,
        path: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            path.push(name.to_string());
            match properties.and_then(|p| p.get(name)) {
                Some(property) => self.value(property, value, path),
                None => match additional {
                    Some(Value::Bool(false)) => {
                        let known = properties
                            .into_iter()
                            .flat_map(|p| p.keys().map(String::as_str));
                        let hint = suggest(name, known)
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        self.report(key.span(), path, format!("unknown field `{name}`{hint}"));
                    }
                    Some(Value::Object(_)) => {
                        if let Some(item) = additional {
                            self.value(item, value, path);
                        }
                    }
                    _ => {}
                },
            }
            path.pop();
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for field in required.iter().filter_map(Value::as_str) {
                if !table.iter().any(|(k, _)| k.get_ref().as_ref() == field) {
                    self.report(span.clone(), path, format!("missing field `{field}`"));
                }
            }
        }
    }
}

fn expected_type(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(t) => Some(t.as_str()),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("string \"{s}\""),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// The dotted path of a field: `pools.worker.min_agents`, `alerts[0].pool`.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

/// The closest known name to a misspelt one, if any is close enough.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|&(distance, candidate)| {
            distance <= 1.max(candidate.len() / 3) && distance < candidate.len()
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}
