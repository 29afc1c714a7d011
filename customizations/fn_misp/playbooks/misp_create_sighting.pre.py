#: Playbook misp_create_sighting: the input script of its function step.
inputs.misp_sighting = artifact.value
