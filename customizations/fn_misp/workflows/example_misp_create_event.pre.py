#: Workflow example_misp_create_event: the pre-processing script of its function step.
inputs.misp_event_name = incident.name
# inputs.misp_analysis_level = 2
# inputs.misp_distribution = 0
# inputs.misp_threat_level = 1
