//! The `urlscanio` function of fn_urlscanio (being written).
