#: Workflow example_misp_search_attribute: the pre-processing script of its function step.
inputs.misp_attribute_value = artifact.value
