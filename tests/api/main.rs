//! HTTP tests: each starts the real application on port 0 and speaks HTTP to it.

mod abuse;
mod admin;
mod authz;
mod bad_input;
mod browser;
mod cli;
mod cluster;
mod concurrency;
mod console;
mod contract_fuzz;
mod expiry;
mod helpers;
mod layers;
mod listing;
mod login;
mod model;
mod openapi_spec;
mod operations;
mod policy;
mod process;
mod properties;
mod redis_server;
mod settings;
mod snapshots;
mod store_contract;
mod stress;
