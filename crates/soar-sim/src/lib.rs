//! A SOAR stand-in (stub: being written).
