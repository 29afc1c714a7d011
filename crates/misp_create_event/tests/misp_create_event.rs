//! `misp_create_event` as SOAR sees it: its definition against the original export.

use fn_misp::test_support;

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_create_event::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_create_event")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_create_event::DEFINITION);
}

#[test]
fn the_export_comparison_notices_a_changed_field() {
    // Guards the check itself: a definition with one wrong tooltip and a swapped input order
    // must be reported, or the test above proves nothing.
    let mut changed = misp_create_event::DEFINITION;
    let mut inputs = changed.inputs.to_vec();
    inputs[1].tooltip = "Organisation only=0";
    inputs.swap(2, 3);
    changed.inputs = Box::leak(inputs.into_boxed_slice());
    let problems = test_support::export_differences(&changed, &test_support::export_res());
    assert_eq!(
        problems.len(),
        2,
        "expected two differences, got {problems:#?}"
    );
    assert!(problems[0].starts_with("view_items"), "{problems:#?}");
    assert!(
        problems[1].starts_with("__function/misp_distribution tooltip"),
        "{problems:#?}"
    );
}
