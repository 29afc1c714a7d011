//! The axum handler: applies latency, the API key check and forced 429s, then answers the
//! three urlscan endpoints fn_urlscanio uses, and records every request.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::{RecordedRequest, Shared, SimulatedScan};

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let router = axum::Router::new().fallback(handle).with_state(shared);
    // The listener only fails when the process runs out of descriptors; the test then fails
    // on its own request, which says more than a panic here would.
    // Nagle off, as on a production server (see misp-sim).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = axum::serve(listener, router).await;
}

/// What a request is, once its path is understood.
enum Endpoint {
    Submit,
    Result(String),
    Screenshot(String),
}

/// An answer before it becomes an HTTP response.
struct Reply {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: ReplyBody,
}

enum ReplyBody {
    Json(Value),
    Png(Vec<u8>),
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = tokio::time::Instant::now();
    let latency = shared.state().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let endpoint = endpoint(&method, uri.path());
    let known_endpoint = endpoint.is_some();
    let body_json = parse_body(&body);
    let reply = match endpoint {
        Some(endpoint) => answer(&shared, endpoint, &headers, &body_json),
        None => error_reply(
            StatusCode::NOT_FOUND,
            "Not Found",
            "The simulator has no such endpoint.",
        ),
    };

    let recorded_headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    shared.state().requests.push(RecordedRequest {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        headers: recorded_headers,
        body: body_json,
        status: reply.status.as_u16(),
        at,
        known_endpoint,
    });
    into_response(reply)
}

fn endpoint(method: &Method, path: &str) -> Option<Endpoint> {
    let trimmed = path.trim_end_matches('/');
    if *method == Method::POST && trimmed == "/api/v1/scan" {
        return Some(Endpoint::Submit);
    }
    if *method != Method::GET {
        return None;
    }
    if let Some(uuid) = trimmed.strip_prefix("/api/v1/result/")
        && !uuid.is_empty()
        && !uuid.contains('/')
    {
        return Some(Endpoint::Result(uuid.to_string()));
    }
    if let Some(file) = path.strip_prefix("/screenshots/")
        && let Some(uuid) = file.strip_suffix(".png")
        && !uuid.is_empty()
        && !uuid.contains('/')
    {
        return Some(Endpoint::Screenshot(uuid.to_string()));
    }
    None
}

fn answer(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap, body: &Value) -> Reply {
    let mut state = shared.state();
    let is_api = matches!(endpoint, Endpoint::Submit | Endpoint::Result(_));
    if is_api && let Some(required) = &state.required_key {
        let given = headers.get("api-key").and_then(|v| v.to_str().ok());
        if given != Some(required.as_str()) {
            return error_reply(
                StatusCode::UNAUTHORIZED,
                "Missing or invalid API key",
                "Your API key was not found. Pass a valid key in the API-Key header.",
            );
        }
    }
    if state.failed_requests > 0 {
        state.failed_requests -= 1;
        let status =
            StatusCode::from_u16(state.failure_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return error_reply(
            status,
            status.canonical_reason().unwrap_or("Error"),
            "A failure forced by the simulator.",
        );
    }
    if state.rate_limited_requests > 0 {
        state.rate_limited_requests -= 1;
        return rate_limited(state.retry_after);
    }
    match endpoint {
        Endpoint::Submit => {
            if let Some((message, description)) = state.refusal.clone() {
                return error_reply(StatusCode::BAD_REQUEST, &message, &description);
            }
            let Some(url) = body.get("url").and_then(Value::as_str) else {
                return error_reply(
                    StatusCode::BAD_REQUEST,
                    "Missing URL properties",
                    "The submission did not contain a URL.",
                );
            };
            let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
            let visibility = match (text("visibility"), text("public")) {
                (Some(visibility), _) => visibility,
                // The API's older form: `"public": "on"` asked for a public scan.
                (None, Some(flag)) if flag == "on" => "public".to_string(),
                (None, _) => "private".to_string(),
            };
            let scan = SimulatedScan {
                uuid: uuid::Uuid::new_v4().to_string(),
                url: url.to_string(),
                visibility,
                custom_agent: text("customagent"),
                referer: text("referer"),
                pending_polls: state.pending_polls,
                malicious: state.malicious,
            };
            let answer = submit_answer(&shared.base_url, &scan);
            state.scans.insert(scan.uuid.clone(), scan);
            json_reply(StatusCode::OK, answer)
        }
        Endpoint::Result(uuid) => match state.scans.get_mut(&uuid) {
            Some(scan) if scan.pending_polls == 0 => {
                json_reply(StatusCode::OK, result_document(&shared.base_url, scan))
            }
            Some(scan) => {
                scan.pending_polls -= 1;
                not_finished()
            }
            None => not_finished(),
        },
        Endpoint::Screenshot(uuid) => match state.scans.get(&uuid) {
            Some(scan) if scan.pending_polls == 0 => Reply {
                status: StatusCode::OK,
                headers: Vec::new(),
                body: ReplyBody::Png(crate::screenshot_png()),
            },
            _ => error_reply(
                StatusCode::NOT_FOUND,
                "Not Found",
                "No screenshot for this scan.",
            ),
        },
    }
}

/// urlscan answers a result poll with 404 until the scan has finished (and for unknown ids).
fn not_finished() -> Reply {
    error_reply(
        StatusCode::NOT_FOUND,
        "Scan is not finished yet",
        "The scan has not finished yet or does not exist. Try again in a few seconds.",
    )
}

/// urlscan's error shape: top-level `message`, `description`, `status`, plus `errors`.
fn error_reply(status: StatusCode, message: &str, description: &str) -> Reply {
    json_reply(
        status,
        json!({
            "message": message,
            "description": description,
            "status": status.as_u16(),
            "errors": [{"title": message, "detail": description, "status": status.as_u16()}],
        }),
    )
}

fn rate_limited(retry_after: Duration) -> Reply {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let reset = chrono::Utc::now() + chrono::Duration::seconds(seconds as i64);
    let mut reply = error_reply(
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit for this action exceeded",
        "You have exceeded your rate limit for this action. Respect the X-Rate-Limit headers.",
    );
    reply.headers = vec![
        ("retry-after", seconds.to_string()),
        ("x-rate-limit-scope", "user".to_string()),
        ("x-rate-limit-action", "private".to_string()),
        ("x-rate-limit-window", "minute".to_string()),
        ("x-rate-limit-limit", "5".to_string()),
        ("x-rate-limit-remaining", "0".to_string()),
        (
            "x-rate-limit-reset",
            reset.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        ),
        ("x-rate-limit-reset-after", seconds.to_string()),
    ];
    reply
}

fn json_reply(status: StatusCode, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: ReplyBody::Json(body),
    }
}

fn into_response(reply: Reply) -> Response {
    let (content_type, bytes) = match reply.body {
        ReplyBody::Json(value) => ("application/json; charset=utf-8", value.to_string()),
        ReplyBody::Png(png) => {
            let mut response = Response::new(Body::from(png));
            *response.status_mut() = reply.status;
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("image/png"));
            return response;
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = reply.status;
    let response_headers = response.headers_mut();
    response_headers.insert("content-type", HeaderValue::from_static(content_type));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response_headers.insert(name, value);
        }
    }
    response
}

fn parse_body(body: &Bytes) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn submit_answer(base_url: &str, scan: &SimulatedScan) -> Value {
    let mut options = serde_json::Map::new();
    if let Some(agent) = &scan.custom_agent {
        options.insert("useragent".into(), json!(agent));
    }
    if let Some(referer) = &scan.referer {
        options.insert("referer".into(), json!(referer));
    }
    json!({
        "message": "Submission successful",
        "uuid": scan.uuid,
        "result": format!("{base_url}/result/{}/", scan.uuid),
        "api": format!("{base_url}/api/v1/result/{}/", scan.uuid),
        "visibility": scan.visibility,
        "options": options,
        "url": scan.url,
        "country": "de",
    })
}

/// The finished scan's result document, trimmed to the parts integrations read.
fn result_document(base_url: &str, scan: &SimulatedScan) -> Value {
    let page_url = match scan.url.contains("://") {
        true => scan.url.clone(),
        false => format!("http://{}/", scan.url),
    };
    let domain = host_of(&page_url);
    let cdn = "static.cdn-sim.net";
    let ip = "93.184.215.14";
    let cdn_ip = "151.101.2.132";
    let request = |id: &str, url: &str, kind: &str, mime: &str, remote: &str| {
        json!({
            "request": {
                "requestId": id,
                "documentURL": page_url,
                "request": {"url": url, "method": "GET", "headers": {}},
                "type": kind,
            },
            "response": {
                "response": {
                    "url": url, "status": 200, "mimeType": mime,
                    "remoteIPAddress": remote, "remotePort": 443, "protocol": "h2",
                },
                "hash": "5c1e7f0c2b1c1f0d8f8e3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d",
            },
        })
    };
    let (verdict_score, categories, brands) = match scan.malicious {
        true => (100, json!(["phishing"]), json!(["paypal"])),
        false => (0, json!([]), json!([])),
    };
    let urlscan_brands = match scan.malicious {
        true => {
            json!([{"key": "paypal", "name": "PayPal", "country": ["US"], "vertical": ["Finance"]}])
        }
        false => json!([]),
    };
    json!({
        "data": {
            "requests": [
                request("1000.1", &page_url, "Document", "text/html", ip),
                request("1000.2", &format!("https://{domain}/app.js"), "Script", "application/javascript", ip),
                request("1000.3", &format!("https://{cdn}/logo.png"), "Image", "image/png", cdn_ip),
            ],
            "cookies": [],
            "console": [],
            "links": [],
            "timing": {"beginNavigation": "2024-01-01T00:00:00.000Z"},
            "globals": [],
        },
        "stats": {
            "resourceStats": [],
            "protocolStats": [],
            "tlsStats": [],
            "serverStats": [],
            "domainStats": [],
            "regDomainStats": [],
            "secureRequests": 2,
            "securePercentage": 67,
            "IPv6Percentage": 0,
            "uniqCountries": 1,
            "totalLinks": 0,
            "malicious": u8::from(scan.malicious),
            "adBlocked": 0,
        },
        "meta": {"processors": {}},
        "task": {
            "uuid": scan.uuid,
            "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "url": scan.url,
            "visibility": scan.visibility,
            "method": "api",
            "source": "urlscan-sim",
            "tags": [],
            "userAgent": scan.custom_agent,
            "reportURL": format!("{base_url}/result/{}/", scan.uuid),
            "screenshotURL": format!("{base_url}/screenshots/{}.png", scan.uuid),
            "domURL": format!("{base_url}/dom/{}/", scan.uuid),
        },
        "page": {
            "url": page_url,
            "domain": domain,
            "country": "US",
            "city": "",
            "server": "ECAcc (nyd/D184)",
            "ip": ip,
            "asn": "AS15133",
            "asnname": "EDGECAST, US",
            "mimeType": "text/html",
            "title": "Simulated page",
            "status": "200",
            "apexDomain": domain,
        },
        "lists": {
            "ips": [ip, cdn_ip],
            "countries": ["US"],
            "asns": ["15133", "54113"],
            "domains": [domain, cdn],
            "servers": ["ECAcc (nyd/D184)"],
            "urls": [page_url],
            "linkDomains": [],
            "certificates": [],
            "hashes": [],
        },
        "verdicts": {
            "overall": {
                "score": verdict_score, "categories": categories, "brands": brands,
                "tags": [], "malicious": scan.malicious, "hasVerdicts": scan.malicious,
            },
            "urlscan": {
                "score": verdict_score, "categories": categories, "brands": urlscan_brands,
                "tags": [], "malicious": scan.malicious, "hasVerdicts": scan.malicious,
            },
            "engines": {
                "score": 0, "malicious": [], "benign": [], "maliciousTotal": 0,
                "benignTotal": 0, "verdicts": [], "enginesTotal": 0,
            },
            "community": {
                "score": 0, "votes": [], "votesTotal": 0, "votesMalicious": 0,
                "votesBenign": 0, "tags": [], "categories": [],
            },
        },
        "submitter": {"country": "DE"},
    })
}

/// The host of an absolute URL, good enough for the simulator's own inputs.
fn host_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(after_scheme);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.split(':').next().unwrap_or(host).to_ascii_lowercase()
}
