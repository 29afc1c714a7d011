//! The `misp_create_sighting` function (stub: being written).
