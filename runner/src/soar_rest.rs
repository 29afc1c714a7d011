//! SOAR's REST API as resilient-circuits uses it: the start-up calls, function lookups,
//! attachments, and the customization import.

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::settings::{Credentials, ResilientSettings, Verify};

/// The version resilient-circuits reports in its headers; SOAR expects one.
pub const MIMICKED_CIRCUITS_VERSION: &str = "51.0.9.1";

/// A REST failure, with the resilient-circuits selftest exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("SOAR refused the {credential} (HTTP 401 on {path}); check [resilient] {keys}")]
    Unauthorized {
        credential: &'static str,
        keys: &'static str,
        path: String,
    },
    #[error("the CA file {0} cannot be used: {1}")]
    CaFile(String, String),
    #[error("TLS with SOAR at {url} failed: {message}")]
    Tls { url: String, message: String },
    #[error("cannot reach SOAR at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the API key's user is not a member of the org '{org}'; its orgs: {known}")]
    NotInOrg { org: String, known: String },
    #[error("the org '{0}' is disabled in SOAR")]
    OrgDisabled(String),
    #[error("SOAR answered {method} {path} with HTTP {status}: {body}")]
    Status {
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    #[error("SOAR's answer to {path} could not be read: {problem}")]
    InvalidResponse { path: String, problem: String },
}

impl RestError {
    /// resilient-circuits' selftest exit codes for REST failures (soar_protocol §5.5).
    pub fn exit_code(&self) -> i32 {
        match self {
            RestError::Unauthorized { .. } => 21,
            RestError::CaFile(..) => 22,
            RestError::Tls { .. } => 23,
            RestError::NotInOrg { .. } | RestError::OrgDisabled(_) => 24,
            _ => 20,
        }
    }
}

/// An authenticated SOAR REST client bound to one org.
#[derive(Clone)]
pub struct SoarClient {
    http: reqwest::Client,
    base_url: String,
    auth: Auth,
    pub org_id: i64,
    pub org_name: String,
    /// The API key's handle, which `customize` adds to each message destination.
    pub api_key_handle: Option<i64>,
    pub user_id: Option<i64>,
    pub actions_framework_enabled: bool,
    pub server_version: Option<String>,
    max_retries: u32,
}

impl std::fmt::Debug for SoarClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SoarClient")
            .field("base_url", &self.base_url)
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Auth {
    Basic(String),
    Session {
        csrf_token: String,
        cookie: Option<String>,
    },
}

impl SoarClient {
    /// Authenticates, picks the org, and reads the org and the platform version
    /// (soar_protocol §1.4 steps 1 to 3).
    pub async fn connect(settings: &ResilientSettings) -> Result<SoarClient, RestError> {
        soar_core::tls::install_crypto_provider();
        let base_url = settings.rest_base_url();
        let http = http_client(settings)?;
        let mut client = SoarClient {
            http,
            base_url,
            auth: Auth::Basic(String::new()),
            org_id: 0,
            org_name: String::new(),
            api_key_handle: None,
            user_id: None,
            actions_framework_enabled: true,
            server_version: None,
            max_retries: settings.request_max_retries,
        };
        let session = match &settings.credentials {
            Credentials::ApiKey { id, secret } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{id}:{}", secret.expose()));
                client.auth = Auth::Basic(format!("Basic {token}"));
                client
                    .send(Method::GET, "/rest/session?include_permissions=false", None)
                    .await?
            }
            Credentials::Password { email, password } => {
                client.login_with_password(email, password.expose()).await?
            }
        };
        client.user_id = session.get("user_id").and_then(Value::as_i64);
        client.api_key_handle = session.get("api_key_handle").and_then(Value::as_i64);
        let (org_id, org_name) = pick_org(&session, &settings.org)?;
        client.org_id = org_id;
        client.org_name = org_name;
        let org = client
            .send(Method::GET, &format!("/rest/orgs/{org_id}"), None)
            .await?;
        client.actions_framework_enabled = org
            .get("actions_framework_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let constants = client.send(Method::GET, "/rest/const", None).await?;
        client.server_version = constants
            .pointer("/server_version/version")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(client)
    }

    /// The message destination SOAR routes a function to, or `None` when SOAR does not
    /// know the function (it has not been imported yet).
    pub async fn function_destination(&self, name: &str) -> Result<Option<String>, RestError> {
        let path = format!(
            "/rest/orgs/{}/functions/{name}?handle_format=names",
            self.org_id
        );
        match self.send(Method::GET, &path, None).await {
            Ok(function) => Ok(function
                .get("destination_handle")
                .and_then(Value::as_str)
                .map(str::to_string)),
            Err(RestError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// A call relative to the org: `/incidents/1` means `/rest/orgs/{org}/incidents/1`.
    pub async fn org_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RestError> {
        let path = format!("/rest/orgs/{}{path}", self.org_id);
        self.send(method, &path, body).await
    }

    async fn login_with_password(
        &mut self,
        email: &str,
        password: &str,
    ) -> Result<Value, RestError> {
        let url = format!("{}/rest/session?include_permissions=false", self.base_url);
        let response = self
            .http
            .post(&url)
            .headers(common_headers())
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .map_err(|error| transport_error(&self.base_url, &error))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(RestError::Unauthorized {
                credential: "email and password",
                keys: "email and password",
                path: "/rest/session".into(),
            });
        }
        let cookie = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("JSESSIONID="))
            .and_then(|value| value.split(';').next())
            .map(str::to_string);
        let session = read_json(response, "/rest/session").await?;
        let csrf_token = session
            .get("csrf_token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.auth = Auth::Session { csrf_token, cookie };
        Ok(session)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RestError> {
        let safe_to_repeat = method == Method::GET;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(method.clone(), path, body.as_ref()).await;
            let retry = match &result {
                Err(RestError::Connect { .. }) => safe_to_repeat,
                Err(RestError::Status { status, .. }) => safe_to_repeat && *status >= 500,
                _ => false,
            };
            if !retry || attempt > self.max_retries {
                return result;
            }
            let delay = Duration::from_millis(250 * 2u64.pow(attempt.min(6)));
            tracing::warn!(%method, path, attempt, ?delay, "SOAR REST call failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, RestError> {
        let url = format!("{}{path}", self.base_url);
        let started = std::time::Instant::now();
        let mut request = self
            .http
            .request(method.clone(), &url)
            .headers(common_headers());
        request = self.authorize(request);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(&self.base_url, &error))?;
        tracing::debug!(%method, path, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "SOAR REST call");
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(path));
        }
        read_json(response, path)
            .await
            .map_err(|error| match error {
                RestError::Status { status, body, .. } => RestError::Status {
                    method: method.to_string(),
                    path: path.to_string(),
                    status,
                    body,
                },
                other => other,
            })
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::Basic(header) => {
                request.header(reqwest::header::AUTHORIZATION, sensitive(header))
            }
            Auth::Session { csrf_token, cookie } => {
                let request = request.header("X-sess-id", sensitive(csrf_token));
                match cookie {
                    Some(cookie) => request.header(reqwest::header::COOKIE, sensitive(cookie)),
                    None => request,
                }
            }
        }
    }

    fn unauthorized(&self, path: &str) -> RestError {
        match self.auth {
            Auth::Basic(_) => RestError::Unauthorized {
                credential: "API key",
                keys: "api_key_id and api_key_secret",
                path: path.to_string(),
            },
            Auth::Session { .. } => RestError::Unauthorized {
                credential: "email and password",
                keys: "email and password",
                path: path.to_string(),
            },
        }
    }

    /// `POST /incidents/{id}/attachments` as multipart, like resilient-lib's `write_file_attachment`.
    pub async fn upload_attachment(
        &self,
        incident_id: i64,
        file_name: &str,
        content_type: &str,
        content: Vec<u8>,
    ) -> Result<Value, RestError> {
        let path = format!(
            "/rest/orgs/{}/incidents/{incident_id}/attachments",
            self.org_id
        );
        let url = format!("{}{path}", self.base_url);
        let part = reqwest::multipart::Part::bytes(content)
            .file_name(file_name.to_string())
            .mime_str(content_type)
            .map_err(|error| RestError::InvalidResponse {
                path: path.clone(),
                problem: format!("bad content type '{content_type}': {error}"),
            })?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let mut headers = common_headers();
        headers.remove(reqwest::header::CONTENT_TYPE);
        let request = self.authorize(self.http.post(&url).headers(headers).multipart(form));
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(&self.base_url, &error))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(&path));
        }
        read_json(response, &path).await
    }
}

#[async_trait::async_trait]
impl soar_core::SoarRest for SoarClient {
    async fn upload_incident_attachment(
        &self,
        incident_id: i64,
        file_name: &str,
        content_type: &str,
        content: Vec<u8>,
    ) -> Result<Value, String> {
        self.upload_attachment(incident_id, file_name, content_type, content)
            .await
            .map_err(|error| error.to_string())
    }
}

fn http_client(settings: &ResilientSettings) -> Result<reqwest::Client, RestError> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.rest_timeout)
        .connect_timeout(settings.rest_timeout.min(Duration::from_secs(30)))
        .user_agent(concat!("soar-runner/", env!("CARGO_PKG_VERSION")));
    builder = match &settings.rest_verify {
        Verify::System => builder,
        Verify::CaFile(path) => {
            let pem = std::fs::read(path).map_err(|error| {
                RestError::CaFile(path.display().to_string(), error.to_string())
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                RestError::CaFile(path.display().to_string(), error.to_string())
            })?;
            builder.tls_certs_only(certificates)
        }
        Verify::Off => {
            tracing::warn!(
                "[resilient] cafile=false: the SOAR REST server's certificate is NOT verified"
            );
            builder
                .tls_danger_accept_invalid_certs(true)
                .tls_danger_accept_invalid_hostnames(true)
        }
    };
    if let Some(proxy) = &settings.proxy {
        let proxy = reqwest::Proxy::https(proxy.expose()).map_err(|error| RestError::Connect {
            url: "the [resilient] proxy".into(),
            message: error.to_string(),
        })?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|error| RestError::Tls {
        url: settings.rest_base_url(),
        message: error.to_string(),
    })
}

fn common_headers() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "Resilient-Module-Version",
        reqwest::header::HeaderValue::from_static(MIMICKED_CIRCUITS_VERSION),
    );
    headers.insert(
        "Resilient-Circuits-Version",
        reqwest::header::HeaderValue::from_static(MIMICKED_CIRCUITS_VERSION),
    );
    headers
}

fn sensitive(value: &str) -> reqwest::header::HeaderValue {
    let mut header = reqwest::header::HeaderValue::from_str(value)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
    header.set_sensitive(true);
    header
}

async fn read_json(response: reqwest::Response, path: &str) -> Result<Value, RestError> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| RestError::InvalidResponse {
            path: path.to_string(),
            problem: error.to_string(),
        })?;
    if !status.is_success() {
        return Err(RestError::Status {
            method: String::new(),
            path: path.to_string(),
            status: status.as_u16(),
            body: text.chars().take(300).collect(),
        });
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|error| RestError::InvalidResponse {
        path: path.to_string(),
        problem: error.to_string(),
    })
}

fn transport_error(base_url: &str, error: &reqwest::Error) -> RestError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = message.to_lowercase();
    if lower.contains("certificate") || lower.contains("handshake") || lower.contains("tls") {
        return RestError::Tls {
            url: base_url.to_string(),
            message,
        };
    }
    RestError::Connect {
        url: base_url.to_string(),
        message,
    }
}

/// Picks the org by `cloud_account`, then `uuid`, then `name`, as resilient does.
fn pick_org(session: &Value, wanted: &str) -> Result<(i64, String), RestError> {
    let orgs = session
        .get("orgs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let matches = |key: &str, org: &Value| org.get(key).and_then(Value::as_str) == Some(wanted);
    let found = ["cloud_account", "uuid", "name"]
        .iter()
        .find_map(|key| orgs.iter().find(|org| matches(key, org)));
    let Some(org) = found else {
        let known = orgs
            .iter()
            .filter_map(|org| org.get("name").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(RestError::NotInOrg {
            org: wanted.to_string(),
            known,
        });
    };
    let name = org
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(wanted)
        .to_string();
    if org.get("enabled").and_then(Value::as_bool) == Some(false) {
        return Err(RestError::OrgDisabled(name));
    }
    let id = org
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| RestError::InvalidResponse {
            path: "/rest/session".into(),
            problem: format!("org '{name}' has no numeric id"),
        })?;
    Ok((id, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_is_picked_by_cloud_account_then_uuid_then_name() {
        let session = json!({"orgs": [
            {"id": 201, "name": "Test Org", "uuid": "u-201", "cloud_account": "acct", "enabled": true},
            {"id": 202, "name": "acct", "uuid": "u-202", "cloud_account": null, "enabled": true},
        ]});
        assert_eq!(pick_org(&session, "acct").unwrap().0, 201);
        assert_eq!(pick_org(&session, "u-202").unwrap().0, 202);
        assert_eq!(pick_org(&session, "Test Org").unwrap().0, 201);
        let error = pick_org(&session, "Nope").unwrap_err();
        assert_eq!(error.exit_code(), 24);
        assert!(error.to_string().contains("Test Org, acct"), "{error}");
    }

    #[test]
    fn a_disabled_org_is_refused() {
        let session = json!({"orgs": [{"id": 1, "name": "Off", "enabled": false}]});
        assert!(matches!(
            pick_org(&session, "Off"),
            Err(RestError::OrgDisabled(_))
        ));
    }

    #[test]
    fn exit_codes_match_resilient_circuits() {
        let unauthorized = RestError::Unauthorized {
            credential: "API key",
            keys: "api_key_id and api_key_secret",
            path: "/rest/session".into(),
        };
        assert_eq!(unauthorized.exit_code(), 21);
        assert_eq!(RestError::CaFile("x".into(), "y".into()).exit_code(), 22);
        assert_eq!(
            RestError::Tls {
                url: "u".into(),
                message: "m".into()
            }
            .exit_code(),
            23
        );
        assert_eq!(
            RestError::Connect {
                url: "u".into(),
                message: "m".into()
            }
            .exit_code(),
            20
        );
    }
}
