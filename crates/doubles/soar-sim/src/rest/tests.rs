//! The simulator's auth and the shape of each endpoint, driven over real HTTP.

use serde_json::{Value, json};

use super::*;

const EXPORT: &str = include_str!("../../../../../tests/fixtures/fn_misp/export.res");
/// The generated fn_misp export: it has the workflows and rules the original's has not.
const GENERATED_EXPORT: &str = include_str!("../../../../../customizations/fn_misp/export.res");

fn client() -> reqwest::Client {
    install_crypto_provider();
    match reqwest::Client::builder().build() {
        Ok(client) => client,
        Err(error) => panic!("a plain HTTP client: {error}"),
    }
}

/// reqwest is built without a default provider; the first test to get here installs ring.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn misp_sim() -> SoarRestSim {
    SoarRestSim::start(SoarRestOptions {
        functions: vec![("misp_create_event".into(), "fn_misp".into())],
        ..SoarRestOptions::default()
    })
    .await
}

/// Sends a request with the default API key and returns the status and JSON body.
async fn call(
    sim: &SoarRestSim,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client()
        .request(method, format!("{}{path}", sim.url()))
        .basic_auth(DEFAULT_API_KEY_ID, Some(DEFAULT_API_KEY_SECRET));
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

async fn get(sim: &SoarRestSim, path: &str) -> (u16, Value) {
    call(sim, reqwest::Method::GET, path, None).await
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => panic!("the simulator did not answer: {error}"),
    };
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn is_soar_error(body: &Value) -> bool {
    body["success"] == json!(false)
        && body["message"].is_string()
        && body["hints"].is_array()
        && body.get("title").is_some()
}

#[tokio::test]
async fn every_request_needs_the_api_key() {
    let sim = misp_sim().await;
    let url = format!("{}/rest/const", sim.url());

    let (status, body) = send(client().get(&url)).await;
    assert_eq!(status, 401, "no credentials");
    assert!(is_soar_error(&body), "SOAR's error body, got {body}");

    let wrong = client()
        .get(&url)
        .basic_auth(DEFAULT_API_KEY_ID, Some("wrong"));
    assert_eq!(send(wrong).await.0, 401, "a wrong secret");

    let (status, _) = get(&sim, "/rest/const").await;
    assert_eq!(status, 200);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 200]);
    assert!(
        sim.requests()[2].headers.contains_key("authorization"),
        "headers are recorded"
    );
}

#[tokio::test]
async fn the_start_up_calls_answer_with_soar_shapes() {
    let sim = misp_sim().await;

    let (status, session) = get(&sim, "/rest/session?include_permissions=false").await;
    assert_eq!(status, 200);
    assert_eq!(session["api_key_handle"], json!(API_KEY_HANDLE));
    let orgs = session["orgs"].as_array().cloned().unwrap_or_default();
    assert_eq!(orgs.len(), 2, "two orgs, got {session}");
    assert_eq!(
        (orgs[0]["id"].clone(), orgs[0]["name"].clone()),
        (json!(201), json!("Test Org"))
    );
    assert_eq!(orgs[1]["id"], json!(202));
    for org in &orgs {
        for key in ["uuid", "cloud_account"] {
            assert!(org[key].is_string(), "org {} lacks {key}", org["id"]);
        }
        assert_eq!(org["enabled"], json!(true));
    }

    let (_, org) = get(&sim, "/rest/orgs/201").await;
    assert_eq!(org["actions_framework_enabled"], json!(true));
    let (_, constants) = get(&sim, "/rest/const").await;
    let version = &constants["server_version"];
    assert!(
        version["major"].is_u64() && version["minor"].is_u64() && version["build_number"].is_u64()
    );
    assert_eq!(version["version"], json!(SERVER_VERSION));

    let (_, incident_fields) = get(&sim, "/rest/orgs/201/types/incident/fields").await;
    assert!(
        incident_fields
            .as_array()
            .is_some_and(|fields| !fields.is_empty())
    );
    let (_, action_fields) = get(&sim, "/rest/orgs/201/types/actioninvocation/fields").await;
    assert!(action_fields.is_array());
    let (_, actions) = get(&sim, "/rest/orgs/201/actions").await;
    assert_eq!(actions, json!({"entities": []}));
    let (_, queues) = get(&sim, "/rest/orgs/201/connectors/queues").await;
    assert_eq!(queues, json!({"queues": []}));
    let (status, function) = get(
        &sim,
        "/rest/orgs/201/functions/misp_create_event?handle_format=names",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(function["name"], json!("misp_create_event"));
    assert_eq!(function["destination_handle"], json!("fn_misp"));
    let (_, function_fields) = get(&sim, "/rest/orgs/201/types/__function/fields").await;
    assert!(function_fields.is_array());

    let lines: Vec<String> = sim.requests().iter().map(RecordedRequest::line).collect();
    assert_eq!(
        lines,
        vec![
            "GET /rest/session?include_permissions=false",
            "GET /rest/orgs/201",
            "GET /rest/const",
            "GET /rest/orgs/201/types/incident/fields",
            "GET /rest/orgs/201/types/actioninvocation/fields",
            "GET /rest/orgs/201/actions",
            "GET /rest/orgs/201/connectors/queues",
            "GET /rest/orgs/201/functions/misp_create_event?handle_format=names",
            "GET /rest/orgs/201/types/__function/fields",
        ]
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn the_function_knobs_change_the_lookup() {
    let sim = misp_sim().await;
    let path = "/rest/orgs/201/functions/misp_create_tag?handle_format=names";
    let (status, body) = get(&sim, path).await;
    assert_eq!(status, 404, "an unknown function");
    assert!(is_soar_error(&body));

    sim.set_function("misp_create_tag", "fn_misp_tags");
    let (status, body) = get(&sim, path).await;
    assert_eq!(
        (status, body["destination_handle"].clone()),
        (200, json!("fn_misp_tags"))
    );
    let names: Vec<Value> = sim
        .message_destinations()
        .iter()
        .map(|destination| destination["programmatic_name"].clone())
        .collect();
    assert_eq!(names, vec![json!("fn_misp"), json!("fn_misp_tags")]);

    sim.remove_function("misp_create_event");
    let (status, _) = get(
        &sim,
        "/rest/orgs/201/functions/misp_create_event?handle_format=names",
    )
    .await;
    assert_eq!(status, 404, "a removed function");

    let (_, by_id) = get(&sim, "/rest/orgs/201/functions/misp_create_tag").await;
    assert!(
        by_id["destination_handle"].is_u64(),
        "without handle_format=names the handle is an id: {by_id}"
    );
}

#[tokio::test]
async fn other_orgs_and_the_unauthorized_knob_are_refused() {
    let sim = misp_sim().await;
    assert_eq!(
        get(&sim, "/rest/orgs/202").await.0,
        403,
        "the session's other org"
    );
    assert_eq!(
        get(&sim, "/rest/orgs/999/actions").await.0,
        404,
        "an org that does not exist"
    );
    sim.set_actions_framework_enabled(false);
    assert_eq!(
        get(&sim, "/rest/orgs/201").await.1["actions_framework_enabled"],
        json!(false)
    );

    sim.set_unauthorized(true);
    let (status, body) = get(&sim, "/rest/session").await;
    assert_eq!(status, 401, "forced 401 despite good credentials");
    assert!(is_soar_error(&body));
    sim.set_unauthorized(false);
    assert_eq!(get(&sim, "/rest/session").await.0, 200);
}

#[tokio::test]
async fn the_legacy_login_hands_out_a_csrf_token_that_authenticates() {
    let sim = misp_sim().await;
    let url = format!("{}/rest/session?include_permissions=false", sim.url());
    let bad = client()
        .post(&url)
        .json(&json!({"email": DEFAULT_EMAIL, "password": "wrong"}));
    assert_eq!(send(bad).await.0, 401);

    let good = client()
        .post(&url)
        .json(&json!({"email": DEFAULT_EMAIL, "password": DEFAULT_PASSWORD}));
    let response = match good.send().await {
        Ok(response) => response,
        Err(error) => panic!("login: {error}"),
    };
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    assert!(
        cookie
            .as_deref()
            .is_some_and(|c| c.starts_with("JSESSIONID=")),
        "got {cookie:?}"
    );
    let session: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(session["user_id"], json!(USER_ID));
    assert_eq!(session["orgs"][0]["id"], json!(201));
    let token = session["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!token.is_empty(), "a csrf_token in {session}");

    let with_token = client()
        .get(format!("{}/rest/const", sim.url()))
        .header("X-sess-id", &token);
    assert_eq!(send(with_token).await.0, 200);
    let forged = client()
        .get(format!("{}/rest/const", sim.url()))
        .header("X-sess-id", "not-issued");
    assert_eq!(send(forged).await.0, 401);
}

#[tokio::test]
async fn attachments_are_recorded_with_name_type_and_bytes() {
    let sim = misp_sim().await;
    let file = reqwest::multipart::Part::bytes(b"{\"Event\":{}}\r\n".to_vec())
        .file_name("misp_event.json")
        .mime_str("application/json");
    let file = match file {
        Ok(file) => file,
        Err(error) => panic!("a multipart part: {error}"),
    };
    let form = reqwest::multipart::Form::new().part("file", file);
    let request = client()
        .post(format!(
            "{}/rest/orgs/201/incidents/2095/attachments",
            sim.url()
        ))
        .basic_auth(DEFAULT_API_KEY_ID, Some(DEFAULT_API_KEY_SECRET))
        .multipart(form);
    let (status, body) = send(request).await;
    assert_eq!(status, 200, "got {body}");
    assert_eq!(body["name"], json!("misp_event.json"));
    assert_eq!(body["inc_id"], json!(2095));
    assert_eq!(body["size"], json!(14));

    let attachments = sim.attachments();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].incident_id, 2095);
    assert_eq!(attachments[0].name, "misp_event.json");
    assert_eq!(attachments[0].content_type, "application/json");
    assert_eq!(attachments[0].bytes, b"{\"Event\":{}}\r\n".to_vec());

    let (status, body) = call(
        &sim,
        reqwest::Method::POST,
        "/rest/orgs/201/incidents/2095/attachments",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400, "a JSON body is not an upload");
    assert!(is_soar_error(&body));
}

#[tokio::test]
async fn an_accepted_import_defines_its_functions_and_destinations() {
    let sim = SoarRestSim::start(SoarRestOptions::default()).await;
    let export: Value = match serde_json::from_str(EXPORT) {
        Ok(export) => export,
        Err(error) => panic!("the export.res fixture: {error}"),
    };
    let lookup = "/rest/orgs/201/functions/misp_create_event?handle_format=names";
    assert_eq!(get(&sim, lookup).await.0, 404, "not imported yet");

    let (status, pending) = call(
        &sim,
        reqwest::Method::POST,
        "/rest/orgs/201/configurations/imports",
        Some(export.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(pending["status"], json!("PENDING"));
    assert!(pending["messages"].is_array());
    let id = pending["id"].as_u64().unwrap_or_default();

    let mut accepted = pending.clone();
    accepted["status"] = json!("ACCEPTED");
    let path = format!("/rest/orgs/201/configurations/imports/{id}");
    let (status, body) = call(&sim, reqwest::Method::PUT, &path, Some(accepted.clone())).await;
    assert_eq!((status, body["status"].clone()), (200, json!("ACCEPTED")));
    assert_eq!(
        call(&sim, reqwest::Method::PUT, &path, Some(accepted))
            .await
            .0,
        409,
        "decided twice"
    );
    assert_eq!(sim.imports().len(), 1);
    assert_eq!(sim.imports()[0].definition, export);

    let (_, function) = get(&sim, lookup).await;
    assert_eq!(function["destination_handle"], json!("fn_misp"));
    assert_eq!(
        function["display_name"],
        json!("MISP Create Event"),
        "the imported definition is served"
    );
    let (_, fields) = get(&sim, "/rest/orgs/201/types/__function/fields").await;
    assert_eq!(fields.as_array().map(Vec::len), Some(10));

    // What `customize` does next: find the destination and grant it to the API key.
    let (_, destinations) = get(&sim, "/rest/orgs/201/message_destinations").await;
    let fn_misp = destinations["entities"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|d| d["programmatic_name"] == json!("fn_misp"))
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(fn_misp["expect_ack"], json!(true));
    assert_eq!(fn_misp["api_keys"], json!([]));
    let destination_id = fn_misp["id"].as_u64().unwrap_or_default();
    let path = format!("/rest/orgs/201/message_destinations/{destination_id}");
    let (status, mut destination) = get(&sim, &path).await;
    assert_eq!(status, 200);
    destination["api_keys"] = json!([API_KEY_HANDLE]);
    let (status, _) = call(&sim, reqwest::Method::PUT, &path, Some(destination)).await;
    assert_eq!(status, 200);
    assert_eq!(
        sim.message_destinations()[0]["api_keys"],
        json!([API_KEY_HANDLE])
    );
    assert_eq!(
        get(&sim, "/rest/orgs/201/message_destinations/9999")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn refused_and_rejected_imports_change_nothing() {
    let sim = SoarRestSim::start(SoarRestOptions::default()).await;
    let export: Value = serde_json::from_str(EXPORT).unwrap_or(Value::Null);
    let imports = "/rest/orgs/201/configurations/imports";

    sim.refuse_imports(Some(
        "Function 'misp_create_event' conflicts with an existing function",
    ));
    let (status, refused) = call(&sim, reqwest::Method::POST, imports, Some(export.clone())).await;
    assert_eq!(status, 200);
    assert_eq!(refused["status"], json!("FAILED"));
    assert_eq!(refused["messages"][0]["type"], json!("ERROR"));
    assert!(
        refused["messages"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("conflicts"))
    );

    sim.refuse_imports(None);
    let (_, pending) = call(&sim, reqwest::Method::POST, imports, Some(export)).await;
    let mut rejected = pending.clone();
    rejected["status"] = json!("REJECTED");
    let path = format!("{imports}/{}", pending["id"]);
    assert_eq!(
        call(&sim, reqwest::Method::PUT, &path, Some(rejected))
            .await
            .0,
        200
    );
    let statuses: Vec<String> = sim
        .imports()
        .into_iter()
        .map(|import| import.status)
        .collect();
    assert_eq!(statuses, vec!["FAILED", "REJECTED"]);
    assert!(
        sim.message_destinations().is_empty(),
        "a rejected import defines nothing"
    );

    let (status, _) = call(&sim, reqwest::Method::POST, imports, Some(json!([1]))).await;
    assert_eq!(status, 400, "an import must be an object");
}

#[tokio::test]
async fn an_unknown_endpoint_is_404_and_reported() {
    let sim = misp_sim().await;
    let (status, body) = get(&sim, "/rest/orgs/201/incidents/1/artifacts").await;
    assert_eq!(status, 404);
    assert!(is_soar_error(&body));
    let unexpected: Vec<String> = sim
        .unexpected_requests()
        .iter()
        .map(RecordedRequest::line)
        .collect();
    assert_eq!(unexpected, vec!["GET /rest/orgs/201/incidents/1/artifacts"]);
}

#[tokio::test]
async fn tls_serves_a_certificate_signed_by_the_given_ca() {
    install_crypto_provider();
    let sim = SoarRestSim::start(SoarRestOptions {
        tls: true,
        ..SoarRestOptions::default()
    })
    .await;
    assert!(
        sim.url().starts_with("https://localhost:"),
        "got {}",
        sim.url()
    );
    let ca = sim.ca_pem().unwrap_or_default().as_bytes().to_vec();
    let certificate = match reqwest::Certificate::from_pem(&ca) {
        Ok(certificate) => certificate,
        Err(error) => panic!("the CA PEM: {error}"),
    };
    let trusting = match reqwest::Client::builder()
        .tls_certs_only([certificate])
        .build()
    {
        Ok(client) => client,
        Err(error) => panic!("an HTTPS client: {error}"),
    };
    let request = trusting
        .get(format!("{}/rest/session", sim.url()))
        .basic_auth(DEFAULT_API_KEY_ID, Some(DEFAULT_API_KEY_SECRET));
    let (status, session) = send(request).await;
    assert_eq!(status, 200);
    assert_eq!(session["orgs"][0]["name"], json!("Test Org"));

    let untrusting = client()
        .get(format!("{}/rest/session", sim.url()))
        .send()
        .await;
    assert!(
        untrusting.is_err(),
        "a client without the CA must refuse the certificate"
    );
}

/// Posts `definition` as an import and accepts it, as `customize -y` does.
async fn import_accepted(sim: &SoarRestSim, definition: Value) {
    let imports = "/rest/orgs/201/configurations/imports";
    let (status, mut pending) = call(sim, reqwest::Method::POST, imports, Some(definition)).await;
    assert_eq!((status, pending["status"].clone()), (200, json!("PENDING")));
    pending["status"] = json!("ACCEPTED");
    let path = format!("{imports}/{}", pending["id"]);
    let (status, _) = call(sim, reqwest::Method::PUT, &path, Some(pending)).await;
    assert_eq!(status, 200, "the import is accepted");
}

fn generated_export() -> Value {
    match serde_json::from_str(GENERATED_EXPORT) {
        Ok(export) => export,
        Err(error) => panic!("customizations/fn_misp/export.res: {error}"),
    }
}

fn names(list: &Value, key: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|object| object[key].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

async fn export(sim: &SoarRestSim, playbooks: bool) -> Value {
    let asked =
        json!({"layouts": true, "actions": true, "phases_and_tasks": true, "playbooks": playbooks});
    let (status, export) = call(
        sim,
        reqwest::Method::POST,
        "/rest/orgs/201/configurations/exports/",
        Some(asked),
    )
    .await;
    assert_eq!(status, 200, "{export}");
    export
}

#[tokio::test]
async fn the_export_holds_what_accepted_imports_brought_in_with_soar_keys() {
    let sim = SoarRestSim::start(SoarRestOptions::default()).await;
    let imported = generated_export();
    import_accepted(&sim, imported.clone()).await;

    let exported = export(&sim, true).await;
    let keys = |value: &Value| {
        let mut keys: Vec<String> = value
            .as_object()
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    let mut expected = keys(&imported);
    expected.push("industries".into());
    expected.sort();
    assert_eq!(keys(&exported), expected, "SOAR's export keys");
    assert_eq!(exported["export_format_version"], json!(2));
    assert_eq!(exported["server_version"]["version"], json!(SERVER_VERSION));
    assert!(exported["id"].as_u64().is_some(), "an export has an id");

    for (list, key) in [
        ("workflows", "programmatic_name"),
        ("actions", "name"),
        ("functions", "export_key"),
        ("playbooks", "export_key"),
        ("message_destinations", "programmatic_name"),
        ("incident_types", "name"),
    ] {
        assert_eq!(
            names(&exported[list], key),
            names(&imported[list], key),
            "the export's {list} are the imported ones"
        );
    }
    assert_eq!(
        names(&exported["fields"], "export_key"),
        names(&imported["fields"], "export_key"),
        "function inputs and incident fields"
    );
    let workflow = &exported["workflows"][0];
    assert!(workflow["workflow_id"].as_u64().is_some(), "{workflow}");
    assert!(
        workflow["content"]["xml"].is_string(),
        "the BPMN is exported"
    );
    let function = &exported["functions"][0];
    assert_eq!(function["destination_handle"], json!("fn_misp"), "by name");
    assert!(function["id"].as_u64().is_some());

    let without = export(&sim, false).await;
    assert_eq!(without["playbooks"], json!([]), "playbooks only when asked");
    assert_eq!(names(&without["workflows"], "programmatic_name").len(), 7);

    let (status, _) = call(
        &sim,
        reqwest::Method::POST,
        "/rest/orgs/201/configurations/exports",
        Some(json!([true])),
    )
    .await;
    assert_eq!(status, 400, "the export request is an object");
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn an_import_matches_objects_by_uuid_before_name() {
    let sim = SoarRestSim::start(SoarRestOptions::default()).await;
    let mut definition = generated_export();
    import_accepted(&sim, definition.clone()).await;
    let before = sim.export();
    let original = before["workflows"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|w| w["programmatic_name"] == json!("example_misp_search_attribute"))
        })
        .cloned()
        .unwrap_or(Value::Null);

    // Same uuid, new name: the workflow is renamed in place, keeping its id.
    let mut renamed = original.clone();
    renamed["programmatic_name"] = json!("renamed_search");
    renamed["export_key"] = json!("renamed_search");
    // And a copy with a uuid of its own: added beside the original, with a new id.
    let mut copy = original.clone();
    copy["programmatic_name"] = json!("copied_search");
    copy["uuid"] = json!("0b0b0000-0000-4000-8000-000000000001");
    // A function imported under a new name with its uuid renames it too.
    let mut function = definition["functions"][0].clone();
    let old_function = function["name"].as_str().unwrap_or_default().to_string();
    function["name"] = json!("renamed_function");
    definition["workflows"] = json!([renamed, copy]);
    definition["functions"] = json!([function]);
    definition["actions"] = json!([]);
    definition["playbooks"] = json!([]);
    import_accepted(&sim, definition).await;

    let after = sim.export();
    let workflows = names(&after["workflows"], "programmatic_name");
    assert!(
        workflows.contains(&"renamed_search".to_string()),
        "{workflows:?}"
    );
    assert!(
        workflows.contains(&"copied_search".to_string()),
        "{workflows:?}"
    );
    assert!(
        !workflows.contains(&"example_misp_search_attribute".to_string()),
        "matched by uuid, so renamed: {workflows:?}"
    );
    assert_eq!(workflows.len(), 8);
    let id_of = |name: &str| {
        after["workflows"]
            .as_array()
            .and_then(|all| all.iter().find(|w| w["programmatic_name"] == json!(name)))
            .map(|w| w["workflow_id"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(id_of("renamed_search"), original["workflow_id"]);
    assert_ne!(id_of("copied_search"), original["workflow_id"]);

    let functions = names(&after["functions"], "name");
    assert!(functions.contains(&"renamed_function".to_string()));
    assert!(!functions.contains(&old_function), "{functions:?}");
    assert_eq!(functions.len(), 17);
}
