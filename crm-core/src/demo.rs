//! A realistic demo tenant: a roofing company with a user of each role, contacts, companies, leads
//! with activities over the last months, all created through the service (validated, audited,
//! scored). Deterministic: the same seed gives the same data on every platform.

use crate::access::Actor;
use crate::clock::{Clock, FixedClock, IdGen};
use crate::entity::{ACTIVITY_KINDS, LEAD_SOURCES};
use crate::error::Result;
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
    for (i, name) in ["Denver Sales", "Boulder Sales", "Crew A"].iter().enumerate() {
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
        ("admin", "Alex Admin", 0),
        ("manager", "Morgan Manager", 0),
        ("sales", "Sasha Sales", 0),
        ("sales", "Sid Sales", 0),
        ("sales", "Bea Boulder", 1),
        ("sales", "Bo Boulder", 1),
        ("field_tech", "Finn Fieldtech", 2),
        ("field_tech", "Fay Fieldtech", 2),
        ("staff", "Stella Staff", 0),
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
    }
    let step = (now.0 - start.0) / size.leads.max(1) as i64;
    for i in 0..size.leads {
        clock.set(Timestamp(start.0 + step * i as i64));
        let (owner, team) = owners[rng.index(owners.len())];
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let status = rng.pick(STATUSES);
        let value = [3_500, 8_000, 12_500, 18_000, 26_000, 45_000][rng.index(6)] + rng.index(2000) as i64;
        let mut input = json!({"first_name": first, "last_name": last, "source": rng.pick(LEAD_SOURCES), "status": status,
            "project_type": rng.pick(PROJECTS), "estimated_value": value.to_string(), "priority": rng.pick(&["low", "medium", "medium", "high", "urgent"]),
            "city": rng.pick(CITIES), "region": "CO", "owner_id": owner.to_string(), "team_id": team.to_string(), "external_id": format!("L{i:06}")});
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
        if status == "lost" {
            input["lost_reason"] =
                json!(rng.pick(&["price", "went with competitor", "no response", "insurance denied"]));
        }
        let lead = svc.create(&admin, "lead", &obj(input)).await?;
        let n = rng.index(size.activities_per_lead * 2 + 1);
        // Activities happen between the lead's creation and now; they are logged "now".
        let created = clock.now();
        clock.set(now);
        for _ in 0..n {
            let span = (now.0 - created.0).max(1_000_000) as u64;
            let at = Timestamp(created.0 + (rng.next() % span) as i64);
            svc.create(&admin, "activity", &obj(json!({"kind": rng.pick(ACTIVITY_KINDS), "direction": rng.pick(&["inbound", "outbound"]),
                "outcome": rng.pick(OUTCOMES), "subject": "Follow-up", "occurred_at": at.to_rfc3339(), "lead_id": lead.id.to_string(),
                "owner_id": owner.to_string(), "team_id": team.to_string(), "duration_minutes": rng.index(45) as i64})))
                .await?;
        }
    }
    clock.set(now);
    svc.rescore_all(&admin).await?;
    Ok(DemoTenant { tenant: org.id, users })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SeqIds;
    use crate::memory::MemoryStore;
    use crate::query::Filter;

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
    }
}
