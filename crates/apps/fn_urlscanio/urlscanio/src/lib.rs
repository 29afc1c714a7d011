//! The `urlscanio` function of the app fn_urlscanio: scans a URL with urlscan.io, waits for
//! the report, downloads the screenshot and, given an incident, attaches the screenshot to it.

pub mod client;
pub mod config;
pub mod summary;

use base64::Engine as _;
use serde_json::json;
use soar_core::{
    AppInfo, Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput,
    InputField, InputType, Inputs,
};
use tokio::time::Instant;

use crate::client::{ScanRequest, UrlscanClient, UrlscanError, Waiting};
use crate::config::{UrlscanConfig, UrlscanConfigError};

/// The SOAR app this function belongs to. Its config section is `[urlscanio]`
/// ([`config::SECTION`]), not the app name, as in the original.
pub static APP: AppInfo = AppInfo {
    name: "fn_urlscanio",
    package: "fn-urlscanio",
    version: env!("CARGO_PKG_VERSION"),
};

/// The message destination of the original app's export (display name "urlscan.io"), so an
/// existing SOAR keeps routing to the same queue.
pub const DESTINATION: &str = "urlscanio";

/// Submits a URL to urlscan.io and returns the report, the screenshot and a summary.
#[derive(Debug, Clone, Copy)]
pub struct Urlscanio;

/// The definition, with the original's names, UUIDs and required flags (from the original
/// app's generated customization data), so an import matches what SOAR already has.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "urlscanio",
    display_name: "Scan with urlscan.io",
    description: "Analyze a URL with urlscan.io",
    destination: DESTINATION,
    uuid: "d19c1f00-b4f1-4480-b8a3-7bdd19143041",
    app: &APP,
    inputs: &[
        URLSCANIO_URL,
        URLSCANIO_PUBLIC,
        URLSCANIO_USERAGENT,
        URLSCANIO_REFERER,
        INCIDENT_ID,
    ],
};

soar_core::register_function!(Urlscanio);

/// The content type of the screenshot attachment.
pub const SCREENSHOT_CONTENT_TYPE: &str = "image/png";

/// The attachment name the original gave the screenshot.
pub fn attachment_name(url: &str) -> String {
    format!("urlscanio-screenshot-{url}.png")
}

const URLSCANIO_URL: InputField = InputField {
    name: "urlscanio_url",
    input_type: InputType::Text,
    required: true,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "62f95ee9-a112-4d1a-aa65-a6d0e1ef7348",
};

const URLSCANIO_PUBLIC: InputField = InputField {
    name: "urlscanio_public",
    input_type: InputType::Boolean,
    required: false,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "ee9263c1-432a-41a8-8bbd-6917d35fb3ac",
};

const URLSCANIO_USERAGENT: InputField = InputField {
    name: "urlscanio_useragent",
    input_type: InputType::Text,
    required: false,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "7381875c-7a32-439d-8f55-76239a4c72b7",
};

const URLSCANIO_REFERER: InputField = InputField {
    name: "urlscanio_referer",
    input_type: InputType::Text,
    required: false,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "a2ebdb5b-3d5a-425c-a0c7-fa35904fa5c4",
};

const INCIDENT_ID: InputField = InputField {
    name: "incident_id",
    input_type: InputType::Number,
    required: true,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "ead214c2-13fe-43f6-a3c7-676a88338dbb",
};

#[soar_core::async_trait]
impl Function for Urlscanio {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let config = UrlscanConfig::from_app_config(context.config()).map_err(config_error)?;
        let request = ScanRequest {
            url: inputs.required_text("urlscanio_url")?,
            public: inputs.boolean("urlscanio_public")?.unwrap_or(false),
            user_agent: inputs.text("urlscanio_useragent")?,
            referer: inputs.text("urlscanio_referer")?,
        };
        let incident_id = inputs.integer("incident_id")?;
        let client = UrlscanClient::new(&config)
            .map_err(function_error)?
            .with_observer(context.request_observer());
        let cancel = context.cancellation();
        let deadline = Instant::now() + config.timeout;

        let submitted = client
            .submit(&request, deadline, cancel, |waiting| {
                if let Waiting::RateLimited(wait) = waiting {
                    context.progress(format!(
                        "urlscan.io is rate-limiting submissions; trying again in {} s",
                        wait.as_secs()
                    ));
                }
            })
            .await;
        let submission = match submitted {
            Ok(submission) => submission,
            Err(error) => return refusal_or_error(error),
        };
        let uuid = submission.uuid.clone();
        context.progress(format!("Submitted URL successfully as {uuid}"));

        let report = client
            .wait_for_report(&submission, deadline, cancel, |waiting, waited| {
                context.progress(match waiting {
                    Waiting::Pending => {
                        format!("Waited {} s for scan {uuid} to finish", waited.as_secs())
                    }
                    Waiting::RateLimited(wait) => format!(
                        "Waited {} s for scan {uuid}; urlscan.io is rate-limiting, next try in {} s",
                        waited.as_secs(),
                        wait.as_secs()
                    ),
                    Waiting::Transient(problem) => format!(
                        "Waited {} s for scan {uuid}; urlscan.io had a problem ({problem}), trying again",
                        waited.as_secs()
                    ),
                })
            })
            .await;
        let report = match report {
            Ok(report) => report,
            Err(error) => return refusal_or_error(error),
        };
        let report_url = client.report_url(&uuid);
        context.progress(format!("Downloaded report from {report_url}"));

        let png = client
            .screenshot(&uuid, deadline, cancel)
            .await
            .map_err(function_error)?;
        let png_url = client.screenshot_url(&uuid);
        context.progress(format!("Downloaded PNG screenshot from {png_url}"));

        if let Some(incident_id) = incident_id {
            let name = attachment_name(&request.url);
            // The scan itself succeeded: a failed upload says where the report is.
            let upload_failed = |reason: String| {
                FunctionError::Soar(format!(
                    "could not attach the screenshot of scan {uuid} to incident {incident_id} ({reason}); the report is at {report_url}"
                ))
            };
            let soar = context
                .soar()
                .map_err(|error| upload_failed(error.to_string()))?;
            soar.upload_incident_attachment(
                incident_id,
                &name,
                SCREENSHOT_CONTENT_TYPE,
                png.clone(),
            )
            .await
            .map_err(upload_failed)?;
            context.progress(format!(
                "Attached the screenshot to incident {incident_id} as {name}"
            ));
        }

        let summary = summary::summarize(&report, submission.result_page.as_deref());
        Ok(FunctionOutput::success(json!({
            "png_base64content": base64::engine::general_purpose::STANDARD.encode(&png),
            "png_url": png_url,
            "report_url": report_url,
            "report": report,
            "summary": summary,
        })))
    }
}

/// urlscan.io's 400 (and a submission it did not accept) is an answer, not a failure of
/// the function: `success: false` with urlscan's message and its body as content.
fn refusal_or_error(error: UrlscanError) -> Result<FunctionOutput, FunctionError> {
    match error {
        UrlscanError::Refused { reason, body, .. } => Ok(FunctionOutput::failure(reason, body)),
        UrlscanError::NotSubmitted { message, body } => Ok(FunctionOutput::failure(message, body)),
        other => Err(function_error(other)),
    }
}

fn function_error(error: UrlscanError) -> FunctionError {
    match error {
        UrlscanError::Cancelled => FunctionError::Cancelled,
        UrlscanError::Client(_) => FunctionError::Config(error.to_string()),
        other => FunctionError::Integration(other.to_string()),
    }
}

fn config_error(error: UrlscanConfigError) -> FunctionError {
    FunctionError::Config(error.to_string())
}
