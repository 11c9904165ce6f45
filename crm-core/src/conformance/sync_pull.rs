//! The pull half of sync on every store: a snapshot in pages equals what the user may read, and
//! the changes after it (updates, deletes, records leaving the user's scope, re-derived fields)
//! arrive as upserts and removals, never with a field the user may not read (see `docs/sync.md`).

use super::{Fixture, block, obj};
use crate::access::{Action, Actor, Scope};
use crate::query::{Filter, StoreQuery};
use crate::store::Store;
use crate::sync::{INVALID_CURSOR, PullPage, syncable_types};
use crate::value::Id;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) type Held = BTreeMap<(String, Id), Json>;

fn id_of(record: &Json) -> Id {
    record["id"].as_str().and_then(crate::value::parse_id).unwrap()
}

/// Pulls until caught up from `cursor`, applying each page to `held` as a device would; returns
/// the pages and the last cursor.
fn pull_all<S: Store>(
    f: &Fixture<S>,
    actor: &Actor,
    cursor: Option<String>,
    limit: u32,
    held: &mut Held,
) -> (Vec<PullPage>, String) {
    let mut cursor = cursor;
    let mut pages = Vec::new();
    loop {
        let page = block(f.svc.pull(actor, cursor.as_deref(), limit)).unwrap();
        if page.reset {
            held.clear();
        }
        for u in &page.upserts {
            held.insert((u.entity.clone(), id_of(&u.record)), u.record.clone());
        }
        for r in &page.removals {
            held.remove(&(r.entity.clone(), r.id));
        }
        cursor = Some(page.next.clone());
        let more = page.more;
        pages.push(page);
        assert!(pages.len() < 500, "a pull ends");
        if !more {
            return (pages, cursor.unwrap());
        }
    }
}

/// Everything of the syncable types the actor may read, as a get returns it to them.
pub(super) fn readable<S: Store>(f: &Fixture<S>, actor: &Actor) -> Held {
    readable_in(&f.svc, actor)
}

/// [`readable`] in any service's store (a device started without a fixture).
pub(super) fn readable_in<S: Store>(svc: &crate::service::Service<S>, actor: &Actor) -> Held {
    let mut out = Held::new();
    for def in syncable_types() {
        if actor.role.scope(def, Action::Read) == Scope::None {
            continue;
        }
        let all = block(
            svc.store()
                .query(actor.tenant, def, &StoreQuery::by_id(Filter::All, 10_000)),
        )
        .unwrap();
        for r in all {
            if let Ok(seen) = block(svc.get(actor, def.name, r.id)) {
                out.insert((def.name.to_owned(), r.id), seen.to_json());
            }
        }
    }
    out
}

fn seed<S: Store>(f: &Fixture<S>) {
    for i in 0..7 {
        f.lead(&f.sales_a, json!({"first_name": format!("North {i}")}));
        f.lead(&f.sales_b, json!({"first_name": format!("South {i}")}));
    }
    for i in 0..4 {
        let c = json!({"first_name": format!("Kim {i}"), "email": format!("kim{i}@example.com")});
        block(f.svc.create(&f.admin, "contact", &obj(c))).unwrap();
    }
}

/// The first pull walks every type the user may read in pages; the pages together hold exactly
/// what a get returns to that user, record for record and field for field.
pub fn pull_snapshot_in_pages_equals_what_the_user_may_read<S: Store>(store: S) {
    let f = Fixture::new(store);
    seed(&f);
    for actor in [&f.sales_a, &f.sales_b, &f.staff, &f.admin] {
        let mut held = Held::new();
        let (pages, _) = pull_all(&f, actor, None, 3, &mut held);
        assert!(pages.len() > 3, "in pages");
        assert!(pages[0].reset && pages[1..].iter().all(|p| !p.reset));
        assert!(pages.iter().all(|p| p.removals.is_empty()));
        assert!(pages.iter().all(|p| p.upserts.len() <= 3));
        assert_eq!(held, readable(&f, actor));
    }
    let mut north = Held::new();
    pull_all(&f, &f.sales_a, None, 1000, &mut north);
    let leads: Vec<_> = north.keys().filter(|k| k.0 == "lead").collect();
    assert_eq!(leads.len(), 7, "the own team's leads only");
}

/// After the snapshot: an update arrives as an upsert, a delete as a removal, a lead reassigned to
/// another team as a removal to the user who lost it (and an upsert to the one who got it), a
/// lead re-scored by an activity as an upsert; the device ends with what it may read.
pub fn pulls_bring_updates_deletes_and_records_leaving_the_scope<S: Store>(store: S) {
    let f = Fixture::new(store);
    seed(&f);
    let (mut north, mut south) = (Held::new(), Held::new());
    let (_, nc) = pull_all(&f, &f.sales_a, None, 5, &mut north);
    let (_, sc) = pull_all(&f, &f.sales_b, None, 5, &mut south);
    let empty = block(f.svc.pull(&f.sales_a, Some(&nc), 5)).unwrap();
    assert!(!empty.more && !empty.reset && empty.upserts.is_empty() && empty.removals.is_empty());
    assert_eq!(empty.next, nc, "nothing new: the same cursor");

    let mine: Vec<Id> = north.keys().filter(|k| k.0 == "lead").map(|k| k.1).collect();
    let lead = |id: Id| block(f.svc.get(&f.admin, "lead", id)).unwrap();
    let edited = lead(mine[0]);
    block(f.svc.update(
        &f.admin,
        "lead",
        edited.id,
        edited.version,
        &obj(json!({"notes": "gate 12"})),
    ))
    .unwrap();
    let gone = lead(mine[1]);
    block(f.svc.delete(&f.admin, "lead", gone.id, gone.version)).unwrap();
    let moved = lead(mine[2]);
    let to_b =
        json!({"owner_id": f.sales_b.user_id.unwrap().to_string(), "team_id": f.sales_b.team_id.unwrap().to_string()});
    block(f.svc.update(&f.admin, "lead", moved.id, moved.version, &obj(to_b))).unwrap();
    let scored = lead(mine[3]);
    let act = json!({"kind": "call", "lead_id": scored.id.to_string(), "subject": "Intro call"});
    block(f.svc.create(&f.sales_a, "activity", &obj(act))).unwrap();

    let (pages, nc2) = pull_all(&f, &f.sales_a, Some(nc.clone()), 2, &mut north);
    assert!(pages.iter().all(|p| !p.reset));
    let upserted: Vec<Id> = pages
        .iter()
        .flat_map(|p| &p.upserts)
        .map(|u| id_of(&u.record))
        .collect();
    let removed: Vec<Id> = pages.iter().flat_map(|p| &p.removals).map(|r| r.id).collect();
    assert!(
        upserted.contains(&edited.id) && upserted.contains(&scored.id),
        "{upserted:?}"
    );
    assert!(removed.contains(&gone.id) && removed.contains(&moved.id), "{removed:?}");
    assert_eq!(north[&("lead".to_owned(), edited.id)]["notes"], json!("gate 12"));
    let now_scored = lead(scored.id);
    assert_eq!(
        north[&("lead".to_owned(), scored.id)]["score"],
        now_scored.to_json()["score"],
        "the re-derived score came down"
    );
    assert_eq!(north, readable(&f, &f.sales_a));

    pull_all(&f, &f.sales_b, Some(sc), 4, &mut south);
    assert!(
        south.contains_key(&("lead".to_owned(), moved.id)),
        "the new team gets it"
    );
    assert!(!south.contains_key(&("lead".to_owned(), edited.id)));
    assert_eq!(south, readable(&f, &f.sales_b));

    // The same cursor again gives the same changes (a lost answer is pulled again).
    let mut again = Held::new();
    pull_all(&f, &f.sales_a, None, 1000, &mut again);
    assert_eq!(again, north);
    let later = block(f.svc.pull(&f.sales_a, Some(&nc2), 10)).unwrap();
    assert!(later.upserts.is_empty() && later.removals.is_empty() && !later.more);
}

/// Fields the user may not read never appear, in the snapshot or in later changes; a cursor of a
/// user whose role changed starts a new snapshot (`reset`); a cursor that does not decode is a
/// field error.
pub fn pulls_are_redacted_and_reset_when_the_users_access_changes<S: Store>(store: S) {
    let f = Fixture::new(store);
    seed(&f);
    let mut held = Held::new();
    let (pages, cursor) = pull_all(&f, &f.staff, None, 4, &mut held);
    let contacts: Vec<&Json> = held.iter().filter(|(k, _)| k.0 == "contact").map(|(_, v)| v).collect();
    assert_eq!(contacts.len(), 4);
    let hidden = |j: &Json| j.get("lifetime_value").is_some();
    assert!(!contacts.iter().any(|c| hidden(c)), "staff never see lifetime values");
    assert!(pages.iter().flat_map(|p| &p.upserts).all(|u| !hidden(&u.record)));
    let c = block(f.svc.list(&f.admin, "contact", &Default::default()))
        .unwrap()
        .items[0]
        .clone();
    block(
        f.svc
            .update(&f.admin, "contact", c.id, c.version, &obj(json!({"notes": "VIP"}))),
    )
    .unwrap();
    let page = block(f.svc.pull(&f.staff, Some(&cursor), 100)).unwrap();
    assert_eq!(page.upserts.len(), 1);
    assert!(!hidden(&page.upserts[0].record) && page.upserts[0].record["notes"] == json!("VIP"));

    // The staff member becomes sales: the old cursor starts over.
    let promoted = Actor {
        role: Arc::new(crate::access::builtin::sales()),
        ..f.staff.clone()
    };
    let page = block(f.svc.pull(&promoted, Some(&cursor), 100)).unwrap();
    assert!(page.reset && page.removals.is_empty());
    assert!(page.upserts.iter().any(|u| u.entity == "lead") || !page.more);
    let other = block(f.svc.pull(&f.sales_a, Some(&cursor), 100)).unwrap();
    assert!(other.reset, "another user's cursor starts over");

    for bad in ["not a cursor", "e30", ""] {
        let e = block(f.svc.pull(&f.staff, Some(bad), 10)).unwrap_err();
        let errs = e.field_errors();
        assert_eq!(
            (errs[0].path.as_str(), errs[0].code.as_str()),
            ("cursor", INVALID_CURSOR),
            "{bad:?}"
        );
    }
    assert_eq!(
        block(f.svc.pull(&f.staff, None, 0)).unwrap_err().field_errors()[0].path,
        "limit"
    );
}
