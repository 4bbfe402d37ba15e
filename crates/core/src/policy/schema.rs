//! The policy's JSON Schema (generated from the documented model) and a structural check of a
//! parsed TOML document against it that reports every problem at once, each with its span.
//!
//! One source of truth: the Rust structs make the schema, the schema drives the check, and
//! editors get the same schema from `swarmpilot policy schema`. The check reads the schema
//! through [`Node`], the typed subset of JSON Schema that schemars emits for the model.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::Policy;

/// The JSON Schema of a policy file.
pub fn policy_schema() -> schemars::Schema {
    let mut schema = schemars::schema_for!(Policy);
    schema.insert("title".into(), "swarmpilot policy".into());
    schema
}

/// The policy's schema as typed nodes, ready to check documents against.
#[derive(Debug, Clone)]
pub struct Structure {
    root: Node,
}

impl Structure {
    /// The structure of a policy file.
    pub fn of_policy() -> Self {
        // The schema is generated from our own types, so it always has the shape `Node` reads;
        // a node it cannot read would only constrain nothing.
        let root = Node::deserialize(policy_schema().as_value()).unwrap_or_default();
        Self { root }
    }
}

/// A schema node: `true`/`false`, or an object with the keywords the check understands.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SchemaOrBool {
    Bool(bool),
    Node(Box<Node>),
}

/// A literal in `enum` or `const`: the check compares strings only.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Literal {
    Text(String),
    Other(IgnoredAny),
}

impl Literal {
    fn as_str(&self) -> Option<&str> {
        match self {
            Literal::Text(text) => Some(text),
            Literal::Other(_) => None,
        }
    }
}

/// `type`: one name, or several (`["integer", "null"]` for an `Option`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Types {
    One(String),
    Many(Vec<String>),
}

/// The keywords of JSON Schema the structural check reads; the rest are documentation.
#[derive(Debug, Clone, Default, Deserialize)]
struct Node {
    #[serde(rename = "$ref")]
    reference: Option<String>,
    #[serde(rename = "$defs")]
    defs: Option<BTreeMap<String, Node>>,
    #[serde(rename = "anyOf")]
    any_of: Option<Vec<Node>>,
    #[serde(rename = "oneOf")]
    one_of: Option<Vec<Node>>,
    #[serde(rename = "enum")]
    allowed: Option<Vec<Literal>>,
    #[serde(rename = "const")]
    constant: Option<Literal>,
    #[serde(rename = "type")]
    types: Option<Types>,
    items: Option<SchemaOrBool>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    properties: Option<BTreeMap<String, Node>>,
    #[serde(rename = "additionalProperties")]
    additional: Option<SchemaOrBool>,
    required: Option<Vec<String>>,
}

impl Node {
    /// The one type this node asks for, `null` aside.
    fn expected_type(&self) -> Option<&str> {
        match self.types.as_ref()? {
            Types::One(name) => Some(name),
            Types::Many(names) => names.iter().map(String::as_str).find(|t| *t != "null"),
        }
    }

    /// The string this node admits alone: `const: "a"` or `enum: ["a"]`.
    fn single_literal(&self) -> Option<&str> {
        self.constant
            .as_ref()
            .or_else(|| self.allowed.as_ref().and_then(|a| a.first()))
            .and_then(Literal::as_str)
    }

    fn is_null(&self) -> bool {
        matches!(&self.types, Some(Types::One(t)) if t == "null")
    }
}

static ANYTHING: Node = Node {
    reference: None,
    defs: None,
    any_of: None,
    one_of: None,
    allowed: None,
    constant: None,
    types: None,
    items: None,
    minimum: None,
    maximum: None,
    properties: None,
    additional: None,
    required: None,
};

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

/// Checks a parsed document against the structure; returns every finding.
pub fn check_document(structure: &Structure, document: &Spanned<DeTable<'_>>) -> Vec<Finding> {
    let mut walker = Walker {
        root: &structure.root,
        findings: Vec::new(),
    };
    let mut path = Vec::new();
    walker.table(
        &structure.root,
        document.get_ref(),
        document.span(),
        &mut path,
    );
    walker.findings
}

struct Walker<'s> {
    root: &'s Node,
    findings: Vec<Finding>,
}

impl<'s> Walker<'s> {
    fn resolve(&self, mut schema: &'s Node) -> &'s Node {
        // Follow `$ref: "#/$defs/Name"` (possibly chained).
        while let Some(reference) = schema.reference.as_deref() {
            let Some(name) = reference.strip_prefix("#/$defs/") else {
                break;
            };
            match self.root.defs.as_ref().and_then(|defs| defs.get(name)) {
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

    fn value(&mut self, schema: &'s Node, value: &Spanned<DeValue<'_>>, path: &mut Vec<String>) {
        let schema = self.resolve(schema);
        // Option<T> is `anyOf: [T, null]` or `type: [T, "null"]`: a present value must be T.
        if let Some(variants) = &schema.any_of {
            let non_null: Vec<&Node> = variants.iter().filter(|v| !v.is_null()).collect();
            if let [only] = non_null.as_slice() {
                return self.value(only, value, path);
            }
        }
        if let Some(variants) = &schema.one_of {
            return self.one_of(variants, value, path);
        }
        if let Some(allowed) = &schema.allowed {
            let names: Vec<&str> = allowed.iter().filter_map(Literal::as_str).collect();
            return self.choice(&names, value, path);
        }
        let Some(expected) = schema.expected_type() else {
            return; // no constraint
        };
        let span = value.span();
        match (expected, value.get_ref()) {
            ("object", DeValue::Table(table)) => self.table(schema, table, span, path),
            ("array", DeValue::Array(items)) => {
                let item_schema = match &schema.items {
                    Some(SchemaOrBool::Node(node)) => node,
                    _ => &ANYTHING,
                };
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

    fn range(&mut self, schema: &Node, number: f64, span: Range<usize>, path: &[String]) {
        if let Some(min) = schema.minimum
            && number < min
        {
            self.report(
                span.clone(),
                path,
                format!("{number} is below the minimum {min}"),
            );
        }
        if let Some(max) = schema.maximum
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
        variants: &'s [Node],
        value: &Spanned<DeValue<'_>>,
        path: &mut Vec<String>,
    ) {
        // Unit enums with documented variants: `oneOf: [{const: "a"}, ...]`.
        let consts: Vec<&str> = variants
            .iter()
            .map(|v| self.resolve(v))
            .filter_map(Node::single_literal)
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
        let tags: Vec<(&str, &'s Node)> = variants
            .iter()
            .map(|v| self.resolve(v))
            .filter_map(|v| {
                let tag = v.properties.as_ref()?.get("type")?.single_literal()?;
                Some((tag, v))
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
        schema: &'s Node,
        table: &DeTable<'_>,
        span: Range<usize>,
        path: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        let properties = schema.properties.as_ref();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            path.push(name.to_string());
            match properties.and_then(|p| p.get(name)) {
                Some(property) => self.value(property, value, path),
                None => match &schema.additional {
                    Some(SchemaOrBool::Bool(false)) => {
                        let known = properties
                            .into_iter()
                            .flat_map(|p| p.keys().map(String::as_str));
                        let hint = suggest(name, known)
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        self.report(key.span(), path, format!("unknown field `{name}`{hint}"));
                    }
                    Some(SchemaOrBool::Node(item)) => self.value(item, value, path),
                    _ => {}
                },
            }
            path.pop();
        }
        for field in schema.required.iter().flatten() {
            if !table.iter().any(|(k, _)| k.get_ref().as_ref() == field) {
                self.report(span.clone(), path, format!("missing field `{field}`"));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_schema_reads_as_typed_nodes() {
        let root = Node::deserialize(policy_schema().as_value()).unwrap();
        let defs = root.defs.as_ref().unwrap();
        assert!(defs.contains_key("Global"), "{:?}", defs.keys());
        let pools = root.properties.as_ref().unwrap().get("pools").unwrap();
        assert!(matches!(pools.additional, Some(SchemaOrBool::Node(_))));
    }

    #[test]
    fn a_misspelt_field_and_a_bad_range_are_both_found() {
        let text = "[global]\nsampling_intervl_secs = 2\n[pools.worker]\nmin_agents = -1\n";
        let document = DeTable::parse(text).unwrap();
        let findings = check_document(&Structure::of_policy(), &document);
        let fields: Vec<&str> = findings.iter().map(|f| f.field.as_str()).collect();
        assert!(
            fields.contains(&"global.sampling_intervl_secs"),
            "{findings:?}"
        );
        assert!(fields.contains(&"pools.worker.min_agents"), "{findings:?}");
    }
}
