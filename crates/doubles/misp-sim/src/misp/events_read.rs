//! Reading events as MISP 2.5 does: `events/view` with objects and their attributes, galaxy
//! clusters, related events (from correlations), tags and sightings; `events/restSearch` with
//! MISP's filters, paging, `metadata` and `X-Result-Count`; and the seeding of objects.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value, json};

use super::{
    AttributeFilter, Reply, ReplyBody, State, attribute_object, default_category, default_to_ids,
    error, int_like, like, new_uuid, now, ok, result_headers, string_list, take_array, truthy,
    unwrap_object, value_text,
};

const NO_FILTERS: &str =
    "Either specify the search terms in the url, or POST a json with the filter parameters.";

impl State {
    /// `GET /events/view/{id|uuid}`: the event with its attributes (deleted ones left out),
    /// its objects with theirs, each attribute's sightings, and `RelatedEvent` from the values
    /// it shares with other events (plus any seeded ones).
    pub(super) fn view_full_event(&self, reference: &str, path: &str) -> Reply {
        let Some(index) = self.event_position(reference) else {
            return error(404, "Invalid event", path);
        };
        let event = &self.events[index];
        let mut view = self.event_view(event, true);
        self.show_objects(&mut view, true);
        let related = self.related_events(index);
        if let Some(fields) = view.as_object_mut() {
            let mut listed = match fields.remove("RelatedEvent") {
                Some(Value::Array(seeded)) => seeded,
                _ => Vec::new(),
            };
            let known: HashSet<String> = listed
                .iter()
                .filter_map(|entry| entry.pointer("/Event/id").map(value_text))
                .collect();
            listed.extend(
                related
                    .into_iter()
                    .filter(|entry| !known.contains(entry["Event"]["id"].as_str().unwrap_or(""))),
            );
            fields.insert("RelatedEvent".to_string(), Value::Array(listed));
        }
        ok(json!({"Event": view}))
    }

    /// `POST /events/restSearch`. Each filter selects events as MISP's `filterEventIds`
    /// does (an attribute filter: some attribute of the event matches it); `X-Result-Count`
    /// counts every match before `limit`/`page`; the answer is `{"response": [...]}`, with
    /// only the matching attributes, or none at all with `metadata`.
    pub(super) fn search_events(&self, body: &Value, path: &str) -> Reply {
        let filters = unwrap_object(body.clone(), &["request"]);
        let Some(filters) = filters.as_object().filter(|filters| !filters.is_empty()) else {
            return error(400, NO_FILTERS, path);
        };
        let query = EventQuery::from_filters(self, filters, now());
        let matched: Vec<&Value> = self
            .events
            .iter()
            .filter(|event| query.selects(event))
            .collect();
        let total = matched.len();
        let (skip, take) = page_window(filters);
        let page: Vec<Value> = matched
            .into_iter()
            .skip(skip)
            .take(take)
            .map(|event| json!({"Event": self.search_view(event, &query)}))
            .collect();
        Reply {
            status: 200,
            headers: result_headers(total),
            body: ReplyBody::Json(json!({"response": page})),
        }
    }

    /// Stores the seeded event's attributes and its objects' attributes as MISP would (ids,
    /// `event_id`, `object_id`, registered tags, sightings in the sighting table) and returns
    /// how many there are, MISP's `attribute_count`.
    pub(super) fn seed_attributes_and_objects(
        &mut self,
        event: &mut Value,
        event_id: u64,
    ) -> usize {
        let mut taken = self.attribute_ids();
        let attributes: Vec<Value> = take_array(event, "Attribute")
            .into_iter()
            .map(|attribute| self.seed_attribute(attribute, event_id, 0, &mut taken))
            .collect();
        let mut object_ids = self.object_ids();
        let objects: Vec<Value> = take_array(event, "Object")
            .into_iter()
            .map(|object| self.seed_object(object, event_id, &mut object_ids, &mut taken))
            .collect();
        if let Some(fields) = event.as_object_mut() {
            fields.insert("Attribute".to_string(), Value::Array(attributes));
            fields.insert("Object".to_string(), Value::Array(objects));
        }
        live_attributes(event).count()
    }

    fn seed_object(
        &mut self,
        mut object: Value,
        event_id: u64,
        object_ids: &mut HashSet<u64>,
        taken: &mut HashSet<u64>,
    ) -> Value {
        let id = fresh_id(object.get("id"), object_ids, 1);
        let attributes: Vec<Value> = take_array(&mut object, "Attribute")
            .into_iter()
            .map(|attribute| self.seed_attribute(attribute, event_id, id, taken))
            .collect();
        let defaults = json!({
            "name": "file",
            "meta-category": "file",
            "description": "",
            "template_uuid": new_uuid(),
            "template_version": "1",
            "uuid": new_uuid(),
            "timestamp": now().to_string(),
            "distribution": "5",
            "sharing_group_id": "0",
            "comment": "",
            "deleted": false,
            "first_seen": null,
            "last_seen": null,
            "ObjectReference": [],
        });
        if let (Value::Object(fields), Value::Object(defaults)) = (&mut object, defaults) {
            for (name, value) in defaults {
                fields.entry(name).or_insert(value);
            }
            fields.insert("id".to_string(), json!(id.to_string()));
            fields.insert("event_id".to_string(), json!(event_id.to_string()));
            fields.insert("Attribute".to_string(), Value::Array(attributes));
        }
        object
    }

    /// One seeded attribute: MISP's defaults for what it lacks, its given id when free, its
    /// tags registered and its sightings moved to the sighting table.
    fn seed_attribute(
        &mut self,
        mut attribute: Value,
        event_id: u64,
        object_id: u64,
        taken: &mut HashSet<u64>,
    ) -> Value {
        let attribute_id = fresh_id(attribute.get("id"), taken, self.next_attribute_id);
        self.next_attribute_id = self.next_attribute_id.max(attribute_id + 1);
        let sightings = take_array(&mut attribute, "Sighting");
        let tags: Vec<Value> = take_array(&mut attribute, "Tag")
            .into_iter()
            .map(|tag| self.register_seed_tag(tag))
            .collect();
        let attribute_type = attribute
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("other")
            .to_string();
        let value = attribute.get("value").map(value_text).unwrap_or_default();
        let defaults = attribute_object(
            attribute_id,
            event_id,
            &attribute_type,
            &default_category(&attribute_type),
            &value,
            default_to_ids(&attribute_type),
            "5",
            "",
        );
        if let (Value::Object(fields), Value::Object(defaults)) = (&mut attribute, defaults) {
            for (name, value) in defaults {
                fields.entry(name).or_insert(value);
            }
            fields.insert("id".to_string(), json!(attribute_id.to_string()));
            fields.insert("event_id".to_string(), json!(event_id.to_string()));
            fields.insert("object_id".to_string(), json!(object_id.to_string()));
            fields.insert("Tag".to_string(), Value::Array(tags));
        }
        for sighting in sightings {
            let sighting_id = self.next_sighting_id;
            self.next_sighting_id += 1;
            let field = |name: &str, default: Value| sighting.get(name).cloned().unwrap_or(default);
            self.sightings.push(json!({
                "id": sighting_id.to_string(),
                "attribute_id": attribute_id.to_string(),
                "event_id": event_id.to_string(),
                "org_id": field("org_id", json!("1")),
                "date_sighting": field("date_sighting", json!(now().to_string())),
                "uuid": field("uuid", json!(new_uuid())),
                "source": field("source", json!("")),
                "type": field("type", json!("0")),
            }));
        }
        attribute
    }

    /// Objects as a view shows them: deleted attributes left out, sightings joined in (when
    /// asked), an empty `Tag` list dropped, as for the event's own attributes.
    fn show_objects(&self, view: &mut Value, with_sightings: bool) {
        let Some(objects) = view.get_mut("Object").and_then(Value::as_array_mut) else {
            return;
        };
        for object in objects {
            let Some(attributes) = object.get_mut("Attribute").and_then(Value::as_array_mut) else {
                continue;
            };
            attributes.retain(|attribute| !is_deleted(attribute));
            for attribute in attributes {
                let sightings = if with_sightings {
                    self.attribute_sightings(attribute)
                } else {
                    Vec::new()
                };
                if let Some(fields) = attribute.as_object_mut() {
                    if fields
                        .get("Tag")
                        .and_then(Value::as_array)
                        .is_some_and(Vec::is_empty)
                    {
                        fields.remove("Tag");
                    }
                    fields.insert("Sighting".to_string(), Value::Array(sightings));
                }
            }
        }
    }

    /// A search result: the event without sightings, its attributes (also in objects) cut to
    /// those matching every attribute filter and carrying no excluded tag; with `metadata`,
    /// no attributes, objects, proposals or reports at all.
    fn search_view(&self, event: &Value, query: &EventQuery) -> Value {
        let mut view = self.event_view(event, false);
        self.show_objects(&mut view, false);
        let Some(fields) = view.as_object_mut() else {
            return view;
        };
        if query.metadata {
            for nested in ["Attribute", "ShadowAttribute", "Object", "EventReport"] {
                fields.remove(nested);
            }
            return view;
        }
        if !query.narrows_attributes() {
            return view;
        }
        if let Some(Value::Array(attributes)) = fields.get_mut("Attribute") {
            attributes.retain(|attribute| query.shows_attribute(attribute));
        }
        if let Some(Value::Array(objects)) = fields.get_mut("Object") {
            for object in objects.iter_mut() {
                if let Some(Value::Array(attributes)) = object.get_mut("Attribute") {
                    attributes.retain(|attribute| query.shows_attribute(attribute));
                }
            }
            objects.retain(|object| {
                object["Attribute"]
                    .as_array()
                    .is_some_and(|attributes| !attributes.is_empty())
            });
        }
        view
    }

    /// `RelatedEvent` entries for the events sharing a value with event `index`, as MISP's
    /// correlations find them (attributes neither deleted nor excluded from correlation).
    fn related_events(&self, index: usize) -> Vec<Value> {
        let event = &self.events[index];
        if event.get("disable_correlation").is_some_and(truthy) {
            return Vec::new();
        }
        let values: HashSet<String> = live_attributes(event)
            .filter(|attribute| correlates(attribute))
            .flat_map(correlation_values)
            .collect();
        if values.is_empty() {
            return Vec::new();
        }
        self.events
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(_, other)| other)
            .filter(|other| !other.get("disable_correlation").is_some_and(truthy))
            .filter(|other| {
                live_attributes(other)
                    .filter(|attribute| correlates(attribute))
                    .flat_map(correlation_values)
                    .any(|value| values.contains(&value))
            })
            .map(|other| {
                let mut summary = Map::new();
                for name in [
                    "id",
                    "date",
                    "threat_level_id",
                    "info",
                    "published",
                    "uuid",
                    "analysis",
                    "timestamp",
                    "distribution",
                    "org_id",
                    "orgc_id",
                ] {
                    summary.insert(
                        name.to_string(),
                        other.get(name).cloned().unwrap_or(Value::Null),
                    );
                }
                for organisation in ["Org", "Orgc"] {
                    let org = other.get(organisation).unwrap_or(&Value::Null);
                    summary.insert(
                        organisation.to_string(),
                        json!({"id": org.get("id"), "name": org.get("name"), "uuid": org.get("uuid")}),
                    );
                }
                json!({"Event": summary})
            })
            .collect()
    }

    /// `events/view` finds an event by id or (in any case) UUID.
    fn event_position(&self, reference: &str) -> Option<usize> {
        self.events.iter().position(|event| {
            event.get("id").map(value_text).as_deref() == Some(reference)
                || event
                    .get("uuid")
                    .and_then(Value::as_str)
                    .is_some_and(|uuid| uuid.eq_ignore_ascii_case(reference))
        })
    }

    fn attribute_ids(&self) -> HashSet<u64> {
        self.events
            .iter()
            .flat_map(all_attributes)
            .filter_map(|attribute| attribute.get("id").and_then(int_like))
            .filter_map(|id| u64::try_from(id).ok())
            .collect()
    }

    fn object_ids(&self) -> HashSet<u64> {
        self.events
            .iter()
            .flat_map(|event| list(event, "Object"))
            .filter_map(|object| object.get("id").and_then(int_like))
            .filter_map(|id| u64::try_from(id).ok())
            .collect()
    }

    /// The ids of the known tags whose name is LIKE one of `patterns`, as MISP's
    /// `findTagIdsByTagNames` reads them (a number is an id).
    fn tag_ids(&self, patterns: &[String]) -> Vec<String> {
        let mut ids = Vec::new();
        for pattern in patterns {
            if pattern.parse::<u64>().is_ok() {
                ids.push(pattern.clone());
                continue;
            }
            for tag in &self.tags {
                let name = tag.get("name").map(value_text).unwrap_or_default();
                if like(pattern, &name) {
                    ids.push(tag.get("id").map(value_text).unwrap_or_default());
                }
            }
        }
        ids
    }

    /// The `Orgc.id` of an organisation named by id, name or UUID; `None` when unknown.
    fn org_id(&self, reference: &str) -> Option<String> {
        if reference.parse::<u64>().is_ok() {
            return Some(reference.to_string());
        }
        self.events.iter().find_map(|event| {
            let org = event.get("Orgc")?;
            let named = |key: &str| {
                org.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|known| known.eq_ignore_ascii_case(reference))
            };
            (named("name") || named("uuid")).then(|| org.get("id").map(value_text))?
        })
    }
}

impl crate::MispSim {
    /// Seeds an event with `count` attributes (`ip-dst` 10.x.y.z, each tagged `tlp:green`
    /// and sighted once), for tests and benchmarks of big events; returns its id.
    pub fn seed_big_event(&self, info: &str, count: usize) -> String {
        let attributes: Vec<Value> = (0..count)
            .map(|index| {
                json!({
                    "type": "ip-dst",
                    "value": format!("10.{}.{}.{}", (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff),
                    "comment": format!("attribute {index}"),
                    "Tag": [{"name": "tlp:green"}],
                    "Sighting": [{"source": "sim", "date_sighting": "1700000000", "type": "0"}],
                })
            })
            .collect();
        self.seed_event(json!({"info": info, "Attribute": attributes}))
    }
}

/// What an events/restSearch body asks for, read once.
struct EventQuery {
    /// `eventid` (ids or UUIDs) and `uuid`.
    event_ids: Option<Vec<String>>,
    event_uuids: Option<Vec<String>>,
    values: Option<AttributeFilter>,
    types: Option<Vec<String>>,
    categories: Option<Vec<String>>,
    to_ids: Option<bool>,
    /// Tag ids: some of `any_tags`, each of `all_tags` (on the event or an attribute), none of
    /// `no_tags` (on the event: MISP's event-scope filter looks at event tags only).
    any_tags: Option<Vec<String>>,
    all_tags: Option<Vec<String>>,
    no_tags: Vec<String>,
    /// `Orgc.id`s; an unknown organisation matches nothing.
    orgs: Option<Vec<Option<String>>>,
    date_from: Option<String>,
    date_to: Option<String>,
    /// Published at or after this epoch second (`last`).
    published_since: Option<i64>,
    published: Option<bool>,
    threat_levels: Option<Vec<i64>>,
    metadata: bool,
    /// A filter that can match nothing (an `AND` tag MISP does not know).
    impossible: bool,
}

impl EventQuery {
    fn from_filters(state: &State, filters: &Map<String, Value>, now: i64) -> EventQuery {
        let list_of = |name: &str| {
            filters
                .get(name)
                .map(string_list)
                .filter(|list| !list.is_empty())
        };
        let (any_names, no_names, all_names) = tag_terms(filters.get("tags"));
        let mut impossible = false;
        let any_tags = (!any_names.is_empty()).then(|| state.tag_ids(&any_names));
        let all_tags = (!all_names.is_empty()).then(|| {
            let ids = state.tag_ids(&all_names);
            // MISP gives up on the query when the names do not resolve one for one.
            impossible |= ids.len() != all_names.len();
            ids
        });
        let date = |name: &str| {
            filters
                .get(name)
                .filter(|value| !value.is_null())
                .map(|value| match int_like(value) {
                    Some(epoch) => epoch_date(epoch),
                    None => value_text(value),
                })
        };
        EventQuery {
            event_ids: list_of("eventid"),
            event_uuids: list_of("uuid"),
            values: list_of("value").map(|values| AttributeFilter {
                values: Some(values),
                types: None,
            }),
            types: list_of("type"),
            categories: list_of("category"),
            to_ids: match filters.get("to_ids") {
                None | Some(Value::Null) | Some(Value::Array(_)) => None,
                Some(Value::String(text)) if text == "exclude" => Some(false),
                Some(flag) => Some(truthy(flag)),
            },
            any_tags,
            all_tags,
            no_tags: state.tag_ids(&no_names),
            orgs: list_of("org").map(|orgs| orgs.iter().map(|org| state.org_id(org)).collect()),
            date_from: date("from"),
            date_to: date("to"),
            published_since: filters
                .get("last")
                .filter(|last| !last.is_null())
                .map(|last| time_delta(last, now)),
            published: match filters.get("published") {
                None | Some(Value::Null) | Some(Value::Array(_)) => None,
                Some(flag) => Some(truthy(flag)),
            },
            threat_levels: list_of("threat_level_id").map(|levels| {
                levels
                    .iter()
                    .filter_map(|level| level.parse().ok())
                    .collect()
            }),
            metadata: filters.get("metadata").is_some_and(truthy),
            impossible,
        }
    }

    fn selects(&self, event: &Value) -> bool {
        if self.impossible {
            return false;
        }
        let text = |name: &str| event.get(name).map(value_text).unwrap_or_default();
        let id = text("id");
        let uuid = text("uuid");
        let checks = [
            self.event_ids.as_ref().is_none_or(|ids| {
                ids.iter()
                    .any(|wanted| *wanted == id || wanted.eq_ignore_ascii_case(&uuid))
            }),
            self.event_uuids.as_ref().is_none_or(|uuids| {
                uuids
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(&uuid))
            }),
            self.values.as_ref().is_none_or(|filter| {
                live_attributes(event).any(|attribute| filter.matches(attribute))
            }),
            self.types.as_ref().is_none_or(|types| {
                live_attributes(event).any(|attribute| types.contains(&field(attribute, "type")))
            }),
            self.categories.as_ref().is_none_or(|categories| {
                live_attributes(event)
                    .any(|attribute| categories.contains(&field(attribute, "category")))
            }),
            self.to_ids.is_none_or(|flag| {
                live_attributes(event)
                    .any(|attribute| attribute.get("to_ids").is_some_and(truthy) == flag)
            }),
            self.orgs.as_ref().is_none_or(|orgs| {
                let orgc = text("orgc_id");
                orgs.iter().flatten().any(|org| *org == orgc)
            }),
            self.date_from
                .as_ref()
                .is_none_or(|from| text("date").as_str() >= from.as_str()),
            self.date_to
                .as_ref()
                .is_none_or(|to| text("date").as_str() <= to.as_str()),
            self.published_since.is_none_or(|since| {
                event
                    .get("publish_timestamp")
                    .and_then(int_like)
                    .is_some_and(|published| published >= since)
            }),
            self.published
                .is_none_or(|flag| event.get("published").is_some_and(truthy) == flag),
            self.threat_levels.as_ref().is_none_or(|levels| {
                event
                    .get("threat_level_id")
                    .and_then(int_like)
                    .is_some_and(|level| levels.contains(&level))
            }),
        ];
        if !checks.iter().all(|check| *check) {
            return false;
        }
        let tags = carried_tag_ids(event);
        let event_tags = tag_ids_of(event);
        self.any_tags
            .as_ref()
            .is_none_or(|any| any.iter().any(|tag| tags.contains(tag)))
            && self
                .all_tags
                .as_ref()
                .is_none_or(|all| all.iter().all(|tag| tags.contains(tag)))
            && !self.no_tags.iter().any(|tag| event_tags.contains(tag))
    }

    /// Whether search results show only some attributes.
    fn narrows_attributes(&self) -> bool {
        self.values.is_some()
            || self.types.is_some()
            || self.categories.is_some()
            || self.to_ids.is_some()
            || !self.no_tags.is_empty()
    }

    /// An attribute matching every attribute filter and carrying no excluded tag (MISP's
    /// `blockedAttributeTags`).
    fn shows_attribute(&self, attribute: &Value) -> bool {
        self.values
            .as_ref()
            .is_none_or(|filter| filter.matches(attribute))
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.contains(&field(attribute, "type")))
            && self
                .categories
                .as_ref()
                .is_none_or(|categories| categories.contains(&field(attribute, "category")))
            && self
                .to_ids
                .is_none_or(|flag| attribute.get("to_ids").is_some_and(truthy) == flag)
            && !tag_ids_of(attribute)
                .iter()
                .any(|tag| self.no_tags.contains(tag))
    }
}

/// The `tags` filter in any of MISP's forms (a list with `!` for negation, a string, or
/// `{"OR", "AND", "NOT"}`), as its `dissectArgs` splits it: (any of, none of, all of).
fn tag_terms(tags: Option<&Value>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut any, mut none, mut all) = (Vec::new(), Vec::new(), Vec::new());
    match tags {
        Some(Value::Object(operators)) => {
            any = operators.get("OR").map(string_list).unwrap_or_default();
            none = operators.get("NOT").map(string_list).unwrap_or_default();
            all = operators.get("AND").map(string_list).unwrap_or_default();
        }
        Some(Value::String(text)) => {
            for term in text.split("&&") {
                sort_term(term.to_string(), &mut any, &mut none);
            }
        }
        Some(Value::Array(items)) => {
            for term in items.iter().map(value_text) {
                sort_term(term, &mut any, &mut none);
            }
        }
        _ => {}
    }
    (any, none, all)
}

fn sort_term(term: String, any: &mut Vec<String>, none: &mut Vec<String>) {
    match term.strip_prefix('!') {
        Some(negated) => none.push(negated.to_string()),
        None if !term.is_empty() => any.push(term),
        None => {}
    }
}

/// How many results to skip and keep for `limit` and `page` (page 1 when only `limit`).
fn page_window(filters: &Map<String, Value>) -> (usize, usize) {
    let limit = filters
        .get("limit")
        .and_then(int_like)
        .filter(|limit| *limit > 0);
    let Some(limit) = limit else {
        return (0, usize::MAX);
    };
    let page = filters
        .get("page")
        .and_then(int_like)
        .filter(|page| *page > 0)
        .unwrap_or(1);
    let skip = usize::try_from((page - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
    (skip, usize::try_from(limit).unwrap_or(usize::MAX))
}

/// MISP's `resolveTimeDelta`: a number is an epoch second, `7d`/`12h`/`30m`/`10s` counts back
/// from `now`, anything else is a time in the future (so nothing matches).
fn time_delta(value: &Value, now: i64) -> i64 {
    if let Some(epoch) = int_like(value) {
        return epoch;
    }
    let text = value_text(value).trim().to_lowercase();
    let multiplier = match text.chars().last() {
        Some('d') => 86_400,
        Some('h') => 3_600,
        Some('m') => 60,
        Some('s') => 1,
        _ => return now + 1,
    };
    match text[..text.len() - 1].parse::<i64>() {
        Ok(count) => now - count.saturating_mul(multiplier),
        Err(_) => now + 1,
    }
}

/// `YYYY-MM-DD` of an epoch second, as PHP's `date('Y-m-d', …)` on a UTC server.
fn epoch_date(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|instant| instant.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// An id that is free: the given one when it is a positive number not taken, else the next
/// number after every taken one and no lower than `floor`. The id is marked taken.
fn fresh_id(given: Option<&Value>, taken: &mut HashSet<u64>, floor: u64) -> u64 {
    let id = match given
        .and_then(int_like)
        .and_then(|id| u64::try_from(id).ok())
    {
        Some(id) if id > 0 && !taken.contains(&id) => id,
        _ => taken.iter().max().map_or(1, |max| max + 1).max(floor),
    };
    taken.insert(id);
    id
}

fn list<'a>(holder: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    holder
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The event's attributes and its objects' attributes.
fn all_attributes(event: &Value) -> impl Iterator<Item = &Value> {
    list(event, "Attribute")
        .chain(list(event, "Object").flat_map(|object| list(object, "Attribute")))
}

fn live_attributes(event: &Value) -> impl Iterator<Item = &Value> {
    all_attributes(event).filter(|attribute| !is_deleted(attribute))
}

fn is_deleted(attribute: &Value) -> bool {
    attribute.get("deleted").is_some_and(truthy)
}

fn correlates(attribute: &Value) -> bool {
    !attribute.get("disable_correlation").is_some_and(truthy)
}

/// The values MISP correlates on: `value1` and `value2` of a composite (`a|b`).
fn correlation_values(attribute: &Value) -> Vec<String> {
    let value = field(attribute, "value");
    let composite = field(attribute, "type").contains('|');
    match value.split_once('|') {
        Some((first, second)) if composite => vec![first.to_string(), second.to_string()],
        _ => vec![value],
    }
}

fn field(holder: &Value, name: &str) -> String {
    holder.get(name).map(value_text).unwrap_or_default()
}

fn tag_ids_of(holder: &Value) -> BTreeSet<String> {
    list(holder, "Tag")
        .filter_map(|tag| tag.get("id").map(value_text))
        .collect()
}

/// The tags on the event and on any of its attributes (also in objects).
fn carried_tag_ids(event: &Value) -> BTreeSet<String> {
    let mut tags = tag_ids_of(event);
    for attribute in live_attributes(event) {
        tags.extend(tag_ids_of(attribute));
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = "/events/view/x";
    const SEARCH: &str = "/events/restSearch";

    fn body(reply: &Reply) -> &Value {
        match &reply.body {
            ReplyBody::Json(body) => body,
            other => panic!("expected JSON, got {other:?}"),
        }
    }

    fn count(reply: &Reply) -> Option<&str> {
        reply
            .headers
            .iter()
            .find(|(name, _)| name == "X-Result-Count")
            .map(|(_, value)| value.as_str())
    }

    fn ids(reply: &Reply) -> Vec<String> {
        body(reply)["response"]
            .as_array()
            .expect("a response list")
            .iter()
            .map(|entry| value_text(&entry["Event"]["id"]))
            .collect()
    }

    /// Events 1..=4: dates, threat levels, publication, orgs and tags to filter on.
    fn state() -> State {
        let mut state = State::new();
        let now = now();
        state.seed_event(json!({
            "id": "1", "info": "one", "date": "2024-01-10", "threat_level_id": "1",
            "published": true, "publish_timestamp": (now - 3 * 86_400).to_string(),
            "Tag": [{"name": "tlp:green"}, {"name": "apt"}],
            "Attribute": [
                {"type": "ip-dst", "value": "198.51.100.1", "to_ids": true},
                {"type": "domain", "value": "shared.example", "to_ids": false,
                 "Tag": [{"name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\""}]},
            ],
        }));
        state.seed_event(json!({
            "id": "2", "info": "two", "date": "2024-02-20", "threat_level_id": "3",
            "published": false,
            "Orgc": {"id": "7", "name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
            "orgc_id": "7",
            "Tag": [{"name": "tlp:red"}],
            "Attribute": [{"type": "domain", "value": "shared.example", "category": "Network activity"}],
        }));
        state.seed_event(json!({
            "id": "3", "info": "three", "date": "2024-03-30", "threat_level_id": "1",
            "published": true, "publish_timestamp": (now - 60 * 86_400).to_string(),
            "Tag": [{"name": "tlp:green"}],
            "Object": [{"name": "file", "Attribute": [
                {"type": "md5", "value": "0123456789abcdef0123456789abcdef", "object_relation": "md5",
                 "Tag": [{"name": "apt"}]},
            ]}],
        }));
        state.seed_event(json!({"id": "4", "info": "four", "date": "2024-04-01"}));
        state
    }

    fn search(state: &State, filters: Value) -> Reply {
        state.search_events(&filters, SEARCH)
    }

    #[test]
    fn the_view_has_objects_sightings_and_related_events_from_shared_values() {
        let mut state = State::new();
        let id = state.seed_event(json!({
            "info": "with objects", "Attribute": [
                {"type": "domain", "value": "shared.example",
                 "Sighting": [{"type": "0", "date_sighting": "1700000000"}]},
                {"type": "ip-dst", "value": "203.0.113.9", "deleted": true},
            ],
            "Galaxy": [{"type": "mitre-attack-pattern", "GalaxyCluster": [{"value": "Phishing - T1566"}]}],
            "Object": [{"name": "file", "Attribute": [
                {"type": "filename", "value": "dropper.exe", "object_relation": "filename",
                 "Sighting": [{"type": "1"}], "Tag": [{"name": "tlp:amber"}]},
                {"type": "md5", "value": "0123456789abcdef0123456789abcdef", "deleted": true},
            ]}],
            "RelatedEvent": [{"Event": {"id": "900", "info": "elsewhere"}}],
        }));
        let other = state.seed_event(json!({"info": "other",
            "Attribute": [{"type": "hostname", "value": "shared.example"}]}));
        state.seed_event(json!({"info": "unrelated",
            "Attribute": [{"type": "domain", "value": "other.example"}]}));
        let reply = state.view_full_event(&id, VIEW);
        assert_eq!(reply.status, 200);
        let event = &body(&reply)["Event"];
        assert_eq!(
            event["attribute_count"],
            json!("2"),
            "objects' attributes count too, deleted ones do not"
        );
        let attributes = event["Attribute"].as_array().expect("attributes");
        assert_eq!(attributes.len(), 1, "the deleted attribute is hidden");
        assert_eq!(attributes[0]["Sighting"][0]["type"], json!("0"));
        let object = &event["Object"][0];
        assert_eq!(object["event_id"], json!(id));
        let object_attributes = object["Attribute"].as_array().expect("object attributes");
        assert_eq!(object_attributes.len(), 1);
        assert_eq!(object_attributes[0]["object_id"], object["id"]);
        assert_eq!(object_attributes[0]["Tag"][0]["name"], json!("tlp:amber"));
        assert_eq!(object_attributes[0]["Sighting"][0]["type"], json!("1"));
        assert_eq!(
            event["Galaxy"][0]["GalaxyCluster"][0]["value"],
            json!("Phishing - T1566")
        );
        let related: Vec<String> = event["RelatedEvent"]
            .as_array()
            .expect("related events")
            .iter()
            .map(|entry| value_text(&entry["Event"]["id"]))
            .collect();
        assert_eq!(related, vec!["900".to_string(), other]);
        assert_eq!(
            event["RelatedEvent"][1]["Event"]["Orgc"]["name"],
            json!(crate::ORG_NAME)
        );

        let by_uuid = value_text(&event["uuid"]).to_uppercase();
        assert_eq!(state.view_full_event(&by_uuid, VIEW).status, 200);
        let missing = state.view_full_event("999", "/events/view/999");
        assert_eq!(missing.status, 404);
        assert_eq!(
            body(&missing),
            &json!({"name": "Invalid event", "message": "Invalid event", "url": "/events/view/999"})
        );
    }

    #[test]
    fn the_captured_full_event_is_viewed_with_its_objects_galaxies_and_related_events() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../tests/fixtures/misp/captured/event_full_with_objects_tags.pymisp-fixture.json"
        );
        let text = std::fs::read_to_string(path).expect("the captured event is readable");
        let captured: Value = serde_json::from_str(&text).expect("the captured event is JSON");
        let mut state = State::new();
        let id = state.seed_event(captured.clone());
        assert_eq!(id, "9747");
        let reply = state.view_full_event(&id, VIEW);
        let event = &body(&reply)["Event"];
        let length = |value: &Value, key: &str| value[key].as_array().map(Vec::len);
        for key in ["Attribute", "Object", "Galaxy", "RelatedEvent", "Tag"] {
            assert_eq!(length(event, key), length(&captured, key), "{key}");
        }
        let in_objects: usize = captured["Object"]
            .as_array()
            .expect("objects")
            .iter()
            .map(|object| length(object, "Attribute").unwrap_or(0))
            .sum();
        let total = length(&captured, "Attribute").unwrap_or(0) + in_objects;
        assert_eq!(event["attribute_count"], json!(total.to_string()));
        assert_eq!(
            event["Object"][0]["Attribute"][0]["object_id"],
            json!("1555")
        );
        assert_eq!(event["Object"][0]["Attribute"][0]["id"], json!("1188944"));
        assert_eq!(
            event["Galaxy"][0]["GalaxyCluster"][0]["tag_name"],
            captured["Galaxy"][0]["GalaxyCluster"][0]["tag_name"]
        );
    }

    #[test]
    fn seeded_ids_stay_unique_across_attributes_and_objects() {
        let mut state = State::new();
        state.seed_event(json!({"Attribute": [{"id": "5", "type": "text", "value": "a"}]}));
        state.seed_event(json!({
            "Attribute": [{"id": "5", "type": "text", "value": "b"}],
            "Object": [{"id": "3", "Attribute": [{"id": "5", "type": "text", "value": "c"}]},
                       {"id": "3", "Attribute": []}],
        }));
        let ids: Vec<String> = state
            .events
            .iter()
            .flat_map(all_attributes)
            .map(|attribute| field(attribute, "id"))
            .collect();
        assert_eq!(ids, vec!["5", "6", "7"]);
        assert_eq!(state.object_ids().len(), 2);
    }

    #[test]
    fn each_filter_selects_events_as_misp_does() {
        let state = state();
        let cases = [
            (json!({"value": "shared.example"}), vec!["1", "2"]),
            (json!({"value": "0123456789ABCDEF%"}), vec!["3"]),
            (json!({"type": "md5"}), vec!["3"]),
            (json!({"category": "Network activity"}), vec!["1", "2"]),
            (json!({"to_ids": true}), vec!["1", "2", "3"]),
            (json!({"to_ids": 0}), vec!["1"]),
            (json!({"to_ids": "exclude"}), vec!["1"]),
            (
                json!({"tags": {"AND": ["tlp:green", "apt"]}}),
                vec!["1", "3"],
            ),
            (
                json!({"tags": {"AND": ["tlp:green", "no such tag"]}}),
                vec![],
            ),
            (json!({"tags": {"NOT": ["tlp:green"]}}), vec!["2", "4"]),
            (json!({"tags": ["tlp:red", "apt"]}), vec!["1", "2", "3"]),
            (json!({"tags": ["!tlp:green"]}), vec!["2", "4"]),
            (
                json!({"tags": "misp-galaxy:mitre-attack-pattern=%"}),
                vec!["1"],
            ),
            (json!({"org": "circl"}), vec!["2"]),
            (json!({"org": "7"}), vec!["2"]),
            (json!({"org": "Nobody"}), vec![]),
            (json!({"from": "2024-02-20"}), vec!["2", "3", "4"]),
            (json!({"to": "2024-02-20"}), vec!["1", "2"]),
            (
                json!({"from": "2024-02-01", "to": "2024-03-31"}),
                vec!["2", "3"],
            ),
            (json!({"last": "7d"}), vec!["1"]),
            (json!({"last": "90d"}), vec!["1", "3"]),
            (json!({"last": "soon"}), vec![]),
            (json!({"published": true}), vec!["1", "3"]),
            (json!({"published": false}), vec!["2", "4"]),
            (json!({"threat_level_id": "1"}), vec!["1", "3"]),
            (json!({"threat_level_id": 3}), vec!["2"]),
            (json!({"eventid": ["2", "4"]}), vec!["2", "4"]),
            (
                json!({"value": "shared.example", "published": true, "tags": {"NOT": ["tlp:red"]}}),
                vec!["1"],
            ),
        ];
        for (filters, expected) in cases {
            let reply = search(&state, filters.clone());
            assert_eq!(reply.status, 200);
            assert_eq!(ids(&reply), expected, "{filters}");
        }
    }

    #[test]
    fn pages_are_cut_after_counting_every_match() {
        let state = state();
        let reply = search(&state, json!({"from": "2024-01-01", "limit": 2, "page": 2}));
        assert_eq!(ids(&reply), vec!["3", "4"]);
        assert_eq!(count(&reply), Some("4"), "X-Result-Count counts every page");
        let reply = search(&state, json!({"from": "2024-01-01", "limit": 3}));
        assert_eq!(ids(&reply), vec!["1", "2", "3"]);
        let reply = search(&state, json!({"from": "2024-01-01", "limit": 2, "page": 5}));
        assert_eq!(body(&reply), &json!({"response": []}));
        assert_eq!(count(&reply), Some("4"));
    }

    #[test]
    fn metadata_leaves_out_attributes_and_objects_but_keeps_tags() {
        let state = state();
        let reply = search(&state, json!({"eventid": "3", "metadata": true}));
        let event = &body(&reply)["response"][0]["Event"];
        assert!(event.get("Attribute").is_none(), "{event}");
        assert!(event.get("Object").is_none(), "{event}");
        assert_eq!(event["Tag"][0]["name"], json!("tlp:green"));
        assert_eq!(event["attribute_count"], json!("1"));
        assert_eq!(event["Orgc"]["name"], json!(crate::ORG_NAME));
    }

    #[test]
    fn without_metadata_only_matching_attributes_are_shown() {
        let state = state();
        let reply = search(&state, json!({"value": "shared.example"}));
        let first = &body(&reply)["response"][0]["Event"];
        let values: Vec<String> = first["Attribute"]
            .as_array()
            .expect("attributes")
            .iter()
            .map(|attribute| field(attribute, "value"))
            .collect();
        assert_eq!(values, vec!["shared.example"]);
        let reply = search(&state, json!({"type": "md5"}));
        let object = &body(&reply)["response"][0]["Event"]["Object"][0];
        assert_eq!(object["Attribute"][0]["type"], json!("md5"));
        assert!(object["Attribute"][0].get("Sighting").is_some());
    }

    #[test]
    fn an_empty_search_is_refused_like_misp() {
        let state = state();
        for filters in [json!({}), json!({"request": {}}), Value::Null] {
            let reply = search(&state, filters);
            assert_eq!(reply.status, 400);
            assert_eq!(body(&reply)["message"], json!(NO_FILTERS));
        }
    }

    #[test]
    fn time_deltas_count_back_from_now() {
        assert_eq!(time_delta(&json!("2d"), 1_000_000), 1_000_000 - 172_800);
        assert_eq!(time_delta(&json!("12H"), 100_000), 100_000 - 43_200);
        assert_eq!(time_delta(&json!("30m"), 10_000), 10_000 - 1_800);
        assert_eq!(time_delta(&json!(1_700_000_000), 5), 1_700_000_000);
        assert_eq!(time_delta(&json!("xd"), 10), 11);
        assert_eq!(epoch_date(1_704_067_200), "2024-01-01");
    }

    #[test]
    fn a_big_seeded_event_has_every_attribute_tagged_and_sighted() {
        let mut state = State::new();
        let attributes: Vec<Value> = (0..300)
            .map(|index| {
                json!({"type": "ip-dst", "value": format!("10.0.{}.{}", index / 256, index % 256),
                                "Sighting": [{"type": "0"}], "Tag": [{"name": "tlp:green"}]})
            })
            .collect();
        let id = state.seed_event(json!({"info": "big", "Attribute": attributes}));
        let reply = state.view_full_event(&id, VIEW);
        let event = &body(&reply)["Event"];
        assert_eq!(event["attribute_count"], json!("300"));
        assert_eq!(
            event["Attribute"][299]["Sighting"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(
            event["Attribute"][299]["Tag"][0]["name"],
            json!("tlp:green")
        );
    }
}
