//! Placeholder: filled in by the work on the new fn_misp functions.
