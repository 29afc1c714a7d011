#: Playbook misp_delete_attribute: the input script of its function step.
#: A soft delete: MISP marks the attribute deleted and can restore it.
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_attribute_value = artifact.value
inputs.misp_hard_delete = False
