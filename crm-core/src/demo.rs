//! Realistic demo tenants, all created through the service (validated, audited, scored): a roofing
//! company with a user of each role, contacts, companies, leads with activities over the last months;
//! a moving company with quotes in every state and a crew running local moves (journeys of ordered
//! steps from three days ago to four days ahead); and an esports centre with plans, clients holding
//! memberships in every status and months of check-ins. Deterministic: the same seed gives the same data on every platform.

use crate::access::Actor;
use crate::clock::{Clock, FixedClock, IdGen};
use crate::entity::{ACTIVITY_KINDS, LEAD_SOURCES};
use crate::error::Result;
use crate::progress::{Progress, Unit};
use crate::record::Record;
use crate::service::Service;
use crate::store::Store;
use crate::value::{Id, Timestamp};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;

/// How much demo data to load.
#[derive(Clone, Copy, Debug)]
pub struct DemoSize {
    pub contacts: usize,
    pub leads: usize,
    /// Average activities per lead.
    pub activities_per_lead: usize,
}

impl Default for DemoSize {
    fn default() -> Self {
        DemoSize {
            contacts: 1500,
            leads: 3000,
            activities_per_lead: 3,
        }
    }
}

/// What was loaded: the tenant and its users by role.
#[derive(Clone, Debug)]
pub struct DemoTenant {
    pub tenant: Id,
    /// (role, user id, email), one or more per built-in role.
    pub users: Vec<(String, Id, String)>,
}

impl DemoTenant {
    /// The first user with the role.
    pub fn user(&self, role: &str) -> Option<Id> {
        self.users.iter().find(|(r, _, _)| r == role).map(|(_, id, _)| *id)
    }
}

/// A small deterministic generator (SplitMix64): no OS randomness in the core. Public so tests,
/// benchmarks and fuzzers make the same kind of synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// An index into a slice of length `len`.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.index(xs.len())]
    }
    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

/// How recent an open lead must be to be one of the demo's unanswered inquiries.
const UNANSWERED_DAYS: i64 = 10;
/// The fewest activities (inbound calls and messages) an unanswered inquiry has.
const UNANSWERED_ACTIVITIES: usize = 3;

/// Synthetic data lists, shared with the benchmarks so every generator makes the same kind of rows.
pub const FIRST: &[&str] = &[
    "Ann", "Bob", "Carla", "Dev", "Elena", "Frank", "Grace", "Hugo", "Iris", "Jamal", "Kim", "Luis", "Mona", "Nate",
    "Olga", "Pete", "Quinn", "Rosa", "Sam", "Tara",
];
pub const LAST: &[&str] = &[
    "Anderson", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Kowalski", "Lopez",
    "Miller", "Nguyen", "Olsen", "Patel",
];
pub const STREETS: &[&str] = &[
    "Maple St",
    "Oak Ave",
    "Pine Rd",
    "Cedar Ln",
    "Elm Dr",
    "Aspen Ct",
    "Spruce Way",
];
pub const CITIES: &[&str] = &["Denver", "Boulder", "Aurora", "Lakewood", "Golden", "Littleton"];
/// The centre of each of [`CITIES`], `(latitude, longitude)`.
const CITY_CENTERS: &[(f64, f64)] = &[
    (39.7392, -104.9903),
    (40.0150, -105.2705),
    (39.7294, -104.8319),
    (39.7047, -105.0814),
    (39.7555, -105.2211),
    (39.6133, -105.0166),
];
/// The first three digits of each of [`CITIES`]' postal codes.
const POSTAL_PREFIXES: &[&str] = &["802", "803", "800", "802", "804", "801"];
pub const PROJECTS: &[&str] = &[
    "roof_replacement",
    "roof_repair",
    "roof_inspection",
    "storm_damage",
    "gutters",
    "siding",
];
/// The default pipeline's stage keys, weighted towards the open stages.
pub const STATUSES: &[&str] = &[
    "new",
    "new",
    "new",
    "contacted",
    "contacted",
    "qualified",
    "appointment_set",
    "proposal_sent",
    "negotiation",
    "won",
    "lost",
];
pub const OUTCOMES: &[&str] = &["connected", "no_answer", "left_voicemail", "replied", "scheduled"];

fn obj(j: Json) -> Map<String, Json> {
    j.as_object().cloned().unwrap_or_default()
}

/// Loads the demo tenant into `store`, with history spread over the 180 days before `now`, then
/// re-scores every lead as of `now`.
pub async fn load<S: Store>(store: S, ids: Arc<dyn IdGen>, now: Timestamp, size: DemoSize) -> Result<DemoTenant> {
    load_with(store, ids, now, size, &Progress::none()).await
}

/// Records created per progress report of [`load_with`].
const PROGRESS_EVERY: usize = 100;

/// [`load`], reporting the contacts and leads created of `size.contacts + size.leads` every
/// [`PROGRESS_EVERY`] records; the last report (at the total) comes after the re-score.
pub async fn load_with<S: Store>(
    store: S,
    ids: Arc<dyn IdGen>,
    now: Timestamp,
    size: DemoSize,
    progress: &Progress,
) -> Result<DemoTenant> {
    let total = (size.contacts + size.leads) as u64;
    let report = |done: usize| {
        if done.is_multiple_of(PROGRESS_EVERY) {
            progress.report(done as u64, Some(total), Unit::Records);
        }
    };
    let start = now.plus_days(-180);
    let clock = Arc::new(FixedClock::new(start));
    let svc = Service::new(store, clock.clone(), ids);
    let mut rng = Rng(0x5EED);
    let org = svc
        .create_organization(&obj(
            json!({"name": "Summit Roofing Co.", "timezone": "America/Denver"}),
        ))
        .await?;
    let admin = Actor::system(org.id);
    let mut locations = Vec::new();
    for city in ["Denver", "Boulder"] {
        locations.push(
            svc.create(
                &admin,
                "location",
                &obj(json!({"name": format!("{city} branch"), "city": city, "region": "CO", "country": "US"})),
            )
            .await?
            .id,
        );
    }
    let mut teams = Vec::new();
    for (i, name) in ["Denver Sales", "Boulder Sales", "Crew A", "Office"].iter().enumerate() {
        let kind = if i == 2 { "crew" } else { "sales" };
        let loc = locations[i.min(1)].to_string();
        teams.push(
            svc.create(
                &admin,
                "team",
                &obj(json!({"name": name, "kind": kind, "location_id": loc})),
            )
            .await?
            .id,
        );
    }
    let people = [
        ("admin", "Alex Admin", 3),
        ("manager", "Morgan Manager", 3),
        ("sales", "Sasha Sales", 0),
        ("sales", "Sid Sales", 0),
        ("sales", "Bea Boulder", 1),
        ("sales", "Bo Boulder", 1),
        ("field_tech", "Finn Fieldtech", 2),
        ("field_tech", "Fay Fieldtech", 2),
        ("staff", "Stella Staff", 3),
    ];
    let mut users = Vec::new();
    for (role, name, team) in people {
        let email = format!(
            "{}@summit-roofing.example",
            name.split(' ').next().unwrap_or(name).to_lowercase()
        );
        let u = svc
            .create(&admin, "user", &obj(json!({"name": name, "email": email, "role": role, "team_id": teams[team].to_string(), "phone": "303-555-0100"})))
            .await?;
        users.push((role.to_owned(), u.id, email));
    }
    let owners: Vec<(Id, Id)> = users
        .iter()
        .filter(|(r, _, _)| r == "sales" || r == "field_tech")
        .map(|(_, id, _)| {
            (
                *id,
                teams[users.iter().position(|u| u.1 == *id).map_or(0, |i| people[i].2)],
            )
        })
        .collect();

    let mut companies: Vec<Record> = Vec::new();
    for i in 0..size.contacts / 10 {
        let (owner, team) = owners[rng.index(owners.len())];
        let name = format!(
            "{} {}",
            rng.pick(LAST),
            rng.pick(&["Properties", "Holdings", "HOA", "Builders", "Apartments"])
        );
        let c = svc
            .create(&admin, "company", &obj(json!({"name": name, "customer_type": "commercial", "city": rng.pick(CITIES), "region": "CO",
                "phone": format!("720-555-{:04}", i % 10_000), "owner_id": owner.to_string(), "team_id": team.to_string()})))
            .await?;
        companies.push(c);
    }
    for i in 0..size.contacts {
        let (owner, team) = owners[rng.index(owners.len())];
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let mut input = json!({"first_name": first, "last_name": last, "email": format!("{}.{}{}@mail.example", first.to_lowercase(), last.to_lowercase(), i),
            "phone": format!("303-555-{:04}", i % 10_000), "address_line": format!("{} {}", 100 + rng.index(9000), rng.pick(STREETS)),
            "city": rng.pick(CITIES), "region": "CO", "country": "US", "customer_type": "residential",
            "owner_id": owner.to_string(), "team_id": team.to_string(), "external_id": format!("C{i:06}")});
        if rng.chance(15) && !companies.is_empty() {
            input["company_id"] = json!(companies[rng.index(companies.len())].id.to_string());
        }
        svc.create(&admin, "contact", &obj(input)).await?;
        report(i + 1);
    }
    // New leads are routed by the tenant's rules (docs/routing.md), not given an owner here.
    let user_named = |name: &str| users.iter().find(|u| u.2.starts_with(name)).map(|u| u.1.to_string());
    let rules = [
        json!({"name": "Referrals to Sasha", "position": 10, "condition": "source:referral",
            "strategy": "user", "user_id": user_named("sasha")}),
        json!({"name": "Inspections to the crew", "position": 20, "condition": "project_type:roof_inspection",
            "strategy": "round_robin", "team_id": teams[2].to_string()}),
        json!({"name": "Big jobs to Boulder", "position": 30, "condition": "estimated_value>=40000",
            "strategy": "fewest_open", "team_id": teams[1].to_string()}),
        json!({"name": "Territories", "position": 40, "strategy": "territory",
            "territories": {"800": teams[0].to_string(), "801": teams[0].to_string(), "802": teams[0].to_string(), "803": teams[1].to_string()}}),
        json!({"name": "Everyone else in turn", "position": 50, "strategy": "round_robin", "team_id": teams[0].to_string()}),
    ];
    for rule in rules {
        svc.create(&admin, "routing_rule", &obj(rule)).await?;
    }
    let step = (now.0 - start.0) / size.leads.max(1) as i64;
    for i in 0..size.leads {
        clock.set(Timestamp(start.0 + step * i as i64));
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let status = rng.pick(STATUSES);
        let value = [3_500, 8_000, 12_500, 18_000, 26_000, 45_000][rng.index(6)] + rng.index(2000) as i64;
        let mut input = json!({"first_name": first, "last_name": last, "source": rng.pick(LEAD_SOURCES), "status": status,
            "project_type": rng.pick(PROJECTS), "estimated_value": value.to_string(), "priority": rng.pick(&["low", "medium", "medium", "high", "urgent"]),
            "region": "CO", "external_id": format!("L{i:06}")});
        let city = rng.index(CITIES.len());
        input["city"] = json!(CITIES[city]);
        input["postal_code"] = json!(format!("{}{:02}", POSTAL_PREFIXES[city], i % 100));
        // Within about 5 km of the city's centre, four decimals (no draw: the demo's other values
        // stay as they were).
        let (lat, lon) = CITY_CENTERS[city];
        let spread = |k: usize| ((i * k) % 101) as f64 / 100.0 - 0.5;
        input["latitude"] = json!(((lat + spread(37) * 0.09) * 10_000.0).round() / 10_000.0);
        input["longitude"] = json!(((lon + spread(53) * 0.12) * 10_000.0).round() / 10_000.0);
        if rng.chance(80) {
            input["phone"] = json!(format!("720-555-{:04}", rng.index(10_000)));
        }
        if rng.chance(60) {
            input["email"] = json!(format!(
                "{}.{}.{i}@mail.example",
                first.to_lowercase(),
                last.to_lowercase()
            ));
        }
        if !matches!(status, "won" | "lost") {
            // Expected to close one to four months after it came in (no draw: the demo's other
            // values stay as they were).
            let close = Timestamp(start.0 + step * i as i64).plus_days(30 + (i % 90) as i64);
            input["expected_close_date"] = json!(close.date().to_string());
        }
        if status == "lost" {
            input["lost_reason"] =
                json!(rng.pick(&["price", "went with competitor", "no response", "insurance denied"]));
        }
        // One in three open leads of the last ten days is a storm-damage call the team has not
        // returned: the customer phoned in, then called and wrote again, and nobody called back.
        // Those inquiries make the "untouched hot leads" view (`hot_status:untouched`) a real
        // one: hot for more than the tenant's hours with no touch (no draw: the demo's other
        // values stay as they were).
        let open = !matches!(status, "won" | "lost");
        let unanswered = open && i % 3 == 0 && now.0 - clock.now().0 <= UNANSWERED_DAYS * Timestamp::MICROS_PER_DAY;
        if unanswered {
            input["source"] = json!("phone_in");
            input["project_type"] = json!("storm_damage");
            input["phone"] = json!(format!("720-555-{:04}", i % 10_000));
        }
        let lead = svc.create(&admin, "lead", &obj(input)).await?;
        let (owner, team) = (lead.id_of("owner_id"), lead.id_of("team_id"));
        let mut n = rng.index(size.activities_per_lead * 2 + 1);
        if unanswered {
            // Three calls and messages at least: what makes such a lead hot.
            n = n.max(UNANSWERED_ACTIVITIES);
        }
        // Activities happen between the lead's creation and now, and are logged as they happen (so
        // a lead becomes hot, and is touched, when its activities say). The last one of an open
        // lead sets its next follow-up, one to six days on: by now some are overdue, some due
        // today, some to come.
        let created = clock.now();
        let mut acts = Vec::with_capacity(n);
        for _ in 0..n {
            let span = (now.0 - created.0).max(1_000_000) as u64;
            let at = Timestamp(created.0 + (rng.next() % span) as i64);
            let mut act = json!({"kind": rng.pick(ACTIVITY_KINDS), "direction": rng.pick(&["inbound", "outbound"]),
                "outcome": rng.pick(OUTCOMES), "subject": "Follow-up", "occurred_at": at.to_rfc3339(), "lead_id": lead.id.to_string(),
                "owner_id": owner, "team_id": team, "duration_minutes": rng.index(45) as i64});
            if unanswered {
                // The customer reaching the team (inbound): no touch.
                act["kind"] = json!(["call", "call", "email", "sms"][acts.len() % 4]);
                act["direction"] = json!("inbound");
                act["subject"] = json!("Storm damage: please call back");
            }
            acts.push((at, act));
        }
        acts.sort_by_key(|(at, _)| *at);
        for (j, (at, mut input)) in acts.into_iter().enumerate() {
            if open && j + 1 == n {
                input["next_followup_at"] = json!(at.plus_days(1 + (i % 6) as i64).to_rfc3339());
            }
            clock.set(at);
            svc.create(&admin, "activity", &obj(input)).await?;
        }
        report(size.contacts + i + 1);
    }
    clock.set(now);
    svc.rescore_all(&admin).await?;
    progress.report(total, Some(total), Unit::Records);
    Ok(DemoTenant { tenant: org.id, users })
}

/// The moving company's price list: (description, unit, unit price, tax rate).
const MOVING_CATALOGUE: &[(&str, &str, &str, &str)] = &[
    ("Truck with driver", "h", "145.00", "0"),
    ("Mover", "h", "55.00", "0"),
    ("Packing materials", "set", "89.90", "8.25"),
    ("Long-distance surcharge", "mi", "2.35", "0"),
    ("Piano handling", "item", "350.00", "0"),
    ("Storage", "month", "179.00", "8.25"),
    ("Moving boxes", "box", "3.49", "8.25"),
];

/// Loads a moving company (one tenant): estimators, customers and `quotes` quotes over the last 90
/// days in every state (draft, pending approval, approved, rejected back to draft, sent, expired,
/// accepted, declined, superseded by a revision), with approval levels and a rounding policy set as
/// tenant data, all through the service. Deterministic.
pub async fn load_moving<S: Store>(store: S, ids: Arc<dyn IdGen>, now: Timestamp, quotes: usize) -> Result<DemoTenant> {
    let start = now.plus_days(-90);
    let clock = Arc::new(FixedClock::new(start));
    let svc = Service::new(store, clock.clone(), ids);
    let mut rng = Rng(0x0F0E);
    let org = svc
        .create_organization(&obj(json!({"name": "Swift Movers LLC", "timezone": "America/Chicago"})))
        .await?;
    let system = Actor::system(org.id);
    let rules = json!([{"role": "manager", "total_above": "5000", "discount_percent_above": "10"},
        {"role": "admin", "total_above": "20000"}]);
    svc.update(
        &system,
        "organization",
        org.id,
        org.version,
        &obj(json!({"quote_approval_rules": rules, "quote_rounding": "per_line", "quote_rounding_mode": "half_up"})),
    )
    .await?;
    // Two depots the trucks leave from.
    let mut depots = Vec::new();
    for (name, street) in [
        ("North depot", "4100 N Elston Ave"),
        ("South depot", "2300 S Halsted St"),
    ] {
        let input = json!({"name": name, "address_line": street, "city": "Chicago", "region": "IL", "country": "US"});
        depots.push(svc.create(&system, "location", &obj(input)).await?.id);
    }
    let team = svc
        .create(&system, "team", &obj(json!({"name": "Estimators", "kind": "sales"})))
        .await?
        .id;
    let crew_team = json!({"name": "Crew 1", "kind": "crew", "location_id": depots[0].to_string()});
    let crew = svc.create(&system, "team", &obj(crew_team)).await?.id;
    let people = [
        ("admin", "Ada Admin", team),
        ("manager", "Max Manager", team),
        ("sales", "Eve Estimator", team),
        ("sales", "Ed Estimator", team),
        ("field_tech", "Carl Crew", crew),
        ("staff", "Dora Desk", team),
    ];
    let mut users = Vec::new();
    for (role, name, t) in people {
        let email = format!(
            "{}@swift-movers.example",
            name.split(' ').next().unwrap_or(name).to_lowercase()
        );
        let u = svc
            .create(
                &system,
                "user",
                &obj(json!({"name": name, "email": email, "role": role, "team_id": t.to_string()})),
            )
            .await?;
        users.push((role.to_owned(), u.id, email));
    }
    let actor_of = async |role: &str, nth: usize| -> Result<Actor> {
        let id = users
            .iter()
            .filter(|(r, _, _)| r == role)
            .nth(nth)
            .map(|(_, id, _)| *id);
        match id {
            Some(id) => svc.actor(org.id, id).await,
            None => Ok(system.clone()),
        }
    };
    let estimators = [actor_of("sales", 0).await?, actor_of("sales", 1).await?];
    let manager = actor_of("manager", 0).await?;
    let admin = actor_of("admin", 0).await?;
    let mut customers = Vec::new();
    for i in 0..quotes.div_ceil(2).max(1) {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let est = &estimators[i % 2];
        let c = svc
            .create(est, "contact", &obj(json!({"first_name": first, "last_name": last,
                "email": format!("{}.{}{i}@mail.example", first.to_lowercase(), last.to_lowercase()),
                "address_line": format!("{} {}", 100 + rng.index(9000), rng.pick(STREETS)), "city": "Chicago", "region": "IL", "country": "US"})))
            .await?;
        customers.push((c.id, i % 2));
    }
    let step = (now.0 - start.0) / quotes.max(1) as i64;
    for i in 0..quotes {
        let at = Timestamp(start.0 + step * i as i64);
        clock.set(at);
        let (customer, e) = customers[rng.index(customers.len())];
        let est = &estimators[e];
        let mut lines = Vec::new();
        for _ in 0..2 + rng.index(6) {
            let (desc, unit, price, tax) = MOVING_CATALOGUE[rng.index(MOVING_CATALOGUE.len())];
            let qty = match unit {
                "h" => format!("{}.{}", 2 + rng.index(10), [0, 5][rng.index(2)]),
                "mi" => (50 + rng.index(900)).to_string(),
                _ => (1 + rng.index(30)).to_string(),
            };
            lines.push(
                json!({"description": desc, "unit": unit, "quantity": qty, "unit_price": price, "tax_rate": tax}),
            );
        }
        // Most quotes are valid 30 days; some only a week (they expire before an answer).
        let days = if rng.chance(15) { 7 } else { 30 };
        let mut input = json!({"contact_id": customer.to_string(), "title": format!("Move #{}", i + 1),
            "valid_until": at.plus_days(days).date().to_string(), "terms": "50 % deposit on booking; the balance on delivery.",
            "quote_lines": lines});
        if rng.chance(20) {
            input["discount_percent"] = json!(["5", "10", "12.5", "15"][rng.index(4)]);
        }
        let mut q = svc.create(est, "quote", &obj(input)).await?;
        // Where this quote's story stops, spread over every state.
        let stop = rng.index(10);
        let go = async |q: &Record, who: &Actor, name: &str, input: Json| {
            svc.transition(who, "quote", q.id, q.version, name, &obj(input)).await
        };
        if stop == 0 {
            continue; // a draft
        }
        q = go(&q, est, "submit", json!({})).await?;
        if q.str("status") == Some("pending_approval") {
            let approver = if q.str("approval_level") == Some("admin") {
                &admin
            } else {
                &manager
            };
            if stop == 1 {
                continue; // waiting for approval
            }
            if stop == 2 {
                go(
                    &q,
                    approver,
                    "reject",
                    json!({"rejection_reason": "Discount too deep for this season"}),
                )
                .await?;
                continue;
            }
            q = go(&q, approver, "approve", json!({})).await?;
        }
        if stop == 3 {
            continue; // approved, not sent yet
        }
        q = go(&q, est, "send", json!({})).await?;
        match stop {
            4 => {} // sent (expired if its week passed)
            5 => {
                // Revised after the customer asked for a piano: the sent quote is superseded.
                let r = go(&q, est, "revise", json!({})).await?;
                let ops = [crate::service::ChildOp::Create {
                    entity: "quote_line".into(),
                    input: obj(
                        json!({"description": "Piano handling", "unit": "item", "quantity": "1", "unit_price": "350.00"}),
                    ),
                }];
                svc.write_children(est, "quote", r.id, r.version, &ops).await?;
            }
            6 | 7 => {
                go(&q, est, "accept", json!({})).await?;
            }
            _ => {
                go(&q, est, "decline", json!({})).await?;
            }
        }
    }
    let mut crew_members = vec![actor_of("field_tech", 0).await?];
    for name in ["Rita Rigger", "Omar Loader", "Pia Packer", "Dan Driver"] {
        let email = format!(
            "{}@swift-movers.example",
            name.split(' ').next().unwrap_or(name).to_lowercase()
        );
        let u = svc
            .create(
                &system,
                "user",
                &obj(json!({"name": name, "email": email, "role": "field_tech", "team_id": crew.to_string()})),
            )
            .await?;
        users.push(("field_tech".to_owned(), u.id, email));
        crew_members.push(svc.actor(org.id, u.id).await?);
    }
    let customers: Vec<Id> = customers.iter().map(|(c, _)| *c).collect();
    journeys(
        &svc,
        &clock,
        &mut rng,
        &manager,
        &crew_members,
        &customers,
        &depots,
        now,
    )
    .await?;
    appointments(&svc, &clock, &manager, &crew_members, &customers, now).await?;
    clock.set(now);
    Ok(DemoTenant { tenant: org.id, users })
}

/// The moving company's standard local move.
const LOCAL_MOVE_STEPS: &[(&str, bool)] = &[
    ("Walkthrough with the customer", true),
    ("Protect floors and doors", true),
    ("Wrap furniture", true),
    ("Load the truck", true),
    ("Drive", true),
    ("Unload and place", true),
    ("Photos of the empty home", false),
];

/// Journeys of a local move from three days ago to four days ahead (in the tenant's time zone):
/// three a day on three trucks, two crew members each in a morning or an afternoon slot (never
/// double-booked), with the past ones completed by their crew and signed, today's under way, the
/// coming ones dispatched (tomorrow) or planned. Trucks 1 and 2 leave from the first depot, truck 3
/// from the second.
#[allow(clippy::too_many_arguments)]
async fn journeys<S: Store>(
    svc: &Service<S>,
    clock: &FixedClock,
    rng: &mut Rng,
    manager: &Actor,
    crew: &[Actor],
    customers: &[Id],
    depots: &[Id],
    now: Timestamp,
) -> Result<()> {
    let steps: Vec<Json> = LOCAL_MOVE_STEPS
        .iter()
        .map(|(name, required)| json!({"name": name, "required": required}))
        .collect();
    svc.create(
        manager,
        "job_template",
        &obj(json!({"job_type": "local_move", "name": "Local move", "steps": steps})),
    )
    .await?;
    let zone = crate::computed::org_zone(Some(&svc.org(manager.tenant).await?));
    let today = crate::computed::local_date(now, &zone);
    let mut n = 0i64;
    for offset in -3i64..=4 {
        let date = today.saturating_add(time::Duration::days(offset));
        let midnight = crate::computed::day_start(date, &zone);
        for slot in 0..3usize {
            n += 1;
            let (from_h, to_h) = if slot == 2 { (13, 17) } else { (8, 12) };
            let (from, to) = (midnight.plus_hours(from_h), midnight.plus_hours(to_h));
            // Slot 0 and 1 share the morning: four different people; slot 2 takes the afternoon.
            let pair = match slot {
                0 => [0, 1],
                1 => [2, 3],
                _ => [4, (offset.rem_euclid(4)) as usize],
            };
            let assignments: Vec<Json> = pair
                .iter()
                .zip(["driver", "mover"])
                .map(|(i, role)| {
                    json!({"user_id": crew[*i % crew.len()].user_id.map(|u| u.to_string()), "role": role,
                        "starts_at": from, "ends_at": to})
                })
                .collect();
            clock.set(now.plus_days(-10).plus_minutes(n));
            let customer = customers[rng.index(customers.len())];
            let mut job = svc
                .create(
                    manager,
                    "job",
                    &obj(
                        json!({"kind": "journey", "job_type": "local_move", "title": format!("Journey #{n}"),
                        "contact_id": customer.to_string(), "scheduled_on": date.to_string(),
                        "window_start": from, "window_end": to, "vehicle": format!("truck-{}", slot + 1),
                        "location_id": depots[(slot / 2).min(depots.len() - 1)].to_string(),
                        "address_line": format!("{} {}", 100 + rng.index(9000), rng.pick(STREETS)),
                        "city": "Chicago", "region": "IL", "country": "US",
                        // Signatures are attachments, whose bytes the demo has nowhere to keep: the
                        // past journeys (completed below) were signed on paper.
                        "signature_required": slot != 1 && offset >= 0,
                        "budget": format!("{}.00", 600 + 100 * rng.index(12)), "crew_assignments": assignments}),
                    ),
                )
                .await?;
            if offset > 1 {
                continue; // planned
            }
            // Dispatched the evening before.
            clock.set(midnight.plus_hours(-6));
            job = svc
                .transition(manager, "job", job.id, job.version, "dispatch", &Map::new())
                .await?;
            if offset == 1 || from > now {
                continue; // dispatched for tomorrow, or later today
            }
            let lead = &crew[pair[0] % crew.len()];
            clock.set(from);
            job = svc
                .transition(lead, "job", job.id, job.version, "start", &Map::new())
                .await?;
            let kids = svc.children(lead, "job", job.id).await?;
            let job_steps = kids
                .into_iter()
                .find(|(d, _)| d.name == "job_step")
                .map(|(_, r)| r)
                .unwrap_or_default();
            // Today's journeys are half way; past ones are done, photos sometimes skipped.
            let upto = if offset == 0 {
                job_steps.len() / 2
            } else {
                job_steps.len()
            };
            for (i, s) in job_steps.iter().take(upto).enumerate() {
                clock.set(from.plus_minutes(25 * (i as i64 + 1)));
                if s.get("required") == Some(&crate::value::Value::Bool(false)) && rng.chance(40) {
                    let why = obj(json!({"skip_reason": "Customer declined photos"}));
                    svc.transition(lead, "job_step", s.id, s.version, "skip", &why).await?;
                } else {
                    svc.transition(lead, "job_step", s.id, s.version, "complete", &Map::new())
                        .await?;
                }
            }
            if offset == 0 {
                continue; // in progress
            }
            job = svc.get(lead, "job", job.id).await?;
            clock.set(from.plus_minutes(200));
            svc.transition(lead, "job", job.id, job.version, "complete", &Map::new())
                .await?;
        }
    }
    Ok(())
}

/// The crew's appointments: a weekly briefing of the whole crew on Mondays at 07:00 (before the
/// morning jobs), and a pre-move survey at a customer's home every evening at 17:30 (after the
/// afternoon jobs) from three days ago to four days ahead, the past ones completed.
async fn appointments<S: Store>(
    svc: &Service<S>,
    clock: &FixedClock,
    manager: &Actor,
    crew: &[Actor],
    customers: &[Id],
    now: Timestamp,
) -> Result<()> {
    let zone = crate::computed::org_zone(Some(&svc.org(manager.tenant).await?));
    let today = crate::computed::local_date(now, &zone);
    let first_monday = today.saturating_sub(time::Duration::days(
        i64::from(today.weekday().number_days_from_monday()) + 7,
    ));
    let monday = crate::computed::day_start(first_monday, &zone);
    clock.set(now.plus_days(-10));
    let everyone: Vec<Json> = crew
        .iter()
        .filter_map(|a| a.user_id)
        .map(|u| json!({"user_id": u.to_string(), "response": "accepted"}))
        .collect();
    svc.create(
        manager,
        "appointment",
        &obj(
            json!({"title": "Crew briefing", "place": "Depot", "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=8",
            "starts_at": monday.plus_hours(7), "ends_at": monday.plus_minutes(7 * 60 + 30),
            "appointment_attendees": everyone}),
        ),
    )
    .await?;
    for (i, offset) in (-3i64..=4).enumerate() {
        let date = today.saturating_add(time::Duration::days(offset));
        let at = crate::computed::day_start(date, &zone).plus_minutes(17 * 60 + 30);
        let surveyor = &crew[4 % crew.len()];
        let customer = customers[i % customers.len()];
        clock.set(now.plus_days(-10).plus_minutes(i as i64));
        let a = svc
            .create(
                manager,
                "appointment",
                &obj(json!({"title": "Pre-move survey", "contact_id": customer.to_string(),
                    "starts_at": at, "ends_at": at.plus_hours(1),
                    "appointment_attendees": [{"user_id": surveyor.user_id.map(|u| u.to_string())},
                        {"contact_id": customer.to_string()}]})),
            )
            .await?;
        if offset < 0 {
            clock.set(at.plus_hours(1));
            svc.transition(surveyor, "appointment", a.id, a.version, "complete", &Map::new())
                .await?;
        }
    }
    Ok(())
}

/// The esports centre's plans: name, days, price, visit allowance.
pub const ESPORTS_PLANS: &[(&str, i64, &str, Option<i64>)] = &[
    ("Monthly", 30, "39.00", None),
    ("Quarterly", 90, "99.00", None),
    ("Yearly", 365, "349.00", None),
    ("10 Visits", 90, "59.00", Some(10)),
];

/// The first card number of the esports demo's clients (`500001`, `500002`, ...).
pub const ESPORTS_FIRST_CARD: u64 = 500_001;

/// Loads an esports centre: the plans of [`ESPORTS_PLANS`], a front desk (admin, manager, two staff, a
/// kiosk user), `clients` clients with card numbers from [`ESPORTS_FIRST_CARD`] and memberships in
/// every status as of `now` (some with the expired membership they renewed), and 90 days of check-ins
/// at the desk, each decided by the tenant's check-in policy as of its time. Deterministic but for ids.
pub async fn load_esports<S: Store>(
    store: S,
    ids: Arc<dyn IdGen>,
    now: Timestamp,
    clients: usize,
) -> Result<DemoTenant> {
    use crate::service::CheckInInput;
    let clock = Arc::new(FixedClock::new(now));
    let svc = Service::new(store, clock.clone(), ids);
    let mut rng = Rng(0xE5_2026);
    let org = svc
        .create_organization(&obj(
            json!({"name": "Pixel Arena Esports Centre", "timezone": "Europe/Berlin",
            "membership_expiring_days": 14, "check_in_expired": "warn", "check_in_frozen": "refuse"}),
        ))
        .await?;
    let system = Actor::system(org.id);
    let desk = svc
        .create(&system, "team", &obj(json!({"name": "Front desk", "kind": "sales"})))
        .await?
        .id;
    let mut users = Vec::new();
    for (role, name) in [
        ("admin", "Ada Owner"),
        ("manager", "Milo Manager"),
        ("staff", "Stella Desk"),
        ("staff", "Sam Desk"),
        ("kiosk", "Kiosk Entrance"),
    ] {
        let email = format!(
            "{}@pixel-arena.example",
            name.split(' ').next().unwrap_or(name).to_lowercase()
        );
        let u = svc
            .create(
                &system,
                "user",
                &obj(json!({"name": name, "email": email, "role": role, "team_id": desk.to_string()})),
            )
            .await?;
        users.push((role.to_owned(), u.id, email));
    }
    let admin = svc.actor(org.id, users[0].1).await?;
    let staff = [
        svc.actor(org.id, users[2].1).await?,
        svc.actor(org.id, users[3].1).await?,
    ];
    let mut plans = Vec::new();
    for (name, days, price, visits) in ESPORTS_PLANS {
        let p = svc
            .create(
                &admin,
                "plan",
                &obj(json!({"name": name, "duration_days": days, "price": price, "visit_allowance": visits})),
            )
            .await?;
        plans.push((p.id, *days, *price));
    }
    // Where each client stands is decided on the tenant's day (Berlin's), not UTC's.
    let zone = crate::computed::org_zone(Some(&org));
    let today = crate::computed::local_date(now, &zone);
    let day = |n: i64| today.saturating_add(time::Duration::days(n));
    let langs = ["de", "de", "de", "en", "en", "tr", "pl", "es"];
    let mut cards = Vec::with_capacity(clients);
    for i in 0..clients {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let card = (ESPORTS_FIRST_CARD + i as u64).to_string();
        let mut input = json!({"first_name": first, "last_name": last, "external_id": card,
            "email": format!("{}.{}{i}@mail.example", first.to_lowercase(), last.to_lowercase()),
            "language": langs[rng.index(langs.len())]});
        if rng.chance(30) {
            input["phone"] = json!(format!("+49151{:08}", 10_000_000 + i));
        }
        let c = svc.create(&admin, "contact", &obj(input)).await?;
        cards.push(card);
        let (plan, days, price) = plans[rng.index(plans.len())];
        let run = |starts: time::Date| {
            json!({"contact_id": c.id.to_string(), "plan_id": plan.to_string(), "starts_on": starts.to_string(),
                "ends_on": starts.saturating_add(time::Duration::days(days - 1)).to_string(), "price_paid": price})
        };
        // Where this client stands today (window: 14 days): 5 in 10 active, then one each expiring,
        // upcoming, expired, frozen, and cancelled or without any membership. Every plan is 30 days
        // or longer, so each range below is not empty.
        let r = |rng: &mut Rng, n: i64| rng.below(n.max(1) as u64) as i64;
        let starts = match i % 10 {
            0..=4 => day(-r(&mut rng, days - 15)),
            5 => day(1 - days + r(&mut rng, 15)),
            6 => day(1 + r(&mut rng, 20)),
            7 => day(-(days + r(&mut rng, 200))),
            8 => day(-2 - r(&mut rng, days - 17)),
            _ => {
                if rng.chance(50) {
                    continue; // a walk-in who never bought one
                }
                day(-r(&mut rng, days - 15))
            }
        };
        if i % 10 <= 4 && rng.chance(40) {
            // A renewal: the membership before this one, back to back.
            let before = starts.saturating_add(time::Duration::days(-days));
            svc.create(&admin, "membership", &obj(run(before))).await?;
        }
        let m = svc.create(&admin, "membership", &obj(run(starts))).await?;
        match i % 10 {
            8 => {
                let f = json!({"starts_on": day(-2).to_string(), "ends_on": day(5 + rng.below(10) as i64).to_string(), "reason": "travel"});
                svc.freeze_membership(&admin, m.id, m.version, &obj(f)).await?;
            }
            9 => {
                svc.update(
                    &admin,
                    "membership",
                    m.id,
                    m.version,
                    &obj(json!({"cancelled": true, "notes": "moved away"})),
                )
                .await?;
            }
            _ => {}
        }
    }
    // 90 days of visits: afternoons and evenings, busier at weekends.
    if !cards.is_empty() {
        for d in (1..=90).rev() {
            let date = day(-d);
            let weekend = matches!(date.weekday(), time::Weekday::Saturday | time::Weekday::Sunday);
            let visits = if weekend { 30 } else { 16 } + rng.index(10);
            for _ in 0..visits {
                let hour = [14, 15, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 22][rng.index(13)];
                // The centre's hours, in its time zone.
                let opens = crate::computed::day_start(date, &zone);
                let at = Timestamp(opens.0 + (hour * 3600 + rng.below(3600) as i64) * 1_000_000);
                clock.set(at);
                let card = cards[rng.index(cards.len())].clone();
                let input = CheckInInput {
                    card: Some(card),
                    ..Default::default()
                };
                svc.check_in(&staff[rng.index(2)], &input).await?;
            }
        }
    }
    clock.set(now);
    Ok(DemoTenant { tenant: org.id, users })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SeqIds;
    use crate::memory::MemoryStore;
    use crate::query::Filter;

    /// The demo's follow-up views are not empty: hot leads nobody has touched, follow-ups overdue,
    /// due today and to come; at 600 leads with the CLI's contacts (half the leads) and other
    /// sizes, at any hour.
    #[test]
    fn the_roofing_demo_has_untouched_hot_leads_and_follow_ups_due() {
        for (contacts, now) in [
            (100, "2025-06-01T15:00:00Z"),
            (300, "2026-12-01T18:47:13Z"),
            (300, "2026-03-08T02:05:00Z"),
        ] {
            follow_up_views_are_not_empty(contacts, Timestamp::parse(now).unwrap());
        }
    }

    fn follow_up_views_are_not_empty(contacts: usize, now: Timestamp) {
        let store = Arc::new(MemoryStore::new());
        let size = DemoSize {
            contacts,
            leads: 600,
            activities_per_lead: 3,
        };
        let demo = pollster::block_on(load(store.clone(), Arc::new(SeqIds::default()), now, size)).unwrap();
        let svc = Service::new(
            store,
            Arc::new(FixedClock::new(now)),
            Arc::new(SeqIds::starting_at(1 << 40)),
        );
        let admin = Actor::system(demo.tenant);
        let count = |q: &str| {
            let req = crate::query::ListRequest {
                q: Some(q.into()),
                limit: Some(500),
                ..Default::default()
            };
            pollster::block_on(svc.list(&admin, "lead", &req)).unwrap().items.len()
        };
        let views = [
            "hot_status:untouched",
            "hot_status:touched",
            "followup:overdue",
            "followup:due_today",
            "followup:upcoming",
        ];
        let counts: Vec<usize> = views.iter().map(|q| count(q)).collect();
        eprintln!("{contacts} contacts at {now:?}: {views:?} {counts:?}");
        assert!(counts.iter().all(|c| *c > 0), "{views:?} {counts:?}");
    }

    #[test]
    fn loads_a_scored_tenant_with_every_role() {
        let store = Arc::new(MemoryStore::new());
        let now = Timestamp::parse("2025-06-01T00:00:00Z").unwrap();
        let size = DemoSize {
            contacts: 40,
            leads: 60,
            activities_per_lead: 2,
        };
        let demo = pollster::block_on(load(store.clone(), Arc::new(SeqIds::default()), now, size)).unwrap();
        for role in crate::access::builtin::NAMES {
            assert!(demo.user(role).is_some(), "{role}");
        }
        let count =
            |e| pollster::block_on(store.count(demo.tenant, crate::entity::entity(e).unwrap(), &Filter::All)).unwrap();
        assert_eq!((count("contact"), count("lead")), (40, 60));
        assert!(count("activity") > 30);
        let leads = pollster::block_on(store.query(
            demo.tenant,
            &crate::entity::LEAD,
            &crate::query::StoreQuery::by_id(Filter::All, 100),
        ))
        .unwrap();
        assert!(leads.iter().all(|l| {
            l.get("scored_at").and_then(crate::value::Value::as_timestamp).is_some() && l.str("temperature").is_some()
        }));
        // Every lead arrived routed: owned by a salesperson or a field tech, and the audit names the rule.
        let sellers: Vec<Id> = ["sales", "field_tech"]
            .iter()
            .flat_map(|r| demo.users.iter().filter(move |u| u.0 == *r).map(|u| u.1))
            .collect();
        assert!(
            leads
                .iter()
                .all(|l| l.id_of("owner_id").is_some_and(|o| sellers.contains(&o)))
        );
        let q = crate::store::AuditQuery {
            entity: Some("lead".into()),
            limit: 1000,
            ..Default::default()
        };
        let audit = pollster::block_on(store.audit(demo.tenant, &q)).unwrap();
        let routed = audit
            .iter()
            .filter(|a| a.action == "create" && a.changes.iter().any(|c| c.field == "routing"))
            .count();
        assert_eq!(routed, 60);
    }

    #[test]
    fn the_esports_centre_has_clients_in_every_status_and_months_of_check_ins() {
        let now = Timestamp::parse("2026-03-02T12:00:00Z").unwrap();
        let load = || {
            let store = Arc::new(MemoryStore::new());
            let demo = pollster::block_on(load_esports(store.clone(), Arc::new(SeqIds::default()), now, 120)).unwrap();
            (store, demo)
        };
        let (store, demo) = load();
        let svc = Service::new(
            store.clone(),
            Arc::new(FixedClock::new(now)),
            Arc::new(SeqIds::default()),
        );
        let admin = Actor::system(demo.tenant);
        let count = |q: &str, e: &str| {
            let req = crate::query::ListRequest {
                q: Some(q.to_owned()),
                limit: Some(500),
                ..Default::default()
            };
            pollster::block_on(svc.list(&admin, e, &req)).unwrap().items.len()
        };
        let by_status: Vec<(&str, usize)> = crate::entity::membership::status::CLIENT_STATUSES
            .iter()
            .map(|s| (*s, count(&format!("membership:{s}"), "contact")))
            .collect();
        assert!(by_status.iter().all(|(_, n)| *n > 0), "{by_status:?}");
        assert_eq!(by_status.iter().map(|(_, n)| n).sum::<usize>(), 120, "{by_status:?}");
        assert_eq!(count("external_id:500001", "contact"), 1);
        assert!(demo.user("kiosk").is_some() && demo.user("staff").is_some());
        let numbers = pollster::block_on(svc.membership_numbers(&admin, None)).unwrap();
        assert!(numbers.active_members > 0 && numbers.expiring_30_days > 0);
        let days_with_visits = numbers.check_ins_per_day.iter().filter(|d| d.check_ins > 0).count();
        assert!(
            days_with_visits >= 25,
            "{days_with_visits} of the last 30 days had check-ins"
        );
        assert!(
            numbers.months.iter().filter(|m| m.renewals > 0).count() >= 2,
            "{:?}",
            numbers.months
        );
        // The same seed gives the same centre.
        let (store2, demo2) = load();
        let svc2 = Service::new(store2, Arc::new(FixedClock::new(now)), Arc::new(SeqIds::default()));
        let again = pollster::block_on(svc2.membership_numbers(&Actor::system(demo2.tenant), None)).unwrap();
        assert_eq!(
            serde_json::to_value(&numbers).unwrap(),
            serde_json::to_value(&again).unwrap()
        );
    }

    /// The centre's clients stand where the demo puts them on the tenant's day: loaded at 23:30 UTC
    /// (00:30 the next day in Berlin) and at noon of that Berlin day, the memberships and the status
    /// counts are the same. (On the UTC day the late load's dates were a day early: a membership
    /// meant to end today had already expired.)
    #[test]
    fn the_esports_centre_is_laid_out_on_the_tenants_day() {
        let standing = |at: &str| {
            let now = Timestamp::parse(at).unwrap();
            let store = Arc::new(MemoryStore::new());
            let demo = pollster::block_on(load_esports(store.clone(), Arc::new(SeqIds::default()), now, 60)).unwrap();
            let svc = Service::new(
                store.clone(),
                Arc::new(FixedClock::new(now)),
                Arc::new(SeqIds::default()),
            );
            let admin = Actor::system(demo.tenant);
            let q = crate::query::StoreQuery::by_id(Filter::All, 1000);
            let rows = pollster::block_on(store.query(demo.tenant, &crate::entity::MEMBERSHIP, &q)).unwrap();
            let mut spans: Vec<String> = rows
                .iter()
                .map(|m| format!("{:?}..{:?}", m.get("starts_on"), m.get("ends_on")))
                .collect();
            spans.sort();
            let statuses: Vec<(&str, usize)> = crate::entity::membership::status::CLIENT_STATUSES
                .iter()
                .map(|s| {
                    let req = crate::query::ListRequest {
                        q: Some(format!("membership:{s}")),
                        limit: Some(500),
                        ..Default::default()
                    };
                    (
                        *s,
                        pollster::block_on(svc.list(&admin, "contact", &req))
                            .unwrap()
                            .items
                            .len(),
                    )
                })
                .collect();
            (spans, statuses)
        };
        let late = standing("2026-03-02T23:30:00Z");
        let noon = standing("2026-03-03T11:00:00Z");
        assert_eq!(late.0, noon.0, "the same membership dates");
        assert_eq!(late.1, noon.1, "the same standing");
    }

    #[test]
    fn the_moving_company_has_quotes_in_every_state() {
        let store = Arc::new(MemoryStore::new());
        let now = Timestamp::parse("2025-06-01T00:00:00Z").unwrap();
        let demo = pollster::block_on(load_moving(store.clone(), Arc::new(SeqIds::default()), now, 120)).unwrap();
        let quotes = pollster::block_on(store.query(
            demo.tenant,
            &crate::entity::QUOTE,
            &crate::query::StoreQuery::by_id(Filter::All, 1000),
        ))
        .unwrap();
        let cx = crate::computed::ComputeCtx::new(now, None);
        let mut states: Vec<&str> = quotes
            .iter()
            .map(|q| crate::entity::quote::state(q, cx.today()))
            .collect();
        states.sort();
        states.dedup();
        assert_eq!(
            states,
            [
                "accepted",
                "approved",
                "declined",
                "draft",
                "expired",
                "pending_approval",
                "sent",
                "superseded"
            ]
        );
        assert!(
            quotes
                .iter()
                .any(|q| q.get("revision") == Some(&crate::value::Value::Int(2)))
        );
        // Journeys in every open and finished state, run by a crew nobody double-booked.
        let jobs = pollster::block_on(store.query(
            demo.tenant,
            &crate::entity::JOB,
            &crate::query::StoreQuery::by_id(Filter::All, 1000),
        ))
        .unwrap();
        let mut states: Vec<&str> = jobs.iter().filter_map(|j| j.str("status")).collect();
        states.sort();
        states.dedup();
        assert_eq!(states, ["completed", "dispatched", "in_progress", "planned"]);
        let depots: std::collections::BTreeSet<_> = jobs.iter().filter_map(|j| j.id_of("location_id")).collect();
        assert_eq!(depots.len(), 2, "journeys leave from both depots");
        assert!(
            jobs.iter()
                .all(|j| j.get("step_count") == Some(&crate::value::Value::Int(7)))
        );
        let crew = pollster::block_on(store.query(
            demo.tenant,
            &crate::entity::CREW_ASSIGNMENT,
            &crate::query::StoreQuery::by_id(Filter::All, 1000),
        ))
        .unwrap();
        assert_eq!(crew.len(), 2 * jobs.len());
        // A weekly briefing and a survey a day, beside the journeys without a clash.
        let appointments = pollster::block_on(store.query(
            demo.tenant,
            &crate::entity::APPOINTMENT,
            &crate::query::StoreQuery::by_id(Filter::All, 1000),
        ))
        .unwrap();
        assert_eq!(appointments.len(), 9);
        assert!(
            appointments
                .iter()
                .all(|a| a.get("overlap_warning").is_none_or(|v| v.is_null()))
        );
        for (i, a) in crew.iter().enumerate() {
            let at = |r: &Record, f: &str| r.get(f).and_then(crate::value::Value::as_timestamp);
            let range = |r: &Record| (r.id_of("user_id"), at(r, "starts_at"), at(r, "ends_at"));
            let (u, s, e) = range(a);
            assert!(
                crew[i + 1..].iter().all(|b| {
                    let (u2, s2, e2) = range(b);
                    u != u2 || !(s < e2 && s2 < e)
                }),
                "no one is booked twice at once"
            );
        }
    }
}
