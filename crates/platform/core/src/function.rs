//! The `Function` trait and the static definition SOAR knows a function by.

use crate::config::AppConfig;
use crate::{FunctionContext, FunctionError, FunctionOutput, Inputs};

/// One SOAR function: a static definition plus the code that runs it.
#[async_trait::async_trait]
pub trait Function: Send + Sync + 'static {
    fn definition(&self) -> &'static FunctionDefinition;

    /// Runs the function once. Progress goes through `context`; the returned output becomes
    /// the `results` of the final reply, and an error becomes a `message_type 1` reply.
    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError>;

    /// Checks the function's own settings in `config` (the runner asks every function once
    /// it has read `app.config`), so that a mistake shows at start-up rather than at the
    /// first call. The error names the section and the key.
    fn check_config(&self, config: &AppConfig) -> Result<(), String> {
        let _ = config;
        Ok(())
    }
}

/// The app (SOAR package) a function belongs to: its config section and its metrics names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppInfo {
    /// The app's name, also its `app.config` section: `fn_misp`.
    pub name: &'static str,
    /// The distribution name reported in `metrics.package`: `fn-misp`.
    pub package: &'static str,
    /// The version reported in `metrics.package_version`.
    pub version: &'static str,
}

/// What SOAR knows about a function; the customization export is generated from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionDefinition {
    /// The API name, which messages are routed on: `misp_create_event`.
    pub name: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    /// The programmatic name of the message destination: `fn_misp`.
    pub destination: &'static str,
    pub uuid: &'static str,
    pub app: &'static AppInfo,
    /// Input fields in the order SOAR shows them (`view_items`).
    pub inputs: &'static [InputField],
}

/// A function input field (`__function/<name>` in SOAR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputField {
    pub name: &'static str,
    pub input_type: InputType,
    pub required: bool,
    pub tooltip: &'static str,
    pub placeholder: &'static str,
    /// Only for `select` and `multiselect`.
    pub values: &'static [SelectValue],
    pub uuid: &'static str,
}

/// The SOAR input types a function field can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputType {
    Text,
    Textarea,
    Number,
    Boolean,
    Select,
    Multiselect,
    Datepicker,
    Datetimepicker,
}

/// One choice of a select or multiselect field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectValue {
    pub label: &'static str,
    /// SOAR's numeric id for the value, as in the original export.
    pub value: i64,
    pub default: bool,
    pub uuid: &'static str,
}

impl InputType {
    /// The name SOAR uses in exports and function messages.
    pub fn soar_name(self) -> &'static str {
        match self {
            InputType::Text => "text",
            InputType::Textarea => "textarea",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Select => "select",
            InputType::Multiselect => "multiselect",
            InputType::Datepicker => "datepicker",
            InputType::Datetimepicker => "datetimepicker",
        }
    }

    pub fn from_soar_name(name: &str) -> Option<InputType> {
        Some(match name {
            "text" => InputType::Text,
            "textarea" => InputType::Textarea,
            "number" => InputType::Number,
            "boolean" => InputType::Boolean,
            "select" => InputType::Select,
            "multiselect" => InputType::Multiselect,
            "datepicker" => InputType::Datepicker,
            "datetimepicker" => InputType::Datetimepicker,
            _ => return None,
        })
    }
}

impl SelectValue {
    /// A choice that is not the default.
    pub const fn new(label: &'static str, value: i64, uuid: &'static str) -> SelectValue {
        SelectValue {
            label,
            value,
            default: false,
            uuid,
        }
    }

    pub const fn as_default(self) -> SelectValue {
        SelectValue {
            default: true,
            ..self
        }
    }
}

impl FunctionDefinition {
    pub fn input(&self, name: &str) -> Option<&'static InputField> {
        self.inputs.iter().find(|field| field.name == name)
    }
}

impl InputField {
    /// A field of `input_type`, optional, without tooltip or placeholder. The builders below
    /// are `const`, so a definition stays one `static`:
    /// `InputField::new("misp_event_id", InputType::Number, "<uuid>").required().tooltip("…")`.
    pub const fn new(name: &'static str, input_type: InputType, uuid: &'static str) -> InputField {
        InputField {
            name,
            input_type,
            required: false,
            tooltip: "",
            placeholder: "",
            values: &[],
            uuid,
        }
    }

    pub const fn text(name: &'static str, uuid: &'static str) -> InputField {
        InputField::new(name, InputType::Text, uuid)
    }

    pub const fn number(name: &'static str, uuid: &'static str) -> InputField {
        InputField::new(name, InputType::Number, uuid)
    }

    pub const fn boolean(name: &'static str, uuid: &'static str) -> InputField {
        InputField::new(name, InputType::Boolean, uuid)
    }

    pub const fn textarea(name: &'static str, uuid: &'static str) -> InputField {
        InputField::new(name, InputType::Textarea, uuid)
    }

    pub const fn select(
        name: &'static str,
        uuid: &'static str,
        values: &'static [SelectValue],
    ) -> InputField {
        InputField {
            values,
            ..InputField::new(name, InputType::Select, uuid)
        }
    }

    pub const fn required(self) -> InputField {
        InputField {
            required: true,
            ..self
        }
    }

    pub const fn tooltip(self, tooltip: &'static str) -> InputField {
        InputField { tooltip, ..self }
    }

    pub const fn placeholder(self, placeholder: &'static str) -> InputField {
        InputField {
            placeholder,
            ..self
        }
    }

    /// Finds a select value by its label, ignoring case.
    pub fn value_by_label(&self, label: &str) -> Option<&'static SelectValue> {
        self.values
            .iter()
            .find(|value| value.label.eq_ignore_ascii_case(label))
    }
}
