//! `misp_sighting_list` as SOAR sees it: its definition against the original export.

use fn_misp::test_support;

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_sighting_list::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_sighting_list")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_sighting_list::DEFINITION);
}
