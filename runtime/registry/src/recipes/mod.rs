//! Coordination recipes laid out exactly as Curator's, so Java ElasticJob instances and
//! ours take part in the same latches.

pub mod election;
pub mod latch;
