//! A SOAR function message body as the runner reads it: `parse_call`, then the inputs, read
//! by every typed getter of every function's fields, then each function run up to the point
//! where it would need MISP (which is absent here). Nothing may panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use soar_core::config::AppConfig;
use soar_core::message::parse_call;
use soar_core::{FunctionContext, InputType, Inputs, Registry};
use tokio_util::sync::CancellationToken;

// Linked for their registrations.
use misp_create_attribute as _;
use misp_create_event as _;
use misp_create_sighting as _;
use misp_create_tag as _;
use misp_search_attribute as _;
use misp_sighting_list as _;
use urlscanio as _;

struct World {
    registry: Registry,
    config: Arc<AppConfig>,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World {
        registry: Registry::from_inventory().expect("no duplicate function names"),
        config: Arc::new(AppConfig::parse("[fn_misp]\n", "fuzz").expect("a valid config")),
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(call) = parse_call(data) else {
        return;
    };
    let Ok(inputs) = Inputs::from_value(call.inputs) else {
        return;
    };
    let world = world();
    let _ = inputs.normalized();
    for function in world.registry.functions() {
        for field in function.definition().inputs {
            read_field(&inputs, field.name, field.input_type);
        }
    }
    // Every function, whatever the message named, so the fuzzer need not guess names.
    for function in world.registry.functions() {
        let context = FunctionContext::new(
            Arc::new(|_message: String| {}),
            Err("no MISP while fuzzing".to_string()),
            world.config.clone(),
            None,
            CancellationToken::new(),
        );
        let _ = world.runtime.block_on(function.run(&context, &inputs));
    }
});

fn read_field(inputs: &Inputs, name: &str, input_type: InputType) {
    match input_type {
        InputType::Text | InputType::Textarea => {
            let _ = inputs.text(name);
        }
        InputType::Number => {
            let _ = inputs.integer(name);
            let _ = inputs.integer_in(name, 0..=4, "fuzzing");
        }
        InputType::Boolean => {
            let _ = inputs.boolean(name);
        }
        InputType::Select => {
            let _ = inputs.select(name);
        }
        InputType::Multiselect => {
            let _ = inputs.multiselect(name);
        }
        InputType::Datepicker | InputType::Datetimepicker => {
            let _ = inputs.epoch_millis(name);
        }
    }
}
