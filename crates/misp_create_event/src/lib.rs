//! The `misp_create_event` function (stub: being written).
