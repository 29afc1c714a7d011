//! The `misp_create_attribute` function (stub: being written).
