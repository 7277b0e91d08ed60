//! The ElasticJob registry protocol, step by step as spec §4 describes it. Each function
//! is one protocol step on a [`capstan_registry::Registry`]; the runtime composes them.

pub mod election;
pub mod nodes;
pub mod sharding;
pub mod storage;
