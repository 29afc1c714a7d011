//! The `misp_search_attribute` function (stub: being written).
