//! Scenarios: the fixed corpus of named request scripts (`specs/scenarios/`) whose normalised
//! transcripts are held as insta snapshots (`snapshots/`): loading, playing, normalising,
//! and reading and writing snapshot files. Judging a transcript against its snapshot is the
//! snapshot oracle's job.

pub mod corpus;
pub mod normalise;
pub mod placeholders;
pub mod replay;
pub mod roles;
pub mod script;
pub mod snapfile;
pub mod transcript;

pub use corpus::{Inference, Scenario, builtin};
pub use normalise::Normaliser;
pub use replay::{Played, play};
pub use snapfile::Snapshots;
pub use transcript::Transcript;
