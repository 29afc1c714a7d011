#: Workflow example_misp_create_sighting: the post-processing script of its function step.
existing_description = artifact.description.content + '\n' if artifact.description else ""
artifact.description = "{}MISP Attribute created: {}".format(existing_description, results.content['message'])
