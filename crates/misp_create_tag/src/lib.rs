//! The `misp_create_tag` function (stub: being written).
