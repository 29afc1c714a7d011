#: Playbook misp_verdict: the input script of its function step.
#: The artifact's value, and its type, which picks the MISP types searched.
inputs.misp_attribute_value = artifact.value
inputs.misp_artifact_type = artifact.type
