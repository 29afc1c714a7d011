#: Workflow example_misp_sighting_list: the post-processing script of its function step.
incident.addNote("Sightings for associated event.\n{}".format(results.content))
