#: Playbook misp_add_sighting: the input script of its function step.
#: A false positive on every MISP attribute with the artifact's value, from SOAR, now.
inputs.misp_sighting = artifact.value
inputs.misp_sighting_type = "False positive"
