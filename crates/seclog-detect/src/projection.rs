//! Parsing only what the rules read: a JSON record becomes a [`Field`] holding just the fields
//! some rule of its source names (and the objects on the way to them); everything else is
//! skipped while parsing, without building it. Fields are found the way rsigma finds them: a
//! dotted path walks objects and reaches into every element of an array; at the top level a key
//! spelled like the whole path (`"userIdentity.type"`) matches too. A `fieldref` comparison
//! reads the field it names as well. Sources with keyword detections (which search every value)
//! or escaped paths get the whole record.
//!
//! A field compared only with values (equality, string, regex, CIDR, numeric and time-part
//! modifiers) needs no object content: such comparisons never match an object (rsigma compares
//! strings, numbers, booleans and null, and each element of an array). Below such a field an
//! object keeps only the fields wanted further down (often none), while scalars and arrays stay
//! as they are. Fields tested for existence or inequality, compared with another field, grouped
//! by, or quantified over are read whole.

use std::borrow::Cow;
use std::fmt;

use rsigma_parser::{CorrelationRule, Detection, Modifier, SigmaRule, SigmaValue};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use crate::event::OCSF_ATTR;
use crate::projected::{Field, Object, Part};

/// The fields of an event that rules read, as a tree of keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldTree {
    root: Node,
    /// Wanted paths containing a dot or a bracket, which rsigma also looks up as one top-level key.
    flat: Vec<String>,
}

/// A field a rule reads, and whether it needs the content of an object found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldUse {
    /// The rsigma field path.
    pub path: String,
    /// Its value is read whole (else it is only compared with values).
    pub whole: bool,
}

impl FieldUse {
    /// A field read whole.
    pub fn whole(path: &str) -> FieldUse {
        FieldUse {
            path: path.to_string(),
            whole: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Node {
    /// The whole value at this point is read.
    whole: bool,
    /// Keys below (few: a linear search beats hashing each key of each event).
    children: Vec<(String, Node)>,
}

impl Node {
    /// The child under `key`, and its position.
    fn child(&self, key: &str) -> Option<(usize, &Node)> {
        let first = key.as_bytes().first();
        self.children
            .iter()
            .enumerate()
            .find(|(_, (name, _))| name.as_bytes().first() == first && name == key)
            .map(|(at, (_, node))| (at, node))
    }

    fn child_mut(&mut self, key: &str) -> &mut Node {
        let at = match self.children.iter().position(|(name, _)| name == key) {
            Some(at) => at,
            None => {
                self.children.push((key.to_string(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[at].1
    }
}

impl FieldTree {
    /// The tree of `fields`; `None` when one of them cannot be projected safely (escapes), so
    /// that the whole record must be read.
    pub fn new<'a>(fields: impl IntoIterator<Item = &'a FieldUse>) -> Option<FieldTree> {
        let mut tree = FieldTree::default();
        for field in fields {
            let path = field.path.as_str();
            if path.is_empty() || path.contains('\\') {
                return None;
            }
            if path.contains('.') || path.contains('[') {
                tree.flat.push(path.to_string());
            }
            let mut node = &mut tree.root;
            for part in path.split('.') {
                // `name[0][1]`: the key; positions select within arrays, which are kept whole
                // in length (their elements projected). `name[x]` is one literal key.
                if let Some(key) = Part::parse(part).key {
                    node = node.child_mut(&key);
                }
            }
            node.whole |= field.whole;
        }
        Some(tree)
    }

    /// The fields `rules` and `correlations` read (after their pipelines were applied); `None`
    /// when a rule needs the whole record (keywords).
    pub fn fields_of_rules(
        rules: &[SigmaRule],
        correlations: &[CorrelationRule],
    ) -> Option<Vec<FieldUse>> {
        let mut paths = Vec::new();
        for rule in rules {
            for detection in rule.detection.named.values() {
                detection_fields(detection, &mut paths)?;
            }
        }
        for correlation in correlations {
            paths.extend(
                correlation
                    .group_by
                    .iter()
                    .map(|path| FieldUse::whole(path)),
            );
            if let rsigma_parser::CorrelationCondition::Threshold {
                field: Some(fields),
                ..
            } = &correlation.condition
            {
                paths.extend(fields.iter().map(|path| FieldUse::whole(path)));
            }
            for alias in &correlation.aliases {
                paths.extend(alias.mapping.values().map(|path| FieldUse::whole(path)));
            }
        }
        Some(paths)
    }

    /// Parses `json`, keeping only the wanted fields. `None` when it is not valid JSON.
    pub fn parse<'a>(&self, json: &'a [u8]) -> Option<Field<'a>> {
        let mut deserializer = sonic_rs::Deserializer::from_slice(json);
        let value = Project {
            node: Some(&self.root),
            flat: Some(&self.flat),
            ocsf: None,
        }
        .deserialize(&mut deserializer)
        .ok()?;
        deserializer.end().ok()?;
        Some(value)
    }

    /// Parses a record's attributes (a JSON object), keeping only the wanted fields; the OCSF
    /// event (`@ocsf`) is read like a field named `ocsf` when `with_ocsf`, else skipped. `None`
    /// when they are not a valid JSON object.
    pub fn parse_attributes<'a>(&self, json: &'a [u8], with_ocsf: bool) -> Option<Object<'a>> {
        // The OCSF event is written last (see `seclog_index::schema::OCSF_ATTR`): attributes
        // that begin with it hold nothing else.
        if !with_ocsf && json.starts_with(OCSF_FIRST) {
            return Some(Object::default());
        }
        let mut deserializer = sonic_rs::Deserializer::from_slice(json);
        let value = Project {
            node: Some(&self.root),
            flat: Some(&self.flat),
            ocsf: Some(with_ocsf),
        }
        .deserialize(&mut deserializer)
        .ok()?;
        deserializer.end().ok()?;
        match value {
            Field::Object(object) => Some(object),
            _ => None,
        }
    }
}

/// How attributes that begin with the OCSF event begin (serde_json's compact form).
const OCSF_FIRST: &[u8] = b"{\"@ocsf\":";

/// Whether a comparison with `modifiers` only ever matches strings, numbers, booleans, null
/// (and arrays of them): then an object's content at the field does not matter.
fn compares_values_only(modifiers: &[Modifier]) -> bool {
    modifiers.iter().all(|modifier| {
        !matches!(
            modifier,
            Modifier::Exists | Modifier::FieldRef | Modifier::Neq | Modifier::Expand
        )
    })
}

/// Adds the fields `detection` reads to `paths`; `None` when it needs every value.
fn detection_fields(detection: &Detection, paths: &mut Vec<FieldUse>) -> Option<()> {
    match detection {
        Detection::AllOf(items) => {
            for item in items {
                paths.push(FieldUse {
                    path: item.field.name.clone()?,
                    whole: !compares_values_only(&item.field.modifiers),
                });
                if item.field.modifiers.contains(&Modifier::FieldRef) {
                    for value in &item.values {
                        match value {
                            SigmaValue::String(name) => {
                                paths.push(FieldUse::whole(&name.as_plain()?));
                            }
                            _ => return None,
                        }
                    }
                }
            }
        }
        Detection::AnyOf(subs) | Detection::And(subs) => {
            for sub in subs {
                detection_fields(sub, paths)?;
            }
        }
        // The array is read whole: its members' fields are relative to each member.
        Detection::ArrayMatch { field, .. } => paths.push(FieldUse::whole(field)),
        Detection::Conditional { named, .. } => {
            for sub in named.values() {
                detection_fields(sub, paths)?;
            }
        }
        Detection::Keywords(_) => return None,
    }
    Some(())
}

/// Deserializes the part of a value that `node` wants (all of it when `None`).
struct Project<'t> {
    node: Option<&'t Node>,
    /// At the top level: paths also wanted as one dotted key.
    flat: Option<&'t [String]>,
    /// At the top level of attributes: whether the OCSF event is read (as `ocsf`).
    ocsf: Option<bool>,
}

impl<'t> Project<'t> {
    fn below(node: Option<&'t Node>) -> Project<'t> {
        Project {
            node: node.filter(|node| !node.whole),
            flat: None,
            ocsf: None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Project<'_> {
    type Value = Field<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Project<'_> {
    type Value = Field<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Field<'de>, E> {
        Ok(Field::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Field<'de>, E> {
        Ok(Field::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Field<'de>, E> {
        Ok(Field::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Field<'de>, E> {
        Ok(Number::from_f64(value).map_or(Field::Null, Field::Number))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(value.to_string())))
    }

    fn visit_string<E>(self, value: String) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(value)))
    }

    fn visit_unit<E>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }

    fn visit_none<E>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
        // Every element is kept (positions stay right), each projected like the array.
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element_seed(Project::below(self.node))? {
            elements.push(element);
        }
        Ok(Field::Array(elements))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
        let mut object = Object::default();
        // The children met so far (by position, the first 64).
        let mut seen = 0u64;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.0;
            let Some(node) = self.node else {
                object.insert(key, map.next_value_seed(Project::below(None))?);
                continue;
            };
            let wanted = if self.ocsf.is_some() && key == OCSF_ATTR {
                self.ocsf
                    .unwrap_or_default()
                    .then(|| node.child("ocsf"))
                    .flatten()
            } else if self.flat.is_some_and(|flat| {
                (key.contains('.') || key.contains('[')) && flat.iter().any(|path| *path == key)
            }) {
                // A dotted top-level key spelling a wanted path is read whole.
                object.insert(key, map.next_value_seed(Project::below(None))?);
                continue;
            } else {
                node.child(&key)
            };
            match wanted {
                Some((at, child)) => {
                    let value = map.next_value_seed(Project::below(Some(child)))?;
                    // Each child is met once unless the record repeats a key: no need to look
                    // for the key among those kept.
                    match 1u64.checked_shl(at as u32) {
                        Some(bit) if seen & bit == 0 => {
                            seen |= bit;
                            object.push_new(key, value);
                        }
                        _ => object.insert(key, value),
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Field::Object(object))
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(value)))
            }
            fn visit_str<E>(self, value: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value.to_string())))
            }
            fn visit_string<E>(self, value: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn project(paths: &[&str], event: &Value) -> Value {
        let fields: Vec<FieldUse> = paths.iter().map(|path| FieldUse::whole(path)).collect();
        let tree = FieldTree::new(&fields).expect("projectable");
        tree.parse(&serde_json::to_vec(event).expect("json"))
            .expect("valid")
            .to_json()
    }

    #[test]
    fn keeps_the_named_fields_and_the_way_to_them() {
        let event = json!({
            "eventName": "AssumeRole",
            "eventSource": "sts.amazonaws.com",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:x", "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:y"}}},
            "requestParameters": {"roleArn": "arn:z", "big": {"a": [1, 2, 3]}},
            "responseElements": null,
        });
        let projected = project(
            &[
                "eventName",
                "userIdentity.sessionContext.sessionIssuer.type",
                "responseElements.x",
            ],
            &event,
        );
        assert_eq!(
            projected,
            json!({
                "eventName": "AssumeRole",
                "userIdentity": {"sessionContext": {"sessionIssuer": {"type": "Role"}}},
                "responseElements": null,
            })
        );
    }

    #[test]
    fn a_wanted_object_is_kept_whole_and_arrays_keep_their_positions() {
        let event = json!({
            "requestParameters": {"policy": {"Statement": [{"Effect": "Allow"}]}},
            "items": [{"cidr": "0.0.0.0/0", "other": 1}, "scalar", {"other": 2}],
        });
        let projected = project(&["requestParameters.policy", "items[2].cidr"], &event);
        assert_eq!(
            projected,
            json!({
                "requestParameters": {"policy": {"Statement": [{"Effect": "Allow"}]}},
                "items": [{"cidr": "0.0.0.0/0"}, "scalar", {}],
            })
        );
    }

    #[test]
    fn dotted_top_level_keys_and_escaped_keys() {
        let event = json!({"user.name": "root", "user": {"name": "alice", "id": 1}, "a\"b": 1});
        let projected = project(&["user.name"], &event);
        assert_eq!(
            projected,
            json!({"user.name": "root", "user": {"name": "alice"}})
        );
        assert!(FieldTree::new(&[FieldUse::whole("a\\[b")]).is_none());
    }

    #[test]
    fn invalid_or_truncated_json_is_refused() {
        let tree = FieldTree::new(&[FieldUse::whole("a")]).expect("projectable");
        assert!(tree.parse(b"{\"a\": 1").is_none());
        assert!(tree.parse(b"{\"b\": [1, }").is_none());
        assert!(tree.parse(b"{\"a\": 1} trailing").is_none());
        assert_eq!(
            tree.parse(b"\"text\"").map(|text| text.to_json()),
            Some(json!("text"))
        );
    }

    #[test]
    fn keywords_need_the_whole_record_and_fieldref_reads_both_fields() {
        let rules = |yaml: &str| {
            rsigma_parser::parse_sigma_yaml(yaml)
                .expect("rule parses")
                .rules
        };
        let keywords = rules(
            "title: k\nlogsource: {product: x}\ndetection:\n  keywords: [evil]\n  condition: keywords\n",
        );
        assert!(FieldTree::fields_of_rules(&keywords, &[]).is_none());
        let fieldref = rules(
            "title: f\nlogsource: {product: x}\ndetection:\n  sel:\n    a|fieldref: b\n  condition: sel\n",
        );
        assert_eq!(
            FieldTree::fields_of_rules(&fieldref, &[]),
            Some(vec![FieldUse::whole("a"), FieldUse::whole("b")])
        );
        let plain = rules(
            "title: p\nlogsource: {product: x}\ndetection:\n  sel:\n    a.b|contains: x\n    e|exists: true\n  f:\n    c: null\n  condition: sel and not f\n",
        );
        let mut fields = FieldTree::fields_of_rules(&plain, &[]).expect("projectable");
        fields.push(FieldUse::whole("eventTime"));
        let tree = FieldTree::new(&fields).expect("projectable");
        // Compared with values only: objects there lose their content, arrays and scalars stay.
        // Tested for existence: read whole.
        assert_eq!(
            tree.parse(
                br#"{"a": {"b": {"deep": "x"}, "z": 1}, "c": [1, {"k": "v"}], "d": 3, "e": {"k": 1}, "eventTime": "t"}"#
            )
            .map(|event| event.to_json()),
            Some(json!({"a": {"b": {}}, "c": [1, {}], "e": {"k": 1}, "eventTime": "t"}))
        );
    }
}
