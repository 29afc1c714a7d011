#: Playbook misp_search_events: the input script of its function step.
#: misp_last counts back from MISP's publication time; misp_date_from and misp_date_to
#: (epoch milliseconds, as date fields hold them) filter on the event's date instead.
inputs.misp_attribute_value = artifact.value
inputs.misp_last = "30d"
inputs.misp_limit = 20
