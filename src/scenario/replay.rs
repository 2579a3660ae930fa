//! Plays one scenario against an endpoint: runs its steps in a session, removes what it
//! created, and returns the transcript, raw and normalised.

use std::sync::Arc;

use super::corpus::Scenario;
use super::normalise::Normaliser;
use super::placeholders::placeholders;
use super::script::script;
use super::transcript::{Transcript, transcript};
use crate::generate::Step;
use crate::history::History;
use crate::runner::session::{Endpoint, Session};

/// What playing a scenario gave.
#[derive(Debug, Clone)]
pub struct Played {
    /// The steps sent (roles resolved, repetitions unrolled).
    pub steps: Vec<Step>,
    /// Every exchange (secrets masked).
    pub history: History,
    /// The transcript before normalisation.
    pub transcript: Transcript,
    /// The normaliser for this transcript.
    pub normaliser: Normaliser,
    /// The normalised text, as a snapshot holds it.
    pub text: String,
    /// Stores the clean-up could not remove, with the reason.
    pub leftovers: Vec<(String, String)>,
}

/// Plays `scenario` on `endpoint`, naming stores with `prefix`; Err when the endpoint's
/// fixtures cannot run it (a role no backend plays). Nothing is sent then.
pub async fn play(
    scenario: &Scenario,
    endpoint: Arc<Endpoint>,
    prefix: &str,
    sequence: u64,
) -> Result<Played, String> {
    let script = script(scenario, &endpoint.fixtures)?;
    let mut session = Session::new(endpoint.clone(), prefix, sequence);
    session.run(&script.steps).await;
    let leftovers = session.cleanup().await;
    let history = session.into_history();
    played(scenario, &endpoint.fixtures, prefix, history, leftovers)
}

/// What playing `scenario` with these backends and name `prefix` gave, from the `history` it
/// recorded: the transcript is made again from the exchanges (nothing is sent).
pub fn played(
    scenario: &Scenario,
    fixtures: &crate::model::Fixtures,
    prefix: &str,
    history: History,
    leftovers: Vec<(String, String)>,
) -> Result<Played, String> {
    let script = script(scenario, fixtures)?;
    let transcript = transcript(&script.steps, &script.pinned, &history);
    let normaliser = Normaliser::new(
        prefix,
        placeholders(fixtures, &script, &transcript),
        &transcript,
    );
    let text = normaliser.render(&transcript, &scenario.purpose);
    Ok(Played {
        steps: script.steps,
        history,
        transcript,
        normaliser,
        text,
        leftovers,
    })
}
