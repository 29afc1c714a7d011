#: Playbook misp_add_object: its local script "post process".
#: Says on the artifact which MISP object now holds it; a refusal says why.
results = playbook.functions.results.misp_object
existing_description = artifact.description.content+'\n' if artifact.description else ""
if results.get("success"):
  misp_object = results.get("content", {}).get("Object", {})
  artifact.description = "{}Added to MISP event {} as {} object {} (UUID {})".format(existing_description, misp_object.get("event_id"), misp_object.get("name"), misp_object.get("id"), misp_object.get("uuid"))
else:
  artifact.description = "{}MISP did not add the url object: {}".format(existing_description, results.get("reason"))
