//! Loading Sigma rules from files and directories: every document either loads or is reported
//! unsupported with its reason.

use std::path::{Path, PathBuf};

use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, FilterRule,
    SigmaCollection, SigmaRule, parse_sigma_yaml,
};

use crate::{Error, Result};

/// The rules written for seclog, compiled into the binary (`crates/seclog-detect/rules/`).
const BUILTIN: &[(&str, &str)] = &[
    (
        "builtin/app_security.yml",
        include_str!("../rules/app_security.yml"),
    ),
    (
        "builtin/brute_force.yml",
        include_str!("../rules/brute_force.yml"),
    ),
    (
        "builtin/cis_aws_monitoring.yml",
        include_str!("../rules/cis_aws_monitoring.yml"),
    ),
    (
        "builtin/seclog_access.yml",
        include_str!("../rules/seclog_access.yml"),
    ),
    (
        "builtin/seclog_health.yml",
        include_str!("../rules/seclog_health.yml"),
    ),
];

/// A rule document and the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The parsed document.
    pub doc: T,
    /// The file (`builtin/…` for the built-in pack).
    pub file: PathBuf,
}

/// A document that did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The file.
    pub file: PathBuf,
    /// The rule's title or id when known.
    pub rule: Option<String>,
    /// Why it was not loaded.
    pub reason: String,
}

/// Parsed rules, correlations and filters, plus what could not be loaded.
#[derive(Debug, Clone, Default)]
pub struct RuleLibrary {
    /// Detection rules.
    pub rules: Vec<Loaded<SigmaRule>>,
    /// Correlation rules.
    pub correlations: Vec<Loaded<CorrelationRule>>,
    /// Meta-filters.
    pub filters: Vec<Loaded<FilterRule>>,
    /// Documents that were refused.
    pub unsupported: Vec<Unsupported>,
    /// Files read.
    pub files: usize,
}

impl RuleLibrary {
    /// The built-in rule pack.
    pub fn builtin() -> RuleLibrary {
        let mut library = RuleLibrary::default();
        for (name, text) in BUILTIN {
            library.add_text(Path::new(name), text);
        }
        library
    }

    /// Adds every `.yml`/`.yaml` file under `path` (or the file itself), in name order.
    pub fn add_path(&mut self, path: &Path) -> Result<()> {
        let metadata = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if metadata.is_file() {
            return self.add_file(path);
        }
        let mut files = Vec::new();
        collect_yaml(path, &mut files)?;
        files.sort();
        for file in files {
            self.add_file(&file)?;
        }
        Ok(())
    }

    fn add_file(&mut self, file: &Path) -> Result<()> {
        let text = std::fs::read(file).map_err(|source| Error::Io {
            path: file.to_path_buf(),
            source,
        })?;
        match String::from_utf8(text) {
            Ok(text) => self.add_text(file, &text),
            Err(_) => {
                self.files += 1;
                self.unsupported.push(Unsupported {
                    file: file.to_path_buf(),
                    rule: None,
                    reason: "the file is not UTF-8".into(),
                });
            }
        }
        Ok(())
    }

    /// Adds the documents of one YAML text that came from `file`.
    pub fn add_text(&mut self, file: &Path, text: &str) {
        self.files += 1;
        let collection = match parse_sigma_yaml(text) {
            Ok(collection) => collection,
            Err(error) => {
                self.unsupported.push(Unsupported {
                    file: file.to_path_buf(),
                    rule: None,
                    reason: error.to_string(),
                });
                return;
            }
        };
        let SigmaCollection {
            rules,
            correlations,
            filters,
            errors,
        } = collection;
        for reason in errors {
            self.unsupported.push(Unsupported {
                file: file.to_path_buf(),
                rule: None,
                reason,
            });
        }
        for mut rule in rules {
            // rsigma 0.23 links a correlation to the rules it names only through their ids: a
            // rule with a name and no id takes its name as id.
            if rule.id.is_none() {
                rule.id = rule.name.clone();
            }
            match check_rule(&rule) {
                Ok(()) => self.rules.push(Loaded {
                    doc: rule,
                    file: file.to_path_buf(),
                }),
                Err(reason) => self.unsupported.push(Unsupported {
                    file: file.to_path_buf(),
                    rule: Some(rule.title.clone()),
                    reason,
                }),
            }
        }
        for mut correlation in correlations {
            require_every_rule(&mut correlation);
            match rsigma_eval::correlation::compile_correlation(&correlation) {
                Ok(_) => self.correlations.push(Loaded {
                    doc: correlation,
                    file: file.to_path_buf(),
                }),
                Err(error) => self.unsupported.push(Unsupported {
                    file: file.to_path_buf(),
                    rule: Some(correlation.title.clone()),
                    reason: error.to_string(),
                }),
            }
        }
        for filter in filters {
            self.filters.push(Loaded {
                doc: filter,
                file: file.to_path_buf(),
            });
        }
    }

    /// Appends another library's rules.
    pub fn extend(&mut self, other: RuleLibrary) {
        self.rules.extend(other.rules);
        self.correlations.extend(other.correlations);
        self.filters.extend(other.filters);
        self.unsupported.extend(other.unsupported);
        self.files += other.files;
    }

    /// Correlations whose referenced rules (directly or through other correlations) are not
    /// all loaded are reported unsupported and removed.
    pub fn drop_dangling_correlations(&mut self) {
        loop {
            let known: std::collections::HashSet<String> = self
                .rules
                .iter()
                .flat_map(|rule| [rule.doc.id.clone(), rule.doc.name.clone()])
                .chain(
                    self.correlations
                        .iter()
                        .flat_map(|c| [c.doc.id.clone(), c.doc.name.clone()]),
                )
                .flatten()
                .collect();
            let dangling = self.correlations.iter().position(|correlation| {
                correlation
                    .doc
                    .rules
                    .iter()
                    .any(|name| !known.contains(name))
            });
            let Some(index) = dangling else { return };
            let correlation = self.correlations.remove(index);
            let missing: Vec<&str> = correlation
                .doc
                .rules
                .iter()
                .map(String::as_str)
                .filter(|name| !known.contains(*name))
                .collect();
            self.unsupported.push(Unsupported {
                reason: format!(
                    "refers to rules that are not loaded: {}",
                    missing.join(", ")
                ),
                file: correlation.file,
                rule: Some(correlation.doc.title),
            });
        }
    }
}

/// A `temporal` or `temporal_ordered` correlation means that every rule it lists matched in the
/// window (Sigma specification); rsigma 0.23 reads a missing condition as "any one of them", so
/// the condition is made explicit.
fn require_every_rule(correlation: &mut CorrelationRule) {
    if !matches!(
        correlation.correlation_type,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    ) {
        return;
    }
    if let CorrelationCondition::Threshold {
        predicates,
        field: None,
        ..
    } = &mut correlation.condition
        && predicates.as_slice() == [(ConditionOperator::Gte, 1)]
    {
        *predicates = vec![(ConditionOperator::Gte, correlation.rules.len() as u64)];
    }
}

/// Whether the rule compiles on its own, and uses nothing seclog refuses.
fn check_rule(rule: &SigmaRule) -> std::result::Result<(), String> {
    if let Some(placeholder) = unexpanded_placeholder(rule) {
        return Err(format!(
            "uses the placeholder {placeholder} with |expand, and no value is configured for it"
        ));
    }
    rsigma_eval::compile_rule(rule)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// A `%name%` placeholder under an `|expand` modifier (the spec says a tool that cannot fill
/// placeholders must reject the rule).
fn unexpanded_placeholder(rule: &SigmaRule) -> Option<String> {
    let yaml = serde_json::to_string(&rule.detection).ok()?;
    if !yaml.contains("expand") {
        return None;
    }
    let pattern = regex::Regex::new(r"%[A-Za-z0-9_]+%").ok()?;
    pattern.find(&yaml).map(|found| found.as_str().to_string())
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            out.push(path);
        }
    }
    Ok(())
}
