//! Shared helpers of the integration tests (each test file takes what it uses).
#![allow(dead_code)]

pub mod registry;
