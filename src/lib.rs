//! sessiond: issues, validates and expires login sessions, and lets administrators list and end
//! them. The binary in `main.rs` only reads settings and runs [`startup::Application`].

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod duration;
pub mod error;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod persistence;
pub mod route_table;
pub mod routes;
pub mod schema;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod webhooks;
