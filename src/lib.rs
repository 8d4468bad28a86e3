//! Holoptic: an accounting service for open value networks.
//!
//! Data flows one way: HTTP ([`api`]) → domain types ([`domain`]) → storage ([`db`]) → DTOs.

pub mod accounting;
pub mod api;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod domain;
pub mod error;
pub mod journal;
pub mod ordered_pages;
pub mod ratelimit;
pub mod tokens;
pub mod webhooks;

pub use app::{openapi, Application};
pub use config::Config;
