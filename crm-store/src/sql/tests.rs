#![allow(clippy::unwrap_used)]

use super::*;
use crate::Backend;
use crm_core::entity::{CONTACT, LEAD, ORGANIZATION};
use crm_core::query::SortKey;
use crm_core::query::{Filter, Op, StoreQuery};
use crm_core::record::Record;
use crm_core::value::{FieldType, Id, Money, Timestamp, Value};
use sea_query::{Expr, ExprTrait, Query, Value as SqlValue};
use sea_query::{InsertStatement, UpdateStatement, Values};
use serde_json::Value as Json;
use std::collections::BTreeMap;

const S: Backend = Backend::Sqlite;

/// The WHERE clause (after the tenant condition) and its values, SQLite-rendered.
fn render(f: &Filter) -> (String, Vec<SqlValue>) {
    let s = filtered(&LEAD, Id::nil(), f, S).unwrap();
    let (sql, Values(mut values)) = S.build(&s);
    let prefix = "SELECT  FROM \"leads\" WHERE \"org_id\" = ? AND ";
    assert!(sql.starts_with(prefix), "{sql}");
    values.remove(0);
    (sql[prefix.len()..].to_owned(), values)
}

fn text(s: &str) -> SqlValue {
    SqlValue::String(Some(s.to_owned()))
}

#[test]
fn like_patterns_escape_wildcards_and_the_escape() {
    assert_eq!(like_escape("50%_off\\x"), "50\\%\\_off\\\\x");
    assert_eq!(like_pattern("AbC%", false), "%abc\\%%");
    assert_eq!(like_pattern("Ä_", true), "Ä\\_%");
    assert_eq!(like_pattern("", false), "%%");
}

#[test]
fn text_contains_and_starts_with_are_escaped_likes() {
    let (sql, v) = render(&Filter::cmp("city", Op::Contains, "Ber_%"));
    assert_eq!(sql, "LOWER(\"city\") LIKE ? ESCAPE '\\'");
    assert_eq!(v, vec![text("%ber\\_\\%%")]);
    let (sql, v) = render(&Filter::cmp("email", Op::StartsWith, "A\\"));
    assert_eq!(sql, "LOWER(\"email\") LIKE ? ESCAPE '\\'");
    assert_eq!(v, vec![text("a\\\\%")]);
}

#[test]
fn list_contains_looks_for_the_encoded_element() {
    let (sql, v) = render(&Filter::cmp("tags", Op::Contains, "a\"b"));
    assert_eq!(sql, "(instr(\"tags\", ?) > ? OR instr(\"tags\", ?) > ?)");
    assert_eq!(
        v,
        vec![
            text("[\"a\\\"b\""),
            SqlValue::Int(Some(0)),
            text(",\"a\\\"b\""),
            SqlValue::Int(Some(0))
        ]
    );
}

#[test]
fn logic_and_nulls_render_as_sql_three_valued_logic() {
    assert_eq!(render(&Filter::Not(Box::new(Filter::All))).0, "(1 = 0)");
    assert_eq!(render(&Filter::Or(vec![])).0, "(1 = 0)");
    assert_eq!(render(&Filter::And(vec![])).0, "(1 = 1)");
    assert_eq!(render(&Filter::cmp("score", Op::Gt, Value::Null)).0, "(NULL)");
    let (sql, v) = render(&Filter::Not(Box::new(Filter::Or(vec![
        Filter::cmp("score", Op::Ge, 60i64),
        Filter::IsNull {
            field: "owner_id".into(),
        },
    ]))));
    assert_eq!(sql, "(NOT (\"score\" >= ? OR \"owner_id\" IS NULL))");
    assert_eq!(v, vec![SqlValue::BigInt(Some(60))]);
    // NULLs in a list never match, so they are left out; an empty list is UNKNOWN on NULL, else false.
    let (sql, v) = render(&Filter::In {
        field: "status".into(),
        values: vec!["new".into(), Value::Null],
    });
    assert_eq!((sql.as_str(), v), ("\"status\" IN (?)", vec![text("new")]));
    let (sql, _) = render(&Filter::In {
        field: "status".into(),
        values: vec![Value::Null],
    });
    assert_eq!(sql, "(CASE WHEN (\"status\" IS NULL) THEN NULL ELSE 1 = 0 END)");
    // A test that cannot hold (contains on a number) is false, or UNKNOWN on NULL.
    let (sql, _) = render(&Filter::cmp("score", Op::Contains, "1"));
    assert_eq!(sql, "(CASE WHEN (\"score\" IS NULL) THEN NULL ELSE 1 = 0 END)");
}

#[test]
fn typed_values_bind_as_stored() {
    let (sql, v) = render(&Filter::and([
        Filter::cmp("estimated_value", Op::Ge, Money(1250)),
        Filter::cmp("scored_at", Op::Lt, Timestamp(7)),
        Filter::eq("owner_id", Id::from_u128(9)),
        Filter::cmp("id", Op::Gt, Id::from_u128(3)),
    ]));
    assert_eq!(
        sql,
        "(\"estimated_value\" >= ? AND \"scored_at\" < ? AND \"owner_id\" = ? AND \"id\" > ?)"
    );
    assert_eq!(
        v,
        vec![
            SqlValue::BigInt(Some(1250)),
            SqlValue::BigInt(Some(7)),
            SqlValue::Uuid(Some(Id::from_u128(9))),
            SqlValue::Uuid(Some(Id::from_u128(3)))
        ]
    );
}

#[test]
fn custom_fields_use_json_extract() {
    let (sql, v) = render(&Filter::cmp("custom.budget", Op::Gt, Money(500)));
    assert_eq!(sql, "(json_extract(\"custom\", '$.\"budget\"')) > ?");
    assert_eq!(v, vec![SqlValue::BigInt(Some(500))]);
    let (sql, v) = render(&Filter::cmp("custom.roof", Op::Contains, "Sl%"));
    assert!(sql.contains("LIKE ? ESCAPE '\\'") && sql.contains("json_each"), "{sql}");
    assert_eq!(v, vec![text("%sl\\%%"), text("Sl%")]);
    for key in ["custom.a'b", "custom.a\"b", "custom.a b", "custom.é"] {
        let e = condition(&LEAD, &Filter::eq(key, "x"), S).unwrap_err();
        assert_eq!(e.code(), "invalid_query", "{key}");
    }
    // Entities without custom fields have no `custom.` fields.
    assert_eq!(
        condition(&ORGANIZATION, &Filter::eq("custom.x", "x"), S)
            .unwrap_err()
            .code(),
        "invalid_query"
    );
}

/// The WHERE clause after the tenant condition, and its values, PostgreSQL-rendered.
fn render_pg(f: &Filter) -> (String, Vec<SqlValue>) {
    let s = filtered(&LEAD, Id::nil(), f, Backend::Postgres).unwrap();
    let (sql, Values(mut values)) = Backend::Postgres.build(&s);
    let prefix = "SELECT  FROM \"leads\" WHERE \"org_id\" = $1 AND ";
    assert!(sql.starts_with(prefix), "{sql}");
    values.remove(0);
    (sql[prefix.len()..].to_owned(), values)
}

#[test]
fn postgres_custom_fields_compare_as_the_value_type() {
    let (sql, v) = render_pg(&Filter::cmp("custom.budget", Op::Gt, Money(500)));
    assert_eq!(
        sql,
        "((CASE WHEN jsonb_typeof((\"custom\" -> 'budget')) = 'number' THEN ((\"custom\" -> 'budget'))::numeric END)) > $2"
    );
    assert_eq!(v, vec![SqlValue::BigInt(Some(500))]);
    // Text, dates and ids compare as byte-ordered text; the bound value is text too.
    let (sql, v) = render_pg(&Filter::cmp(
        "custom.due",
        Op::Ge,
        Value::Date(time::macros::date!(2025 - 03 - 01)),
    ));
    assert!(
        sql.contains("->> 'due'") && sql.contains("COLLATE \"C\"") && sql.ends_with(">= $2"),
        "{sql}"
    );
    assert_eq!(v, vec![text("2025-03-01")]);
    // Contains: a case-folded LIKE on strings, element containment on arrays, false on tagged values.
    let (sql, v) = render_pg(&Filter::cmp("custom.roof", Op::Contains, "Sl%"));
    assert!(
        sql.contains("(\"custom\" -> '$t' ->> 'roof') IS NOT NULL THEN 1 = 0")
            && sql.contains("LIKE $2 ESCAPE '\\'")
            && sql.contains("@> jsonb_build_array(($3)::text)"),
        "{sql}"
    );
    assert_eq!(v, vec![text("%sl\\%%"), text("Sl%")]);
    // Absent and JSON null are both "no value".
    let (sql, _) = render_pg(&Filter::IsNull {
        field: "custom.roof".into(),
    });
    assert!(
        sql.contains("coalesce(jsonb_typeof((\"custom\" -> 'roof')), 'null') = 'null'"),
        "{sql}"
    );
    for key in ["custom.a'b", "custom.a\"b", "custom.a b"] {
        let e = condition(&LEAD, &Filter::eq(key, "x"), Backend::Postgres).unwrap_err();
        assert_eq!(e.code(), "invalid_query", "{key}");
    }
}

#[test]
fn unbound_or_unknown_fields_are_invalid_queries() {
    for f in [
        Filter::Search("acme".into()),
        Filter::eq("nope", 1i64),
        Filter::IsNull {
            field: "custom.".into(),
        },
    ] {
        assert_eq!(condition(&LEAD, &f, S).unwrap_err().code(), "invalid_query", "{f:?}");
    }
}

#[test]
fn sorts_put_nulls_first_ascending_and_end_in_id() {
    let q = StoreQuery {
        filter: Filter::All,
        sort: vec![SortKey::desc("score"), SortKey::asc("city")],
        limit: 50,
    };
    let (sql, v) = select(&LEAD, Id::nil(), &q, S).unwrap();
    assert!(
        sql.ends_with("ORDER BY \"score\" DESC NULLS LAST, \"city\" ASC NULLS FIRST, \"id\" ASC NULLS FIRST LIMIT 50"),
        "{sql}"
    );
    // The limit is in the text, not bound (see `limited`): the tenant is the only value.
    assert_eq!(v.0, vec![SqlValue::Uuid(Some(Id::nil()))]);
    let q = StoreQuery {
        filter: Filter::All,
        sort: vec![SortKey::desc("id"), SortKey::asc("city")],
        limit: 5,
    };
    let (sql, _) = select(&LEAD, Id::nil(), &q, S).unwrap();
    assert!(sql.ends_with("ORDER BY \"id\" DESC NULLS LAST LIMIT 5"), "{sql}");
    let (pg, _) = select(
        &LEAD,
        Id::nil(),
        &StoreQuery::by_id(Filter::eq("status", "new"), 5),
        Backend::Postgres,
    )
    .unwrap();
    assert!(
        pg.ends_with("WHERE \"org_id\" = $1 AND \"status\" = $2 ORDER BY \"id\" ASC NULLS FIRST LIMIT 5"),
        "{pg}"
    );
}

fn samples() -> Vec<(FieldType, Value)> {
    let d = time::Date::from_calendar_date(2024, time::Month::February, 29).unwrap();
    vec![
        (FieldType::Text, Value::Text("ünï 'x' \"y\"".into())),
        (FieldType::Email, Value::Text("a@b.c".into())),
        (FieldType::Enum, Value::Text("new".into())),
        (FieldType::Integer, Value::Int(i64::MIN)),
        (FieldType::Number, Value::Number(-2.5e-7)),
        (FieldType::Money, Value::Money(Money(-12_345))),
        (FieldType::Date, Value::Date(d)),
        (FieldType::Timestamp, Value::Timestamp(Timestamp(1_700_000_000_123_456))),
        (FieldType::Bool, Value::Bool(false)),
        (FieldType::Ref("user"), Value::Id(Id::from_u128(0xfeed))),
        (FieldType::Tags, Value::List(vec!["a\"b".into(), "".into()])),
        (FieldType::MultiEnum, Value::List(vec![])),
        (
            FieldType::Json,
            Value::Json(serde_json::json!({"a": [1, 2.5, null, "x"]})),
        ),
    ]
}

#[test]
fn values_round_trip_through_sql_values() {
    for (ty, v) in samples() {
        let sv = to_sql_value(&v, S);
        assert_eq!(decode(&ty, raw_of(&sv)), Some(v.clone()), "{ty:?}");
        assert_eq!(decode(&ty, raw_of(&null_of(&ty, S))), Some(Value::Null), "{ty:?}");
        assert_eq!(field_value(&ty, &Value::Null, S), null_of(&ty, S));
    }
    assert_eq!(
        to_sql_value(
            &Value::Date(time::Date::from_calendar_date(2025, time::Month::March, 4).unwrap()),
            S
        ),
        text("2025-03-04")
    );
    assert_eq!(null_of(&FieldType::Json, Backend::Postgres), SqlValue::Json(None));
    // Blobs of the wrong size and malformed text are not values of their type.
    assert_eq!(decode(&FieldType::Ref("user"), Raw::Blob(&[1, 2, 3])), None);
    assert_eq!(decode(&FieldType::Date, Raw::Text("2025-02-30")), None);
    assert_eq!(decode(&FieldType::Tags, Raw::Text("[1]")), None);
    assert_eq!(decode(&FieldType::Integer, Raw::Text("1")), None);
    assert_eq!(decode(&FieldType::Number, Raw::Int(3)), Some(Value::Number(3.0)));
    assert_eq!(decode(&FieldType::Bool, Raw::Int(1)), Some(Value::Bool(true)));
}

#[test]
fn custom_fields_round_trip_with_type_tags() {
    let mut m = BTreeMap::new();
    for (i, (_, v)) in samples().into_iter().enumerate() {
        m.insert(format!("k{i}"), v);
    }
    m.insert("whole".into(), Value::Number(3.0));
    m.insert("none".into(), Value::Null);
    let s = encode_custom(&m).unwrap();
    assert_eq!(decode_custom(&s), Some(m));
    assert_eq!(encode_custom(&BTreeMap::new()), None);

    // Storage JSON compares natively: money and timestamps are integers, dates ISO strings.
    let mut m = BTreeMap::new();
    m.insert("budget".to_owned(), Value::Money(Money(125_000)));
    m.insert(
        "due".to_owned(),
        Value::Date(time::Date::from_calendar_date(2025, time::Month::March, 1).unwrap()),
    );
    m.insert("roof".to_owned(), Value::Text("slate".into()));
    let j: Json = serde_json::from_str(&encode_custom(&m).unwrap()).unwrap();
    assert_eq!(
        j,
        serde_json::json!({"budget": 125000, "due": "2025-03-01", "roof": "slate", "$t": {"budget": "money", "due": "date"}})
    );

    // Untagged data decodes by JSON type.
    let plain =
        decode_custom(r#"{"a": "x", "b": 2, "c": 2.5, "d": true, "e": ["p", "q"], "f": {"o": 1}, "g": [1]}"#).unwrap();
    assert_eq!(plain["a"], Value::Text("x".into()));
    assert_eq!(plain["b"], Value::Int(2));
    assert_eq!(plain["c"], Value::Number(2.5));
    assert_eq!(plain["d"], Value::Bool(true));
    assert_eq!(plain["e"], Value::List(vec!["p".into(), "q".into()]));
    assert!(matches!(plain["f"], Value::Json(_)) && matches!(plain["g"], Value::Json(_)));
    assert_eq!(decode_custom("[1]"), None);
}

#[test]
fn cached_statements_bind_in_the_documented_order() {
    let t = Id::from_u128(1);
    let mut r = Record::empty(&CONTACT, t, Id::from_u128(2), Timestamp(10));
    r.set("first_name", "Ann");
    r.set("lifetime_value", Money(5));
    r.custom.insert("roof".into(), Value::Text("slate".into()));
    let sql = entity_sql(S, &CONTACT).unwrap();

    let params = insert_params(t, &r, S);
    let mut cols = vec!["org_id", "id"];
    cols.extend(columns(&CONTACT).into_iter().skip(1));
    let ins: InsertStatement = Query::insert()
        .into_table(CONTACT.table)
        .columns(cols.clone())
        .values_panic(params.iter().cloned().map(Expr::val))
        .to_owned();
    assert_eq!(S.build(&ins), (sql.insert.clone(), Values(params)));

    let params = update_params(t, &r, 4, S);
    let mut up: UpdateStatement = Query::update();
    up.table(CONTACT.table);
    for (c, v) in cols.iter().skip(2).zip(&params) {
        up.value(*c, v.clone());
    }
    let n = params.len();
    up.and_where(Expr::col("org_id").eq(params[n - 3].clone()))
        .and_where(Expr::col("id").eq(params[n - 2].clone()))
        .and_where(Expr::col("version").eq(params[n - 1].clone()));
    assert_eq!(S.build(&up), (sql.update.clone(), Values(params)));
    assert_eq!(
        sql.get,
        format!(
            "SELECT {} FROM \"contacts\" WHERE \"org_id\" = ? AND \"id\" = ?",
            quoted(&columns(&CONTACT))
        )
    );
    assert_eq!(
        sql.delete,
        "DELETE FROM \"contacts\" WHERE \"org_id\" = ? AND \"id\" = ? AND \"version\" = ?"
    );
    // Built once: the same text every time.
    assert!(std::ptr::eq(entity_sql(S, &CONTACT).unwrap(), sql));
    assert!(
        entity_sql(Backend::Postgres, &LEAD)
            .unwrap()
            .get
            .contains("\"org_id\" = $1 AND \"id\" = $2")
    );
}

fn quoted(cols: &[&str]) -> String {
    cols.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

#[test]
fn aggregates_select_keys_count_and_measures_and_read_them_back() {
    use crm_core::query::{AggregateQuery, Bucket, GroupBy, Measure};
    let q = AggregateQuery {
        filter: Filter::All,
        group_by: vec![
            GroupBy::Field("status".into()),
            GroupBy::Bucket("created_at".into(), Bucket::Month),
        ],
        measures: vec![
            Measure::Count,
            Measure::Sum("estimated_value".into()),
            Measure::Avg("estimated_value".into()),
            Measure::Max("latitude".into()),
        ],
        offset: time::UtcOffset::from_hms(2, 0, 0).unwrap(),
    };
    let a = aggregate(&LEAD, Id::nil(), &q, S).unwrap();
    let sql = S.build(&a.select).0;
    assert!(sql.starts_with("SELECT \"status\", date("), "{sql}");
    assert!(sql.contains("'start of month'"), "{sql}");
    assert!(sql.contains("(\"created_at\" + 7200000000)"), "{sql}");
    assert!(
        sql.contains("COUNT(*), SUM(\"estimated_value\"), SUM(\"estimated_value\"), COUNT(\"estimated_value\"), MAX(\"latitude\")"),
        "{sql}"
    );
    assert!(sql.contains("GROUP BY \"status\", date("), "{sql}");
    let row = [
        Raw::Text("new"),
        Raw::Text("2025-06-01"),
        Raw::Int(3),
        Raw::Int(1001),
        Raw::Int(1001),
        Raw::Int(2),
        Raw::Real(1.5),
    ];
    let g = a.group(&row).unwrap().unwrap();
    assert_eq!(
        g.keys,
        vec![Value::from("new"), Value::Date(time::macros::date!(2025 - 06 - 01))]
    );
    assert_eq!(g.count, 3);
    // 1001 / 2 = 500.5 cents, half-even to 500.
    assert_eq!(
        g.values,
        vec![
            Value::Int(3),
            Value::Money(Money(1001)),
            Value::Money(Money(500)),
            Value::Number(1.5)
        ]
    );
    // A row that is not what the statement selects is refused, not misread.
    assert!(a.group(&row[..5]).is_none());

    let custom = AggregateQuery::count_by(Filter::All, "custom.roof");
    let a = aggregate(&LEAD, Id::nil(), &custom, S).unwrap();
    assert!(S.build(&a.select).0.contains("(\"custom\" -> '$.\"roof\"')"));
    let g = a
        .group(&[Raw::Text("125"), Raw::Text("money"), Raw::Int(1)])
        .unwrap()
        .unwrap();
    assert_eq!(g.keys, vec![Value::Money(Money(125))]);
    for bad in [
        AggregateQuery::count_by(Filter::All, "nope"),
        AggregateQuery::count_by(Filter::All, "status").with(Measure::Sum("status".into())),
        AggregateQuery::count_by(Filter::All, "status").with(Measure::Sum("custom.budget".into())),
    ] {
        assert_eq!(
            aggregate(&LEAD, Id::nil(), &bad, S).unwrap_err().code(),
            "invalid_query"
        );
    }
}
