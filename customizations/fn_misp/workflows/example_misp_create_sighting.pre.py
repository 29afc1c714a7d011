#: Workflow example_misp_create_sighting: the pre-processing script of its function step.
inputs.misp_sighting = artifact.value
