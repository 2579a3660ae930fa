//! Rule coverage: the inventory of every rule the spec and the model state, each with a
//! stable id, and the tally of which rules a run exercised and how they came out.

pub mod ids;
pub mod inventory;
pub mod tally;
