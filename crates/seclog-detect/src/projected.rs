//! The event a projected parse gives ([`crate::FieldTree::parse`]): only the fields some rule
//! reads, with strings borrowed from the record where they have no escapes and objects kept as
//! short lists in the record's order. No hashing and no copies on the way: a stored CloudTrail
//! record is read for some twenty values.
//!
//! Field lookups answer exactly as rsigma's `JsonEvent` answers for the whole record (the
//! semantics in the crate docs): a key spelled like the whole path wins at the top level; a
//! dotted path walks objects and fans out over arrays (every hit is collected; several hits
//! make an array); `name[N]` selects one element, negative from the end; `\[` and `\]` are
//! literal brackets. `tests/projection.rs` holds the two to the same matches over real records.

use std::borrow::Cow;

use rsigma_eval::event::{Event, EventValue};
use rsigma_parser::fieldpath::{first_unescaped, unescape_brackets};
use serde_json::{Number, Value};

/// How deep string visits descend (rsigma's limit for JSON events).
const MAX_DEPTH: usize = 64;

/// A value of a projected event.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json keeps it.
    Number(Number),
    /// A string.
    Str(Cow<'a, str>),
    /// An array (every element kept, so that positions stay right).
    Array(Vec<Field<'a>>),
    /// An object.
    Object(Object<'a>),
}

/// An object of a projected event: its kept keys in the record's order (a repeated key keeps
/// its first position and its last value, as serde_json does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object<'a> {
    entries: Vec<(Cow<'a, str>, Field<'a>)>,
}

impl<'a> Object<'a> {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Field<'a>> {
        let first = key.as_bytes().first();
        self.entries
            .iter()
            .find(|(name, _)| name.as_bytes().first() == first && name == key)
            .map(|(_, value)| value)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` (in place when it is already present).
    pub fn insert(&mut self, key: Cow<'a, str>, value: Field<'a>) {
        match self.entries.iter_mut().find(|(name, _)| *name == key) {
            Some((_, old)) => *old = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Adds `key`, which the caller knows is not present yet.
    pub(crate) fn push_new(&mut self, key: Cow<'a, str>, value: Field<'a>) {
        debug_assert!(!self.contains_key(&key), "{key} is present");
        self.entries.push((key, value));
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Field<'a>> {
        let at = self.entries.iter().position(|(name, _)| name == key)?;
        Some(self.entries.remove(at).1)
    }

    /// The keys and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Field<'a>)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_ref(), value))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// As a JSON object.
    pub fn to_json(&self) -> serde_json::Map<String, Value> {
        self.iter()
            .map(|(key, value)| (key.to_string(), value.to_json()))
            .collect()
    }
}

impl<'a> IntoIterator for Object<'a> {
    type Item = (Cow<'a, str>, Field<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Field<'a>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> FromIterator<(Cow<'a, str>, Field<'a>)> for Object<'a> {
    fn from_iter<I: IntoIterator<Item = (Cow<'a, str>, Field<'a>)>>(entries: I) -> Self {
        let mut object = Object::default();
        for (key, value) in entries {
            object.insert(key, value);
        }
        object
    }
}

impl<'a> Field<'a> {
    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(text) => Some(text),
            _ => None,
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Bool(flag) => Value::Bool(*flag),
            Field::Number(number) => Value::Number(number.clone()),
            Field::Str(text) => Value::String(text.to_string()),
            Field::Array(items) => Value::Array(items.iter().map(Field::to_json).collect()),
            Field::Object(object) => Value::Object(object.to_json()),
        }
    }

    /// The value rsigma compares (what `EventValue::from(&Value)` gives for the same JSON).
    fn event_value(&self) -> EventValue<'_> {
        match self {
            Field::Null => EventValue::Null,
            Field::Bool(flag) => EventValue::Bool(*flag),
            Field::Number(number) => match number.as_i64() {
                Some(integer) => EventValue::Int(integer),
                None => EventValue::Float(number.as_f64().unwrap_or(f64::NAN)),
            },
            Field::Str(text) => EventValue::Str(Cow::Borrowed(text)),
            Field::Array(items) => {
                EventValue::Array(items.iter().map(Field::event_value).collect())
            }
            Field::Object(object) => EventValue::Map(
                object
                    .iter()
                    .map(|(key, value)| (Cow::Borrowed(key), value.event_value()))
                    .collect(),
            ),
        }
    }

    fn any_string(&self, pred: &dyn Fn(&str) -> bool, depth: usize) -> bool {
        if depth == 0 {
            return false;
        }
        match self {
            Field::Str(text) => pred(text),
            Field::Array(items) => items.iter().any(|item| item.any_string(pred, depth - 1)),
            Field::Object(object) => object
                .iter()
                .any(|(_, value)| value.any_string(pred, depth - 1)),
            _ => false,
        }
    }

    fn visit_strings<'s>(&'s self, visit: &mut dyn FnMut(&'s str), depth: usize) {
        if depth == 0 {
            return;
        }
        match self {
            Field::Str(text) => visit(text),
            Field::Array(items) => items
                .iter()
                .for_each(|item| item.visit_strings(visit, depth - 1)),
            Field::Object(object) => object
                .iter()
                .for_each(|(_, value)| value.visit_strings(visit, depth - 1)),
            _ => {}
        }
    }
}

/// What a path lookup found: nothing, one value, or several (returned as an array).
enum Hits<'e> {
    None,
    One(EventValue<'e>),
    Many(Vec<EventValue<'e>>),
}

impl<'e> Hits<'e> {
    fn push(&mut self, value: EventValue<'e>) {
        *self = match std::mem::replace(self, Hits::None) {
            Hits::None => Hits::One(value),
            Hits::One(first) => Hits::Many(vec![first, value]),
            Hits::Many(mut all) => {
                all.push(value);
                Hits::Many(all)
            }
        };
    }

    fn into_value(self) -> Option<EventValue<'e>> {
        match self {
            Hits::None => None,
            Hits::One(value) => Some(value),
            Hits::Many(all) => Some(EventValue::Array(all)),
        }
    }
}

/// One dot-separated part of a path: an object key (absent for a bare `[N]`), then positions.
pub(crate) struct Part<'p> {
    pub(crate) key: Option<Cow<'p, str>>,
    positions: &'p str,
}

impl<'p> Part<'p> {
    /// rsigma's reading: `name[N][M]` when every bracket group is an integer, else the whole
    /// part is one literal key (brackets unescaped).
    pub(crate) fn parse(part: &'p str) -> Part<'p> {
        if let Some(at) = first_unescaped(part, b'[')
            && let Some(groups) = part.get(at..)
            && positions(groups).all(|position| position.is_some())
        {
            let name = part.get(..at).unwrap_or_default();
            return Part {
                key: (!name.is_empty()).then(|| unescape_brackets(name)),
                positions: groups,
            };
        }
        Part {
            key: Some(unescape_brackets(part)),
            positions: "",
        }
    }
}

/// The integers of `[N][M]...`; an item is `None` where a group is not one.
fn positions(mut groups: &str) -> impl Iterator<Item = Option<i64>> + '_ {
    std::iter::from_fn(move || {
        if groups.is_empty() {
            return None;
        }
        let parsed = groups.strip_prefix('[').and_then(|rest| {
            let close = rest.find(']')?;
            let index = rest.get(..close)?.parse::<i64>().ok()?;
            Some((index, rest.get(close + 1..).unwrap_or_default()))
        });
        Some(match parsed {
            Some((index, rest)) => {
                groups = rest;
                Some(index)
            }
            None => {
                groups = "";
                None
            }
        })
    })
}

/// The first key of a path as rsigma reads it to rule out absent roots: up to the first
/// unescaped dot, then up to the first unescaped bracket, unescaped (`None` if it is empty).
fn root_key(path: &str) -> Option<Cow<'_, str>> {
    let segment = match first_unescaped(path, b'.') {
        Some(at) => path.get(..at)?,
        None => path,
    };
    let name = match first_unescaped(segment, b'[') {
        Some(at) => segment.get(..at)?,
        None => segment,
    };
    (!name.is_empty()).then(|| unescape_brackets(name))
}

/// The element at `index` (negative: from the end).
fn element<'v, 'a>(items: &'v [Field<'a>], index: i64) -> Option<&'v Field<'a>> {
    let at = if index >= 0 {
        usize::try_from(index).ok()?
    } else {
        items
            .len()
            .checked_sub(usize::try_from(index.unsigned_abs()).ok()?)?
    };
    items.get(at)
}

/// Follows `path` (the parts not yet taken, `None` when all are) from `current`, collecting
/// every value it ends at; `plain` when the path has no brackets or escapes (its parts are keys
/// as they are).
fn collect<'e>(current: &'e Field<'_>, path: Option<&str>, plain: bool, hits: &mut Hits<'e>) {
    let Some(path) = path else {
        hits.push(current.event_value());
        return;
    };
    let (part, rest) = match path.split_once('.') {
        Some((part, rest)) => (part, Some(rest)),
        None => (path, None),
    };
    let parsed = if plain {
        Part {
            key: Some(Cow::Borrowed(part)),
            positions: "",
        }
    } else {
        Part::parse(part)
    };
    let mut at = current;
    if let Some(key) = &parsed.key {
        match at {
            Field::Object(object) => match object.get(key) {
                Some(next) => at = next,
                None => return,
            },
            // A key reaches into every element of an array (the same part again for each).
            Field::Array(items) => {
                for item in items {
                    collect(item, Some(path), plain, hits);
                }
                return;
            }
            _ => return,
        }
    }
    for index in positions(parsed.positions) {
        match (at, index) {
            (Field::Array(items), Some(index)) => match element(items, index) {
                Some(next) => at = next,
                None => return,
            },
            _ => return,
        }
    }
    collect(at, rest, plain, hits);
}

/// The event rules see, borrowed: a whole JSON value or a projected object.
#[derive(Debug, Clone, Copy)]
pub enum EventRef<'a> {
    /// A whole event (hunts over files, text lines, OCSF-reading sources).
    Json(&'a Value),
    /// The fields the rules read.
    Projected(&'a Object<'a>),
}

impl<'a> From<&'a Value> for EventRef<'a> {
    fn from(value: &'a Value) -> Self {
        EventRef::Json(value)
    }
}

impl<'a> From<&'a Object<'a>> for EventRef<'a> {
    fn from(object: &'a Object<'a>) -> Self {
        EventRef::Projected(object)
    }
}

impl<'a> EventRef<'a> {
    /// The string at `keys` (object keys from the top), when there is one.
    pub fn text(&self, keys: &[&str]) -> Option<&'a str> {
        match *self {
            EventRef::Json(value) => keys
                .iter()
                .try_fold(value, |value, key| value.get(*key))
                .and_then(Value::as_str),
            EventRef::Projected(object) => {
                let (first, rest) = keys.split_first()?;
                let start = object.get(first)?;
                rest.iter()
                    .try_fold(start, |value, key| match value {
                        Field::Object(object) => object.get(key),
                        _ => None,
                    })
                    .and_then(Field::as_str)
            }
        }
    }

    /// Whether the top-level `key` holds something other than null or an empty string.
    pub fn is_set(&self, key: &str) -> bool {
        match *self {
            EventRef::Json(value) => value
                .get(key)
                .is_some_and(|value| !value.is_null() && value.as_str() != Some("")),
            EventRef::Projected(object) => object
                .get(key)
                .is_some_and(|value| *value != Field::Null && value.as_str() != Some("")),
        }
    }
}

impl Event for Object<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(value) = self.get(path) {
            return Some(value.event_value());
        }
        let plain = !path.bytes().any(|byte| byte == b'[' || byte == b'\\');
        let (part, rest) = match path.split_once('.') {
            Some((part, rest)) => (part, Some(rest)),
            None if plain => return None,
            None => (path, None),
        };
        let mut hits = Hits::None;
        if plain {
            collect(self.get(part)?, rest, true, &mut hits);
            return hits.into_value();
        }
        // rsigma first looks for the key before the first dot and bracket: absent, nothing.
        if let Some(root) = root_key(path)
            && !self.contains_key(&root)
        {
            return None;
        }
        let parsed = Part::parse(part);
        // The root is an object: a path must start with a key, then follows as anywhere.
        let start = self.get(parsed.key.as_deref()?)?;
        let mut at = start;
        for index in positions(parsed.positions) {
            match (at, index) {
                (Field::Array(items), Some(index)) => match element(items, index) {
                    Some(next) => at = next,
                    None => return None,
                },
                _ => return None,
            }
        }
        collect(at, rest, false, &mut hits);
        hits.into_value()
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.iter()
            .any(|(_, value)| value.any_string(pred, MAX_DEPTH - 1))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut all = Vec::new();
        for (_, value) in self.iter() {
            value.visit_strings(&mut |text| all.push(Cow::Borrowed(text)), MAX_DEPTH - 1);
        }
        all
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for (_, value) in self.iter() {
            value.visit_strings(&mut |text| visit(text), MAX_DEPTH - 1);
        }
    }

    fn to_json(&self) -> Value {
        Value::Object(Object::to_json(self))
    }

    // The top-level keys are not offered to rsigma's candidate index: they are only those
    // some rule reads, so restricting its probes to them saves less than walking them costs.
}

#[cfg(test)]
mod tests {
    use rsigma_eval::event::JsonEvent;
    use serde_json::json;

    use super::*;
    use crate::projection::{FieldTree, FieldUse};

    /// Every lookup answers as rsigma's `JsonEvent` answers over the whole value.
    #[test]
    fn lookups_answer_as_rsigma_answers_for_the_whole_event() {
        let event = json!({
            "a": {"b": {"c": "v", "d": 1}, "e": null},
            "arr": [{"x": 1, "y": {"z": "q"}}, {"x": "two"}, 3, [{"x": "inner"}]],
            "nested": {"list": [[1, 2], [3, 4]]},
            "k.with.dots": "flat",
            "k": {"with": {"dots": "deep", "more": true}},
            "n": {"num": -5, "big": 18446744073709551615u64, "float": 1.5},
            "x[abc]": "literal",
            "lit[0]": {"z": "a literal key with a position"},
            "s": "esc\"aped é",
            "dup": 1,
            "dup": 2,
        });
        let paths = [
            "a",
            "a.b",
            "a.b.c",
            "a.b.d",
            "a.e",
            "a.missing",
            "arr",
            "arr.x",
            "arr.y.z",
            "arr[0].x",
            "arr[-1]",
            "arr[-1].x",
            "arr[5].x",
            "arr[1]",
            "arr[x]",
            "nested.list",
            "nested.list[1][0]",
            "nested.list[0][-1]",
            "nested.list.x",
            "k.with.dots",
            "k.with",
            "k.with.more",
            "n.num",
            "n.big",
            "n.float",
            "x[abc]",
            "s",
            "dup",
            "missing.x",
            "[0]",
            "a..b",
            "a.b.c.d",
            "x[abc].y",
            "lit[0]",
            "lit[0].z",
            "lit.z",
        ];
        let raw = serde_json::to_vec(&event).expect("json");
        let uses: Vec<FieldUse> = paths.iter().map(|path| FieldUse::whole(path)).collect();
        let tree = FieldTree::new(&uses).expect("projectable");
        let Some(Field::Object(projected)) = tree.parse(&raw) else {
            panic!("an object");
        };
        let whole = JsonEvent::borrow(&event);
        for path in paths {
            assert_eq!(projected.get_field(path), whole.get_field(path), "{path}");
        }
        let mut strings = Vec::new();
        projected.visit_string_values(&mut |text| strings.push(text.to_string()));
        let mut expected = Vec::new();
        whole.visit_string_values(&mut |text| expected.push(text.to_string()));
        assert_eq!(strings, expected);
        assert!(projected.any_string_value(&|text| text == "inner"));
        assert_eq!(Event::to_json(&projected), event);
    }

    #[test]
    fn strings_without_escapes_are_borrowed_from_the_record() {
        let tree = FieldTree::new(&[FieldUse::whole("a"), FieldUse::whole("b")]).expect("tree");
        let Some(Field::Object(object)) = tree.parse(br#"{"a": "plain", "b": "tab\there"}"#) else {
            panic!("an object");
        };
        assert!(matches!(
            object.get("a"),
            Some(Field::Str(Cow::Borrowed("plain")))
        ));
        assert_eq!(object.get("b").and_then(Field::as_str), Some("tab\there"));
    }

    #[test]
    fn attributes_give_the_ocsf_event_only_when_asked() {
        let tree = FieldTree::new(&[FieldUse::whole("ocsf.class_uid"), FieldUse::whole("host")])
            .expect("tree");
        let attrs = br#"{"host": "h", "other": 1, "@ocsf": {"class_uid": 6003, "big": [1, 2, 3]}}"#;
        let with = tree.parse_attributes(attrs, true).expect("object");
        assert_eq!(
            Value::Object(with.to_json()),
            json!({"@ocsf": {"class_uid": 6003}, "host": "h"})
        );
        let without = tree.parse_attributes(attrs, false).expect("object");
        assert_eq!(Value::Object(without.to_json()), json!({"host": "h"}));
        // Written last, the OCSF event is not even read past when it is not wanted.
        let only = serde_json::to_vec(&json!({crate::event::OCSF_ATTR: {"class_uid": 6003}}))
            .expect("json");
        assert!(
            tree.parse_attributes(&only, false)
                .expect("object")
                .is_empty()
        );
        assert_eq!(
            Value::Object(
                tree.parse_attributes(&only, true)
                    .expect("object")
                    .to_json()
            ),
            json!({"@ocsf": {"class_uid": 6003}})
        );
    }
}
