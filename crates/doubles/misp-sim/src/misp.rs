//! The simulated MISP: its events, attributes, sightings and tags, and the answer to each
//! request with MISP 2.5's status codes and bodies (messages verbatim from MISP's source
//! where the research had them).

use std::collections::VecDeque;
use std::sync::LazyLock;
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value, json};

use crate::{ForcedBody, ForcedResponse, ORG_NAME, RecordedRequest, RolePermissions};

// Endpoints of the functions beyond the original six, one module per group.
mod attributes_change;
mod events_read;
mod objects;
mod tags_publish;
mod verdict;

/// An answer before it becomes an HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: ReplyBody,
}

#[derive(Debug)]
pub(crate) enum ReplyBody {
    Json(Value),
    Text { content_type: String, text: String },
    Empty,
}

/// Everything the simulator knows, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) latency: Duration,
    pub(crate) forced: VecDeque<ForcedResponse>,
    pub(crate) drops: usize,
    /// Requests to act on and then leave unanswered (the connection closed).
    pub(crate) losses: usize,
    pub(crate) hangs: usize,
    /// Requests to act on and then leave unanswered (the connection left open).
    pub(crate) applied_hangs: usize,
    pub(crate) next_sequence: u64,
    pub(crate) permissions: RolePermissions,
    /// Bare event objects; their attributes carry no `Sighting` (those live in `sightings`).
    events: Vec<Value>,
    /// Sighting rows: id, attribute_id, event_id, org_id, date_sighting, uuid, source, type.
    sightings: Vec<Value>,
    /// Tag definitions, without the per-object `local` flag.
    tags: Vec<Value>,
    /// Warninglists and decaying models (see `verdict`).
    verdict_data: verdict::VerdictData,
    next_event_id: u64,
    next_attribute_id: u64,
    next_sighting_id: u64,
    next_tag_id: u64,
}

pub(crate) const AUTH_FAILED: &str = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";
const ACL_FAILED: &str = "You do not have permission to use this functionality.";
const INTERNAL_ERROR: &str = "An Internal Error Has Occurred.";
const INVALID_JSON: &str = "Invalid JSON input. Make sure that the JSON input is a correctly formatted JSON string. This request has been blocked to avoid an unfiltered request.";
const DUPLICATE_ATTRIBUTE: &str = "A similar attribute already exists for this event.";
const BAD_VALUE: &str =
    "Value not in the right type/format. Please double check the value or select type \"other\".";
const BAD_CATEGORY: &str = "Options depend on the selected category.";
const COMPOSITE_VALUE: &str =
    "Composite type found but the value not in the composite (value1|value2) format.";
const EMPTY_VALUE: &str =
    "Value provided consists purely of control characters and is therefore considered to be empty.";
const BAD_ATTRIBUTE_DISTRIBUTION: &str = "Options: Your organisation only, This community only, Connected communities, All communities, Sharing group, Inherit event";
const ORG_UUID: &str = "5c6983c8-3af8-4304-869c-4800d6c1883c";
const MISP_VERSION: &str = "2.5.1";

/// PyMISP's copy of `GET /attributes/describeTypes.json`: types, default categories, to_ids.
static DESCRIBE_TYPES: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../../../tests/fixtures/misp/describeTypes.json"
    ))
    .unwrap_or(Value::Null)
});

pub(crate) fn is_well_formed_key(key: &str) -> bool {
    key.len() == 40 && key.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

/// The answer `MispSim::fail_next` forces when the test gives no body.
pub(crate) fn default_forced_response(status: u16, body: Option<Value>) -> ForcedResponse {
    let mut headers = Vec::new();
    if status == 429 {
        headers.push(("X-Rate-Limit-Limit".to_string(), "100".to_string()));
        headers.push(("X-Rate-Limit-Remaining".to_string(), "0".to_string()));
        headers.push(("X-Rate-Limit-Reset".to_string(), "1".to_string()));
    }
    let body = match (body, status) {
        (Some(body), _) => ForcedBody::Json(body),
        // What a reverse proxy in front of MISP sends, not MISP itself.
        (None, 502..=504) => ForcedBody::Text {
            content_type: "text/html".to_string(),
            text: format!(
                "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            ),
        },
        (None, 429) => ForcedBody::Json(envelope("Rate limit exceeded.", "/")),
        (None, 403) => ForcedBody::Json(envelope(AUTH_FAILED, "/")),
        (None, 404) => ForcedBody::Json(envelope("Not Found", "/")),
        (None, 405) => ForcedBody::Json(envelope("Method Not Allowed", "/")),
        (None, 500..=599) => ForcedBody::Json(envelope(INTERNAL_ERROR, "/")),
        (None, _) => ForcedBody::Json(envelope("Simulated failure", "/")),
    };
    ForcedResponse {
        status,
        headers,
        body,
    }
}

impl State {
    pub(crate) fn new() -> State {
        State {
            requests: Vec::new(),
            latency: Duration::ZERO,
            forced: VecDeque::new(),
            drops: 0,
            losses: 0,
            hangs: 0,
            applied_hangs: 0,
            next_sequence: 0,
            permissions: RolePermissions::all(),
            events: Vec::new(),
            sightings: Vec::new(),
            tags: Vec::new(),
            verdict_data: verdict::VerdictData::default(),
            next_event_id: 1,
            next_attribute_id: 1,
            next_sighting_id: 1,
            next_tag_id: 1,
        }
    }

    /// Answers one request; the flag is false when no simulated endpoint matched.
    pub(crate) fn answer(
        &mut self,
        key: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        raw_body: &[u8],
        body: &Value,
    ) -> (Reply, bool) {
        let path = uri.path();
        let mut segments: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
        // `servers/getVersion.json` selects JSON just like the Accept header.
        let json_suffix = match segments.get_mut(1) {
            Some(action) => match action.strip_suffix(".json") {
                Some(stripped) => {
                    *action = stripped;
                    true
                }
                None => false,
            },
            None => false,
        };
        if segments.as_slice() == ["users", "login"] {
            return (html_login_page(), true);
        }
        let accepts_json = headers
            .get(axum::http::header::ACCEPT)
            .is_some_and(|value| value.as_bytes() == b"application/json");
        if !accepts_json && !json_suffix {
            // Without the exact Accept header MISP treats the call as a browser's.
            return (
                Reply {
                    status: 302,
                    headers: vec![("Location".to_string(), "/users/login".to_string())],
                    body: ReplyBody::Empty,
                },
                true,
            );
        }
        if !is_authorised(key, headers) {
            return (error(403, AUTH_FAILED, path), true);
        }
        let post = method == Method::POST;
        let get = method == Method::GET || method == Method::HEAD;
        let permissions = self.permissions;
        let route = (segments.first().copied(), segments.get(1).copied());
        let argument = segments.get(2).copied();
        let needs_json = post && !raw_body.is_empty() && body.is_string();
        if let Some(reply) = self.answer_attributes_change(method, &segments, body, path) {
            return (reply, true);
        }
        if let Some(reply) = self.answer_objects(method, &segments, body, path) {
            return (reply, true);
        }
        let reply = match route {
            (Some("events"), Some("add")) if post => {
                if !permissions.add {
                    error(403, ACL_FAILED, path)
                } else if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    self.add_event(body)
                }
            }
            (Some("events"), Some("view")) if get || post => match argument {
                Some(reference) => self.view_full_event(reference, path),
                None => error(404, "Invalid event", path),
            },
            (Some("attributes"), Some("add")) if post => {
                if !permissions.add {
                    error(403, ACL_FAILED, path)
                } else if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    match argument {
                        Some(reference) => self.add_attributes(reference, body, path),
                        None => error(405, "No event ID set.", path),
                    }
                }
            }
            (Some("events"), Some("restSearch")) if post => {
                if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    self.search_events(body, path)
                }
            }
            (Some("attributes"), Some("restSearch")) if post => {
                if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    self.search_attributes(body, path)
                }
            }
            (Some("sightings"), Some("add")) if post => {
                if !permissions.sighting {
                    error(403, ACL_FAILED, path)
                } else if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    self.add_sighting(argument, body)
                }
            }
            (Some("sightings"), Some("listSightings")) if post => {
                if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    self.list_sightings(body, path)
                }
            }
            (Some("tags"), Some("attachTagToObject")) if post => {
                if !permissions.tagger {
                    error(403, ACL_FAILED, path)
                } else if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    self.attach_tag(body, path)
                }
            }
            (Some("warninglists"), Some("checkValue")) if post => {
                if needs_json {
                    error(405, INVALID_JSON, path)
                } else {
                    self.check_warninglist_values(body, path)
                }
            }
            (Some("servers"), Some("getVersion")) if get => {
                if permissions.auth {
                    ok(json!({
                        "version": MISP_VERSION,
                        "pymisp_recommended_version": MISP_VERSION,
                        "perm_sync": false,
                        "perm_sighting": permissions.sighting,
                        "perm_galaxy_editor": false,
                        "perm_analyst_data": true,
                        "uuid": "-",
                        "request_encoding": ["gzip", "br"],
                        "filter_sightings": true,
                    }))
                } else {
                    error(403, ACL_FAILED, path)
                }
            }
            (Some("servers"), Some("getPyMISPVersion")) if get => {
                ok(json!({"version": MISP_VERSION}))
            }
            (Some("servers"), Some("index")) if get => {
                if permissions.site_admin {
                    ok(json!([]))
                } else {
                    error(403, ACL_FAILED, path)
                }
            }
            (Some("users"), Some("view")) if get && argument == Some("me") => {
                ok(self.me(permissions))
            }
            (Some("attributes"), Some("describeTypes")) if get => {
                ok(json!({"result": DESCRIBE_TYPES.get("result").cloned().unwrap_or(Value::Null)}))
            }
            (Some("tags"), Some("removeTagFromObject"))
            | (Some("events" | "attributes"), Some("removeTag"))
            | (Some("events"), Some("publish" | "alert")) => {
                self.answer_tags_publish(method, &segments, body, needs_json, path)
            }
            (Some(controller), Some(action)) if is_known_action(controller, action) => {
                error(405, "Method Not Allowed", path)
            }
            _ => return (error(404, "Not Found", path), false),
        };
        (reply, true)
    }

    /// Records how a request was answered.
    pub(crate) fn finish(&mut self, sequence: u64, status: u16, known_endpoint: bool) {
        if let Some(request) = self
            .requests
            .iter_mut()
            .rev()
            .find(|request| request.sequence == sequence)
        {
            request.status = Some(status);
            request.known_endpoint = known_endpoint;
        }
    }

    pub(crate) fn seed_event(&mut self, event: Value) -> String {
        let mut event = unwrap_object(event, &["Event"]);
        let template = self.new_event_object(
            event.get("info").and_then(Value::as_str).unwrap_or(""),
            0,
            4,
            0,
        );
        let proposed_id = event.get("id").and_then(int_like);
        let id = match proposed_id {
            Some(id) if id > 0 && self.event_index(&id.to_string()).is_none() => id as u64,
            _ => {
                let id = self.next_event_id;
                self.next_event_id += 1;
                id
            }
        };
        self.next_event_id = self.next_event_id.max(id + 1);
        if let (Value::Object(target), Value::Object(defaults)) = (&mut event, template) {
            for (name, value) in defaults {
                target.entry(name).or_insert(value);
            }
            target.insert("id".to_string(), json!(id.to_string()));
            // Older captures lack fields MISP 2.5 sends; fill them in so views look current.
            for organisation in ["Org", "Orgc"] {
                if let Some(Value::Object(fields)) = target.get_mut(organisation) {
                    fields.entry("local").or_insert(json!(true));
                }
            }
            if target
                .get("uuid")
                .and_then(Value::as_str)
                .is_none_or(|uuid| self.event_by_uuid(uuid).is_some())
            {
                target.insert("uuid".to_string(), json!(new_uuid()));
            }
        }
        let event_tags = take_array(&mut event, "Tag");
        let registered: Vec<Value> = event_tags
            .into_iter()
            .map(|tag| self.register_seed_tag(tag))
            .collect();
        // Attributes and objects (with theirs) are stored by events_read.
        let attribute_count = self.seed_attributes_and_objects(&mut event, id);
        if let Value::Object(target) = &mut event {
            target.insert(
                "attribute_count".to_string(),
                json!(attribute_count.to_string()),
            );
            target.insert("Tag".to_string(), Value::Array(registered));
        }
        self.events.push(event);
        self.events
            .sort_by_key(|event| event.get("id").and_then(int_like).unwrap_or(0));
        id.to_string()
    }

    pub(crate) fn event_views(&self) -> Vec<Value> {
        self.events
            .iter()
            .map(|event| json!({"Event": self.event_view(event, true)}))
            .collect()
    }

    fn add_event(&mut self, body: &Value) -> Reply {
        const URL: &str = "/events/add";
        let event = unwrap_object(body.clone(), &["request", "Event"]);
        let Some(fields) = event.as_object().filter(|fields| !fields.is_empty()) else {
            return error(405, "No valid event data received.", URL);
        };
        let mut problems = Map::new();
        let info = fields.get("info").map(value_text).unwrap_or_default();
        if info.trim().is_empty() {
            problems.insert("info".to_string(), json!(["Info cannot be empty."]));
        }
        let threat_level = number_field(fields, "threat_level_id", 4);
        if !(1..=4).contains(&threat_level) {
            problems.insert(
                "threat_level_id".to_string(),
                json!(["Options : 1, 2, 3, 4 (for High, Medium, Low, Undefined)"]),
            );
        }
        let analysis = number_field(fields, "analysis", 0);
        if !(0..=2).contains(&analysis) {
            problems.insert(
                "analysis".to_string(),
                json!(["Options : 0, 1, 2 (for Initial, Ongoing, Completed)"]),
            );
        }
        let distribution = number_field(fields, "distribution", 0);
        if !(0..=4).contains(&distribution) {
            problems.insert(
                "distribution".to_string(),
                json!(["Options: Your organisation only, This community only, Connected communities, All communities, Sharing group"]),
            );
        }
        let date = fields.get("date").and_then(Value::as_str);
        if let Some(date) = date
            && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err()
        {
            problems.insert(
                "date".to_string(),
                json!(["Expected date format: YYYY-MM-DD"]),
            );
        }
        if !problems.is_empty() {
            return save_fail("Could not add Event", URL, json!({"Event": problems}));
        }
        if distribution == 4 {
            // The simulator has no sharing groups.
            return error(405, "Invalid Sharing Group or not authorised.", URL);
        }
        if let Some(uuid) = fields.get("uuid").and_then(Value::as_str)
            && let Some(existing) = self.event_by_uuid(uuid)
        {
            let existing_id = self.events[existing]
                .get("id")
                .map(value_text)
                .unwrap_or_default();
            let mut reply = error(
                404,
                "Event already exists, if you would like to edit it, use the url in the location header.",
                URL,
            );
            reply
                .headers
                .push(("Location".to_string(), format!("/events/{existing_id}")));
            return reply;
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        let mut event = self.new_event_object(&info, distribution, threat_level, analysis);
        if let Value::Object(target) = &mut event {
            target.insert("id".to_string(), json!(id.to_string()));
            if let Some(date) = date {
                target.insert("date".to_string(), json!(date));
            }
            if let Some(uuid) = fields.get("uuid").and_then(Value::as_str) {
                target.insert("uuid".to_string(), json!(uuid));
            }
            if let Some(published) = fields.get("published") {
                target.insert("published".to_string(), json!(truthy(published)));
            }
        }
        let tag_names: Vec<String> = fields
            .get("Tag")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(|tag| tag.get("name").map(value_text))
                    .collect()
            })
            .unwrap_or_default();
        let tags: Vec<Value> = tag_names
            .iter()
            .map(|name| {
                let index = self.find_or_create_tag(name);
                tag_on_object(&self.tags[index], false)
            })
            .collect();
        if let Value::Object(target) = &mut event {
            target.insert("Tag".to_string(), Value::Array(tags));
        }
        self.events.push(event);
        let index = self.events.len() - 1;
        if let Some(attributes) = fields.get("Attribute").and_then(Value::as_array) {
            for attribute in attributes {
                // MISP reports per-attribute problems inside the event; the simulator skips them.
                let _ = self.add_one_attribute(index, attribute);
            }
        }
        ok(json!({"Event": self.event_view(&self.events[index], false)}))
    }

    fn add_attributes(&mut self, reference: &str, body: &Value, path: &str) -> Reply {
        const URL: &str = "/attributes/add";
        let Some(index) = self.event_index(reference) else {
            return error(404, "Invalid event", path);
        };
        let attribute = unwrap_object(body.clone(), &["request", "Attribute"]);
        let batch: Option<Vec<Value>> = match &attribute {
            Value::Array(items) => Some(items.clone()),
            Value::Object(fields) => match fields.get("value") {
                Some(Value::Array(values)) => Some(
                    values
                        .iter()
                        .map(|value| {
                            let mut single = fields.clone();
                            single.insert("value".to_string(), value.clone());
                            Value::Object(single)
                        })
                        .collect(),
                ),
                _ => None,
            },
            _ => return error(405, "No valid attribute data received.", path),
        };
        match batch {
            None => match self.add_one_attribute(index, &attribute) {
                Ok(added) => ok(json!({"Attribute": added, "AttributeTag": []})),
                Err(problems) => save_fail("Could not add Attribute", URL, Value::Object(problems)),
            },
            Some(items) => {
                let mut added = Vec::new();
                let mut problems = Map::new();
                for (position, item) in items.iter().enumerate() {
                    match self.add_one_attribute(index, item) {
                        Ok(attribute) => added.push(attribute),
                        Err(item_problems) => {
                            problems.insert(
                                format!("attribute_{position}"),
                                Value::Object(item_problems),
                            );
                        }
                    }
                }
                if added.is_empty() {
                    return save_fail("Could not add Attribute", URL, Value::Object(problems));
                }
                let mut reply = json!({"Attribute": added});
                if !problems.is_empty() {
                    reply["errors"] = Value::Object(problems);
                }
                ok(reply)
            }
        }
    }

    fn search_attributes(&self, body: &Value, path: &str) -> Reply {
        let filters = unwrap_object(body.clone(), &["request"]);
        let Some(filters) = filters.as_object().filter(|filters| !filters.is_empty()) else {
            return error(
                400,
                "Either specify the search terms in the url, or POST a json with the filter parameters.",
                path,
            );
        };
        let attribute_filter = AttributeFilter::from(filters);
        let event_ids = filters.get("eventid").map(string_list);
        let attribute_uuids = filters.get("uuid").map(string_list);
        // MISP adds the event's tags for the decay score's sake (fetchAttributes).
        let include_event_tags = filters.get("includeEventTags").is_some_and(truthy)
            || filters.get("includeDecayScore").is_some_and(truthy);
        let include_context = filters.get("includeContext").is_some_and(truthy);
        let include_sightings = filters.get("includeSightings").is_some_and(truthy);
        let deleted = attributes_change::DeletedFilter::from_filters(filters);
        let mut found = Vec::new();
        for event in &self.events {
            let event_id = event.get("id").map(value_text).unwrap_or_default();
            if event_ids
                .as_ref()
                .is_some_and(|ids| !ids.contains(&event_id))
            {
                continue;
            }
            // Objects' attributes too: restSearch flattens them (fetchAttributes' `flatten`).
            let objects_attributes = event
                .get("Object")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|object| object.get("Attribute").and_then(Value::as_array))
                .flatten();
            for attribute in event
                .get("Attribute")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(objects_attributes)
            {
                let uuid = attribute.get("uuid").map(value_text).unwrap_or_default();
                if attribute_uuids
                    .as_ref()
                    .is_some_and(|uuids| !uuids.contains(&uuid))
                {
                    continue;
                }
                if !attribute_filter.matches(attribute) || !deleted.shows(attribute) {
                    continue;
                }
                let mut output = attribute.clone();
                let mut tags = output
                    .get("Tag")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if include_event_tags {
                    for tag in event
                        .get("Tag")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if tag.get("exportable").is_none_or(truthy) {
                            let mut inherited = tag.clone();
                            inherited["inherited"] = json!(1);
                            tags.push(inherited);
                        }
                    }
                }
                if let Value::Object(fields) = &mut output {
                    fields.remove("Galaxy");
                    fields.remove("ShadowAttribute");
                    fields.remove("Tag");
                    if !tags.is_empty() {
                        fields.insert("Tag".to_string(), Value::Array(tags));
                    }
                    if include_sightings {
                        fields.insert(
                            "Sighting".to_string(),
                            Value::Array(self.attribute_sightings(attribute)),
                        );
                    }
                    fields.insert(
                        "Event".to_string(),
                        if include_context {
                            event_context(event)
                        } else {
                            event_stub(event)
                        },
                    );
                    self.add_search_extras(filters, attribute, fields);
                }
                found.push(output);
            }
        }
        let page = paginate(found, filters);
        let count = page.len();
        Reply {
            status: 200,
            headers: result_headers(count),
            body: ReplyBody::Json(json!({"response": {"Attribute": page}})),
        }
    }

    fn add_sighting(&mut self, path_reference: Option<&str>, body: &Value) -> Reply {
        let request = unwrap_object(body.clone(), &["request", "Sighting"]);
        let soft_error = |reason: &str| {
            ok(json!({"message": format!("Could not add the Sighting. Reason: {reason}")}))
        };
        let sighting_type = request
            .get("type")
            .map(value_text)
            .unwrap_or_else(|| "0".to_string());
        if !["0", "1", "2"].contains(&sighting_type.as_str()) {
            return soft_error("Invalid type, please change it before you POST 1000000 sightings.");
        }
        let mut values = request.get("values").map(string_list).unwrap_or_default();
        if let Some(value) = request.get("value") {
            values.push(value_text(value));
        }
        // An attribute in the path, else the body's uuid, else its id; values count only
        // when no attribute is named.
        let attribute_reference = path_reference.map(str::to_string).or_else(|| {
            request
                .get("uuid")
                .or_else(|| request.get("id"))
                .map(value_text)
        });
        if values.is_empty() && attribute_reference.is_none() {
            return soft_error("No valid attributes found.");
        }
        let scope_event_ids = request
            .get("filters")
            .and_then(|filters| filters.get("eventid"))
            .map(string_list);
        let mut targets = Vec::new();
        for event in &self.events {
            let event_id = event.get("id").map(value_text).unwrap_or_default();
            if scope_event_ids
                .as_ref()
                .is_some_and(|ids| !ids.contains(&event_id))
            {
                continue;
            }
            for attribute in event
                .get("Attribute")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let attribute_id = attribute.get("id").map(value_text).unwrap_or_default();
                let uuid = attribute.get("uuid").map(value_text).unwrap_or_default();
                let by_reference = attribute_reference.as_ref().is_some_and(|reference| {
                    *reference == attribute_id || reference.eq_ignore_ascii_case(&uuid)
                });
                let by_value = attribute_reference.is_none()
                    && values
                        .iter()
                        .any(|value| value_matches_exactly(attribute, value));
                if by_reference || by_value {
                    targets.push((attribute_id, event_id.clone()));
                }
            }
        }
        if targets.is_empty() {
            return soft_error("No valid attributes found that match the criteria.");
        }
        let source = request
            .get("source")
            .map(value_text)
            .unwrap_or_default()
            .trim()
            .to_string();
        let timestamp = request
            .get("timestamp")
            .and_then(int_like)
            .unwrap_or_else(now);
        // Only the text "2" (MISP compares strictly) replaces the org's earlier expiration.
        let replaces_expiration = request.get("type") == Some(&json!("2"));
        let mut last = Value::Null;
        for (attribute_id, event_id) in targets {
            if replaces_expiration {
                self.sightings.retain(|sighting| {
                    sighting.get("attribute_id").map(value_text).as_deref()
                        != Some(attribute_id.as_str())
                        || sighting.get("type").map(value_text).as_deref() != Some("2")
                        || sighting.get("org_id").map(value_text).as_deref() != Some("1")
                });
            }
            let id = self.next_sighting_id;
            self.next_sighting_id += 1;
            last = json!({
                "id": id.to_string(),
                "attribute_id": attribute_id,
                "event_id": event_id,
                "org_id": "1",
                "date_sighting": timestamp.to_string(),
                "uuid": new_uuid(),
                "source": source,
                "type": sighting_type,
            });
            self.sightings.push(last.clone());
        }
        ok(json!({"Sighting": last}))
    }

    fn list_sightings(&self, body: &Value, path: &str) -> Reply {
        let request = unwrap_object(body.clone(), &["request"]);
        let context = request
            .get("context")
            .map(value_text)
            .unwrap_or_else(|| "event".to_string());
        let id = request.get("id").map(value_text).unwrap_or_default();
        let org_filter = request.get("org_id").map(value_text);
        let field = match context.as_str() {
            "event" => {
                if self.event_index(&id).is_none() {
                    return error(405, "Invalid object.", path);
                }
                "event_id"
            }
            "attribute" => {
                let known = id
                    .parse::<u64>()
                    .is_ok_and(|number| self.attribute_id_exists(number));
                if !known {
                    return error(405, "Invalid object.", path);
                }
                "attribute_id"
            }
            _ => return error(500, INTERNAL_ERROR, path),
        };
        let mut rows: Vec<&Value> = self
            .sightings
            .iter()
            .filter(|sighting| sighting.get(field).map(value_text) == Some(id.clone()))
            .filter(|sighting| {
                org_filter
                    .as_ref()
                    .is_none_or(|org| sighting.get("org_id").map(value_text) == Some(org.clone()))
            })
            .collect();
        // Newest first, as MISP orders them.
        rows.sort_by_key(|sighting| {
            std::cmp::Reverse((
                sighting
                    .get("date_sighting")
                    .and_then(int_like)
                    .unwrap_or(0),
                sighting.get("id").and_then(int_like).unwrap_or(0),
            ))
        });
        ok(Value::Array(
            rows.into_iter()
                .map(|sighting| json!({"Sighting": sighting, "Organisation": {"name": ORG_NAME}}))
                .collect(),
        ))
    }

    fn attach_tag(&mut self, body: &Value, path: &str) -> Reply {
        const URL: &str = "/tags/attachTagToObject";
        let request = unwrap_object(body.clone(), &["request"]);
        let Some(uuid) = request
            .get("uuid")
            .map(value_text)
            .filter(|uuid| !uuid.is_empty())
        else {
            return error(405, "Invalid object uuid", path);
        };
        let Some(tag_reference) = request
            .get("tag")
            .map(value_text)
            .filter(|tag| !tag.is_empty())
        else {
            return error(405, "Invalid tag", path);
        };
        if uuid::Uuid::parse_str(&uuid).is_err() {
            return error(500, INTERNAL_ERROR, path);
        }
        let local = request.get("local").is_some_and(truthy);
        let target = match self.event_by_uuid(&uuid) {
            Some(index) => Target::Event(index),
            None => match self.attribute_by_uuid(&uuid) {
                Some((event, attribute)) => Target::Attribute(event, attribute),
                None => return error(404, "Invalid Target.", URL),
            },
        };
        let existing = self.tags.iter().position(|tag| {
            tag.get("id").map(value_text) == Some(tag_reference.clone())
                || tag
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.eq_ignore_ascii_case(&tag_reference))
        });
        let tag_index = match existing {
            Some(index) => index,
            None if self.permissions.tag_editor => self.find_or_create_tag(&tag_reference),
            None => {
                return save_fail(
                    "Could not attachTagToObject Tag",
                    URL,
                    json!(
                        "Failed to attach 1 tags. Reasons: {\"0\":\"Tag not found and insufficient privileges to create it.\"}"
                    ),
                );
            }
        };
        let tag = self.tags[tag_index].clone();
        let tag_id = tag.get("id").map(value_text).unwrap_or_default();
        let tag_name = tag.get("name").map(value_text).unwrap_or_default();
        let (object, kind) = match target {
            Target::Event(index) => (&mut self.events[index], "Event"),
            Target::Attribute(event, attribute) => {
                (&mut self.events[event]["Attribute"][attribute], "Attribute")
            }
        };
        let object_id = object.get("id").map(value_text).unwrap_or_default();
        let already = object
            .get("Tag")
            .and_then(Value::as_array)
            .is_some_and(|tags| {
                tags.iter()
                    .any(|attached| attached.get("id").map(value_text) == Some(tag_id.clone()))
            });
        let message = if already {
            format!(
                "{kind} already has the requested tag attached, no changes had to be made for tag {tag_name}."
            )
        } else {
            match object.get_mut("Tag").and_then(Value::as_array_mut) {
                Some(tags) => tags.push(tag_on_object(&tag, local)),
                None => object["Tag"] = json!([tag_on_object(&tag, local)]),
            }
            object["timestamp"] = json!(now().to_string());
            if kind == "Event" && !local {
                object["published"] = json!(false);
            }
            let scope = if local { "Local" } else { "Global" };
            format!(
                "{scope} tag {tag_name}({tag_id}) successfully attached to {kind}({object_id})."
            )
        };
        ok(json!({
            "saved": true,
            "success": true,
            "name": message,
            "message": message,
            "url": URL,
        }))
    }

    fn me(&self, permissions: RolePermissions) -> Value {
        json!({
            "User": {
                "id": "1",
                "org_id": "1",
                "server_id": "0",
                "email": "admin@admin.test",
                "autoalert": false,
                "invited_by": "0",
                "gpgkey": null,
                "certif_public": "",
                "nids_sid": "4000000",
                "termsaccepted": true,
                "newsread": "0",
                "role_id": "1",
                "change_pw": false,
                "contactalert": false,
                "disabled": false,
                "expiration": null,
                "current_login": now().to_string(),
                "last_login": now().to_string(),
                "force_logout": false,
                "date_created": null,
                "date_modified": now().to_string(),
                "last_api_access": now().to_string(),
            },
            "Role": {
                "id": "1",
                "name": if permissions.site_admin { "admin" } else { "simulated role" },
                "perm_add": permissions.add,
                "perm_modify": permissions.add,
                "perm_modify_org": permissions.add,
                "perm_publish": permissions.publish,
                "perm_delegate": permissions.add,
                "perm_sync": false,
                "perm_admin": permissions.site_admin,
                "perm_audit": permissions.site_admin,
                "perm_auth": permissions.auth,
                "perm_site_admin": permissions.site_admin,
                "perm_regexp_access": permissions.site_admin,
                "perm_tagger": permissions.tagger,
                "perm_template": permissions.site_admin,
                "perm_sharing_group": permissions.site_admin,
                "perm_tag_editor": permissions.tag_editor,
                "perm_sighting": permissions.sighting,
                "perm_object_template": permissions.site_admin,
                "default_role": false,
                "memory_limit": "",
                "max_execution_time": "",
                "restricted_to_site_admin": false,
                "perm_publish_zmq": permissions.publish,
                "perm_publish_kafka": permissions.publish,
                "perm_decaying": permissions.site_admin,
                "enforce_rate_limit": false,
                "rate_limit_count": "0",
                "perm_galaxy_editor": false,
                "perm_warninglist": false,
                "perm_view_feed_correlations": false,
                "perm_analyst_data": true,
            },
            "UserSetting": [],
            "Organisation": org(),
        })
    }

    fn add_one_attribute(
        &mut self,
        event_index: usize,
        attribute: &Value,
    ) -> Result<Value, Map<String, Value>> {
        let mut problems = Map::new();
        let attribute_type = attribute.get("type").map(value_text).unwrap_or_default();
        let value = attribute.get("value").map(value_text).unwrap_or_default();
        let known_type = DESCRIBE_TYPES["result"]["types"]
            .as_array()
            .is_some_and(|types| {
                types
                    .iter()
                    .any(|known| known.as_str() == Some(attribute_type.as_str()))
            });
        if !known_type {
            problems.insert("type".to_string(), json!([BAD_CATEGORY]));
        }
        let category = attribute
            .get("category")
            .map(value_text)
            .unwrap_or_else(|| default_category(&attribute_type));
        if known_type && !category_allows(&category, &attribute_type) {
            problems.insert("type".to_string(), json!([BAD_CATEGORY]));
        }
        if value.trim().is_empty() {
            problems.insert("value".to_string(), json!([EMPTY_VALUE]));
        } else if attribute_type.contains('|') && !value.contains('|') {
            problems.insert("value".to_string(), json!([COMPOSITE_VALUE]));
        } else if known_type && !value_fits_type(&attribute_type, value.trim()) {
            problems.insert("value".to_string(), json!([BAD_VALUE]));
        }
        let distribution = attribute
            .get("distribution")
            .map(value_text)
            .unwrap_or_else(|| "5".to_string());
        if !["0", "1", "2", "3", "4", "5"].contains(&distribution.as_str()) {
            problems.insert(
                "distribution".to_string(),
                json!([BAD_ATTRIBUTE_DISTRIBUTION]),
            );
        }
        let duplicate = self.events[event_index]
            .get("Attribute")
            .and_then(Value::as_array)
            .is_some_and(|attributes| {
                attributes.iter().any(|existing| {
                    existing.get("type").map(value_text) == Some(attribute_type.clone())
                        && existing.get("category").map(value_text) == Some(category.clone())
                        && existing.get("value").map(value_text) == Some(value.trim().to_string())
                        && !existing.get("deleted").is_some_and(truthy)
                        && existing
                            .get("object_id")
                            .map(value_text)
                            .is_none_or(|id| id == "0")
                })
            });
        if duplicate && problems.is_empty() {
            problems.insert("value".to_string(), json!([DUPLICATE_ATTRIBUTE]));
        }
        if let Some(problem) = self.attribute_uuid_problem(attribute.get("uuid")) {
            problems.insert("uuid".to_string(), json!([problem]));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let id = self.next_attribute_id;
        self.next_attribute_id += 1;
        let event_id = self.events[event_index]
            .get("id")
            .and_then(int_like)
            .unwrap_or(0) as u64;
        let to_ids = attribute
            .get("to_ids")
            .map(truthy)
            .unwrap_or_else(|| default_to_ids(&attribute_type));
        let comment = attribute.get("comment").map(value_text).unwrap_or_default();
        let mut stored = attribute_object(
            id,
            event_id,
            &attribute_type,
            &category,
            value.trim(),
            to_ids,
            &distribution,
            &comment,
        );
        if let Some(uuid) = attribute.get("uuid").and_then(Value::as_str) {
            stored["uuid"] = json!(uuid);
        }
        let event = &mut self.events[event_index];
        match event.get_mut("Attribute").and_then(Value::as_array_mut) {
            Some(attributes) => attributes.push(stored.clone()),
            None => event["Attribute"] = json!([stored.clone()]),
        }
        let count = event["Attribute"].as_array().map_or(0, Vec::len);
        event["attribute_count"] = json!(count.to_string());
        event["published"] = json!(false);
        event["timestamp"] = json!(now().to_string());
        // The add answer has value1/value2 and none of the view's nested lists.
        let (value1, value2) = match value.trim().split_once('|') {
            Some((first, second)) if attribute_type.contains('|') => {
                (first.to_string(), second.to_string())
            }
            _ => (value.trim().to_string(), String::new()),
        };
        if let Value::Object(fields) = &mut stored {
            fields.remove("Galaxy");
            fields.remove("ShadowAttribute");
            fields.remove("Tag");
            fields.insert("value1".to_string(), json!(value1));
            fields.insert("value2".to_string(), json!(value2));
        }
        Ok(stored)
    }

    fn new_event_object(
        &mut self,
        info: &str,
        distribution: i64,
        threat_level: i64,
        analysis: i64,
    ) -> Value {
        let timestamp = now().to_string();
        json!({
            "id": "0",
            "orgc_id": "1",
            "org_id": "1",
            "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "threat_level_id": threat_level.to_string(),
            "info": info,
            "published": false,
            "uuid": new_uuid(),
            "attribute_count": "0",
            "analysis": analysis.to_string(),
            "timestamp": timestamp,
            "distribution": distribution.to_string(),
            "proposal_email_lock": false,
            "locked": false,
            "publish_timestamp": "0",
            "sharing_group_id": "0",
            "disable_correlation": false,
            "extends_uuid": "",
            "protected": null,
            "event_creator_email": "admin@admin.test",
            "Org": org(),
            "Orgc": org(),
            "Attribute": [],
            "ShadowAttribute": [],
            "RelatedEvent": [],
            "Galaxy": [],
            "Object": [],
            "EventReport": [],
            "CryptographicKey": [],
            "Tag": [],
        })
    }

    /// The event as `events/view` shows it: sightings joined in, an empty `Tag` left out.
    fn event_view(&self, event: &Value, with_sightings: bool) -> Value {
        let mut view = event.clone();
        if let Some(attributes) = view.get_mut("Attribute").and_then(Value::as_array_mut) {
            attributes.retain(|attribute| !attributes_change::is_deleted(attribute));
            for attribute in attributes {
                let sightings = if with_sightings {
                    self.attribute_sightings(attribute)
                } else {
                    Vec::new()
                };
                if let Value::Object(fields) = attribute {
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
        if let Value::Object(fields) = &mut view
            && fields
                .get("Tag")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        {
            fields.remove("Tag");
        }
        view
    }

    fn attribute_sightings(&self, attribute: &Value) -> Vec<Value> {
        let attribute_id = attribute.get("id").map(value_text);
        let attribute_uuid = attribute.get("uuid").cloned().unwrap_or(Value::Null);
        self.sightings
            .iter()
            .filter(|sighting| sighting.get("attribute_id").map(value_text) == attribute_id)
            .map(|sighting| {
                let mut row = sighting.clone();
                row["Organisation"] = json!({"id": "1", "uuid": ORG_UUID, "name": ORG_NAME});
                row["attribute_uuid"] = attribute_uuid.clone();
                row
            })
            .collect()
    }

    fn event_index(&self, reference: &str) -> Option<usize> {
        self.events.iter().position(|event| {
            event.get("id").map(value_text).as_deref() == Some(reference)
                || event.get("uuid").and_then(Value::as_str) == Some(reference)
        })
    }

    fn event_by_uuid(&self, uuid: &str) -> Option<usize> {
        self.events.iter().position(|event| {
            event
                .get("uuid")
                .and_then(Value::as_str)
                .is_some_and(|known| known.eq_ignore_ascii_case(uuid))
        })
    }

    fn attribute_by_uuid(&self, uuid: &str) -> Option<(usize, usize)> {
        self.events
            .iter()
            .enumerate()
            .find_map(|(event_index, event)| {
                event
                    .get("Attribute")
                    .and_then(Value::as_array)?
                    .iter()
                    .position(|attribute| {
                        attribute
                            .get("uuid")
                            .and_then(Value::as_str)
                            .is_some_and(|known| known.eq_ignore_ascii_case(uuid))
                    })
                    .map(|attribute_index| (event_index, attribute_index))
            })
    }

    fn attribute_id_exists(&self, id: u64) -> bool {
        let id = id.to_string();
        self.events.iter().any(|event| {
            event
                .get("Attribute")
                .and_then(Value::as_array)
                .is_some_and(|attributes| {
                    attributes.iter().any(|attribute| {
                        attribute.get("id").map(value_text).as_deref() == Some(id.as_str())
                    })
                })
        })
    }

    fn find_or_create_tag(&mut self, name: &str) -> usize {
        if let Some(index) = self.tags.iter().position(|tag| {
            tag.get("name")
                .and_then(Value::as_str)
                .is_some_and(|known| known.eq_ignore_ascii_case(name))
        }) {
            return index;
        }
        let id = self.next_tag_id;
        self.next_tag_id += 1;
        self.tags.push(json!({
            "id": id.to_string(),
            "name": name,
            "colour": colour_for(name),
            "exportable": true,
            "user_id": "0",
            "hide_tag": false,
            "numerical_value": null,
            "is_galaxy": name.starts_with("misp-galaxy:"),
            "is_custom_galaxy": false,
            "local_only": false,
        }));
        self.tags.len() - 1
    }

    /// Registers a tag from seeded data and returns it as attached (with its `local` flag).
    fn register_seed_tag(&mut self, tag: Value) -> Value {
        let name = tag.get("name").map(value_text).unwrap_or_default();
        let local = tag.get("local").is_some_and(truthy);
        let known = self
            .tags
            .iter()
            .position(|known| known.get("name").map(value_text).as_deref() == Some(name.as_str()));
        let index = match known {
            Some(index) => index,
            None => {
                let proposed = tag
                    .get("id")
                    .and_then(int_like)
                    .filter(|id| *id > 0)
                    .map(|id| id as u64);
                let clashes = |id: u64| {
                    self.tags
                        .iter()
                        .any(|known| known.get("id").and_then(int_like) == Some(id as i64))
                };
                let id = match proposed {
                    Some(id) if !clashes(id) => id,
                    _ => self.next_tag_id,
                };
                self.next_tag_id = self.next_tag_id.max(id + 1);
                let mut definition = tag.clone();
                if let Value::Object(fields) = &mut definition {
                    fields.remove("local");
                    fields.remove("inherited");
                    fields.insert("id".to_string(), json!(id.to_string()));
                    fields
                        .entry("colour")
                        .or_insert_with(|| json!(colour_for(&name)));
                    fields.entry("exportable").or_insert(json!(true));
                    fields.entry("user_id").or_insert(json!("0"));
                    fields.entry("hide_tag").or_insert(json!(false));
                    fields.entry("numerical_value").or_insert(Value::Null);
                    fields
                        .entry("is_galaxy")
                        .or_insert(json!(name.starts_with("misp-galaxy:")));
                    fields.entry("is_custom_galaxy").or_insert(json!(false));
                    fields.entry("local_only").or_insert(json!(false));
                }
                self.tags.push(definition);
                self.tags.len() - 1
            }
        };
        tag_on_object(&self.tags[index], local)
    }
}

/// What an `attachTagToObject` uuid named.
enum Target {
    Event(usize),
    Attribute(usize, usize),
}

/// The `value` and `type` filters of the restSearch endpoints.
struct AttributeFilter {
    values: Option<Vec<String>>,
    types: Option<Vec<String>>,
}

impl AttributeFilter {
    fn from(filters: &Map<String, Value>) -> AttributeFilter {
        AttributeFilter {
            values: filters
                .get("value")
                .map(string_list)
                .filter(|list| !list.is_empty()),
            types: filters
                .get("type")
                .map(string_list)
                .filter(|list| !list.is_empty()),
        }
    }

    fn matches(&self, attribute: &Value) -> bool {
        let value_ok = self.values.as_ref().is_none_or(|values| {
            let text = attribute.get("value").map(value_text).unwrap_or_default();
            let parts: Vec<&str> = text.split('|').collect();
            values.iter().any(|pattern| {
                like(pattern, &text)
                    || (parts.len() == 2 && parts.iter().any(|part| like(pattern, part)))
            })
        });
        let type_ok = self.types.as_ref().is_none_or(|types| {
            let attribute_type = attribute.get("type").map(value_text).unwrap_or_default();
            types.contains(&attribute_type)
        });
        value_ok && type_ok
    }
}

fn is_authorised(key: &str, headers: &HeaderMap) -> bool {
    let header = headers
        .get("x-misp-auth")
        .or_else(|| headers.get(axum::http::header::AUTHORIZATION));
    let Some(Ok(header)) = header.map(|value| value.to_str()) else {
        return false;
    };
    if header.trim_start().starts_with("Basic") {
        return false;
    }
    header
        .split(',')
        .map(str::trim)
        .any(|token| is_well_formed_key(token) && token == key)
}

fn is_known_action(controller: &str, action: &str) -> bool {
    matches!(
        (controller, action),
        ("events", "add" | "view" | "restSearch")
            | ("attributes", "add" | "restSearch" | "describeTypes")
            | ("sightings", "add" | "listSightings")
            | ("tags", "attachTagToObject")
            | ("warninglists", "checkValue")
            | ("servers", "getVersion" | "getPyMISPVersion" | "index")
            | ("users", "view")
    )
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body: ReplyBody::Json(body),
    }
}

fn envelope(message: &str, url: &str) -> Value {
    json!({"name": message, "message": message, "url": url})
}

fn error(status: u16, message: &str, url: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: ReplyBody::Json(envelope(message, url)),
    }
}

/// MISP's saveFailResponse, which it sends with HTTP 403.
fn save_fail(name: &str, url: &str, errors: Value) -> Reply {
    Reply {
        status: 403,
        headers: Vec::new(),
        body: ReplyBody::Json(json!({
            "saved": false,
            "name": name,
            "message": name,
            "url": url,
            "errors": errors,
        })),
    }
}

fn html_login_page() -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body: ReplyBody::Text {
            content_type: "text/html; charset=UTF-8".to_string(),
            text: "<!DOCTYPE html>\n<html><head><title>Users - MISP</title></head><body><form action=\"/users/login\" method=\"post\"></form></body></html>\n".to_string(),
        },
    }
}

fn result_headers(count: usize) -> Vec<(String, String)> {
    vec![
        ("X-Result-Count".to_string(), count.to_string()),
        ("X-Export-Module-Used".to_string(), "json".to_string()),
        ("X-Response-Format".to_string(), "json".to_string()),
    ]
}

fn paginate(items: Vec<Value>, filters: &Map<String, Value>) -> Vec<Value> {
    let limit = filters
        .get("limit")
        .and_then(int_like)
        .filter(|limit| *limit > 0);
    match limit {
        None => items,
        Some(limit) => {
            let page = filters
                .get("page")
                .and_then(int_like)
                .filter(|page| *page > 0)
                .unwrap_or(1);
            let skip = usize::try_from((page - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            items.into_iter().skip(skip).take(take).collect()
        }
    }
}

fn org() -> Value {
    json!({"id": "1", "name": ORG_NAME, "uuid": ORG_UUID, "local": true})
}

#[allow(clippy::too_many_arguments)]
fn attribute_object(
    id: u64,
    event_id: u64,
    attribute_type: &str,
    category: &str,
    value: &str,
    to_ids: bool,
    distribution: &str,
    comment: &str,
) -> Value {
    json!({
        "id": id.to_string(),
        "type": attribute_type,
        "category": category,
        "to_ids": to_ids,
        "uuid": new_uuid(),
        "event_id": event_id.to_string(),
        "distribution": distribution,
        "timestamp": now().to_string(),
        "comment": comment,
        "sharing_group_id": "0",
        "deleted": false,
        "disable_correlation": false,
        "object_id": "0",
        "object_relation": null,
        "first_seen": null,
        "last_seen": null,
        "value": value,
        "Galaxy": [],
        "ShadowAttribute": [],
        "Tag": [],
    })
}

fn event_stub(event: &Value) -> Value {
    let mut stub = Map::new();
    for name in [
        "org_id",
        "distribution",
        "id",
        "info",
        "orgc_id",
        "uuid",
        "publish_timestamp",
    ] {
        stub.insert(
            name.to_string(),
            event.get(name).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(stub)
}

fn event_context(event: &Value) -> Value {
    let mut context = event.clone();
    if let Value::Object(fields) = &mut context {
        for nested in [
            "Attribute",
            "ShadowAttribute",
            "RelatedEvent",
            "Galaxy",
            "Object",
            "EventReport",
            "CryptographicKey",
            "Org",
        ] {
            fields.remove(nested);
        }
    }
    context
}

fn tag_on_object(definition: &Value, local: bool) -> Value {
    let mut tag = definition.clone();
    tag["local"] = json!(local);
    tag
}

fn default_category(attribute_type: &str) -> String {
    DESCRIBE_TYPES["result"]["sane_defaults"][attribute_type]["default_category"]
        .as_str()
        .unwrap_or("Other")
        .to_string()
}

fn default_to_ids(attribute_type: &str) -> bool {
    truthy(&DESCRIBE_TYPES["result"]["sane_defaults"][attribute_type]["to_ids"])
}

fn category_allows(category: &str, attribute_type: &str) -> bool {
    DESCRIBE_TYPES["result"]["category_type_mappings"][category]
        .as_array()
        .is_some_and(|types| {
            types
                .iter()
                .any(|known| known.as_str() == Some(attribute_type))
        })
}

/// A few of MISP's value checks, enough to exercise the "wrong format" answer.
fn value_fits_type(attribute_type: &str, value: &str) -> bool {
    let hex_of =
        |length: usize| value.len() == length && value.bytes().all(|byte| byte.is_ascii_hexdigit());
    match attribute_type {
        "ip-src" | "ip-dst" => {
            let address = value.split_once('/').map_or(value, |(address, _)| address);
            address.parse::<std::net::IpAddr>().is_ok()
        }
        "md5" => hex_of(32),
        "sha1" => hex_of(40),
        "sha256" => hex_of(64),
        "domain" | "hostname" => value.contains('.') && !value.contains(char::is_whitespace),
        _ => true,
    }
}

fn value_matches_exactly(attribute: &Value, wanted: &str) -> bool {
    let text = attribute.get("value").map(value_text).unwrap_or_default();
    if text == wanted {
        return true;
    }
    let composite = attribute
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.contains('|'));
    composite && text.split('|').any(|part| part == wanted)
}

/// SQL `LIKE` with `%`, case-insensitive as MISP's default collation is.
fn like(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    if !pattern.contains('%') {
        return pattern == text;
    }
    let pieces: Vec<&str> = pattern.split('%').collect();
    let mut rest = text.as_str();
    for (position, piece) in pieces.iter().enumerate() {
        if piece.is_empty() {
            continue;
        }
        if position == 0 {
            match rest.strip_prefix(piece) {
                Some(after) => rest = after,
                None => return false,
            }
        } else if position == pieces.len() - 1 {
            return rest.ends_with(piece);
        } else {
            match rest.find(piece) {
                Some(found) => rest = &rest[found + piece.len()..],
                None => return false,
            }
        }
    }
    true
}

fn colour_for(name: &str) -> String {
    let hash = name.bytes().fold(5381u32, |hash, byte| {
        hash.wrapping_mul(33) ^ u32::from(byte)
    });
    format!("#{:06x}", hash & 0x00ff_ffff)
}

fn unwrap_object(mut value: Value, wrappers: &[&str]) -> Value {
    // Each wrapper is taken off when it is the only key, in the order MISP does.
    for wrapper in wrappers {
        let inner = match &value {
            Value::Object(fields) if fields.len() == 1 => fields.get(*wrapper).cloned(),
            _ => None,
        };
        if let Some(inner) = inner {
            value = inner;
        }
    }
    value
}

fn take_array(value: &mut Value, name: &str) -> Vec<Value> {
    match value.as_object_mut().and_then(|fields| fields.remove(name)) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

fn number_field(fields: &Map<String, Value>, name: &str, default: i64) -> i64 {
    match fields.get(name) {
        None | Some(Value::Null) => default,
        Some(value) => int_like(value).unwrap_or(-1),
    }
}

fn int_like(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => matches!(text.trim(), "1" | "true" | "True"),
        _ => false,
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(value_text).collect(),
        Value::Null => Vec::new(),
        other => vec![value_text(other)],
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
