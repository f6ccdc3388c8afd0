//! Integration tests of the search engine over a real store.

mod engine;
mod model;
mod support;
