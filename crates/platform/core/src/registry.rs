//! The registry of functions linked into the process, built once at start-up.

use std::collections::BTreeMap;

use crate::Function;
use crate::config::AppConfig;

/// One registration, submitted by `register_function!`.
#[derive(Clone, Copy)]
pub struct Registration {
    function: &'static dyn Function,
}

inventory::collect!(Registration);

impl std::fmt::Debug for Registration {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_tuple("Registration")
            .field(&self.function.definition().name)
            .finish()
    }
}

impl Registration {
    pub const fn new(function: &'static dyn Function) -> Registration {
        Registration { function }
    }
}

/// Every registered function by API name.
#[derive(Clone)]
pub struct Registry {
    by_name: BTreeMap<&'static str, &'static dyn Function>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_list().entries(self.by_name.keys()).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "two functions are registered as '{name}': one from app '{first_app}' ({first_display}) and one from app '{second_app}' ({second_display})"
    )]
    Duplicate {
        name: String,
        first_app: String,
        first_display: String,
        second_app: String,
        second_display: String,
    },
    #[error("no function named '{name}' is served here; known functions: {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
}

impl Registry {
    /// Collects every function submitted with `register_function!` in a linked crate.
    pub fn from_inventory() -> Result<Registry, RegistryError> {
        Registry::from_functions(
            inventory::iter::<Registration>
                .into_iter()
                .map(|r| r.function),
        )
    }

    pub fn from_functions(
        functions: impl IntoIterator<Item = &'static dyn Function>,
    ) -> Result<Registry, RegistryError> {
        let mut by_name: BTreeMap<&'static str, &'static dyn Function> = BTreeMap::new();
        for function in functions {
            let definition = function.definition();
            if let Some(existing) = by_name.get(definition.name) {
                let first = existing.definition();
                return Err(RegistryError::Duplicate {
                    name: definition.name.to_string(),
                    first_app: first.app.name.to_string(),
                    first_display: first.display_name.to_string(),
                    second_app: definition.app.name.to_string(),
                    second_display: definition.display_name.to_string(),
                });
            }
            by_name.insert(definition.name, function);
        }
        Ok(Registry { by_name })
    }

    pub fn get(&self, name: &str) -> Result<&'static dyn Function, RegistryError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| RegistryError::Unknown {
                name: name.to_string(),
                known: self.names().map(str::to_string).collect(),
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name.keys().copied()
    }

    /// Functions in API-name order.
    pub fn functions(&self) -> impl Iterator<Item = &'static dyn Function> + '_ {
        self.by_name.values().copied()
    }

    /// Each function's complaint about its settings in `config` ([`Function::check_config`]),
    /// in API-name order: `(function name, problem)`.
    pub fn config_problems(&self, config: &AppConfig) -> Vec<(&'static str, String)> {
        self.functions()
            .filter_map(|function| {
                let problem = function.check_config(config).err()?;
                Some((function.definition().name, problem))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The distinct message destinations, sorted.
    pub fn destinations(&self) -> Vec<&'static str> {
        let mut destinations: Vec<_> = self
            .functions()
            .map(|function| function.definition().destination)
            .collect();
        destinations.sort_unstable();
        destinations.dedup();
        destinations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AppInfo, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, Inputs,
    };

    static APP_A: AppInfo = AppInfo {
        name: "app_a",
        package: "app-a",
        version: "1.0.0",
    };
    static APP_B: AppInfo = AppInfo {
        name: "app_b",
        package: "app-b",
        version: "1.0.0",
    };

    struct Fake(&'static FunctionDefinition);

    #[async_trait::async_trait]
    impl Function for Fake {
        fn definition(&self) -> &'static FunctionDefinition {
            self.0
        }
        async fn run(
            &self,
            _context: &FunctionContext,
            _inputs: &Inputs,
        ) -> Result<FunctionOutput, FunctionError> {
            Ok(FunctionOutput::success(serde_json::Value::Null))
        }
    }

    const fn definition(
        name: &'static str,
        app: &'static AppInfo,
        display: &'static str,
        destination: &'static str,
    ) -> FunctionDefinition {
        FunctionDefinition {
            name,
            display_name: display,
            description: "",
            destination,
            uuid: "00000000-0000-0000-0000-000000000000",
            app,
            inputs: &[],
        }
    }

    static ONE: FunctionDefinition = definition("one", &APP_A, "One", "dest_a");
    static TWO: FunctionDefinition = definition("two", &APP_A, "Two", "dest_a");
    static OTHER_ONE: FunctionDefinition = definition("one", &APP_B, "Other One", "dest_b");
    static THREE: FunctionDefinition = definition("three", &APP_B, "Three", "dest_b");
    static F_ONE: Fake = Fake(&ONE);
    static F_TWO: Fake = Fake(&TWO);
    static F_OTHER_ONE: Fake = Fake(&OTHER_ONE);
    static F_THREE: Fake = Fake(&THREE);

    /// A function that wants `[app_b] mode` set.
    struct Picky(&'static FunctionDefinition);

    #[async_trait::async_trait]
    impl Function for Picky {
        fn definition(&self) -> &'static FunctionDefinition {
            self.0
        }
        async fn run(
            &self,
            _context: &FunctionContext,
            _inputs: &Inputs,
        ) -> Result<FunctionOutput, FunctionError> {
            Ok(FunctionOutput::success(serde_json::Value::Null))
        }
        fn check_config(&self, config: &AppConfig) -> Result<(), String> {
            match config
                .section("app_b")
                .and_then(|section| section.get("mode"))
            {
                Some(_) => Ok(()),
                None => Err("[app_b] mode is missing".to_string()),
            }
        }
    }

    #[test]
    fn config_problems_name_each_function_that_has_one() {
        static PICKY: Picky = Picky(&THREE);
        let registry = Registry::from_functions([&F_ONE as &dyn Function, &PICKY]).unwrap();
        let without = crate::config::tests::environment_held(|| {
            AppConfig::parse("[app_b]\nother=1\n", "test")
        })
        .unwrap();
        assert_eq!(
            registry.config_problems(&without),
            vec![("three", "[app_b] mode is missing".to_string())]
        );
        let with = crate::config::tests::environment_held(|| {
            AppConfig::parse("[app_b]\nmode=strict\n", "test")
        })
        .unwrap();
        assert!(registry.config_problems(&with).is_empty());
        assert_eq!(
            with.section("app_b").unwrap().keys().collect::<Vec<_>>(),
            vec!["mode"]
        );
    }

    #[test]
    fn duplicate_names_are_an_error_naming_both() {
        let error = Registry::from_functions([&F_ONE as &dyn Function, &F_OTHER_ONE]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "two functions are registered as 'one': one from app 'app_a' (One) and one from app 'app_b' (Other One)"
        );
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let registry = Registry::from_functions([&F_TWO as &dyn Function, &F_ONE]).unwrap();
        let error = registry.get("nope").err().unwrap();
        assert_eq!(
            error.to_string(),
            "no function named 'nope' is served here; known functions: one, two"
        );
        assert_eq!(
            registry.get("two").unwrap().definition().display_name,
            "Two"
        );
    }

    #[test]
    fn destinations_are_distinct_and_sorted() {
        let registry =
            Registry::from_functions([&F_THREE as &dyn Function, &F_ONE, &F_TWO]).unwrap();
        assert_eq!(registry.destinations(), vec!["dest_a", "dest_b"]);
        assert_eq!(registry.len(), 3);
    }
}
