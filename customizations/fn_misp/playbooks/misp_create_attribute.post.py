#: Playbook misp_create_attribute: its local script "post process".
results = playbook.functions.results.misp_attribute
existing_description = artifact.description.content+'\n' if artifact.description else ""

if results.get("content", [])[0].get('errors'):
  artifact.description = "{}MISP Attribute failure: {}".format(existing_description, results.get("content", [])[0].get('errors', {}).get('value'))
else:
  artifact.description = "{}MISP Attribute created: {}".format(existing_description, results.get("content", [])[0].get('Attribute', {}).get('category'))
