#: Playbook misp_add_attributes: the input script of its function step.
#: Run when the incident is closed, on each artifact to share: its value goes to the incident's
#: MISP event. An artifact may hold one value or a list pasted from a report (a String artifact,
#: one value per line, defanged forms such as hxxp:// and 1.2.3[.]4 allowed): every value is
#: added in one call. SOAR's scripts cannot list an incident's artifacts, hence one run per
#: artifact. Set misp_add_warninglisted to True to add values on MISP's warninglists too.
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_values = artifact.value
inputs.misp_to_ids = True
inputs.misp_comment = "From SOAR incident {} ({})".format(incident.id, artifact.type)
inputs.misp_add_warninglisted = False
