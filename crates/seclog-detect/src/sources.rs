//! Log-source routing: which journal groups a Sigma rule reads, and the processing pipeline
//! that renames its fields for those groups' events (`defaults/sources.yml`).

use std::collections::BTreeMap;

use rsigma_eval::Pipeline;
use rsigma_parser::LogSource;
use serde::Deserialize;

use crate::{Error, Result};

/// The default routing, compiled into the binary.
pub const DEFAULT_SOURCES: &str = include_str!("../defaults/sources.yml");

/// One log source: the rules it takes, the groups it reads and how their fields are named.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name (`cloudtrail`, `web`, …).
    pub name: String,
    /// Allowed values per logsource key; `None` in a list stands for "not set".
    pub logsource: BTreeMap<String, Vec<Option<String>>>,
    /// Group-name patterns (`*` matches any run of characters).
    pub groups: Vec<String>,
    /// Whether events carry their OCSF object under `ocsf`.
    pub ocsf: bool,
    /// The field-renaming pipeline, if any.
    pub pipeline: Option<Pipeline>,
}

impl Source {
    /// Whether a rule with this logsource belongs to the source.
    pub fn takes(&self, logsource: &LogSource) -> bool {
        self.logsource.iter().all(|(key, allowed)| {
            let value = match key.as_str() {
                "product" => logsource.product.as_deref(),
                "service" => logsource.service.as_deref(),
                "category" => logsource.category.as_deref(),
                other => logsource.custom.get(other).map(String::as_str),
            };
            allowed
                .iter()
                .any(|candidate| candidate.as_deref() == value)
        })
    }

    /// Whether the source reads `group`.
    pub fn reads(&self, group: &str) -> bool {
        self.groups
            .iter()
            .any(|pattern| wildcard_match(pattern, group))
    }
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The sources, in file order.
    pub sources: Vec<Source>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSources {
    version: u32,
    sources: Vec<RawSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    logsource: BTreeMap<String, OneOrMany>,
    groups: Vec<String>,
    #[serde(default = "yes")]
    ocsf: bool,
    #[serde(default)]
    pipeline: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Option<String>),
    Many(Vec<Option<String>>),
}

impl Sources {
    /// The built-in routing.
    pub fn default_sources() -> Sources {
        Sources::parse(DEFAULT_SOURCES).expect("the built-in sources.yml is valid")
    }

    /// Parses a routing file; every problem is reported at once.
    pub fn parse(text: &str) -> Result<Sources> {
        let raw: RawSources =
            yaml_serde::from_str(text).map_err(|error| Error::Config(error.to_string()))?;
        let mut problems = Vec::new();
        if raw.version != 1 {
            problems.push(format!("version {} is not known (1 is)", raw.version));
        }
        let mut sources = Vec::new();
        for source in raw.sources {
            if source.groups.is_empty() {
                problems.push(format!("source {}: no groups", source.name));
            }
            let pipeline = match source.pipeline.as_deref().map(rsigma_eval::parse_pipeline) {
                Some(Ok(pipeline)) => Some(pipeline),
                Some(Err(error)) => {
                    problems.push(format!("source {}: pipeline: {error}", source.name));
                    None
                }
                None => None,
            };
            let logsource = source
                .logsource
                .into_iter()
                .map(|(key, values)| {
                    let values = match values {
                        OneOrMany::One(value) => vec![value],
                        OneOrMany::Many(values) => values,
                    };
                    (key, values)
                })
                .collect();
            sources.push(Source {
                name: source.name,
                logsource,
                groups: source.groups,
                ocsf: source.ocsf,
                pipeline,
            });
        }
        if problems.is_empty() {
            Ok(Sources { sources })
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }

    /// The index of the source that reads `group` (the first listed wins).
    pub fn for_group(&self, group: &str) -> Option<usize> {
        self.sources.iter().position(|source| source.reads(group))
    }
}

/// Glob match where `*` matches any run of characters (including `/`).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("aws/cloudtrail", "aws/cloudtrail"));
        assert!(!wildcard_match("aws/cloudtrail", "aws/cloudtrail2"));
        assert!(wildcard_match("aws/cloudtrail/*", "aws/cloudtrail/prod"));
        assert!(wildcard_match(
            "cloudwatch/*cloudtrail*",
            "cloudwatch/org-cloudtrail-logs"
        ));
        assert!(!wildcard_match("cloudwatch/*cloudtrail*", "cloudwatch/app"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*a", "a"));
        assert!(wildcard_match("a*a", "aa"));
    }

    #[test]
    fn default_sources_route_rules_and_groups() {
        let sources = Sources::default_sources();
        let cloudtrail = LogSource {
            product: Some("aws".into()),
            service: Some("cloudtrail".into()),
            ..LogSource::default()
        };
        let linux_process = LogSource {
            product: Some("linux".into()),
            category: Some("process_creation".into()),
            ..LogSource::default()
        };
        let sshd = LogSource {
            product: Some("linux".into()),
            service: Some("sshd".into()),
            ..LogSource::default()
        };
        let taking = |logsource: &LogSource| -> Vec<&str> {
            sources
                .sources
                .iter()
                .filter(|source| source.takes(logsource))
                .map(|source| source.name.as_str())
                .collect()
        };
        assert_eq!(taking(&cloudtrail), ["cloudtrail"]);
        assert!(taking(&linux_process).is_empty());
        assert_eq!(taking(&sshd), ["linux"]);
        let name = |group: &str| {
            sources
                .for_group(group)
                .map(|i| sources.sources[i].name.as_str())
        };
        assert_eq!(name("aws/cloudtrail"), Some("cloudtrail"));
        assert_eq!(name("aws/alb"), Some("web"));
        assert_eq!(name("aws/route53"), Some("dns"));
        assert_eq!(name("syslog/sshd"), Some("linux"));
        assert_eq!(name("app/orders"), Some("app"));
        assert_eq!(name("orders/app"), None);
    }
}
