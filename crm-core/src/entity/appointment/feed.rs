//! Calendar feeds: a revocable token per user that reads their appointments and crew assignments as
//! an iCalendar feed (`GET /api/v1/calendar/{token}.ics`), so a phone's calendar app can subscribe
//! without the user's session. The token is shown once; the core keeps only its hash. A user has at
//! most one feed: issuing a new one revokes the old (deleting the record revokes it too). The feed
//! reads as its user does today: a deactivated user's feed answers nothing.

use super::{SINCE, declare};
use crate::schema::{EntityDef, Exposure, FieldDef as F};
use crate::value::FieldType as T;

declare!(CALENDAR_FEED, calendar_feed);

/// Field names of a calendar feed.
pub mod fields {
    pub const USER_ID: &str = "user_id";
    pub const TOKEN_HASH: &str = "token_hash";
}

/// How far back and ahead a feed reaches, in days from today.
pub const DAYS_BACK: i64 = 30;
pub const DAYS_AHEAD: i64 = 365;

fn calendar_feed() -> EntityDef {
    let mut e = EntityDef::new("calendar_feed", "calendar_feeds")
        .field(F::new(fields::USER_ID, T::Ref("user")).read_only())
        .field(F::new(fields::TOKEN_HASH, T::Text).secret());
    e.since = SINCE;
    // Issued and revoked by their own use cases (`Service::create_calendar_feed`).
    e.exposure = Exposure::Managed;
    e.owner_field = Some(fields::USER_ID);
    e.indexes = vec![&[fields::USER_ID]];
    e
}
