//! Placeholder: end-to-end tests of the new fn_misp functions go here.
