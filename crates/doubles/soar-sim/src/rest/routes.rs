//! The simulated endpoints: authentication, routing by path, SOAR's JSON shapes, and the
//! state that imports and message-destination updates change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::configuration::{Configuration, HeldElsewhere};
use super::{
    API_KEY_HANDLE, OTHER_ORG_NAME, RecordedAttachment, RecordedImport, RecordedRequest,
    SERVER_VERSION, SoarRestOptions, USER_ID, multipart,
};

/// What the server task and the handle share: fixed settings and the mutable state.
#[derive(Debug)]
pub(crate) struct Shared {
    org_id: u64,
    org_name: String,
    other_org_id: u64,
    api_key_id: String,
    api_key_secret: String,
    email: String,
    password: String,
    state: Mutex<SimState>,
}

#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) attachments: Vec<RecordedAttachment>,
    pub(crate) imports: Vec<RecordedImport>,
    pub(crate) destinations: Vec<Value>,
    pub(crate) functions: BTreeMap<String, SimFunction>,
    /// `__function/…` input fields brought in by accepted imports.
    function_fields: Vec<Value>,
    /// Every other customization accepted imports brought in (workflows, rules, ...).
    pub(crate) configuration: Configuration,
    pub(crate) unauthorized: bool,
    pub(crate) import_refusal: Option<String>,
    pub(crate) actions_framework_enabled: bool,
    /// CSRF tokens handed out by the legacy login; each then authenticates as `X-sess-id`.
    sessions: Vec<String>,
    next_id: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct SimFunction {
    id: u64,
    destination: String,
    /// The function definition from an accepted import, when there was one.
    definition: Option<Value>,
}

/// The largest request body accepted; attachments in tests are small.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body.to_vec(),
        Err(_) => Vec::new(),
    };
    let call = Call {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    let mut state = shared.lock();
    let reply = shared.answer(&mut state, &call);
    state.requests.push(RecordedRequest {
        method: call.method.to_string(),
        path: call.path,
        query: call.query,
        headers: call
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: call.body,
        status: reply.status.as_u16(),
        known_endpoint: reply.known_endpoint,
    });
    drop(state);
    reply.into_response()
}

impl Shared {
    pub(crate) fn new(options: &SoarRestOptions) -> Shared {
        let mut state = SimState {
            requests: Vec::new(),
            attachments: Vec::new(),
            imports: Vec::new(),
            destinations: Vec::new(),
            functions: BTreeMap::new(),
            function_fields: Vec::new(),
            configuration: Configuration::default(),
            unauthorized: false,
            import_refusal: None,
            actions_framework_enabled: true,
            sessions: Vec::new(),
            next_id: 100,
        };
        for (name, destination) in &options.functions {
            state.define_function(name, destination);
        }
        Shared {
            org_id: options.org_id,
            org_name: options.org_name.clone(),
            other_org_id: if options.org_id == 202 { 201 } else { 202 },
            api_key_id: options.api_key_id.clone(),
            api_key_secret: options.api_key_secret.clone(),
            email: options.email.clone(),
            password: options.password.clone(),
            state: Mutex::new(state),
        }
    }

    pub(crate) fn org_id(&self) -> u64 {
        self.org_id
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panicking test thread must not hide the requests from the others.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn answer(&self, state: &mut SimState, call: &Call) -> Reply {
        if state.unauthorized {
            return Reply::unauthorized();
        }
        let segments: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
        let ["rest", rest @ ..] = segments.as_slice() else {
            return Reply::unknown(call);
        };
        // The legacy login is the one call that authenticates by its body.
        if rest == ["session"] && call.method == Method::POST {
            return self.login(state, call);
        }
        if !self.authenticated(state, &call.headers) {
            return Reply::unauthorized();
        }
        match (&call.method, rest) {
            (&Method::GET, ["session"]) => Reply::json(self.api_key_session()),
            (&Method::GET, ["const"]) => Reply::json(json!({
                "server_version": server_version(),
            })),
            (&Method::GET, ["orgs", org]) => match self.org_access(org) {
                Ok(()) => Reply::json(self.org(state)),
                Err(reply) => reply,
            },
            (_, ["orgs", org, org_path @ ..]) => match self.org_access(org) {
                Ok(()) => self.org_endpoint(state, call, org_path),
                Err(reply) => reply,
            },
            _ => Reply::unknown(call),
        }
    }

    fn org_endpoint(&self, state: &mut SimState, call: &Call, path: &[&str]) -> Reply {
        let method = &call.method;
        match (method, path) {
            (&Method::GET, ["types", "incident", "fields"]) => Reply::json(incident_fields()),
            (&Method::GET, ["types", "actioninvocation", "fields"]) => Reply::json(json!([])),
            (&Method::GET, ["types", "__function", "fields"]) => {
                Reply::json(Value::Array(state.function_fields.clone()))
            }
            (&Method::GET, ["actions"]) => Reply::json(json!({"entities": []})),
            (&Method::GET, ["connectors", "queues"]) => Reply::json(json!({"queues": []})),
            (&Method::GET, ["functions", name]) => {
                state.function(name, call.query_has("handle_format", "names"))
            }
            (&Method::POST, ["incidents", incident, "attachments"]) => {
                state.attachment(incident, call)
            }
            (&Method::POST, ["configurations", "exports"]) => state.export(call),
            (&Method::POST, ["configurations", "imports"]) => state.import(call),
            (&Method::GET, ["configurations", "imports", id]) => state.import_status(id),
            (&Method::PUT, ["configurations", "imports", id]) => state.decide_import(id, call),
            (&Method::GET, ["message_destinations"]) => {
                Reply::json(json!({"entities": state.destinations}))
            }
            (&Method::GET, ["message_destinations", id]) => match state.destination_index(id) {
                Some(index) => Reply::json(state.destinations[index].clone()),
                None => Reply::not_found(format!("message destination {id} not found")),
            },
            (&Method::PUT, ["message_destinations", id]) => state.update_destination(id, call),
            _ => Reply::unknown(call),
        }
    }

    fn authenticated(&self, state: &SimState, headers: &HeaderMap) -> bool {
        let basic = header_text(headers, header::AUTHORIZATION.as_str())
            .and_then(|value| value.strip_prefix("Basic "))
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
            })
            .and_then(|decoded| String::from_utf8(decoded).ok());
        if let Some(credentials) = basic {
            return credentials == format!("{}:{}", self.api_key_id, self.api_key_secret);
        }
        header_text(headers, "x-sess-id")
            .is_some_and(|token| state.sessions.iter().any(|issued| issued == token))
    }

    fn login(&self, state: &mut SimState, call: &Call) -> Reply {
        let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        let email = body.get("email").and_then(Value::as_str);
        let password = body.get("password").and_then(Value::as_str);
        if email != Some(self.email.as_str()) || password != Some(self.password.as_str()) {
            return Reply::unauthorized();
        }
        let token = format!("{:032x}", 0x5eed_0000_u64 + state.sessions.len() as u64);
        state.sessions.push(token.clone());
        let mut session = json!({
            "csrf_token": token,
            "user_id": USER_ID,
            "user_email": self.email,
            "user_fname": "John",
            "user_lname": "Doe",
            "is_ldap": false,
            "is_saml": false,
            "saml_alias": null,
            "session_ip": "127.0.0.1",
        });
        session["orgs"] = self.orgs();
        let mut reply = Reply::json(session);
        reply.cookie = Some(format!("JSESSIONID={token}; Path=/; HttpOnly"));
        reply
    }

    fn api_key_session(&self) -> Value {
        json!({
            "api_key_handle": API_KEY_HANDLE,
            "client_id": self.api_key_id,
            "display_name": "soar-sim API key",
            "is_ldap": false,
            "is_saml": false,
            "session_ip": "127.0.0.1",
            "orgs": self.orgs(),
        })
    }

    fn orgs(&self) -> Value {
        json!([
            org_summary(self.org_id, &self.org_name),
            org_summary(self.other_org_id, OTHER_ORG_NAME),
        ])
    }

    fn org(&self, state: &SimState) -> Value {
        let mut org = org_summary(self.org_id, &self.org_name);
        org["actions_framework_enabled"] = json!(state.actions_framework_enabled);
        org["users"] = json!({});
        org
    }

    /// The API key works in one org; the session's other org answers 403 like SOAR does for
    /// an org the caller is not a member of, so a wrong org choice fails loudly.
    fn org_access(&self, org: &str) -> Result<(), Reply> {
        match org.parse::<u64>() {
            Ok(id) if id == self.org_id => Ok(()),
            Ok(id) if id == self.other_org_id => Err(Reply::error(
                StatusCode::FORBIDDEN,
                format!("the API key has no access to org {id}"),
            )),
            _ => Err(Reply::not_found(format!("org {org} not found"))),
        }
    }
}

impl SimState {
    pub(crate) fn define_function(&mut self, name: &str, destination: &str) {
        self.ensure_destination(destination, None);
        let id = match self.functions.get(name) {
            Some(existing) => existing.id,
            None => self.next_id(),
        };
        self.functions.insert(
            name.to_string(),
            SimFunction {
                id,
                destination: destination.to_string(),
                definition: None,
            },
        );
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a destination unless one with this programmatic name exists; returns its id.
    fn ensure_destination(&mut self, programmatic_name: &str, imported: Option<&Value>) -> u64 {
        let existing = self.destinations.iter().find(|destination| {
            destination["programmatic_name"].as_str() == Some(programmatic_name)
        });
        if let Some(id) = existing.and_then(|destination| destination["id"].as_u64()) {
            return id;
        }
        let id = self.next_id();
        let field = |key: &str, default: Value| {
            imported
                .and_then(|definition| definition.get(key))
                .filter(|value| !value.is_null())
                .cloned()
                .unwrap_or(default)
        };
        let destination = json!({
            "id": id,
            "programmatic_name": programmatic_name,
            "name": field("name", json!(programmatic_name)),
            "export_key": programmatic_name,
            "uuid": field("uuid", json!(sim_uuid(id))),
            "destination_type": field("destination_type", json!(0)),
            "expect_ack": field("expect_ack", json!(true)),
            "users": [],
            "api_keys": [],
            "tags": [],
        });
        self.destinations.push(destination);
        id
    }

    fn destination_index(&self, id: &str) -> Option<usize> {
        let id = id.parse::<u64>().ok()?;
        self.destinations
            .iter()
            .position(|destination| destination["id"].as_u64() == Some(id))
    }

    fn function(&self, name: &str, handle_names: bool) -> Reply {
        let Some(function) = self.functions.get(name) else {
            return Reply::not_found(format!("function '{name}' not found"));
        };
        Reply::json(self.function_body(name, function, handle_names))
    }

    /// A function as `GET /functions/{name}` and the export show it.
    fn function_body(&self, name: &str, function: &SimFunction, handle_names: bool) -> Value {
        let destination_handle = match handle_names {
            true => json!(function.destination),
            false => self
                .destinations
                .iter()
                .find(|d| d["programmatic_name"].as_str() == Some(&function.destination))
                .map(|d| d["id"].clone())
                .unwrap_or(Value::Null),
        };
        let mut body = function.definition.clone().unwrap_or_else(|| {
            json!({
                "display_name": name,
                "description": {"content": null, "format": "text"},
                "output_description": {"content": null, "format": "text"},
                "uuid": sim_uuid(function.id),
                "version": 1,
                "view_items": [],
                "workflows": [],
                "tags": [],
            })
        });
        body["id"] = json!(function.id);
        body["name"] = json!(name);
        body["export_key"] = json!(name);
        body["destination_handle"] = destination_handle;
        body
    }

    /// `POST /configurations/exports`: the org's customizations in one export document.
    fn export(&mut self, call: &Call) -> Reply {
        let asked: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        if !asked.is_object() {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "the export request must be a JSON object".to_string(),
            );
        }
        let with_playbooks = asked["playbooks"].as_bool() == Some(true);
        let id = self.next_id();
        Reply::json(self.export_document(id, with_playbooks))
    }

    pub(crate) fn export_document(&self, id: u64, with_playbooks: bool) -> Value {
        let functions = self
            .functions
            .iter()
            .map(|(name, function)| self.function_body(name, function, true))
            .collect();
        let held = HeldElsewhere {
            functions,
            message_destinations: self.destinations.clone(),
            function_fields: self.function_fields.clone(),
        };
        self.configuration
            .export(id, with_playbooks, held, server_version())
    }

    fn attachment(&mut self, incident: &str, call: &Call) -> Reply {
        let Ok(incident_id) = incident.parse::<u64>() else {
            return Reply::not_found(format!("incident {incident} not found"));
        };
        let content_type = header_text(&call.headers, header::CONTENT_TYPE.as_str()).unwrap_or("");
        let parts = match multipart::parse(content_type, &call.body) {
            Ok(parts) => parts,
            Err(problem) => return Reply::error(StatusCode::BAD_REQUEST, problem),
        };
        let Some(file) = parts
            .into_iter()
            .find(|part| part.name.as_deref() == Some("file") || part.filename.is_some())
        else {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "the upload has no 'file' part".to_string(),
            );
        };
        let id = self.next_id();
        let attachment = RecordedAttachment {
            id,
            incident_id,
            name: file.filename.unwrap_or_else(|| "file".to_string()),
            content_type: file
                .content_type
                .unwrap_or_else(|| "application/octet-stream".to_string()),
            bytes: file.bytes,
        };
        let body = json!({
            "type": "incident",
            "id": id,
            "uuid": sim_uuid(id),
            "name": attachment.name,
            "content_type": attachment.content_type,
            "created": 1_700_000_000_000_u64,
            "creator_id": USER_ID,
            "size": attachment.bytes.len(),
            "actions": [],
            "task_id": null,
            "task_name": null,
            "task_custom": null,
            "task_members": null,
            "task_at_id": null,
            "vers": 1,
            "inc_id": incident_id,
            "inc_name": format!("incident {incident_id}"),
            "inc_owner": USER_ID,
        });
        self.attachments.push(attachment);
        Reply::json(body)
    }

    fn import(&mut self, call: &Call) -> Reply {
        let definition = match serde_json::from_slice::<Value>(&call.body) {
            Ok(definition @ Value::Object(_)) => definition,
            _ => {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "the import must be a JSON object".to_string(),
                );
            }
        };
        let id = self.next_id();
        let (status, messages) = match &self.import_refusal {
            Some(reason) => ("FAILED", json!([{"type": "ERROR", "text": reason}])),
            None => ("PENDING", json!([])),
        };
        self.imports.push(RecordedImport {
            id,
            status: status.to_string(),
            definition,
        });
        Reply::json(import_body(id, status, messages))
    }

    fn import_status(&self, id: &str) -> Reply {
        match self.import_index(id) {
            Some(index) => {
                let import = &self.imports[index];
                Reply::json(import_body(import.id, &import.status, json!([])))
            }
            None => Reply::not_found(format!("import {id} not found")),
        }
    }

    fn import_index(&self, id: &str) -> Option<usize> {
        let id = id.parse::<u64>().ok()?;
        self.imports.iter().position(|import| import.id == id)
    }

    fn decide_import(&mut self, id: &str, call: &Call) -> Reply {
        let Some(index) = self.import_index(id) else {
            return Reply::not_found(format!("import {id} not found"));
        };
        let body: Value = serde_json::from_slice(&call.body).unwrap_or(Value::Null);
        let decision = body["status"].as_str().unwrap_or_default().to_string();
        if decision != "ACCEPTED" && decision != "REJECTED" {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                format!("status must be ACCEPTED or REJECTED, not '{decision}'"),
            );
        }
        if self.imports[index].status != "PENDING" {
            return Reply::error(
                StatusCode::CONFLICT,
                format!("import {id} is {}, not PENDING", self.imports[index].status),
            );
        }
        self.imports[index].status = decision.clone();
        if decision == "ACCEPTED" {
            let definition = self.imports[index].definition.clone();
            self.apply_import(&definition);
        }
        Reply::json(import_body(self.imports[index].id, &decision, json!([])))
    }

    /// What an accepted import changes that the runner later reads: destinations, functions
    /// and function input fields.
    fn apply_import(&mut self, definition: &Value) {
        let list = |key: &str| definition[key].as_array().cloned().unwrap_or_default();
        for destination in list("message_destinations") {
            if let Some(name) = destination["programmatic_name"].as_str() {
                self.rename_destination_with_uuid(&destination, name);
                self.ensure_destination(name, Some(&destination));
            }
        }
        for function in list("functions") {
            let (Some(name), Some(destination)) = (
                function["name"].as_str(),
                function["destination_handle"].as_str(),
            ) else {
                continue;
            };
            self.rename_function_with_uuid(&function, name);
            self.define_function(name, destination);
            if let Some(entry) = self.functions.get_mut(name) {
                entry.definition = Some(function.clone());
            }
        }
        for field in list("fields") {
            let is_function_input = field["export_key"]
                .as_str()
                .is_some_and(|key| key.starts_with("__function/"));
            let name = field["name"].as_str();
            let known = self
                .function_fields
                .iter()
                .any(|existing| existing["name"].as_str() == name);
            if is_function_input && !known {
                self.function_fields.push(field);
            }
        }
        let next_id = &mut self.next_id;
        self.configuration.apply_import(definition, &mut || {
            *next_id += 1;
            *next_id
        });
    }

    /// SOAR matches an imported object by uuid before its name: an import that reuses a
    /// function's uuid under a new name renames that function rather than adding one.
    fn rename_function_with_uuid(&mut self, imported: &Value, name: &str) {
        let Some(uuid) = imported["uuid"].as_str() else {
            return;
        };
        let renamed = self.functions.iter().find_map(|(existing, function)| {
            let same_uuid = function
                .definition
                .as_ref()
                .is_some_and(|definition| definition["uuid"].as_str() == Some(uuid));
            (same_uuid && existing != name).then(|| existing.clone())
        });
        if let Some(old) = renamed.and_then(|old| self.functions.remove(&old)) {
            self.functions.insert(name.to_string(), old);
        }
    }

    /// As for functions: a destination whose uuid is known takes the imported name.
    fn rename_destination_with_uuid(&mut self, imported: &Value, name: &str) {
        let Some(uuid) = imported["uuid"].as_str() else {
            return;
        };
        for destination in &mut self.destinations {
            if destination["uuid"].as_str() == Some(uuid) {
                destination["programmatic_name"] = json!(name);
                destination["export_key"] = json!(name);
                if let Some(display) = imported["name"].as_str() {
                    destination["name"] = json!(display);
                }
            }
        }
    }

    fn update_destination(&mut self, id: &str, call: &Call) -> Reply {
        let Some(index) = self.destination_index(id) else {
            return Reply::not_found(format!("message destination {id} not found"));
        };
        let mut updated = match serde_json::from_slice::<Value>(&call.body) {
            Ok(updated @ Value::Object(_)) => updated,
            _ => {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "a message destination must be a JSON object".to_string(),
                );
            }
        };
        // The id is the URL's; a body cannot move a destination.
        updated["id"] = self.destinations[index]["id"].clone();
        self.destinations[index] = updated.clone();
        Reply::json(updated)
    }
}

/// The parts of a request the endpoints look at.
struct Call {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Call {
    fn query_has(&self, name: &str, value: &str) -> bool {
        self.query.as_deref().is_some_and(|query| {
            query
                .split('&')
                .any(|pair| pair.split_once('=') == Some((name, value)))
        })
    }
}

/// An answer, before it becomes an HTTP response.
struct Reply {
    status: StatusCode,
    body: Value,
    cookie: Option<String>,
    known_endpoint: bool,
}

impl Reply {
    fn json(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body,
            cookie: None,
            known_endpoint: true,
        }
    }

    /// SOAR's error body: `success`, `title`, `message`, `hints`, `error_code`.
    fn error(status: StatusCode, message: String) -> Reply {
        Reply {
            status,
            body: json!({
                "success": false,
                "title": null,
                "message": message,
                "hints": [],
                "error_code": "generic",
            }),
            cookie: None,
            known_endpoint: true,
        }
    }

    fn unauthorized() -> Reply {
        Reply::error(
            StatusCode::UNAUTHORIZED,
            "the credentials are missing or not valid".to_string(),
        )
    }

    fn not_found(message: String) -> Reply {
        Reply::error(StatusCode::NOT_FOUND, message)
    }

    fn unknown(call: &Call) -> Reply {
        let mut reply = Reply::not_found(format!(
            "soar-sim has no endpoint {} {}",
            call.method, call.path
        ));
        reply.known_endpoint = false;
        reply
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(cookie) = self.cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::SET_COOKIE, cookie);
        }
        response
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn server_version() -> Value {
    let mut numbers = SERVER_VERSION
        .split('.')
        .map(|n| n.parse::<u64>().unwrap_or(0));
    let (major, minor, build_number) = (
        numbers.next().unwrap_or(0),
        numbers.next().unwrap_or(0),
        numbers.next().unwrap_or(0),
    );
    json!({
        "major": major,
        "minor": minor,
        "build_number": build_number,
        "version": SERVER_VERSION,
    })
}

/// An org as `/rest/session` lists it; uuid, cloud account and name all differ so that a
/// client matching the `org` setting against each is tested for real.
fn org_summary(id: u64, name: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "uuid": sim_uuid(id),
        "cloud_account": format!("soar-sim-account-{id}"),
        "enabled": true,
        "attachments_enabled": true,
        "has_saml": false,
        "require_saml": false,
        "supports_ldap": false,
        "tasks_private": false,
        "twofactor_auth_domain": null,
        "perms": {
            "administrator": false,
            "master_administrator": true,
            "create_incs": true,
            "create_shared_layout": true,
            "observer": false,
        },
    })
}

fn import_body(id: u64, status: &str, messages: Value) -> Value {
    json!({"id": id, "status": status, "messages": messages})
}

/// Built-in incident fields, enough for a client that caches the list.
fn incident_fields() -> Value {
    let field = |id: u64, name: &str, text: &str, input_type: &str| {
        json!({
            "id": id,
            "name": name,
            "text": text,
            "input_type": input_type,
            "type_id": 0,
            "prefix": null,
            "internal": true,
            "read_only": false,
            "required": null,
            "uuid": sim_uuid(id),
            "values": [],
            "templates": [],
            "tooltip": "",
            "placeholder": "",
            "blank_option": false,
        })
    };
    json!([
        field(1, "name", "Name", "text"),
        field(2, "description", "Description", "textarea"),
        field(3, "discovered_date", "Date Discovered", "datetimepicker"),
    ])
}

/// A stable uuid-shaped id, so that answers are the same from run to run.
fn sim_uuid(id: u64) -> String {
    format!("5a5a0000-0000-4000-8000-{id:012}")
}
