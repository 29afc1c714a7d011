#: Playbook misp_update_attribute: the input script of its function step.
#: Run on an artifact the analyst judged benign: MISP stops offering it to IDSs and says why.
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_attribute_value = artifact.value
inputs.misp_to_ids = False
inputs.misp_comment = "Benign per SOAR incident {}".format(incident.id)
