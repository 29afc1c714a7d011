#: Workflow example_misp_create_attribute: the post-processing script of its function step.
existing_description = artifact.description.content + '\n' if artifact.description else ""
created = results.content[0]

if created.get('errors'):
  artifact.description = "{}MISP Attribute failure: {}".format(existing_description, created['errors'].get('value'))
else:
  artifact.description = "{}MISP Attribute created: {}".format(existing_description, created['Attribute']['category'])
