#: Playbook misp_create_sighting: its local script "post process".
results = playbook.functions.results.misp_sighting
existing_description = artifact.description.content+'\n' if artifact.description else ""

if results.get("success"):
  artifact.description = "{}MISP Attribute created: {}".format(existing_description, results.get("content", {}).get('message'))
