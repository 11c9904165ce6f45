//! Reports: pure folds over records (and, as the analytics engine lands, over store aggregates),
//! each with a typed result. The service reads what the actor may read and hands it in.

pub mod conversion;
pub mod memberships;
