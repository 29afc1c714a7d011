//! The body of a SOAR function message (`FunctionDataDTO`): which function it names, its
//! inputs and its workflow instance, read before anything runs.

use serde_json::Value;

/// What the body of a function message names.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: String,
    pub inputs: Value,
    pub workflow_instance_id: Option<i64>,
    /// `playbook_instance.playbook_instance_id`, when a playbook (not a workflow) called.
    pub playbook_instance_id: Option<i64>,
}

/// Reads `function.name` and `inputs` from a FunctionDataDTO body; the error is the text of
/// the failure reply.
pub fn parse_call(body: &[u8]) -> Result<Call, String> {
    let text = std::str::from_utf8(body)
        .map_err(|error| format!("the message body is not UTF-8 text: {error}"))?;
    let message: Value = serde_json::from_str(text)
        .map_err(|error| format!("the message body is not valid JSON: {error}"))?;
    let Value::Object(mut message) = message else {
        return Err("the message body is not a JSON object".to_string());
    };
    let function = message
        .get("function")
        .and_then(|function| function.get("name"))
        .and_then(Value::as_str)
        .ok_or("the message names no function (function.name is missing); only function messages are served here")?
        .to_string();
    Ok(Call {
        function,
        inputs: message.remove("inputs").unwrap_or(Value::Null),
        workflow_instance_id: message
            .get("workflow_instance")
            .and_then(|instance| instance.get("workflow_instance_id"))
            .and_then(Value::as_i64),
        playbook_instance_id: message
            .get("playbook_instance")
            .and_then(|instance| instance.get("playbook_instance_id"))
            .and_then(Value::as_i64),
    })
}
