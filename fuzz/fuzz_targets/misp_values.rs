//! `misp_values` as analysts paste it: the list reader, refanging and type detection of
//! `fn_misp::indicators`, then a bulk add's plan. Nothing may panic; refanging twice changes
//! nothing more; every detected type is one MISP knows; a plan has one item per entry read.
#![no_main]

use fn_misp::attribute_type::is_misp_type;
use fn_misp::indicators::{self, ListedValue};
use libfuzzer_sys::fuzz_target;
use misp_add_attributes::plan::{BatchSettings, Plan, Uuid};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let listed = indicators::parse_values(text);
    for entry in &listed {
        let ListedValue::Value { value, .. } = entry else {
            continue;
        };
        assert_eq!(&indicators::refang(value), value, "refang is idempotent");
        if let Some(detected) = indicators::detect_type(value) {
            assert!(is_misp_type(detected), "{detected} is not a MISP type");
        }
    }
    let refanged = indicators::refang(text);
    assert_eq!(
        indicators::refang(&refanged),
        refanged,
        "refang is idempotent"
    );

    let plan = Plan::read(text);
    assert_eq!(plan.items.len(), listed.len());
    let sent = plan.attributes_to_add(&Uuid::nil(), &BatchSettings::default());
    assert!(sent.len() <= plan.items.len());
    let _ = plan.results();
});
