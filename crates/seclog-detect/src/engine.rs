//! The Sigma engine behind seclog's [`Detector`] trait: rules compiled once per log source
//! (rsigma's matchers, with its cross-rule prefilters), correlation windows on event time.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use rsigma_eval::event::{Event, EventValue};
use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, CorrelationEventMode, JsonEvent,
    Pipeline, ResultBody,
};
use rsigma_parser::{CorrelationRule, SigmaRule};
use serde_json::Value;

use crate::anomaly::{AnomalyConfig, RateAnomalies};
use crate::projected::Object;
use crate::projection::{FieldTree, FieldUse};
use crate::rules::{Loaded, RuleLibrary, Unsupported};
use crate::sources::Sources;
use crate::{Detector, EventRef, Level, Match, MatchKind, Reads, RuleRef};

/// The source whose events feed the API-rate anomalies.
const ANOMALY_SOURCE: &str = "cloudtrail";

/// Rule sets at least this large use the cross-rule Aho-Corasick prefilter.
const CROSS_RULE_AC_MIN_RULES: usize = 500;

/// How many evidence references a correlation finding keeps.
const MAX_EVIDENCE: usize = 100;

/// One compiled rule set and the shape of the events it reads.
struct Route {
    name: String,
    ocsf: bool,
    engine: CorrelationEngine,
    /// Titles of rules that only feed correlations (`generate: false`): their own matches are
    /// not findings.
    correlation_only: HashSet<String>,
    rules: usize,
    correlations: usize,
    /// The fields the rules read (`None`: they need whole records).
    paths: Option<Vec<FieldUse>>,
    fields: Option<Arc<FieldTree>>,
}

impl Route {
    /// Also reads `extra` fields.
    fn read_also(&mut self, extra: &[&str]) {
        if let Some(paths) = self.paths.as_mut() {
            paths.extend(extra.iter().map(|path| FieldUse::whole(path)));
            self.fields = FieldTree::new(paths.iter()).map(Arc::new);
        }
    }
}

/// Fields seclog itself reads of every event: the time a correlation reference keeps.
const OWN_FIELDS: &[&str] = &["eventTime"];

/// Sigma rules compiled per log source.
pub struct SigmaEngine {
    routes: Vec<Route>,
    /// API-rate anomalies over the CloudTrail source's events, when enabled.
    anomalies: Option<RateAnomalies>,
    sources: Option<Sources>,
    by_group: HashMap<String, Option<usize>>,
    rule_files: HashMap<String, PathBuf>,
}

impl std::fmt::Debug for SigmaEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigmaEngine")
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

/// What building an engine found.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Rules compiled into at least one source, by source name.
    pub per_source: Vec<(String, usize, usize)>,
    /// Loaded rules that no source takes (their log source is not mapped to any group).
    pub unrouted: Vec<(PathBuf, String)>,
    /// Rules or correlations a source's pipeline made uncompilable.
    pub failed: Vec<Unsupported>,
}

impl SigmaEngine {
    /// Compiles each rule into the sources that take it; events of a group are evaluated by
    /// the rules of the source that reads the group.
    pub fn routed(
        library: &RuleLibrary,
        sources: Sources,
        pipelines: &[Pipeline],
    ) -> (SigmaEngine, BuildReport) {
        let mut report = BuildReport::default();
        let mut routes = Vec::new();
        let mut taken: HashSet<usize> = HashSet::new();
        for source in &sources.sources {
            let members: Vec<usize> = library
                .rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| source.takes(&rule.doc.logsource))
                .map(|(index, _)| index)
                .collect();
            taken.extend(members.iter().copied());
            let mut source_pipelines: Vec<Pipeline> = pipelines.to_vec();
            source_pipelines.extend(source.pipeline.clone());
            let route = build_route(
                &source.name,
                source.ocsf,
                library,
                &members,
                &source_pipelines,
                &mut report.failed,
            );
            report
                .per_source
                .push((source.name.clone(), route.rules, route.correlations));
            routes.push(route);
        }
        for (index, rule) in library.rules.iter().enumerate() {
            if !taken.contains(&index) {
                report
                    .unrouted
                    .push((rule.file.clone(), rule.doc.title.clone()));
            }
        }
        let engine = SigmaEngine {
            routes,
            anomalies: None,
            sources: Some(sources),
            by_group: HashMap::new(),
            rule_files: rule_files(library),
        };
        (engine, report)
    }

    /// Compiles every rule into one set that evaluates every event, whatever its log source
    /// (for files whose source is not known).
    pub fn unrouted(library: &RuleLibrary, pipelines: &[Pipeline]) -> (SigmaEngine, BuildReport) {
        let mut report = BuildReport::default();
        let members: Vec<usize> = (0..library.rules.len()).collect();
        let route = build_route(
            "all",
            true,
            library,
            &members,
            pipelines,
            &mut report.failed,
        );
        report
            .per_source
            .push(("all".into(), route.rules, route.correlations));
        let engine = SigmaEngine {
            routes: vec![route],
            anomalies: None,
            sources: None,
            by_group: HashMap::new(),
            rule_files: rule_files(library),
        };
        (engine, report)
    }

    /// Also learns per-principal, per-API call and error rates from the events of the
    /// `cloudtrail` source and reports anomalies (see [`RateAnomalies`]).
    pub fn with_rate_anomalies(mut self, config: AnomalyConfig) -> SigmaEngine {
        self.anomalies = Some(RateAnomalies::new(config));
        for route in &mut self.routes {
            if route.name == ANOMALY_SOURCE {
                route.read_also(RateAnomalies::FIELDS);
            }
        }
        self
    }

    /// The source index for a group (cached).
    fn route_for(&mut self, group: &str) -> Option<usize> {
        let Some(sources) = &self.sources else {
            return Some(0);
        };
        if let Some(route) = self.by_group.get(group) {
            return *route;
        }
        let route = sources.for_group(group);
        self.by_group.insert(group.to_string(), route);
        route
    }

    /// The file a rule (by id or title) was loaded from.
    pub fn rule_file(&self, key: &str) -> Option<&PathBuf> {
        self.rule_files.get(key)
    }

    /// Number of compiled rules over all sources.
    pub fn rule_count(&self) -> usize {
        self.routes.iter().map(|route| route.rules).sum()
    }
}

fn rule_files(library: &RuleLibrary) -> HashMap<String, PathBuf> {
    let mut files = HashMap::new();
    for rule in &library.rules {
        files.insert(rule_key(&rule.doc), rule.file.clone());
    }
    for correlation in &library.correlations {
        let key = correlation
            .doc
            .id
            .clone()
            .unwrap_or_else(|| correlation.doc.title.clone());
        files.insert(key, correlation.file.clone());
    }
    files
}

fn rule_key(rule: &SigmaRule) -> String {
    rule.id.clone().unwrap_or_else(|| rule.title.clone())
}

fn build_route(
    name: &str,
    ocsf: bool,
    library: &RuleLibrary,
    members: &[usize],
    pipelines: &[Pipeline],
    failed: &mut Vec<Unsupported>,
) -> Route {
    let config = CorrelationConfig {
        timestamp_fields: Vec::new(),
        action_on_match: CorrelationAction::Reset,
        emit_detections: false,
        correlation_event_mode: CorrelationEventMode::Refs,
        max_correlation_events: MAX_EVIDENCE,
        ..CorrelationConfig::default()
    };
    let mut engine = CorrelationEngine::new(config);
    for pipeline in pipelines {
        engine.add_pipeline(pipeline.clone());
    }
    let mut names: HashSet<String> = HashSet::new();
    let mut titles: HashMap<String, String> = HashMap::new();
    let mut rules = 0;
    // The rules and correlations as compiled (after the pipelines), for the fields they read.
    let mut added_rules = Vec::new();
    let mut added_correlations = Vec::new();
    for &index in members {
        let Some(rule) = library.rules.get(index) else {
            continue;
        };
        match engine.add_rule(&rule.doc) {
            Ok(()) => {
                let mut compiled = rule.doc.clone();
                if rsigma_eval::pipeline::apply_pipelines(pipelines, &mut compiled).is_err() {
                    compiled = rule.doc.clone();
                }
                added_rules.push(compiled);
                rules += 1;
                names.extend(rule.doc.id.clone());
                names.extend(rule.doc.name.clone());
                for key in [&rule.doc.id, &rule.doc.name].into_iter().flatten() {
                    titles.insert(key.clone(), rule.doc.title.clone());
                }
            }
            Err(error) => failed.push(Unsupported {
                file: rule.file.clone(),
                rule: Some(format!("{} (source {name})", rule.doc.title)),
                reason: error.to_string(),
            }),
        }
    }
    // Correlations whose rules are all here, repeated until chains settle.
    let mut pending: Vec<&Loaded<CorrelationRule>> = library.correlations.iter().collect();
    let mut correlations = 0;
    let mut correlation_only = HashSet::new();
    loop {
        let before = pending.len();
        let mut waiting = Vec::new();
        for correlation in pending {
            if correlation
                .doc
                .rules
                .iter()
                .all(|reference| names.contains(reference))
            {
                match engine.add_correlation(&correlation.doc) {
                    Ok(()) => {
                        let mut compiled = correlation.doc.clone();
                        if rsigma_eval::pipeline::apply_pipelines_to_correlation(
                            pipelines,
                            &mut compiled,
                        )
                        .is_err()
                        {
                            compiled = correlation.doc.clone();
                        }
                        added_correlations.push(compiled);
                        correlations += 1;
                        if !correlation.doc.generate {
                            correlation_only.extend(
                                correlation
                                    .doc
                                    .rules
                                    .iter()
                                    .filter_map(|reference| titles.get(reference).cloned()),
                            );
                        }
                        names.extend(correlation.doc.id.clone());
                        names.extend(correlation.doc.name.clone());
                    }
                    Err(error) => failed.push(Unsupported {
                        file: correlation.file.clone(),
                        rule: Some(format!("{} (source {name})", correlation.doc.title)),
                        reason: error.to_string(),
                    }),
                }
            } else {
                waiting.push(correlation);
            }
        }
        pending = waiting;
        if pending.len() == before || pending.is_empty() {
            break;
        }
    }
    // Large rule sets (hunting NDJSON with all of SigmaHQ) get one Aho-Corasick automaton over
    // every rule's substring patterns, built once now that all rules are in: an event's strings
    // are scanned once and only rules whose patterns occur are evaluated (2.1× faster there).
    // Small ones are faster without it: their rules are mostly exact values, which the
    // field-value candidate index already narrows, and scanning every string costs more.
    if rules >= CROSS_RULE_AC_MIN_RULES {
        engine.set_cross_rule_ac(true);
    }
    let mut route = Route {
        name: name.to_string(),
        ocsf,
        engine,
        correlation_only,
        rules,
        correlations,
        paths: FieldTree::fields_of_rules(&added_rules, &added_correlations),
        fields: None,
    };
    route.read_also(OWN_FIELDS);
    route
}

/// The event under evaluation.
enum Subject<'a> {
    Json(JsonEvent<'a>),
    Projected(&'a Object<'a>),
}

/// An event that names itself (`_id`) when the correlation engine keeps a reference.
struct Referenced<'a> {
    subject: Subject<'a>,
    id: &'a str,
}

impl Referenced<'_> {
    fn inner(&self) -> &dyn Event {
        match &self.subject {
            Subject::Json(event) => event,
            Subject::Projected(object) => *object,
        }
    }
}

impl Event for Referenced<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.inner().get_field(path)
    }
    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.inner().any_string_value(pred)
    }
    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.inner().all_string_values()
    }
    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.inner().visit_string_values(visit)
    }
    fn to_json(&self) -> Value {
        // Only the reference is kept: the event itself is in the journal.
        let time = self
            .inner()
            .get_field("eventTime")
            .map(|time| time.to_json());
        serde_json::json!({ "_id": self.id, "eventTime": time })
    }
    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        self.inner().top_level_keys()
    }
    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        self.inner().visit_top_level_keys(visit)
    }
}

impl Detector for SigmaEngine {
    fn reads(&mut self, group: &str) -> Option<Reads> {
        let route = self.route_for(group)?;
        self.routes.get(route).map(|route| Reads {
            ocsf: route.ocsf,
            fields: route.fields.clone(),
        })
    }

    fn process_event(
        &mut self,
        group: &str,
        event: EventRef<'_>,
        time_secs: i64,
        evidence: &str,
    ) -> Vec<Match> {
        let Some(route) = self.route_for(group) else {
            return Vec::new();
        };
        let Some(route) = self.routes.get_mut(route) else {
            return Vec::new();
        };
        let wrapped = Referenced {
            subject: match event {
                EventRef::Json(value) => Subject::Json(JsonEvent::borrow(value)),
                EventRef::Projected(object) => Subject::Projected(object),
            },
            id: evidence,
        };
        let results = route.engine.process_event_at(&wrapped, time_secs);
        let mut matches = Vec::with_capacity(results.len());
        if route.name == ANOMALY_SOURCE
            && let Some(anomalies) = self.anomalies.as_mut()
        {
            matches.extend(anomalies.observe(event, time_secs, evidence));
        }
        for result in results {
            if result.is_detection() && route.correlation_only.contains(&result.header.rule_title) {
                continue;
            }
            let rule = RuleRef {
                id: result.header.rule_id.clone(),
                title: result.header.rule_title.clone(),
                level: result
                    .header
                    .level
                    .map(Level::from_sigma)
                    .unwrap_or(Level::Medium),
                tags: result.header.tags.clone(),
                source: route.name.clone(),
            };
            let matched = match result.body {
                ResultBody::Detection(detection) => Match {
                    rule,
                    kind: MatchKind::Detection,
                    evidence: vec![evidence.to_string()],
                    fields: detection
                        .matched_fields
                        .into_iter()
                        .map(|field| (field.field, field.value))
                        .collect(),
                    group_key: Vec::new(),
                    value: None,
                    timespan_secs: None,
                },
                ResultBody::Correlation(correlation) => Match {
                    rule,
                    kind: MatchKind::Correlation(correlation.correlation_type.as_str().to_string()),
                    evidence: correlation
                        .event_refs
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|reference| reference.id)
                        .collect(),
                    fields: Vec::new(),
                    group_key: correlation.group_key,
                    value: Some(correlation.aggregated_value),
                    timespan_secs: Some(correlation.timespan_secs),
                },
            };
            matches.push(matched);
        }
        matches
    }

    fn snapshot(&self) -> Value {
        let states: Vec<Value> = self
            .routes
            .iter()
            .map(|route| serde_json::to_value(route.engine.export_state()).unwrap_or(Value::Null))
            .collect();
        let anomalies = self
            .anomalies
            .as_ref()
            .map_or(Value::Null, RateAnomalies::snapshot);
        serde_json::json!({ "version": 1, "routes": states, "anomalies": anomalies })
    }

    fn restore(&mut self, snapshot: &Value) -> bool {
        let Some(states) = snapshot.get("routes").and_then(Value::as_array) else {
            return false;
        };
        if states.len() != self.routes.len() {
            return false;
        }
        let mut all = true;
        if let Some(anomalies) = self.anomalies.as_mut() {
            all &= anomalies.restore(&snapshot["anomalies"]);
        }
        for (route, state) in self.routes.iter_mut().zip(states) {
            match serde_json::from_value(state.clone()) {
                Ok(state) => all &= route.engine.import_state(state),
                Err(_) => all = false,
            }
        }
        all
    }
}
