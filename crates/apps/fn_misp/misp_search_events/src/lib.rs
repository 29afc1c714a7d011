//! The `misp_search_events` function: MISP events by value, type, category, tags,
//! organisation, dates, publication, IDS flag and threat level, a page at a time, as compact
//! rows with MISP's count of every match.

use fn_misp::{APP, DESTINATION, MISP_ATTRIBUTE_TYPE, MISP_ATTRIBUTE_VALUE, MISP_CATEGORY};
use serde_json::{Map, Value, json};
use soar_core::misp::CountedEvents;
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, InputError,
    InputField, InputType, Inputs, SelectValue,
};

/// Searches events (`POST /events/restSearch` with `metadata`, so no attributes are read).
/// `content` is `{"events": [rows], "total", "page", "limit"}`.
#[derive(Debug, Clone, Copy)]
pub struct MispSearchEvents;

pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_search_events",
    display_name: "MISP Search Events",
    description: "Search MISP events by attribute value, type or category, tags (all of, none of), organisation, date range or recent publication, published, IDS flag and threat level. At least one filter is required. Answers a page of compact rows (id, uuid, info, date, threat level, published, organisations, tag names, attribute count) and MISP's total count of matching events.",
    destination: DESTINATION,
    uuid: "cea01b8a-f530-49e3-bc4c-3616823a93ac",
    app: &APP,
    inputs: &[
        MISP_ATTRIBUTE_VALUE,
        MISP_ATTRIBUTE_TYPE,
        MISP_CATEGORY,
        MISP_TAGS_ALL,
        MISP_TAGS_NONE,
        MISP_ORG,
        MISP_DATE_FROM,
        MISP_DATE_TO,
        MISP_LAST,
        MISP_SEARCH_PUBLISHED,
        MISP_SEARCH_TO_IDS,
        MISP_SEARCH_THREAT_LEVEL,
        MISP_LIMIT,
        MISP_PAGE,
    ],
};

pub static MISP_TAGS_ALL: InputField = InputField::text(
    "misp_tags_all",
    "24c6e3eb-5d49-40dd-b570-343f93949510",
)
.tooltip(
    "Comma-separated tag names the event or one of its attributes must all carry (tlp:amber, apt)",
);

pub static MISP_TAGS_NONE: InputField =
    InputField::text("misp_tags_none", "1118cee6-d030-4401-b4c4-a70247cd8a80")
        .tooltip("Comma-separated tag names the event must not carry");

pub static MISP_ORG: InputField =
    InputField::text("misp_org", "0607c474-e0e9-47d0-be09-8b505314cff5")
        .tooltip("The organisation that created the event: its name, UUID or ID");

pub static MISP_DATE_FROM: InputField = InputField::new(
    "misp_date_from",
    InputType::Datepicker,
    "439d3503-b515-42c0-a61f-bbbd37f37a3b",
)
.tooltip("Events dated on or after this day");

pub static MISP_DATE_TO: InputField = InputField::new(
    "misp_date_to",
    InputType::Datepicker,
    "6be8dff3-8759-459c-9a4d-3b2fe1cd073c",
)
.tooltip("Events dated on or before this day");

pub static MISP_LAST: InputField =
    InputField::text("misp_last", "5b3c184b-50a3-4eed-8c8b-d0c25c21f57b")
        .tooltip("Events published within this long: a number and d, h, m or s (7d, 12h, 30m)")
        .placeholder("7d");

pub static MISP_SEARCH_PUBLISHED: InputField = InputField::select(
    "misp_search_published",
    "48d3400d-9a25-4fad-b39b-b7bfbdb7318b",
    &[
        SelectValue::new("Any", 5301, "40f74fb6-d228-412d-aeb3-1fa2e892bad2").as_default(),
        SelectValue::new("Yes", 5302, "5a24a05a-62f3-47f4-bed1-6855ff612423"),
        SelectValue::new("No", 5303, "5df08efb-aa35-47b0-abef-164f385f45c1"),
    ],
)
.tooltip("Only published events (Yes) or only unpublished ones (No)");

pub static MISP_SEARCH_TO_IDS: InputField = InputField::select(
    "misp_search_to_ids",
    "1db38d3f-cafa-4748-9350-e803ddf51ab2",
    &[
        SelectValue::new("Any", 5304, "4eb14c30-4250-4e03-91b8-6972df2073fb").as_default(),
        SelectValue::new("Yes", 5305, "787153b6-50e9-41cb-a2a0-09d2484e680e"),
        SelectValue::new("No", 5306, "8f9b6a42-bee9-4d96-8bc1-9088e3ff8064"),
    ],
)
.tooltip("Only events with an attribute whose IDS flag is set (Yes) or not set (No)");

pub static MISP_SEARCH_THREAT_LEVEL: InputField = InputField::select(
    "misp_search_threat_level",
    "5996891c-2759-4965-a12f-95803c3200b7",
    &[
        SelectValue::new("High", 5307, "88aaef72-d672-4bba-9482-6bf16b4e1ab8"),
        SelectValue::new("Medium", 5308, "d43ca419-feec-4658-a2a9-f00d176898bc"),
        SelectValue::new("Low", 5309, "6b865a47-d737-4a90-849e-f68128a3c688"),
        SelectValue::new("Undefined", 5310, "d8779367-ef4d-485d-83d2-713caaeeb459"),
    ],
)
.tooltip("MISP threat level of the events");

pub static MISP_LIMIT: InputField =
    InputField::number("misp_limit", "f3df937c-37a9-4e03-ac4a-a98b9df618a8")
        .tooltip("Events per page: search_limit of [fn_misp] when empty, and at most that");

pub static MISP_PAGE: InputField =
    InputField::number("misp_page", "c3228b70-f42f-4b38-b9d2-0bbd5751aaa6")
        .tooltip("Which page of results, from 1 (the default)");

/// MISP's threat levels by `threat_level_id`, as the select and the rows name them.
const THREAT_LEVELS: [&str; 4] = ["High", "Medium", "Low", "Undefined"];

/// The filters of which at least one must be given.
const FILTERS: [&InputField; 12] = [
    &MISP_ATTRIBUTE_VALUE,
    &MISP_ATTRIBUTE_TYPE,
    &MISP_CATEGORY,
    &MISP_TAGS_ALL,
    &MISP_TAGS_NONE,
    &MISP_ORG,
    &MISP_DATE_FROM,
    &MISP_DATE_TO,
    &MISP_LAST,
    &MISP_SEARCH_PUBLISHED,
    &MISP_SEARCH_TO_IDS,
    &MISP_SEARCH_THREAT_LEVEL,
];

soar_core::register_function!(MispSearchEvents);

#[soar_core::async_trait]
impl Function for MispSearchEvents {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let search = EventSearch::from_inputs(inputs)?;
        let client = fn_misp::connect(context)?;
        let page = search.page_of(client.config().search_limit)?;
        context.progress(format!(
            "Searching MISP events ({}), page {} of up to {} events",
            search.describe(),
            page.page,
            page.limit
        ));
        let found = client.search_events_counted(search.body(&page)).await?;
        let output = search_output(found, &page);
        let total = output["total"].as_u64().unwrap_or(0);
        context.progress(format!(
            "Found {total} matching event{}, {} on this page",
            if total == 1 { "" } else { "s" },
            output["events"].as_array().map_or(0, Vec::len)
        ));
        Ok(FunctionOutput::success(output))
    }
}

/// The filters of a search, checked; the page comes once `search_limit` is known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventSearch {
    pub value: Option<String>,
    pub attribute_type: Option<String>,
    pub category: Option<String>,
    pub tags_all: Vec<String>,
    pub tags_none: Vec<String>,
    pub org: Option<String>,
    /// `YYYY-MM-DD`, as MISP compares event dates.
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// MISP's relative time: `7d`, `12h`, `30m`, `10s`.
    pub last: Option<String>,
    pub published: Option<bool>,
    pub to_ids: Option<bool>,
    /// 1 (High) to 4 (Undefined).
    pub threat_level_id: Option<u8>,
    limit: Option<i64>,
    page: i64,
}

/// Which page of how many events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub page: i64,
}

impl EventSearch {
    /// Reads and checks every filter; none at all is an error naming them.
    pub fn from_inputs(inputs: &Inputs) -> Result<EventSearch, FunctionError> {
        let trimmed = |field: &InputField| -> Result<Option<String>, InputError> {
            Ok(inputs
                .text(field.name)?
                .map(|text| text.trim().to_string())
                .filter(|text| !text.is_empty()))
        };
        let search = EventSearch {
            value: inputs.text(MISP_ATTRIBUTE_VALUE.name)?,
            attribute_type: trimmed(&MISP_ATTRIBUTE_TYPE)?
                .map(|text| fn_misp::attribute_type::checked(&text))
                .transpose()?,
            category: choice(inputs, &MISP_CATEGORY)?.map(str::to_string),
            tags_all: tag_list(inputs, &MISP_TAGS_ALL)?,
            tags_none: tag_list(inputs, &MISP_TAGS_NONE)?,
            org: trimmed(&MISP_ORG)?,
            date_from: date(inputs, &MISP_DATE_FROM)?,
            date_to: date(inputs, &MISP_DATE_TO)?,
            last: trimmed(&MISP_LAST)?.map(checked_last).transpose()?,
            published: yes_no(inputs, &MISP_SEARCH_PUBLISHED)?,
            to_ids: yes_no(inputs, &MISP_SEARCH_TO_IDS)?,
            threat_level_id: choice(inputs, &MISP_SEARCH_THREAT_LEVEL)?
                .and_then(|level| THREAT_LEVELS.iter().position(|known| *known == level))
                .and_then(|index| u8::try_from(index + 1).ok()),
            limit: inputs.integer_in(
                MISP_LIMIT.name,
                1..=i64::from(u32::MAX),
                "events per page",
            )?,
            page: inputs
                .integer_in(MISP_PAGE.name, 1..=1_000_000, "a page number")?
                .unwrap_or(1),
        };
        if let (Some(from), Some(to)) = (&search.date_from, &search.date_to)
            && from > to
        {
            return Err(InputError::Invalid {
                field: MISP_DATE_FROM.name.to_string(),
                value: from.clone(),
                problem: format!("is after {} ({to})", MISP_DATE_TO.name),
            }
            .into());
        }
        if search.has_no_filter() {
            let names: Vec<&str> = FILTERS.iter().map(|field| field.name).collect();
            return Err(FunctionError::integration(format!(
                "give at least one filter ({}): a search without one would read every event in MISP",
                names.join(", ")
            )));
        }
        Ok(search)
    }

    /// The page asked for: `misp_limit` up to `search_limit`, which is also the default.
    pub fn page_of(&self, search_limit: u32) -> Result<Page, FunctionError> {
        let most = i64::from(search_limit);
        let limit = match self.limit {
            None => most,
            Some(limit) if limit <= most => limit,
            Some(limit) => {
                return Err(InputError::Invalid {
                    field: MISP_LIMIT.name.to_string(),
                    value: limit.to_string(),
                    problem: format!("more than search_limit ({most}) in [fn_misp]"),
                }
                .into());
            }
        };
        Ok(Page {
            limit,
            page: self.page,
        })
    }

    /// The events/restSearch body: `metadata`, so MISP reads no attributes.
    pub fn body(&self, page: &Page) -> Value {
        let mut body = Map::new();
        body.insert("returnFormat".into(), json!("json"));
        body.insert("metadata".into(), json!(true));
        body.insert("limit".into(), json!(page.limit));
        body.insert("page".into(), json!(page.page));
        let mut text = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                body.insert(key.into(), json!(value));
            }
        };
        text("value", &self.value);
        text("type", &self.attribute_type);
        text("category", &self.category);
        text("org", &self.org);
        text("from", &self.date_from);
        text("to", &self.date_to);
        text("last", &self.last);
        if let Some(tags) = self.tags_filter() {
            body.insert("tags".into(), tags);
        }
        if let Some(published) = self.published {
            body.insert("published".into(), json!(published));
        }
        if let Some(to_ids) = self.to_ids {
            body.insert("to_ids".into(), json!(to_ids));
        }
        if let Some(level) = self.threat_level_id {
            // A string, as MISP's API document types it.
            body.insert("threat_level_id".into(), json!(level.to_string()));
        }
        Value::Object(body)
    }

    /// MISP's `tags` filter. Tags that must all be present need `{"AND": [...], "NOT": [...]}`;
    /// tags to leave out alone go as MISP's list form, `["!tlp:red"]`, which MISP reads the
    /// same way and its API document (which knows only lists) accepts.
    fn tags_filter(&self) -> Option<Value> {
        let negated = || -> Vec<String> {
            self.tags_none
                .iter()
                .map(|name| format!("!{name}"))
                .collect()
        };
        match (self.tags_all.is_empty(), self.tags_none.is_empty()) {
            (true, true) => None,
            (true, false) => Some(json!(negated())),
            (false, true) => Some(json!({"AND": self.tags_all})),
            (false, false) => Some(json!({"AND": self.tags_all, "NOT": self.tags_none})),
        }
    }

    /// The filters for a progress message: `value=1.2.3.4, tags_all=tlp:red`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut add = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                parts.push(format!("{name}={value}"));
            }
        };
        let joined = |tags: &[String]| (!tags.is_empty()).then(|| tags.join(", "));
        let flag =
            |flag: Option<bool>| flag.map(|flag| if flag { "yes" } else { "no" }.to_string());
        add("value", self.value.clone());
        add("type", self.attribute_type.clone());
        add("category", self.category.clone());
        add("tags_all", joined(&self.tags_all));
        add("tags_none", joined(&self.tags_none));
        add("org", self.org.clone());
        add("from", self.date_from.clone());
        add("to", self.date_to.clone());
        add("last", self.last.clone());
        add("published", flag(self.published));
        add("to_ids", flag(self.to_ids));
        add(
            "threat_level",
            self.threat_level_id
                .map(|level| THREAT_LEVELS[usize::from(level - 1)].to_string()),
        );
        parts.join(", ")
    }

    fn has_no_filter(&self) -> bool {
        self.value.is_none()
            && self.attribute_type.is_none()
            && self.category.is_none()
            && self.tags_all.is_empty()
            && self.tags_none.is_empty()
            && self.org.is_none()
            && self.date_from.is_none()
            && self.date_to.is_none()
            && self.last.is_none()
            && self.published.is_none()
            && self.to_ids.is_none()
            && self.threat_level_id.is_none()
    }
}

/// `{"events": [rows], "total", "page", "limit"}`; `total` is MISP's `X-Result-Count`, or the
/// rows' count when MISP sent none.
pub fn search_output(found: CountedEvents, page: &Page) -> Value {
    let events: Vec<Value> = found
        .events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("Event"))
        .map(event_row)
        .collect();
    let total = found.result_count.unwrap_or(events.len() as u64);
    json!({"events": events, "total": total, "page": page.page, "limit": page.limit})
}

/// One event as a compact row.
fn event_row(event: &Value) -> Value {
    let field = |name: &str| event.get(name).cloned().unwrap_or(Value::Null);
    let org_name = |name: &str| {
        event
            .get(name)
            .and_then(|org| org.get("name"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let threat_level = number(event.get("threat_level_id"))
        .and_then(|level| usize::try_from(level).ok())
        .and_then(|level| level.checked_sub(1))
        .and_then(|index| THREAT_LEVELS.get(index));
    let tags: Vec<&Value> = event
        .get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tag| tag.get("name"))
        .collect();
    json!({
        "id": field("id"),
        "uuid": field("uuid"),
        "info": field("info"),
        "date": field("date"),
        "threat_level_id": field("threat_level_id"),
        "threat_level": threat_level,
        "published": event.get("published").is_some_and(flag),
        "org": org_name("Org"),
        "orgc": org_name("Orgc"),
        "tags": tags,
        "attribute_count": number(event.get("attribute_count")),
    })
}

/// A select's label as the field lists it, matched ignoring case (scripts may set a string).
fn choice(inputs: &Inputs, field: &'static InputField) -> Result<Option<&'static str>, InputError> {
    let Some(label) = inputs.select(field.name)? else {
        return Ok(None);
    };
    match field.value_by_label(label.trim()) {
        Some(value) => Ok(Some(value.label)),
        None => Err(InputError::Invalid {
            field: field.name.to_string(),
            value: format!("{label:?}"),
            problem: format!(
                "not one of {}",
                field
                    .values
                    .iter()
                    .map(|value| value.label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// An Any/Yes/No select: `None` for Any.
fn yes_no(inputs: &Inputs, field: &'static InputField) -> Result<Option<bool>, InputError> {
    Ok(match choice(inputs, field)? {
        Some("Yes") => Some(true),
        Some("No") => Some(false),
        _ => None,
    })
}

/// Comma-separated tag names; a comma inside double quotes (a galaxy value) does not split.
fn tag_list(inputs: &Inputs, field: &InputField) -> Result<Vec<String>, InputError> {
    let Some(text) = inputs.text(field.name)? else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in text.chars() {
        match character {
            '"' => {
                quoted = !quoted;
                current.push(character);
            }
            ',' if !quoted => names.push(std::mem::take(&mut current)),
            _ => current.push(character),
        }
    }
    names.push(current);
    let names: Vec<String> = names
        .into_iter()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        return Err(InputError::Invalid {
            field: field.name.to_string(),
            value: format!("{text:?}"),
            problem: "names no tag".to_string(),
        });
    }
    Ok(names)
}

/// A datepicker (epoch milliseconds) as the UTC day, `YYYY-MM-DD`.
fn date(inputs: &Inputs, field: &InputField) -> Result<Option<String>, InputError> {
    let Some(millis) = inputs.epoch_millis(field.name)? else {
        return Ok(None);
    };
    match chrono::DateTime::from_timestamp_millis(millis) {
        Some(instant) => Ok(Some(instant.format("%Y-%m-%d").to_string())),
        None => Err(InputError::Invalid {
            field: field.name.to_string(),
            value: millis.to_string(),
            problem: "is not a date (epoch milliseconds)".to_string(),
        }),
    }
}

/// `misp_last`: a positive number and a unit MISP knows (d, h, m, s), lower-cased.
fn checked_last(last: String) -> Result<String, InputError> {
    let lower = last.to_ascii_lowercase();
    let (count, unit) = lower.split_at(lower.len().saturating_sub(1));
    let fits = matches!(unit, "d" | "h" | "m" | "s")
        && !count.is_empty()
        && count.bytes().all(|byte| byte.is_ascii_digit())
        && count.bytes().any(|byte| byte != b'0');
    if fits {
        return Ok(lower);
    }
    Err(InputError::Invalid {
        field: MISP_LAST.name.to_string(),
        value: format!("{last:?}"),
        problem: "must be a number and d, h, m or s, such as 7d, 12h or 30m".to_string(),
    })
}

/// MISP's numbers come as strings of digits or as numbers.
fn number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// MISP's booleans: `true`, `1` or `"1"`.
fn flag(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        other => number(Some(other)) == Some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    fn search(value: Value) -> Result<EventSearch, String> {
        EventSearch::from_inputs(&inputs(value)).map_err(|error| error.to_string())
    }

    #[test]
    fn no_filter_is_an_error_naming_every_filter() {
        let error = search(json!({"misp_limit": 5, "misp_page": 2,
            "misp_search_published": {"id": 5301, "name": "Any"}}))
        .expect_err("Any and paging are no filter");
        assert_eq!(
            error,
            "give at least one filter (misp_attribute_value, misp_attribute_type, misp_category, misp_tags_all, misp_tags_none, misp_org, misp_date_from, misp_date_to, misp_last, misp_search_published, misp_search_to_ids, misp_search_threat_level): a search without one would read every event in MISP"
        );
    }

    #[test]
    fn every_filter_goes_into_the_body() {
        let search = search(json!({
            "misp_attribute_value": "198.51.100.7",
            "misp_attribute_type": " ip-dst ",
            "misp_category": {"id": 5008, "name": "Network activity"},
            "misp_tags_all": "tlp:amber, misp-galaxy:threat-actor=\"Sofacy, APT28\",apt",
            "misp_tags_none": {"format": "text", "content": "false-positive"},
            "misp_org": "CIRCL",
            "misp_date_from": 1_704_067_200_000i64,
            "misp_date_to": 1_706_659_200_000i64,
            "misp_last": "7D",
            "misp_search_published": {"id": 5302, "name": "Yes"},
            "misp_search_to_ids": "no",
            "misp_search_threat_level": {"id": 5307, "name": "High"},
            "misp_limit": 20,
            "misp_page": 3,
        }))
        .expect("every filter is valid");
        let page = search.page_of(100).expect("20 is within 100");
        assert_eq!(page, Page { limit: 20, page: 3 });
        assert_eq!(
            search.body(&page),
            json!({
                "returnFormat": "json", "metadata": true, "limit": 20, "page": 3,
                "value": "198.51.100.7", "type": "ip-dst", "category": "Network activity",
                "tags": {"AND": ["tlp:amber", "misp-galaxy:threat-actor=\"Sofacy, APT28\"", "apt"],
                         "NOT": ["false-positive"]},
                "org": "CIRCL", "from": "2024-01-01", "to": "2024-01-31", "last": "7d",
                "published": true, "to_ids": false, "threat_level_id": "1",
            })
        );
        assert_eq!(
            search.describe(),
            "value=198.51.100.7, type=ip-dst, category=Network activity, tags_all=tlp:amber, misp-galaxy:threat-actor=\"Sofacy, APT28\", apt, tags_none=false-positive, org=CIRCL, from=2024-01-01, to=2024-01-31, last=7d, published=yes, to_ids=no, threat_level=High"
        );
    }

    #[test]
    fn tags_to_leave_out_alone_use_misps_list_form() {
        let tags = |inputs: Value| {
            let search = search(inputs).expect("a filter");
            search.body(&search.page_of(10).expect("a page"))["tags"].clone()
        };
        assert_eq!(
            tags(json!({"misp_tags_none": "tlp:red, false-positive"})),
            json!(["!tlp:red", "!false-positive"])
        );
        assert_eq!(
            tags(json!({"misp_tags_all": "apt"})),
            json!({"AND": ["apt"]})
        );
        assert_eq!(tags(json!({"misp_last": "1d"})), Value::Null);
    }

    #[test]
    fn the_limit_defaults_to_search_limit_and_may_not_pass_it() {
        let search = search(json!({"misp_last": "30d"})).expect("a filter");
        assert_eq!(
            search.page_of(100).ok(),
            Some(Page {
                limit: 100,
                page: 1
            })
        );
        let over =
            EventSearch::from_inputs(&inputs(json!({"misp_last": "30d", "misp_limit": 101})))
                .expect("a filter");
        assert_eq!(
            over.page_of(100).expect_err("101 > 100").to_string(),
            "input 'misp_limit' is 101, more than search_limit (100) in [fn_misp]"
        );
        assert!(search_with(json!({"misp_limit": 0})).contains("'misp_limit' is 0"));
        assert!(search_with(json!({"misp_page": 0})).contains("'misp_page' is 0"));
    }

    fn search_with(extra: Value) -> String {
        let mut value = json!({"misp_last": "1d"});
        for (key, item) in extra.as_object().expect("an object") {
            value[key] = item.clone();
        }
        search(value).expect_err("refused")
    }

    #[test]
    fn bad_filters_name_their_field() {
        assert_eq!(
            search_with(json!({"misp_last": "7 days"})),
            "input 'misp_last' is \"7 days\", must be a number and d, h, m or s, such as 7d, 12h or 30m"
        );
        for bad in ["d", "0d", "7w", "-7d", "7.5h"] {
            assert!(
                search_with(json!({ "misp_last": bad })).starts_with("input 'misp_last'"),
                "{bad}"
            );
        }
        assert_eq!(
            search_with(json!({"misp_attribute_type": "IP-DST"})),
            "input 'misp_attribute_type' is \"IP-DST\", not a MISP attribute type; closest: ip-dst, ip-dst|port, ip-src"
        );
        assert_eq!(
            search_with(json!({"misp_search_threat_level": "Severe"})),
            "input 'misp_search_threat_level' is \"Severe\", not one of High, Medium, Low, Undefined"
        );
        assert_eq!(
            search_with(json!({"misp_category": "Network"}))
                .split(',')
                .next(),
            Some("input 'misp_category' is \"Network\"")
        );
        assert_eq!(
            search_with(json!({"misp_tags_all": " , "})),
            "input 'misp_tags_all' is \" , \", names no tag"
        );
        assert_eq!(
            search_with(
                json!({"misp_date_from": 1_706_659_200_000i64, "misp_date_to": 1_704_067_200_000i64})
            ),
            "input 'misp_date_from' is 2024-01-31, is after misp_date_to (2024-01-01)"
        );
        assert!(search_with(json!({"misp_date_to": "2024-01-01"})).contains("misp_date_to"));
    }

    #[test]
    fn each_filter_alone_is_enough() {
        for filter in [
            json!({"misp_attribute_value": "x"}),
            json!({"misp_attribute_type": "md5"}),
            json!({"misp_category": "Other"}),
            json!({"misp_tags_all": "tlp:red"}),
            json!({"misp_tags_none": "tlp:red"}),
            json!({"misp_org": "1"}),
            json!({"misp_date_from": 0}),
            json!({"misp_date_to": 0}),
            json!({"misp_last": "12h"}),
            json!({"misp_search_published": "No"}),
            json!({"misp_search_to_ids": {"id": 5305, "name": "Yes"}}),
            json!({"misp_search_threat_level": "undefined"}),
        ] {
            assert!(search(filter.clone()).is_ok(), "{filter}");
        }
    }

    #[test]
    fn rows_are_compact_and_the_total_is_misps_count() {
        let found = CountedEvents {
            events: json!([{"Event": {
                "id": "12", "uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "info": "Ursnif",
                "date": "2018-08-01", "threat_level_id": "3", "published": true,
                "attribute_count": "5", "Org": {"name": "ORGNAME"}, "Orgc": {"name": "CIRCL"},
                "Tag": [{"name": "tlp:white"}, {"name": "apt"}], "analysis": "2",
            }}, {"Event": {"id": "13", "threat_level_id": "9", "published": false}}]),
            result_count: Some(57),
        };
        let output = search_output(found, &Page { limit: 2, page: 1 });
        assert_eq!(
            output,
            json!({"events": [
                {"id": "12", "uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "info": "Ursnif",
                 "date": "2018-08-01", "threat_level_id": "3", "threat_level": "Low",
                 "published": true, "org": "ORGNAME", "orgc": "CIRCL", "tags": ["tlp:white", "apt"],
                 "attribute_count": 5},
                {"id": "13", "uuid": null, "info": null, "date": null, "threat_level_id": "9",
                 "threat_level": null, "published": false, "org": null, "orgc": null, "tags": [],
                 "attribute_count": null},
            ], "total": 57, "page": 1, "limit": 2})
        );
        let without_count = CountedEvents {
            events: json!([{"Event": {"id": "1"}}]),
            result_count: None,
        };
        assert_eq!(
            search_output(without_count, &Page { limit: 5, page: 1 })["total"],
            json!(1)
        );
    }
}
