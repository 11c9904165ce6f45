//! `--database postgres://...`: the same measurements over the PostgreSQL store, each next to the same
//! SQL run through sqlx directly on one dedicated connection to the same database, in the same run.
//!
//! The service seeds a fresh schema (`crm_tmp_...`, dropped at exit). The raw side uses the statements
//! the store uses (the cached `get`, the list `SELECT` rendered by `crm_store::sql` with the same
//! bound values, the full-row `INSERT`) on copies of the store's tables made with
//! `CREATE TABLE ... (LIKE ... INCLUDING ALL)`, so it maintains the same indexes. What the ratio
//! measures is everything the service and store add on top of the driver: authorization,
//! validation, scoring, audit and events, pool checkout, decoding into records.

use super::*;
use crm_store::sql::{self as ssql, null_of};
use crm_store::{AnyStore, Backend, PgStore};
use sea_query::Value as SV;
use sea_query_sqlx::SqlxValues;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Connection as _, Row};
use std::str::FromStr;

const PG: Backend = Backend::Postgres;

/// An owned column value (what the raw side decodes every column into).
#[derive(Debug)]
#[allow(dead_code)]
enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Uuid(Id),
    Json(Json),
}

/// Decodes every selected column of `def` (in [`read_columns`] order) into owned values.
fn decode(row: &PgRow, def: &EntityDef) -> Res<Vec<Owned>> {
    use crm_core::value::FieldType as F;
    let mut out = Vec::with_capacity(row.len());
    for (i, c) in read_columns(def).iter().enumerate() {
        let ty = match *c {
            "id" => F::Ref("self"),
            "version" | "created_at" | "updated_at" => F::Integer,
            "custom" => F::Json,
            name => def.def(name).ok_or("unknown column")?.spec.ty.clone(),
        };
        let v = match ty {
            F::Integer | F::Money | F::Timestamp => row.try_get::<Option<i64>, _>(i)?.map(Owned::Int),
            F::Number => row.try_get::<Option<f64>, _>(i)?.map(Owned::Real),
            F::Bool => row.try_get::<Option<bool>, _>(i)?.map(Owned::Bool),
            F::Ref(_) => row.try_get::<Option<Id>, _>(i)?.map(Owned::Uuid),
            F::Json => row.try_get::<Option<Json>, _>(i)?.map(Owned::Json),
            _ => row.try_get::<Option<String>, _>(i)?.map(Owned::Text),
        };
        out.push(v.unwrap_or(Owned::Null));
    }
    Ok(out)
}

/// A typed NULL for column `c` of `def`.
fn null(def: &EntityDef, c: &str) -> SV {
    match def.def(c) {
        Some(f) => null_of(&f.spec.ty, PG),
        None if c == "custom" => SV::Json(None),
        None => SV::String(None),
    }
}

fn lead_values(cols: &[&str], r: &LeadRow, tenant: Id, owners: &[Owner], now: Timestamp) -> Vec<SV> {
    let o = owners[r.owner];
    let score = raw_fit_score(r.source, r.cents);
    let s = |v: &str| SV::String(Some(v.to_owned()));
    cols.iter()
        .map(|c| match *c {
            "id" => SV::Uuid(Some(r.id)),
            "org_id" => SV::Uuid(Some(tenant)),
            "version" => SV::BigInt(Some(1)),
            "created_at" | "updated_at" | "scored_at" => SV::BigInt(Some(now.0)),
            "first_name" => s(r.first),
            "last_name" => s(r.last),
            "email" => SV::String(r.email.clone()),
            "phone" => SV::String(r.phone_e164.clone()),
            "city" => s(r.city),
            "region" => s("CO"),
            "source" => s(r.source),
            "status" => s(r.status),
            "score" => SV::BigInt(Some(score)),
            "temperature" => s(temperature(score)),
            "score_model_version" => SV::BigInt(Some(0)),
            "owner_id" => SV::Uuid(Some(o.id)),
            "team_id" => SV::Uuid(Some(o.team)),
            "project_type" => s(r.project),
            "estimated_value" => SV::BigInt(Some(r.cents)),
            "priority" => s(r.priority),
            "external_id" => s(&r.external_id),
            "lost_reason" => SV::String(r.lost_reason.map(str::to_owned)),
            other => null(&LEAD, other),
        })
        .collect()
}

fn activity_values(cols: &[&str], r: &ActRow, tenant: Id, now: Timestamp) -> Vec<SV> {
    let s = |v: &str| SV::String(Some(v.to_owned()));
    cols.iter()
        .map(|c| match *c {
            "id" => SV::Uuid(Some(r.id)),
            "org_id" => SV::Uuid(Some(tenant)),
            "version" => SV::BigInt(Some(1)),
            "created_at" | "updated_at" => SV::BigInt(Some(now.0)),
            "kind" => s(r.kind),
            "direction" => s(r.direction),
            "subject" => s(ACT_SUBJECT),
            "outcome" => s(r.outcome),
            "occurred_at" => SV::BigInt(Some(r.occurred_at.0)),
            "duration_minutes" => SV::BigInt(Some(r.duration)),
            "lead_id" => SV::Uuid(Some(r.lead)),
            "owner_id" => SV::Uuid(Some(r.owner.id)),
            "team_id" => SV::Uuid(Some(r.owner.team)),
            "external_id" => s(&r.external_id),
            other => null(&ACTIVITY, other),
        })
        .collect()
}

/// `bench_raw_<table>`: a copy of the store's table, with its indexes (`INCLUDING ALL`) or without.
pub(super) async fn clone_table(c: &mut PgConnection, table: &str, with_indexes: bool) -> Res<String> {
    let raw = format!("bench_raw_{table}{}", if with_indexes { "" } else { "_plain" });
    let like = if with_indexes {
        "INCLUDING ALL"
    } else {
        "INCLUDING DEFAULTS"
    };
    let sql = format!("DROP TABLE IF EXISTS \"{raw}\"; CREATE TABLE \"{raw}\" (LIKE \"{table}\" {like})");
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *c).await?;
    Ok(raw)
}

/// Raw bulk insert: one transaction, multi-row `INSERT`s of 200 rows (the fastest plain way with
/// bound values, and what the store does with an import's rows).
async fn raw_bulk_insert(c: &mut PgConnection, table: &str, def: &EntityDef, rows: Vec<Vec<SV>>) -> Res<()> {
    let cols = insert_columns(def);
    let mut tx = c.begin().await?;
    for chunk in rows.chunks(200) {
        let sql = ssql::pg_insert_values(table, &cols, chunk.len(), 1);
        let values: Vec<SV> = chunk.iter().flatten().cloned().collect();
        sqlx::query_with(AssertSqlSafe(sql), SqlxValues(sea_query::Values(values)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) fn run(args: &Args, url: &str) -> Res<()> {
    let n = args.leads.max(100);
    let plan = Plan::new(args.quick, n);
    let pg = PgStore::open_temporary(url)?;
    let schema = pg.schema().ok_or("temporary store without a schema")?.to_owned();
    let rt = pg.runtime().clone();
    eprintln!(
        "harness: {n} leads, {} activities, {} ({}), plan {plan:?}",
        n / 2,
        pg.location(),
        if args.quick { "quick" } else { "full" }
    );
    let store = Arc::new(AnyStore::from(pg));
    let svc: Svc = Service::new(store, Arc::new(SystemClock), Arc::new(RandomIds))
        // As `crm serve` runs it (its default CRM_ORG_CACHE).
        .with_org_cache(Duration::from_secs(5));
    let t = setup_tenant(&svc)?;
    let opts = PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
    let mut raw = rt.block_on(PgConnection::connect_with(&opts))?;
    let now = SystemClock.now();
    let mut rng = Rng(0x5EED);

    // ---- import_leads ----
    let rows = gen_leads(&mut rng, n, t.owners.len(), "L", now);
    let csv = lead_csv(&rows, &t.owners);
    eprintln!("leads csv: {:.1} MB", csv.len() as f64 / 1e6);
    let cols = insert_columns(&LEAD);
    let values = |rows: &[LeadRow]| -> Vec<Vec<SV>> {
        rows.iter()
            .map(|r| lead_values(&cols, r, t.tenant, &t.owners, now))
            .collect()
    };
    let raw_leads = rt.block_on(clone_table(&mut raw, LEAD.table, true))?;
    let raw_plain = rt.block_on(clone_table(&mut raw, LEAD.table, false))?;
    let (plain_t, ()) = time(|| rt.block_on(raw_bulk_insert(&mut raw, &raw_plain, &LEAD, values(&rows))))?;
    let (raw_t, ()) = time(|| rt.block_on(raw_bulk_insert(&mut raw, &raw_leads, &LEAD, values(&rows))))?;
    let opts = ImportOptions {
        mode: ImportMode::AllOrNothing,
        ..Default::default()
    };
    let (svc_t, report) = time(|| Ok(block(svc.import_csv(&t.manager, "lead", csv.as_slice(), &opts))?))?;
    check_import("lead", &report, n)?;
    drop(csv);
    eprintln!("import_leads: service {svc_t:?}, raw (same indexes) {raw_t:?}, raw (no indexes) {plain_t:?}");
    emit("import_leads", svc_t.as_secs_f64(), "s", Some(raw_t.as_secs_f64()), n);
    emit(
        "import_leads_rate",
        n as f64 / svc_t.as_secs_f64(),
        "rows/s",
        Some(n as f64 / raw_t.as_secs_f64()),
        n,
    );
    emit(
        "import_leads_vs_unindexed",
        svc_t.as_secs_f64(),
        "s",
        Some(plain_t.as_secs_f64()),
        n,
    );

    // ---- import_activities ----
    let by_id: HashMap<Id, Owner> = t.owners.iter().map(|o| (o.id, *o)).collect();
    let lead_rows: Vec<(Id, Option<Id>)> = rt.block_on(
        sqlx::query_as("SELECT id, owner_id FROM leads WHERE org_id = $1 ORDER BY id")
            .bind(t.tenant)
            .fetch_all(&mut raw),
    )?;
    let lead_ids: Vec<(Id, Owner)> = lead_rows
        .into_iter()
        .map(|(id, o)| {
            Ok((
                id,
                o.and_then(|o| by_id.get(&o).copied())
                    .ok_or("lead owner is not a bench user")?,
            ))
        })
        .collect::<Res<_>>()?;
    if lead_ids.len() != n {
        return Err(format!("expected {n} leads in the database, found {}", lead_ids.len()).into());
    }
    let acts = gen_activities(&mut rng, n / 2, &lead_ids, now);
    let csv = activity_csv(&acts);
    let raw_acts = rt.block_on(clone_table(&mut raw, ACTIVITY.table, true))?;
    let act_cols = insert_columns(&ACTIVITY);
    let act_values: Vec<Vec<SV>> = acts
        .iter()
        .map(|r| activity_values(&act_cols, r, t.tenant, now))
        .collect();
    let (raw_t, ()) = time(|| rt.block_on(raw_bulk_insert(&mut raw, &raw_acts, &ACTIVITY, act_values)))?;
    let (svc_t, report) = time(|| Ok(block(svc.import_csv(&t.manager, "activity", csv.as_slice(), &opts))?))?;
    check_import("activity", &report, acts.len())?;
    drop((csv, acts));
    eprintln!("import_activities: service {svc_t:?} (includes re-scoring their leads), raw {raw_t:?}");
    emit(
        "import_activities",
        svc_t.as_secs_f64(),
        "s",
        Some(raw_t.as_secs_f64()),
        n / 2,
    );
    emit(
        "import_activities_rate",
        (n / 2) as f64 / svc_t.as_secs_f64(),
        "rows/s",
        Some((n / 2) as f64 / raw_t.as_secs_f64()),
        n / 2,
    );
    drop(rows);

    // ---- get_lead / get_lead_scoped ----
    let get_sql: &'static str = ssql::entity_sql(PG, &LEAD).ok_or("no lead statements")?.get.as_str();
    let reader = &t.sales[0];
    let team_ids: Vec<Id> = lead_ids
        .iter()
        .filter(|(_, o)| Some(o.team) == reader.team_id)
        .map(|(id, _)| *id)
        .collect();
    for (name, actor, pool) in [
        (
            "get_lead",
            &t.manager,
            lead_ids.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ),
        ("get_lead_scoped", reader, team_ids),
    ] {
        let ids: Vec<Id> = (0..plan.gets).map(|_| pool[rng.index(pool.len())]).collect();
        let (raw_t, svc_t) = alternate(
            plan.rounds,
            |_| {
                rt.block_on(async {
                    for id in &ids {
                        let row = sqlx::query(get_sql)
                            .bind(t.tenant)
                            .bind(*id)
                            .fetch_optional(&mut raw)
                            .await?
                            .ok_or("raw get: missing lead")?;
                        black_box(decode(&row, &LEAD)?);
                    }
                    Ok(())
                })
            },
            |_| {
                for id in &ids {
                    black_box(block(svc.get(actor, "lead", *id))?);
                }
                Ok(())
            },
        )?;
        emit(
            name,
            per_op(svc_t, ids.len(), 1e9),
            "ns/op",
            Some(per_op(raw_t, ids.len(), 1e9)),
            ids.len(),
        );
    }

    // ---- list_page: the store's own SELECT (status and owner, by score), run raw with its values ----
    let reqs: Vec<(usize, ListRequest)> = (0..plan.lists)
        .map(|i| {
            let o = i % t.owners.len();
            let req = ListRequest {
                q: Some(format!("status:new owner:{}", t.owners[o].id)),
                sort: vec![SortKey::desc("score")],
                limit: Some(50),
                ..Default::default()
            };
            (o, req)
        })
        .collect();
    let raw_queries: Vec<(String, sea_query::Values)> = t
        .owners
        .iter()
        .map(|o| {
            let q = StoreQuery {
                filter: Filter::and([Filter::eq("status", "new"), Filter::cmp("owner_id", Op::Eq, o.id)]),
                sort: vec![SortKey::desc("score"), SortKey::asc("id")],
                limit: 51,
            };
            Ok(ssql::select(&LEAD, t.tenant, &q, PG)?)
        })
        .collect::<Res<_>>()?;
    eprintln!("list_page SQL (raw and store): {}", raw_queries[0].0);
    let (mut raw_rows, mut svc_rows) = (0usize, 0usize);
    let (raw_t, svc_t) = alternate(
        plan.rounds,
        |_| {
            raw_rows = 0;
            rt.block_on(async {
                for (o, _) in &reqs {
                    let (sql, values) = &raw_queries[*o];
                    let rows = sqlx::query_with(AssertSqlSafe(sql.clone()), SqlxValues(values.clone()))
                        .fetch_all(&mut raw)
                        .await?;
                    let page: Vec<Vec<Owned>> = rows.iter().map(|r| decode(r, &LEAD)).collect::<Res<_>>()?;
                    raw_rows += page.len().min(50);
                    black_box(page);
                }
                Ok::<(), Box<dyn Error>>(())
            })
        },
        |_| {
            svc_rows = 0;
            for (_, req) in &reqs {
                let page = block(svc.list(&t.manager, "lead", req))?;
                svc_rows += page.items.len();
                black_box(page);
            }
            Ok(())
        },
    )?;
    if raw_rows != svc_rows {
        eprintln!("WARNING list_page: raw returned {raw_rows} rows, service {svc_rows}");
    }
    emit(
        "list_page",
        per_op(svc_t, reqs.len(), 1e6),
        "us/op",
        Some(per_op(raw_t, reqs.len(), 1e6)),
        reqs.len(),
    );

    // ---- aggregates: the funnel and leads by source and month, beside the same grouping in raw SQL ----
    for AggregateCase {
        name,
        req,
        postgres: sql,
        ..
    } in aggregate_cases()?
    {
        let (mut raw_seen, mut svc_seen) = ((0, 0), (0, 0));
        let (raw_t, svc_t) = alternate(
            plan.rounds,
            |_| {
                let rows = rt.block_on(sqlx::query(sql).bind(t.tenant).fetch_all(&mut raw))?;
                raw_seen = (0, 0);
                for r in &rows {
                    raw_seen.0 += 1;
                    raw_seen.1 += r.try_get::<i64, _>(r.len() - 1)? as u64;
                    black_box(r.try_get::<Option<String>, _>(0)?);
                }
                Ok(())
            },
            |_| {
                let a = block(svc.aggregate(&t.manager, "lead", &req))?;
                svc_seen = groups_and_rows(&a);
                black_box(a);
                Ok(())
            },
        )?;
        if raw_seen != svc_seen {
            return Err(format!("{name}: raw (groups, rows) {raw_seen:?}, service {svc_seen:?}").into());
        }
        eprintln!("{name}: {svc_seen:?} (groups, leads); service {svc_t:?}, raw {raw_t:?}");
        emit(
            name,
            svc_t.as_secs_f64() * 1e6,
            "us/op",
            Some(raw_t.as_secs_f64() * 1e6),
            svc_seen.1 as usize,
        );
    }

    // ---- create_lead: one transaction per lead on both sides ----
    let actor = &t.sales[0];
    let me = t
        .owners
        .iter()
        .position(|o| Some(o.id) == actor.user_id)
        .ok_or("sales user is not an owner")?;
    let raw_batches: Vec<Vec<Vec<SV>>> = (0..=plan.rounds)
        .map(|round| {
            let mut b = gen_leads(&mut rng, plan.creates, t.owners.len(), &format!("R{round}-"), now);
            b.iter_mut().for_each(|r| r.owner = me);
            values(&b)
        })
        .collect();
    let svc_batches: Vec<Vec<Map<String, Json>>> = (0..=plan.rounds)
        .map(|round| {
            gen_leads(&mut rng, plan.creates, t.owners.len(), &format!("C{round}-"), now)
                .iter()
                .map(lead_input)
                .collect()
        })
        .collect();
    // The same rows as the service's create, the plain sqlx way, into copies of their tables.
    let same_batches: Vec<Vec<(LeadRow, Vec<SV>)>> = (0..=plan.rounds)
        .map(|round| {
            let mut b = gen_leads(&mut rng, plan.creates, t.owners.len(), &format!("S{round}-"), now);
            b.iter_mut().for_each(|r| r.owner = me);
            let v = values(&b);
            b.into_iter().zip(v).collect()
        })
        .collect();
    let same = rt.block_on(pg_same_rows::Tables::copy(&mut raw, &raw_leads, t.tenant))?;
    let same_cx = pg_same_rows::Ctx {
        tenant: t.tenant,
        actor: actor.user_id.ok_or("the sales user is a user")?,
        owners: &t.owners,
        now,
    };
    let ins_sql = ssql::pg_insert_values(&raw_leads, &cols, 1, 1);
    let raw = std::cell::RefCell::new(raw);
    let best = alternate_all(
        plan.rounds,
        &mut [
            &mut |round| {
                let raw = &mut *raw.borrow_mut();
                rt.block_on(async {
                    for v in &raw_batches[round] {
                        let mut tx = raw.begin().await?;
                        sqlx::query_with(AssertSqlSafe(ins_sql.clone()), SqlxValues(sea_query::Values(v.clone())))
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                    }
                    Ok::<(), Box<dyn Error>>(())
                })
            },
            &mut |round| {
                let raw = &mut *raw.borrow_mut();
                rt.block_on(async {
                    for (r, v) in &same_batches[round] {
                        same.create(raw, r, v.clone(), &same_cx).await?;
                    }
                    Ok::<(), Box<dyn Error>>(())
                })
            },
            &mut |round| {
                for input in &svc_batches[round] {
                    black_box(block(svc.create(actor, "lead", input))?);
                }
                Ok(())
            },
        ],
    )?;
    let mut raw = raw.into_inner();
    rt.block_on(same.remove(&mut raw))?;
    let (raw_t, same_t, svc_t) = (best[0], best[1], best[2]);
    emit_creates(svc_t, same_t, raw_t, plan.creates);
    drop((raw_batches, same_batches, svc_batches));
    for table in [&raw_leads, &raw_plain, &raw_acts] {
        rt.block_on(sqlx::raw_sql(AssertSqlSafe(format!("DROP TABLE \"{table}\""))).execute(&mut raw))?;
    }

    // ---- rescore_all (no raw baseline on PostgreSQL) ----
    let total: i64 = rt.block_on(
        sqlx::query_scalar("SELECT count(*) FROM leads WHERE org_id = $1")
            .bind(t.tenant)
            .fetch_one(&mut raw),
    )?;
    let total = total as usize;
    rt.block_on(
        sqlx::query("UPDATE leads SET temperature = 'stale' WHERE org_id = $1")
            .bind(t.tenant)
            .execute(&mut raw),
    )?;
    let (svc_t, rep) = time(|| Ok(block(svc.rescore_all(&t.manager))?))?;
    eprintln!(
        "rescore_all: service {svc_t:?} (scanned {}, changed {})",
        rep.scanned, rep.changed
    );
    emit("rescore_all", svc_t.as_secs_f64(), "s", None, total);
    emit(
        "rescore_all_rate",
        total as f64 / svc_t.as_secs_f64(),
        "leads/s",
        None,
        total,
    );
    rt.block_on(raw.close())?;
    Ok(())
}
