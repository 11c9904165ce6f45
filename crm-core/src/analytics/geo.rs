//! Geographic aggregation: records with coordinates (the `latitude`/`longitude` of the address that
//! leads, contacts and companies share) counted in a grid of square cells of `cell` degrees, as a
//! GeoJSON `FeatureCollection` (RFC 7946) of one polygon per non-empty cell.
//!
//! Cells are aligned on latitude and longitude 0: a point is in row `floor(latitude / cell)` and
//! column `floor(longitude / cell)`, computed exactly in decimal (0.3 / 0.1 is row 3, not 2), so a
//! point on a cell's south or west edge belongs to that cell; points on the north pole or the
//! antimeridian's east side (180) belong to the last row or column. Cells are cut at ±90 and ±180.

use crate::decimal::Decimal;
use crate::error::{Error, Result, codes};
use crate::value::Money;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The cell size when none is asked for, in degrees (about 11 km of latitude).
pub const DEFAULT_CELL: Decimal = Decimal::from_parts(1, 0, 0, false, 1);
/// The smallest cell (about 11 m of latitude).
pub const MIN_CELL: Decimal = Decimal::from_parts(1, 0, 0, false, 4);
/// The largest cell.
pub const MAX_CELL: Decimal = Decimal::from_parts(90, 0, 0, false, 0);

/// Checks a cell size: a positive number of degrees, from [`MIN_CELL`] to [`MAX_CELL`].
pub fn check_cell(cell: Decimal) -> Result<Decimal> {
    if cell < MIN_CELL {
        return Err(Error::field(
            "cell",
            codes::TOO_SMALL,
            format!("must be at least {MIN_CELL} degrees"),
        ));
    }
    if cell > MAX_CELL {
        return Err(Error::field(
            "cell",
            codes::TOO_LARGE,
            format!("must be at most {MAX_CELL} degrees"),
        ));
    }
    Ok(cell.normalize())
}

/// Records at one point (from an aggregate by latitude and longitude).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
    pub records: u64,
    /// Their summed value (leads: the estimated value), when the report measures one.
    pub value: Option<Money>,
}

/// `"FeatureCollection"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureCollectionType {
    #[default]
    FeatureCollection,
}

/// `"Feature"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureType {
    #[default]
    Feature,
}

/// `"Polygon"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolygonType {
    #[default]
    Polygon,
}

/// A cell's outline: one closed ring of `[longitude, latitude]` positions, counter-clockwise from
/// the south-west corner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    #[serde(rename = "type")]
    pub kind: PolygonType,
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

/// What a cell holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellProperties {
    /// The cell's row and column (`floor(latitude / cell)`, `floor(longitude / cell)`).
    pub row: i64,
    pub column: i64,
    /// The cell's centre, `[longitude, latitude]`.
    pub center: [f64; 2],
    pub records: u64,
    /// The records' summed value; `None` when the report measures none.
    pub value: Option<Money>,
}

/// One non-empty cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    pub geometry: Polygon,
    pub properties: CellProperties,
}

/// The grid as a GeoJSON feature collection, with the report's parameters and totals as foreign
/// members (which GeoJSON readers ignore).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoGrid {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    /// South to north, then west to east.
    pub features: Vec<Feature>,
    /// What was counted: `lead`, `contact` or `company`.
    pub entity: String,
    /// The cell size in degrees.
    pub cell: Decimal,
    /// Records with coordinates, in every cell.
    pub records: u64,
}

/// Folds points into the grid of `cell` degrees (checked by [`check_cell`]).
pub fn grid(entity: &str, cell: Decimal, points: &[Point]) -> GeoGrid {
    let mut cells: BTreeMap<(i64, i64), (u64, Option<Money>)> = BTreeMap::new();
    let mut records = 0;
    for p in points {
        let (Some(row), Some(col)) = (index(p.latitude, cell, 90), index(p.longitude, cell, 180)) else {
            continue;
        };
        let c = cells.entry((row, col)).or_default();
        c.0 += p.records;
        if let Some(v) = p.value {
            c.1 = Some(Money(c.1.map_or(0, |m| m.0) + v.0));
        }
        records += p.records;
    }
    let deg = |d: Decimal| -> f64 { d.to_string().parse().unwrap_or(0.0) };
    let features = cells
        .into_iter()
        .map(|((row, col), (n, value))| {
            let south = (Decimal::from(row) * cell).max(Decimal::from(-90));
            let north = (Decimal::from(row + 1) * cell).min(Decimal::from(90));
            let west = (Decimal::from(col) * cell).max(Decimal::from(-180));
            let east = (Decimal::from(col + 1) * cell).min(Decimal::from(180));
            let (s, n_, w, e) = (deg(south), deg(north), deg(west), deg(east));
            Feature {
                kind: FeatureType::Feature,
                geometry: Polygon {
                    kind: PolygonType::Polygon,
                    coordinates: vec![vec![[w, s], [e, s], [e, n_], [w, n_], [w, s]]],
                },
                properties: CellProperties {
                    row,
                    column: col,
                    center: [deg((west + east) / Decimal::TWO), deg((south + north) / Decimal::TWO)],
                    records: n,
                    value,
                },
            }
        })
        .collect();
    GeoGrid {
        kind: FeatureCollectionType::FeatureCollection,
        features,
        entity: entity.to_owned(),
        cell,
        records,
    }
}

/// The row (or column) of `v` in cells of `cell` degrees, `limit` being 90 or 180; `None` for a
/// value out of range or not finite.
fn index(v: f64, cell: Decimal, limit: i64) -> Option<i64> {
    if !v.is_finite() || v.abs() > limit as f64 {
        return None;
    }
    // The shortest decimal that reads back as `v`: what was stored, not its binary expansion.
    let d: Decimal = v.to_string().parse().ok()?;
    let mut i = rust_decimal::prelude::ToPrimitive::to_i64(&(d.checked_div(cell)?).floor())?;
    if Decimal::from(i) * cell >= Decimal::from(limit) {
        i -= 1;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(lat: f64, lon: f64, n: u64, v: Option<i64>) -> Point {
        Point {
            latitude: lat,
            longitude: lon,
            records: n,
            value: v.map(Money),
        }
    }

    #[test]
    fn points_fall_in_cells_exactly_and_cells_are_geojson_polygons() {
        let cell = check_cell(Decimal::new(1, 1)).unwrap();
        let g = grid(
            "lead",
            cell,
            &[
                pt(0.3, 0.05, 2, Some(100)),
                pt(0.35, 0.0, 1, Some(50)),
                pt(-0.05, -0.05, 1, None),
                pt(90.0, 180.0, 1, None),
                pt(91.0, 0.0, 5, None),
            ],
        );
        let cells: Vec<_> = g
            .features
            .iter()
            .map(|f| {
                (
                    f.properties.row,
                    f.properties.column,
                    f.properties.records,
                    f.properties.value,
                )
            })
            .collect();
        assert_eq!(
            cells,
            [(-1, -1, 1, None), (3, 0, 3, Some(Money(150))), (899, 1799, 1, None)]
        );
        assert_eq!(g.records, 5, "the point off the globe is left out");
        assert_eq!(
            g.features[1].geometry.coordinates[0],
            vec![[0.0, 0.3], [0.1, 0.3], [0.1, 0.4], [0.0, 0.4], [0.0, 0.3]]
        );
        assert_eq!(g.features[1].properties.center, [0.05, 0.35]);
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["type"], "FeatureCollection");
        assert_eq!(json["features"][0]["type"], "Feature");
        assert_eq!(json["features"][0]["geometry"]["type"], "Polygon");
        assert_eq!(json["features"][1]["properties"]["value"], "1.50");
        assert_eq!(json["cell"], "0.1");
        assert_eq!(
            check_cell(Decimal::ZERO).unwrap_err().field_errors()[0].code,
            "too_small"
        );
        assert_eq!(
            check_cell(Decimal::from(91)).unwrap_err().field_errors()[0].code,
            "too_large"
        );
    }
}
