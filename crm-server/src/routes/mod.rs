//! The API's routes, one module per area. Each adds its routes and their OpenAPI operations.

pub mod admin;
pub mod aggregates;
pub mod analytics;
pub mod attachments;
pub mod auth;
pub mod calendar;
pub mod compliance;
pub mod dashboard;
pub mod field_work;
pub mod leads;
pub mod memberships;
pub mod ops;
pub mod quotes;
pub mod records;
pub mod routing;
pub mod sync;
pub mod transfer;
