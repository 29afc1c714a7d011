//! An in-memory MISP stand-in (stub: being written).
