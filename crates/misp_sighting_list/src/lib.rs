//! The `misp_sighting_list` function (stub: being written).
