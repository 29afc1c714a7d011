//! Choosing apps by name for `customize -l` and `selftest -l`, as resilient-circuits does:
//! by package name, written with `-` or `_` (`fn-misp` and `fn_misp` are the same app).

use soar_core::Registry;

/// A name given with `-l/--list` that is no app served here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-l/--list: {}; known apps: {}", describe_unknown(.unknown), .known.join(", "))]
pub struct UnknownApps {
    pub unknown: Vec<String>,
    /// The package names of the apps served, sorted: `fn-misp`, `fn-urlscanio`.
    pub known: Vec<String>,
}

/// The exit status for an unknown app: what resilient-circuits' argument parser (and clap)
/// exit with on a bad argument.
pub const UNKNOWN_APP_EXIT_CODE: u8 = 2;

/// The part of `registry` that serves the apps named in `requested`; every function when
/// `requested` is `None`. Each name is matched against the apps' package names with `-`
/// and `_` taken as the same character, in any case.
pub fn select(registry: &Registry, requested: Option<&[String]>) -> Result<Registry, UnknownApps> {
    let Some(requested) = requested else {
        return Ok(registry.clone());
    };
    let unknown: Vec<String> = requested
        .iter()
        .filter(|name| {
            !registry
                .functions()
                .any(|function| same_app(name, function.definition().app.package))
        })
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(UnknownApps {
            unknown,
            known: package_names(registry),
        });
    }
    let chosen = registry.functions().filter(|function| {
        requested
            .iter()
            .any(|name| same_app(name, function.definition().app.package))
    });
    // A part of a registry cannot hold a name twice when the whole did not.
    Ok(Registry::from_functions(chosen).unwrap_or_else(|_| registry.clone()))
}

/// The package names of the apps `registry` serves, sorted and without repeats.
pub fn package_names(registry: &Registry) -> Vec<String> {
    let mut names: Vec<String> = registry
        .functions()
        .map(|function| function.definition().app.package.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn same_app(given: &str, package: &str) -> bool {
    let normalize = |name: &str| name.trim().to_ascii_lowercase().replace('-', "_");
    normalize(given) == normalize(package)
}

fn describe_unknown(unknown: &[String]) -> String {
    match unknown {
        [one] => format!("no app named '{one}' is served here"),
        many => format!(
            "no apps named {} are served here",
            many.iter()
                .map(|name| format!("'{name}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::from_inventory().expect("no duplicate function names")
    }

    fn apps_of(registry: &Registry) -> Vec<&'static str> {
        let mut apps: Vec<&str> = registry
            .functions()
            .map(|function| function.definition().app.name)
            .collect();
        apps.dedup();
        apps
    }

    fn names(given: &[&str]) -> Vec<String> {
        given.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn no_list_keeps_every_function() {
        let all = registry();
        let chosen = select(&all, None).expect("no list is never an error");
        assert_eq!(chosen.len(), all.len());
    }

    #[test]
    fn the_package_name_with_a_dash_or_an_underscore_chooses_the_same_app() {
        let all = registry();
        for given in ["fn-misp", "fn_misp", "FN-MISP"] {
            let chosen = select(&all, Some(&names(&[given]))).expect("fn_misp is served");
            assert_eq!(apps_of(&chosen), ["fn_misp"], "-l {given}");
            assert!(chosen.len() > 1, "every fn_misp function, not one");
            assert!(
                chosen.get("urlscanio").is_err(),
                "-l {given} leaves out urlscanio"
            );
            assert!(chosen.get("misp_search_attribute").is_ok());
        }
        let chosen = select(&all, Some(&names(&["fn_urlscanio"]))).expect("served");
        assert_eq!(chosen.names().collect::<Vec<_>>(), ["urlscanio"]);
    }

    #[test]
    fn several_apps_at_once() {
        let all = registry();
        let chosen = select(&all, Some(&names(&["fn-urlscanio", "fn_misp"]))).expect("served");
        assert_eq!(chosen.len(), all.len());
    }

    #[test]
    fn an_unknown_app_is_an_error_listing_the_known_ones() {
        let error = select(&registry(), Some(&names(&["fn-misp", "fn-mips"])))
            .expect_err("fn-mips is no app");
        assert_eq!(error.unknown, ["fn-mips"]);
        assert_eq!(
            error.to_string(),
            "-l/--list: no app named 'fn-mips' is served here; known apps: fn-misp, fn-urlscanio"
        );
        let error = select(&registry(), Some(&names(&["a", "b"]))).expect_err("unknown");
        assert!(
            error
                .to_string()
                .starts_with("-l/--list: no apps named 'a', 'b' are served here"),
            "{error}"
        );
    }
}
