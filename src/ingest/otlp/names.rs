//! Who and what a data point is about: the agent and pool its resource names, and the
//! Prometheus-shaped name of its metric.

use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::domain::names::SampleError;
use crate::ingest::{MAX_METRIC_LEN, check_agent, check_metric};

/// Resource attributes naming the agent, in order of preference.
pub const AGENT_ATTRIBUTES: [&str; 2] = ["service.instance.id", "service.name"];
/// Resource attribute naming the pool an agent met for the first time joins.
pub const POOL_ATTRIBUTE: &str = "swarmpilot.pool";

/// OTLP metric names that are one of the controller's own metrics.
const WELL_KNOWN: &[(&str, &str)] =
    &[("process.memory.usage", crate::domain::metric::MEMORY_BYTES)];
/// Room kept in a metric name for the suffixes of derived series (`_per_s`, `_count`).
const SUFFIX_ROOM: usize = 6;

/// The agent a resource names and the attribute that named it, or the fault.
pub fn agent_of(
    r: usize,
    resource: Option<&Resource>,
) -> Result<(String, String), (String, String)> {
    let attributes = resource.map_or(&[][..], |res| res.attributes.as_slice());
    for key in AGENT_ATTRIBUTES {
        let field = format!("resourceMetrics[{r}].resource.attributes[{key}]");
        match string_attribute(attributes, key) {
            None => continue,
            Some(Err(error)) => return Err((field, error.to_string())),
            Some(Ok(agent)) => {
                check_agent(&agent).map_err(|reason| (field.clone(), reason.to_string()))?;
                return Ok((agent, field));
            }
        }
    }
    Err((
        format!("resourceMetrics[{r}].resource.attributes"),
        format!(
            "no agent: the resource has neither {} set",
            AGENT_ATTRIBUTES.join(" nor ")
        ),
    ))
}

/// The pool a resource names, if it names one as a string.
pub fn pool_of(resource: Option<&Resource>) -> Option<String> {
    let attributes = resource.map_or(&[][..], |res| res.attributes.as_slice());
    string_attribute(attributes, POOL_ATTRIBUTE)?.ok()
}

/// Why a resource attribute that is set has no string value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// The value is of another type.
    #[error("attribute {key} must be a string")]
    NotAString {
        /// The attribute's key.
        key: String,
    },
}

/// The string value of attribute `key`: `None` when absent or empty, an error when it is
/// not a string.
pub(super) fn string_attribute(
    attributes: &[KeyValue],
    key: &str,
) -> Option<Result<String, AttributeError>> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        any_value::Value::StringValue(s) if s.is_empty() => None,
        any_value::Value::StringValue(s) => Some(Ok(s.clone())),
        _ => Some(Err(AttributeError::NotAString {
            key: key.to_string(),
        })),
    }
}

/// Why an OTLP metric name has no sample name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricNameError {
    /// The Prometheus-shaped name is refused as a sample's metric name.
    #[error(transparent)]
    Sample(#[from] SampleError),
    /// The name leaves no room for the suffixes of derived series.
    #[error("metric name is longer than {limit} bytes (room is kept for suffixes such as _count)")]
    TooLong {
        /// The longest name accepted, bytes.
        limit: usize,
    },
}

/// The sample name of an OTLP metric name, checked.
pub fn metric_name(otlp_name: &str) -> Result<String, MetricNameError> {
    let name = prometheus_name(otlp_name);
    check_metric(&name)?;
    if name.len() + SUFFIX_ROOM > MAX_METRIC_LEN {
        return Err(MetricNameError::TooLong {
            limit: MAX_METRIC_LEN - SUFFIX_ROOM,
        });
    }
    Ok(name)
}

/// The Prometheus-shaped sample name of an OTLP metric name.
pub fn prometheus_name(otlp_name: &str) -> String {
    if let Some((_, ours)) = WELL_KNOWN.iter().find(|(theirs, _)| *theirs == otlp_name) {
        return (*ours).to_string();
    }
    let mut name = String::with_capacity(otlp_name.len() + 1);
    if otlp_name.starts_with(|c: char| c.is_ascii_digit()) {
        name.push('_');
    }
    for c in otlp_name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    name
}
