#: Playbook misp_search_attribute: the input script of its function step.
inputs.misp_attribute_value = artifact.value
