#: Playbook misp_add_object: the input script of its function step.
#: The URL artifact becomes a MISP url object in the incident's MISP event: its url relation is
#: the artifact's value (a JSON string, so quotes and backslashes are escaped). Other relations of
#: the url template (host, domain, ip, port...) may be added to the map the same way.
url = artifact.value.replace("\\", "\\\\").replace('"', '\\"')
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_object_template = "url"
inputs.misp_object_attributes = '{{"url": "{}"}}'.format(url)
inputs.misp_comment = "From SOAR incident {}".format(incident.id)
