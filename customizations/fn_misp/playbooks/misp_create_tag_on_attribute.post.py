#: Playbook misp_create_tag_on_attribute: its local script "post process".
results = playbook.functions.results.tags
if results.get("success"):
  incident.addNote("Tags {} added to the MISP Attribute {}.".format(results.get("inputs", {}).get("misp_tag_name"), artifact.value))
