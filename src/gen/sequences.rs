//! `Workload::Sequences`: request sequences over the custom key store state machine, built
//! with proptest-state-machine.
//!
//! The reference state knows our stores by handle (the tag of the transition that created
//! them), with their type, backend, predicted connection state and whether they hold keys, and
//! the names in use and freed by deletes. It predicts by replaying the sequence so far through
//! the reference model (with transitions settled at once). Transition weights depend on that
//! state and on a mode drawn with the initial state, so that typical sequences reach the
//! interesting places: FAILED with every error code, the quota, names in use, names reused
//! after a delete, CONNECTED stores with keys.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{NewTree, Union, ValueTree};
use proptest::test_runner::TestRunner;
use proptest_state_machine::{ReferenceStateMachine, Sequential};
use serde_json::{Value, json};

use super::backends::{self, Backend, Faults, credential, faulty_create, other_than};
use super::replay::Replay;
use super::values::{input_member_shape, name_rest, valid_integer, valid_string};
use super::{GenContext, NAME_REF, STORE_REF, Step};
use crate::model::{ConnectionState, Fixtures, ModelConfig, StoreType};
use crate::spec::Spec;

/// The most transitions a sequence has.
pub const MAX_TRANSITIONS: usize = 20;

const CREATE: &str = "CreateCustomKeyStore";
const DESCRIBE: &str = "DescribeCustomKeyStores";
const CONNECT: &str = "ConnectCustomKeyStore";
const DISCONNECT: &str = "DisconnectCustomKeyStore";
const UPDATE: &str = "UpdateCustomKeyStore";
const DELETE: &str = "DeleteCustomKeyStore";
const CREATE_KEY: &str = "CreateKey";
const STORE_ID: &str = "CustomKeyStoreId";

/// The context [`KmsMachine::init_state`] reads (set by [`strategy`]).
static CONTEXT: RwLock<Option<Arc<GenContext>>> = RwLock::new(None);

/// Sets the context the state machine's `init_state` reads.
pub fn set_context(ctx: Arc<GenContext>) {
    *CONTEXT.write().unwrap_or_else(|e| e.into_inner()) = Some(ctx);
}

/// The context set last, or the built-in fixtures with KMS's default quota.
fn context() -> Arc<GenContext> {
    CONTEXT
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| {
            Arc::new(GenContext {
                fixtures: Fixtures::builtin().into(),
                quota: ModelConfig::default().quota,
                allow_create_key: false,
                name_prefix_len: 0,
            })
        })
}

/// What a sequence leans towards; drawn with the initial state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bit of everything.
    Mixed,
    /// Valid creates on free backends until the quota is reached.
    Fill,
    /// Creates and deletes, reusing freed names.
    Churn,
    /// Backends that fail, at create or at connect.
    Failures,
}

/// One step of the state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A CreateCustomKeyStore; `tag` is the handle later transitions name the store by.
    Create {
        /// The store's handle.
        tag: usize,
        /// The request body.
        body: Value,
    },
    /// Any other request; `store` (a handle) becomes the body's CustomKeyStoreId.
    Call {
        /// Operation name.
        operation: String,
        /// The store the request names, if any.
        store: Option<usize>,
        /// The body without the store ID.
        body: Value,
        /// Wait for the store's transition afterwards.
        settle: bool,
    },
    /// Wait for a store's transition.
    Settle {
        /// The store's handle.
        store: usize,
    },
    /// List everything with this Limit.
    Paginate {
        /// The Limit of every page.
        limit: Option<u32>,
    },
}

impl Transition {
    fn store(&self) -> Option<usize> {
        match self {
            Transition::Call { store, .. } => *store,
            Transition::Settle { store } => Some(*store),
            Transition::Create { .. } | Transition::Paginate { .. } => None,
        }
    }
}

/// A store of ours as the reference state sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreView {
    /// Handle: the tag of the create.
    pub tag: usize,
    /// Name after the run's prefix.
    pub name: String,
    /// Backend (CloudHSM stores: cluster; external stores: proxy and connectivity).
    pub backend: Option<Backend>,
    /// Kind of store.
    pub store_type: StoreType,
    /// Predicted connection state once transitions settle.
    pub state: ConnectionState,
    /// Whether it holds KMS keys.
    pub has_keys: bool,
}

/// What the reference state predicts after the transitions so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The tags of all creates, in order (successful or not).
    pub tags: Vec<usize>,
    /// Our stores that exist, in listing order.
    pub stores: Vec<StoreView>,
    /// Names (after the prefix) of deleted stores that no store holds now.
    pub deleted_names: Vec<String>,
    /// Stores whose last Connect or Disconnect was not waited for.
    pub unsettled: Vec<usize>,
}

/// The reference state of a sequence.
#[derive(Clone)]
pub struct SeqState {
    ctx: Arc<GenContext>,
    mode: Mode,
    applied: Vec<Transition>,
    next_tag: usize,
    view: View,
    derivation: Rc<Derivation>,
}

impl fmt::Debug for SeqState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeqState")
            .field("mode", &self.mode)
            .field("quota", &self.ctx.quota)
            .field("next_tag", &self.next_tag)
            .field("view", &self.view)
            .finish()
    }
}

impl SeqState {
    /// An empty state: no stores yet.
    pub fn new(ctx: Arc<GenContext>, mode: Mode) -> SeqState {
        SeqState {
            derivation: Rc::new(Derivation::new(&ctx)),
            ctx,
            mode,
            applied: Vec::new(),
            next_tag: 0,
            view: View::default(),
        }
    }

    /// The prediction.
    pub fn view(&self) -> &View {
        &self.view
    }

    fn live(&self, tag: usize) -> Option<&StoreView> {
        self.view.stores.iter().find(|s| s.tag == tag)
    }
}

/// The steps of a list of transitions: handles become `$store:N` (N counting creates).
pub fn to_steps(transitions: &[Transition]) -> Vec<Step> {
    let mut ordinal: HashMap<usize, usize> = HashMap::new();
    let mut steps = Vec::new();
    for t in transitions {
        push_steps(t, &mut ordinal, &mut steps);
    }
    steps
}

/// Appends the steps of one transition; `ordinal` maps create tags to their `$store:N`.
fn push_steps(t: &Transition, ordinal: &mut HashMap<usize, usize>, steps: &mut Vec<Step>) {
    // Preconditions keep every handle known; an unknown one names no store.
    let reference = |ordinal: &HashMap<usize, usize>, tag: usize| {
        ordinal.get(&tag).copied().unwrap_or(usize::MAX)
    };
    match t {
        Transition::Create { tag, body } => {
            ordinal.insert(*tag, ordinal.len());
            steps.push(Step::Call {
                operation: CREATE.into(),
                body: body.clone(),
                expect: None,
            });
        }
        Transition::Call {
            operation,
            store,
            body,
            settle,
        } => {
            let mut body = body.clone();
            let n = store.map(|tag| reference(ordinal, tag));
            if let Some(n) = n {
                body[STORE_ID] = json!(format!("{STORE_REF}{n}"));
            }
            steps.push(Step::Call {
                operation: operation.clone(),
                body,
                expect: None,
            });
            if let (Some(n), true) = (n, *settle) {
                steps.push(Step::Settle { store: n });
            }
        }
        Transition::Settle { store } => steps.push(Step::Settle {
            store: reference(ordinal, *store),
        }),
        Transition::Paginate { limit } => steps.push(Step::Paginate { limit: *limit }),
    }
}

/// The name of the store a Delete step names, as the replay stands before the step runs;
/// None for other steps and for an ID no store has.
fn deleted_by(replay: &mut Replay, step: &Step) -> Option<String> {
    let Step::Call {
        operation, body, ..
    } = step
    else {
        return None;
    };
    if operation != DELETE {
        return None;
    }
    let id = replay.resolve(body)[STORE_ID].clone();
    replay
        .stores()
        .into_iter()
        .find(|s| id == s.id.as_str())
        .map(|s| s.name)
}

/// A sequence's transitions replayed through the model so far: extended one transition at a
/// time, so generating a sequence replays each step once.
#[derive(Clone)]
struct Derivation {
    replay: Replay,
    ordinal: HashMap<usize, usize>,
    /// Full names of stores deleted successfully, in order.
    deleted: Vec<String>,
}

impl Derivation {
    fn new(ctx: &GenContext) -> Derivation {
        Derivation {
            replay: Replay::new(ctx, 0),
            ordinal: HashMap::new(),
            deleted: Vec::new(),
        }
    }

    /// Replays one more transition.
    fn push(&mut self, t: &Transition) {
        let mut steps = Vec::new();
        push_steps(t, &mut self.ordinal, &mut steps);
        let replay = &mut self.replay;
        for step in &steps {
            let deleting = deleted_by(replay, step);
            let answers = replay.run(step);
            if let Some(name) = deleting.filter(|_| answers.iter().all(|a| a.outcome.is_ok())) {
                self.deleted.push(name);
            }
        }
    }
}

/// Predicts the view after `applied` by replaying it through the model.
#[cfg(test)]
fn derive(ctx: &GenContext, applied: &[Transition]) -> View {
    let mut d = Derivation::new(ctx);
    for t in applied {
        d.push(t);
    }
    view_of(ctx, &mut d, applied)
}

/// The view after `applied`, which `d` has replayed.
fn view_of(ctx: &GenContext, d: &mut Derivation, applied: &[Transition]) -> View {
    let (replay, deleted) = (&mut d.replay, &d.deleted);
    let tags: Vec<usize> = applied
        .iter()
        .filter_map(|t| match t {
            Transition::Create { tag, .. } => Some(*tag),
            _ => None,
        })
        .collect();
    let by_id: HashMap<String, usize> = replay
        .created()
        .iter()
        .zip(&tags)
        .filter_map(|(id, tag)| id.clone().map(|id| (id, *tag)))
        .collect();
    let prefix = replay.prefix().to_string();
    let rest = |name: &str| name.strip_prefix(&prefix).unwrap_or(name).to_string();
    let with_keys = replay.stores_with_keys();
    let f = &ctx.fixtures;
    let stores: Vec<StoreView> = replay
        .stores()
        .into_iter()
        .filter_map(|s| {
            let tag = *by_id.get(&s.id)?;
            let backend = match (&s.cloudhsm, &s.xks) {
                (Some(h), _) => f
                    .clusters
                    .iter()
                    .position(|c| c.id == h.cluster_id)
                    .map(Backend::Cluster),
                (None, Some(x)) => f
                    .xks_proxies
                    .iter()
                    .position(|p| p.uri_endpoint == x.uri_endpoint)
                    .map(|index| Backend::Proxy {
                        index,
                        vpc: x.is_vpc(),
                    }),
                (None, None) => None,
            };
            Some(StoreView {
                tag,
                name: rest(&s.name),
                backend,
                store_type: s.store_type,
                state: s.state,
                has_keys: with_keys.contains(&s.id),
            })
        })
        .collect();
    let mut deleted_names: Vec<String> = Vec::new();
    for name in deleted.iter().map(|n| rest(n)) {
        if !stores.iter().any(|s| s.name == name) && !deleted_names.contains(&name) {
            deleted_names.push(name);
        }
    }
    let mut unsettled: Vec<usize> = Vec::new();
    for t in applied {
        match t {
            Transition::Call {
                operation,
                store: Some(tag),
                settle,
                ..
            } if operation == CONNECT || operation == DISCONNECT => {
                unsettled.retain(|u| u != tag);
                if !settle {
                    unsettled.push(*tag);
                }
            }
            Transition::Settle { store } => unsettled.retain(|u| u != store),
            _ => {}
        }
    }
    View {
        tags,
        stores,
        deleted_names,
        unsettled,
    }
}

/// The state machine of our stores.
pub struct KmsMachine;

impl ReferenceStateMachine for KmsMachine {
    type State = SeqState;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<SeqState> {
        init_state(context())
    }

    fn transitions(state: &SeqState) -> BoxedStrategy<Transition> {
        transitions(state)
    }

    fn apply(mut state: SeqState, transition: &Transition) -> SeqState {
        if let Transition::Create { tag, .. } = transition {
            state.next_tag = state.next_tag.max(tag + 1);
        }
        state.applied.push(transition.clone());
        // Shared only while a transition is being drawn; by now this state holds the only copy.
        let derivation = Rc::make_mut(&mut state.derivation);
        derivation.push(transition);
        state.view = view_of(&state.ctx, derivation, &state.applied);
        state
    }

    fn preconditions(state: &SeqState, transition: &Transition) -> bool {
        if let Transition::Create { tag, .. } = transition
            && state.view.tags.contains(tag)
        {
            return false;
        }
        if let Transition::Call { operation, .. } = transition
            && operation == CREATE_KEY
            && !state.ctx.allow_create_key
        {
            return false;
        }
        transition
            .store()
            .is_none_or(|tag| state.view.tags.contains(&tag))
    }
}

/// The initial state, with a mode.
fn init_state(ctx: Arc<GenContext>) -> BoxedStrategy<SeqState> {
    prop_oneof![
        4 => Just(Mode::Mixed),
        2 => Just(Mode::Fill),
        2 => Just(Mode::Churn),
        2 => Just(Mode::Failures),
    ]
    .prop_map(move |mode| SeqState::new(ctx.clone(), mode))
    .boxed()
}

fn weighted<T: fmt::Debug + 'static>(options: Vec<(u32, BoxedStrategy<T>)>) -> BoxedStrategy<T> {
    let options: Vec<_> = options.into_iter().filter(|(w, _)| *w > 0).collect();
    Union::new_weighted(options).boxed()
}

fn call(operation: &str, store: Option<usize>, body: Value, settle: bool) -> Transition {
    Transition::Call {
        operation: operation.into(),
        store,
        body,
        settle,
    }
}

/// A handle among all created ones, weighting some stores more.
fn target(state: &SeqState, weight: impl Fn(Option<&StoreView>) -> u32) -> BoxedStrategy<usize> {
    let options: Vec<(u32, BoxedStrategy<usize>)> = state
        .view
        .tags
        .iter()
        .map(|&tag| (weight(state.live(tag)), Just(tag).boxed()))
        .collect();
    weighted(options)
}

fn transitions(state: &SeqState) -> BoxedStrategy<Transition> {
    let v = &state.view;
    let live = v.stores.len();
    let room = live < state.ctx.quota;
    let mode = state.mode;
    let in_state = |s: &[ConnectionState]| v.stores.iter().any(|x| s.contains(&x.state));
    use ConnectionState::*;
    let create_weight = match (mode, room) {
        (Mode::Fill, true) => 60,
        (Mode::Fill, false) => 6,
        (_, true) => 10,
        (_, false) => 3,
    };
    // Only the drawn arm's strategy is built: building every arm for every transition was
    // most of the cost of generating a sequence.
    let mut arms: Vec<(u32, Arm)> = vec![(create_weight, create), (3, describe)];
    if !v.tags.is_empty() {
        let quiet = |w: u32| if mode == Mode::Fill { 1 } else { w };
        let connect_weight = if in_state(&[Disconnected]) {
            quiet(10)
        } else {
            1
        };
        arms.push((connect_weight, connect));
        let disconnect_weight = if in_state(&[Connected, Failed, Connecting]) {
            quiet(6)
        } else {
            1
        };
        arms.push((disconnect_weight, disconnect));
        // A CONNECTED store that could be moved to a related cluster: ask for it often.
        let f = &state.ctx.fixtures;
        let movable_connected = v
            .stores
            .iter()
            .any(|s| s.state == Connected && s.backend.is_some_and(|b| has_relative(f, b)));
        let update_weight = match live {
            0 => 1,
            _ if movable_connected => quiet(12),
            _ => quiet(4),
        };
        arms.push((update_weight, update));
        let delete_weight = match mode {
            _ if live == 0 => 1,
            Mode::Churn => 14,
            Mode::Fill => 1,
            _ => 4,
        };
        arms.push((delete_weight, delete));
        if !v.unsettled.is_empty() {
            arms.push((3, settle));
        }
        if state.ctx.allow_create_key {
            arms.push((if in_state(&[Connected]) { 6 } else { 1 }, create_key));
        }
    }
    LazyUnion {
        state: Rc::new(state.clone()),
        arms: arms.into_iter().filter(|(w, _)| *w > 0).collect(),
    }
    .boxed()
}

/// Builds the strategy of one kind of transition for a state.
type Arm = fn(&SeqState) -> BoxedStrategy<Transition>;

fn settle(state: &SeqState) -> BoxedStrategy<Transition> {
    select(state.view.unsettled.clone())
        .prop_map(|store| Transition::Settle { store })
        .boxed()
}

/// A weighted choice among arms, each built only when drawn. Its trees shrink within the drawn
/// arm (a sequence shrinks by dropping transitions, not by turning one kind into another).
struct LazyUnion {
    state: Rc<SeqState>,
    arms: Vec<(u32, Arm)>,
}

impl fmt::Debug for LazyUnion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let weights: Vec<u32> = self.arms.iter().map(|(w, _)| *w).collect();
        f.debug_struct("LazyUnion")
            .field("weights", &weights)
            .finish()
    }
}

impl Strategy for LazyUnion {
    type Tree = Box<dyn ValueTree<Value = Transition>>;
    type Value = Transition;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let total: u32 = self.arms.iter().map(|(w, _)| w).sum();
        let mut pick = (0..total.max(1)).new_tree(runner)?.current();
        let arm = self
            .arms
            .iter()
            .find(|(w, _)| {
                let here = pick < *w;
                pick = pick.saturating_sub(*w);
                here
            })
            .map_or(describe as Arm, |(_, arm)| *arm);
        arm(&self.state).new_tree(runner)
    }
}

/// A fresh name: one no store of the sequence has or had.
fn fresh_name(state: &SeqState) -> BoxedStrategy<String> {
    let used: Vec<String> = state
        .view
        .stores
        .iter()
        .map(|s| s.name.clone())
        .chain(state.view.deleted_names.iter().cloned())
        .collect();
    name_rest(state.ctx.name_prefix_len)
        .prop_filter("a fresh name", move |n| !used.contains(n))
        .boxed()
}

fn create(state: &SeqState) -> BoxedStrategy<Transition> {
    let ctx = state.ctx.clone();
    let f = &ctx.fixtures;
    let mode = state.mode;
    let v = &state.view;
    let live_names: Vec<String> = v.stores.iter().map(|s| s.name.clone()).collect();
    let mut names = vec![(8, fresh_name(state))];
    if !v.deleted_names.is_empty() {
        let w = if mode == Mode::Churn { 24 } else { 4 };
        names.push((w, select(v.deleted_names.clone()).boxed()));
    }
    if !live_names.is_empty() && mode != Mode::Fill {
        names.push((1, select(live_names).boxed()));
    }
    let used: Vec<Backend> = v
        .stores
        .iter()
        .filter_map(|s| s.backend.map(Backend::physical))
        .collect();
    let mut picks: Vec<(u32, BoxedStrategy<(Backend, Faults)>)> = Vec::new();
    for b in backends::all(f) {
        let weight = match (b.creatable(f), used.contains(&b), b.healthy(f), mode) {
            (true, false, true, Mode::Failures) => 2,
            (true, false, true, _) => 4,
            (true, false, false, Mode::Failures) => 8,
            (true, false, false, _) => 4,
            (_, _, _, Mode::Fill) => 0,
            _ => 1,
        };
        // A cluster with a relative is the one a store can be moved from: often enough that
        // a connected store is asked to move (which it must refuse).
        let weight = if b.creatable(f) && has_relative(f, b) {
            weight * 3
        } else {
            weight
        };
        if weight > 0 {
            let pick = (backends::with_connectivity(f, b), faults(mode, b)).boxed();
            picks.push((weight, pick));
        }
    }
    let tag = state.next_tag;
    let name = weighted(names);
    if picks.is_empty() {
        // No backend to name: the create can only be refused.
        return name
            .prop_map(move |n| Transition::Create {
                tag,
                body: json!({ "CustomKeyStoreName": format!("{NAME_REF}{n}") }),
            })
            .boxed();
    }
    (name, weighted(picks), any::<bool>())
        .prop_flat_map(move |(n, (b, faults), explicit)| {
            faulty_create(
                &ctx.fixtures,
                b,
                &format!("{NAME_REF}{n}"),
                explicit,
                faults,
            )
        })
        .prop_map(move |body| Transition::Create { tag, body })
        .boxed()
}

/// Wrong-but-valid values to create with: rarely, and never in Fill mode (but a wrong
/// password, which only shows at connect).
fn faults(mode: Mode, b: Backend) -> BoxedStrategy<Faults> {
    let p = |x: f64| proptest::bool::weighted(if mode == Mode::Fill { 0.0 } else { x });
    let password = if mode == Mode::Failures { 0.3 } else { 0.12 };
    match b {
        Backend::Cluster(_) => (p(0.06), proptest::bool::weighted(password))
            .prop_map(|(anchor, password)| Faults {
                anchor,
                password,
                ..Faults::default()
            })
            .boxed(),
        Backend::Proxy { .. } => (p(0.06), p(0.06))
            .prop_map(|(credential, path)| Faults {
                credential,
                path,
                ..Faults::default()
            })
            .boxed(),
    }
}

fn describe(state: &SeqState) -> BoxedStrategy<Transition> {
    let v = &state.view;
    let by_name = |n: String| {
        call(
            DESCRIBE,
            None,
            json!({ "CustomKeyStoreName": format!("{NAME_REF}{n}") }),
            false,
        )
    };
    let limit_shape = input_member_shape(DESCRIBE, &[&Spec::kms().paginators[DESCRIBE].limit_key]);
    let small = (1..=v.stores.len() as u32 + 1).boxed();
    let limit = prop_oneof![
        1 => Just(None),
        3 => small.prop_map(Some),
        1 => valid_integer(&limit_shape).prop_map(|l| Some(l as u32)),
    ];
    let mut options = vec![
        (2, Just(call(DESCRIBE, None, json!({}), false)).boxed()),
        (
            2,
            limit
                .prop_map(|limit| Transition::Paginate { limit })
                .boxed(),
        ),
        (
            1,
            name_rest(state.ctx.name_prefix_len)
                .prop_map(by_name)
                .boxed(),
        ),
    ];
    if !v.tags.is_empty() {
        options.push((
            3,
            select(v.tags.clone())
                .prop_map(|t| call(DESCRIBE, Some(t), json!({}), false))
                .boxed(),
        ));
    }
    if !v.stores.is_empty() {
        let names: Vec<String> = v.stores.iter().map(|s| s.name.clone()).collect();
        options.push((2, select(names).prop_map(by_name).boxed()));
    }
    if !v.deleted_names.is_empty() {
        options.push((1, select(v.deleted_names.clone()).prop_map(by_name).boxed()));
    }
    weighted(options)
}

fn settle_flag() -> BoxedStrategy<bool> {
    proptest::bool::weighted(0.85).boxed()
}

fn connect(state: &SeqState) -> BoxedStrategy<Transition> {
    let f = &state.ctx.fixtures;
    let to = target(state, |s| match s.map(|s| (s.state, s.backend)) {
        // Connected, it is the store a cluster change must be refused on.
        Some((ConnectionState::Disconnected, Some(b))) if has_relative(f, b) => 18,
        Some((ConnectionState::Disconnected, _)) => 6,
        _ => 1,
    });
    (to, settle_flag())
        .prop_map(|(t, settle)| call(CONNECT, Some(t), json!({}), settle))
        .boxed()
}

fn disconnect(state: &SeqState) -> BoxedStrategy<Transition> {
    let to = target(state, |s| match s.map(|s| s.state) {
        Some(
            ConnectionState::Connected | ConnectionState::Failed | ConnectionState::Connecting,
        ) => 6,
        _ => 1,
    });
    (to, settle_flag())
        .prop_map(|(t, settle)| call(DISCONNECT, Some(t), json!({}), settle))
        .boxed()
}

fn delete(state: &SeqState) -> BoxedStrategy<Transition> {
    let churn = state.mode == Mode::Churn;
    let to = target(state, |s| match s.map(|s| (s.state, s.has_keys)) {
        Some((ConnectionState::Disconnected, false)) if churn => 12,
        Some((ConnectionState::Disconnected, _)) => 6,
        Some(_) => 2,
        None => 1,
    });
    to.prop_map(|t| call(DELETE, Some(t), json!({}), false))
        .boxed()
}

/// Whether the backend is a cluster with a relative (another cluster of its backup lineage).
fn has_relative(f: &Fixtures, b: Backend) -> bool {
    b.cluster(f).is_some_and(|c| {
        f.clusters
            .iter()
            .any(|o| o.id != c.id && !c.lineage.is_empty() && o.lineage == c.lineage)
    })
}

fn update(state: &SeqState) -> BoxedStrategy<Transition> {
    let f = &state.ctx.fixtures;
    // A CONNECTED store on a cluster with a relative: the cluster change it must refuse.
    let movable = |s: &StoreView| s.backend.is_some_and(|b| has_relative(f, b));
    let to = target(state, |s| match s.map(|s| (s.state, movable(s))) {
        Some((ConnectionState::Connected, true)) => 12,
        Some((ConnectionState::Disconnected, _)) => 4,
        Some(_) => 2,
        None => 1,
    });
    let state = state.clone();
    to.prop_flat_map(move |t| {
        changes(&state, t).prop_map(move |body| call(UPDATE, Some(t), body, false))
    })
    .boxed()
}

/// One change of an update to store `tag`: a rename (fresh, to a name in use, to a freed
/// name), a password, a related or unrelated cluster, a credential, a URI path.
fn changes(state: &SeqState, tag: usize) -> BoxedStrategy<Value> {
    let f = &state.ctx.fixtures;
    let v = &state.view;
    let rename = |n: String| json!({ "NewCustomKeyStoreName": format!("{NAME_REF}{n}") });
    let mut options = vec![(3, fresh_name(state).prop_map(rename).boxed())];
    let others: Vec<String> = v
        .stores
        .iter()
        .filter(|s| s.tag != tag)
        .map(|s| s.name.clone())
        .collect();
    if !others.is_empty() {
        options.push((1, select(others).prop_map(rename).boxed()));
    }
    if !v.deleted_names.is_empty() {
        options.push((1, select(v.deleted_names.clone()).prop_map(rename).boxed()));
    }
    let backend = state.live(tag).and_then(|s| s.backend);
    let shape = |path: &[&str]| input_member_shape(UPDATE, path);
    if let Some(c) = backend.and_then(|b| b.cluster(f)) {
        let password = c.kmsuser_password.clone();
        options.push((1, Just(json!({ "KeyStorePassword": password })).boxed()));
        options.push((
            1,
            other_than(&shape(&["KeyStorePassword"]), &password)
                .prop_map(|p| json!({ "KeyStorePassword": p }))
                .boxed(),
        ));
        let (related, unrelated): (Vec<String>, Vec<String>) = f
            .clusters
            .iter()
            .filter(|o| o.id != c.id)
            .map(|o| (o.id.clone(), o.lineage == c.lineage))
            .fold((Vec::new(), Vec::new()), |(mut r, mut u), (id, same)| {
                if same {
                    r.push(id)
                } else {
                    u.push(id)
                }
                (r, u)
            });
        // A cluster change is refused on a CONNECTED store: draw it there often, so a run
        // sees that refusal (and an endpoint that allows it) reliably.
        let connected = state.live(tag).map(|s| s.state) == Some(ConnectionState::Connected);
        let related_weight = if connected { 8 } else { 2 };
        for (weight, ids) in [(related_weight, related), (1, unrelated)] {
            if !ids.is_empty() {
                options.push((
                    weight,
                    select(ids)
                        .prop_map(|id| json!({ "CloudHsmClusterId": id }))
                        .boxed(),
                ));
            }
        }
    }
    if let Some(p) = backend.and_then(|b| b.proxy(f)) {
        let own = p.secret_access_key.clone();
        let proxy = p.clone();
        options.push((
            1,
            Just(json!({ "XksProxyAuthenticationCredential": credential(p, &own) })).boxed(),
        ));
        options.push((
            1,
            other_than(
                &shape(&["XksProxyAuthenticationCredential", "RawSecretAccessKey"]),
                &own,
            )
            .prop_map(
                move |s| json!({ "XksProxyAuthenticationCredential": credential(&proxy, &s) }),
            )
            .boxed(),
        ));
        options.push((1, Just(json!({ "XksProxyUriPath": p.uri_path })).boxed()));
        options.push((
            1,
            other_than(&shape(&["XksProxyUriPath"]), &p.uri_path)
                .prop_map(|path| json!({ "XksProxyUriPath": path }))
                .boxed(),
        ));
    }
    weighted(options)
}

fn create_key(state: &SeqState) -> BoxedStrategy<Transition> {
    let to = target(state, |s| match s.map(|s| s.state) {
        Some(ConnectionState::Connected) => 8,
        _ => 1,
    });
    let state = state.clone();
    to.prop_flat_map(move |t| {
        let f = &state.ctx.fixtures;
        let view = state.live(t);
        let body: BoxedStrategy<Value> = match view.and_then(|s| s.backend) {
            Some(b @ Backend::Proxy { .. }) => {
                let p = b.proxy(f).expect("a fixture proxy");
                let known: Vec<String> = p.keys.iter().chain(&p.unusable_keys).cloned().collect();
                let key = if known.is_empty() {
                    valid_string("XksKeyIdType")
                } else {
                    prop_oneof![4 => select(known), 1 => valid_string("XksKeyIdType")].boxed()
                };
                key.prop_map(
                    |k| json!({ "Origin": StoreType::ExternalKeyStore.as_str(), "XksKeyId": k }),
                )
                .boxed()
            }
            _ => Just(json!({ "Origin": StoreType::AwsCloudhsm.as_str() })).boxed(),
        };
        body.prop_map(move |b| call(CREATE_KEY, Some(t), b, false))
    })
    .boxed()
}

/// A sequence strategy's value trees see whole cases: every transition of a case runs, so
/// shrinking starts by deleting transitions one by one (proptest-state-machine would else
/// drop all transitions it did not see a `StateMachineTest` run).
struct WholeCases<S>(S);

impl<S: fmt::Debug> fmt::Debug for WholeCases<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<S, T> Strategy for WholeCases<S>
where
    S: Strategy<Value = (SeqState, Vec<Transition>, Option<Arc<AtomicUsize>>), Tree = T>,
    T: ValueTree<Value = S::Value>,
{
    type Tree = WholeCaseTree<T>;
    type Value = Vec<Transition>;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        Ok(WholeCaseTree(self.0.new_tree(runner)?))
    }
}

/// The value tree of [`WholeCases`].
struct WholeCaseTree<T>(T);

impl<T> ValueTree for WholeCaseTree<T>
where
    T: ValueTree<Value = (SeqState, Vec<Transition>, Option<Arc<AtomicUsize>>)>,
{
    type Value = Vec<Transition>;

    fn current(&self) -> Vec<Transition> {
        self.0.current().1
    }

    fn simplify(&mut self) -> bool {
        let (_, transitions, seen) = self.0.current();
        if let Some(seen) = seen {
            seen.store(transitions.len(), Ordering::SeqCst);
        }
        self.0.simplify()
    }

    fn complicate(&mut self) -> bool {
        self.0.complicate()
    }
}

/// The transitions of 1 to [`MAX_TRANSITIONS`] steps over the state machine, in context `ctx`.
pub fn transitions_strategy(ctx: &GenContext) -> BoxedStrategy<Vec<Transition>> {
    let ctx = Arc::new(ctx.clone());
    set_context(ctx.clone());
    // `KmsMachine::sequential_strategy` with the context captured rather than read from the
    // global when a tree is made (cases of different contexts may be drawn at once).
    let sequential = Sequential::new(
        (1..=MAX_TRANSITIONS).into(),
        move || init_state(ctx.clone()),
        KmsMachine::preconditions,
        KmsMachine::transitions,
        KmsMachine::apply,
    );
    WholeCases(sequential).boxed()
}

/// The `Workload::Sequences` strategy.
pub fn strategy(ctx: &GenContext) -> BoxedStrategy<Vec<Step>> {
    transitions_strategy(ctx)
        .prop_map(|transitions| to_steps(&transitions))
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn ctx() -> GenContext {
        GenContext {
            fixtures: Fixtures::builtin().into(),
            quota: 10,
            allow_create_key: true,
            name_prefix_len: 18,
        }
    }

    #[test]
    fn the_incremental_view_is_the_view_of_a_full_replay() {
        let ctx = Arc::new(ctx());
        let strategy = transitions_strategy(&ctx);
        let mut runner = TestRunner::deterministic();
        for _ in 0..100 {
            let transitions = strategy.new_tree(&mut runner).unwrap().current();
            let mut state = SeqState::new(ctx.clone(), Mode::Mixed);
            for (n, t) in transitions.iter().enumerate() {
                state = KmsMachine::apply(state, t);
                assert_eq!(
                    state.view,
                    derive(&ctx, &transitions[..=n]),
                    "after {} transitions of {transitions:?}",
                    n + 1
                );
            }
        }
    }

    /// The connection error codes the fixtures can produce: each creatable backend created
    /// with its own values (and each healthy cluster with another password) and connected.
    fn producible_codes(ctx: &GenContext) -> BTreeSet<String> {
        let f = &ctx.fixtures;
        let mut runner = TestRunner::deterministic();
        let mut codes = BTreeSet::new();
        for b in backends::creatable(f) {
            let mut variants = vec![(b, Faults::default())];
            if let Backend::Proxy { index, .. } = b
                && backends::vpc_capable(f, index)
            {
                variants.push((Backend::Proxy { index, vpc: true }, Faults::default()));
            }
            if b.cluster(f).is_some() {
                variants.push((
                    b,
                    Faults {
                        password: true,
                        ..Faults::default()
                    },
                ));
            }
            for (b, faults) in variants {
                let body = faulty_create(f, b, "$name:x", true, faults)
                    .new_tree(&mut runner)
                    .unwrap()
                    .current();
                let mut replay = Replay::new(ctx, 0);
                let steps = [
                    Step::Call {
                        operation: CREATE.into(),
                        body,
                        expect: None,
                    },
                    Step::Call {
                        operation: CONNECT.into(),
                        body: json!({ STORE_ID: "$store:0" }),
                        expect: None,
                    },
                    Step::Settle { store: 0 },
                ];
                for s in &steps {
                    replay.run(s);
                }
                codes.extend(replay.stores().into_iter().filter_map(|s| s.error_code));
            }
        }
        codes
    }

    /// What a set of sequences reached, replayed through the model.
    #[derive(Debug, Default)]
    struct Coverage {
        sequences: usize,
        connected: usize,
        failed: BTreeMap<String, usize>,
        limit_exceeded: usize,
        name_in_use: usize,
        name_reused: usize,
        keys: usize,
        deleted_with_keys_refused: usize,
        /// Sequences in which an operation got an answer (`Operation:Error` or `Operation:ok`).
        outcomes: BTreeMap<String, usize>,
    }

    impl Coverage {
        fn add(&mut self, ctx: &GenContext, steps: &[Step]) {
            self.sequences += 1;
            let mut replay = Replay::new(ctx, 0);
            let mut deleted: BTreeSet<String> = BTreeSet::new();
            let (mut connected, mut limit, mut in_use, mut reused, mut keys, mut has_cmks) =
                (false, false, false, false, false, false);
            let mut failed = BTreeSet::new();
            let mut outcomes = BTreeSet::new();
            for step in steps {
                let deleting = deleted_by(&mut replay, step);
                for a in replay.run(step) {
                    outcomes.insert(format!("{}:{}", a.operation, a.error().unwrap_or("ok")));
                    match (a.operation.as_str(), a.error()) {
                        (CREATE, Some("LimitExceededException")) => limit = true,
                        (_, Some("CustomKeyStoreNameInUseException")) => in_use = true,
                        (DELETE, Some("CustomKeyStoreHasCMKsException")) => has_cmks = true,
                        (CREATE, None) => {
                            reused |=
                                deleted.contains(a.body["CustomKeyStoreName"].as_str().unwrap());
                        }
                        (CREATE_KEY, None) => keys = true,
                        (DELETE, None) => deleted.extend(deleting.clone()),
                        _ => {}
                    }
                }
                for s in replay.stores() {
                    connected |= s.state == ConnectionState::Connected;
                    failed.extend(s.error_code);
                }
            }
            self.connected += usize::from(connected);
            self.limit_exceeded += usize::from(limit);
            self.name_in_use += usize::from(in_use);
            self.name_reused += usize::from(reused);
            self.keys += usize::from(keys);
            self.deleted_with_keys_refused += usize::from(has_cmks);
            for code in failed {
                *self.failed.entry(code).or_default() += 1;
            }
            for o in outcomes {
                *self.outcomes.entry(o).or_default() += 1;
            }
        }
    }

    fn sample(s: &BoxedStrategy<Vec<Step>>, runner: &mut TestRunner) -> Vec<Step> {
        s.new_tree(runner).unwrap().current()
    }

    /// Catches: sequences that seldom move a CONNECTED CloudHSM store to a related cluster, so
    /// a default run (256 cases) may miss an endpoint that allows it (the
    /// `cluster-change-while-connected` fault); the refusal must come up in 1 sequence in 25.
    #[test]
    fn connected_cloudhsm_stores_are_often_moved_to_a_related_cluster() {
        let ctx = ctx();
        let f = ctx.fixtures.clone();
        let s = strategy(&ctx);
        let mut runner = TestRunner::deterministic();
        let n = 300;
        let mut hits = 0;
        for _ in 0..n {
            let steps = sample(&s, &mut runner);
            let mut replay = Replay::new(&ctx, 0);
            let mut hit = false;
            for step in &steps {
                if let Step::Call {
                    operation, body, ..
                } = step
                    && operation == UPDATE
                    && let Some(new) = body["CloudHsmClusterId"].as_str()
                {
                    let id = replay.resolve(body)[STORE_ID].as_str().unwrap().to_string();
                    let lineage = |id: &str| f.cluster(id).map(|c| c.lineage.clone());
                    hit |= replay.stores().iter().any(|st| {
                        st.id == id
                            && st.state == ConnectionState::Connected
                            && st.cloudhsm.as_ref().is_some_and(|h| {
                                h.cluster_id != new && lineage(&h.cluster_id) == lineage(new)
                            })
                    });
                }
                replay.run(step);
            }
            hits += usize::from(hit);
        }
        assert!(hits * 25 >= n, "{hits} of {n} sequences");
    }

    #[test]
    fn sequences_reach_every_interesting_state() {
        let ctx = ctx();
        let expected = producible_codes(&ctx);
        // The built-in fixtures produce CloudHSM and external failures alike.
        for code in [
            "CLUSTER_NOT_FOUND",
            "INSUFFICIENT_CLOUDHSM_HSMS",
            "INVALID_CREDENTIALS",
            "XKS_PROXY_NOT_REACHABLE",
        ] {
            assert!(expected.contains(code), "{code}: {expected:?}");
        }
        let s = strategy(&ctx);
        let mut runner = TestRunner::deterministic();
        let mut cov = Coverage::default();
        for _ in 0..300 {
            cov.add(&ctx, &sample(&s, &mut runner));
        }
        eprintln!("sequence coverage over 300 sequences: {cov:#?}");
        assert!(cov.connected > 0, "{cov:#?}");
        for code in &expected {
            assert!(
                cov.failed.contains_key(code),
                "FAILED/{code} never reached: {cov:#?}"
            );
        }
        assert!(cov.limit_exceeded > 0, "{cov:#?}");
        assert!(cov.name_in_use > 0, "{cov:#?}");
        assert!(cov.name_reused > 0, "{cov:#?}");
        assert!(cov.keys > 0, "{cov:#?}");
        // Creates refused at create time, and updates and deletes of every kind.
        for o in [
            "CreateCustomKeyStore:CloudHsmClusterInUseException",
            "CreateCustomKeyStore:IncorrectTrustAnchorException",
            "CreateCustomKeyStore:CloudHsmClusterNotActiveException",
            "CreateCustomKeyStore:CloudHsmClusterNotFoundException",
            "CreateCustomKeyStore:CloudHsmClusterInvalidConfigurationException",
            "CreateCustomKeyStore:XksProxyUriUnreachableException",
            "CreateCustomKeyStore:XksProxyInvalidResponseException",
            "CreateCustomKeyStore:XksProxyUriInUseException",
            "CreateCustomKeyStore:XksProxyIncorrectAuthenticationCredentialException",
            "CreateCustomKeyStore:XksProxyInvalidConfigurationException",
            "UpdateCustomKeyStore:ok",
            "UpdateCustomKeyStore:CustomKeyStoreNameInUseException",
            "UpdateCustomKeyStore:CloudHsmClusterNotRelatedException",
            "UpdateCustomKeyStore:CustomKeyStoreInvalidStateException",
            "DeleteCustomKeyStore:ok",
            "DeleteCustomKeyStore:CustomKeyStoreInvalidStateException",
            "ConnectCustomKeyStore:CustomKeyStoreInvalidStateException",
            "DisconnectCustomKeyStore:ok",
            "DescribeCustomKeyStores:CustomKeyStoreNotFoundException",
            "CreateKey:ok",
            "CreateKey:CustomKeyStoreInvalidStateException",
        ] {
            assert!(cov.outcomes.contains_key(o), "{o} never reached: {cov:#?}");
        }
    }

    #[test]
    fn sequences_stay_within_bounds_and_reference_only_created_stores() {
        let ctx = ctx();
        let s = strategy(&ctx);
        let mut runner = TestRunner::deterministic();
        let prefix = "x".repeat(ctx.name_prefix_len);
        let max = Spec::kms().shape("CustomKeyStoreNameType").max.unwrap() as usize;
        for _ in 0..200 {
            let steps = sample(&s, &mut runner);
            assert!(!steps.is_empty());
            let mut creates = 0;
            for step in &steps {
                match step {
                    Step::Call {
                        operation, body, ..
                    } => {
                        if let Some(r) = body[STORE_ID].as_str() {
                            let n: usize = r.strip_prefix(STORE_REF).unwrap().parse().unwrap();
                            assert!(n < creates, "{r} before its create: {steps:?}");
                        }
                        for m in ["CustomKeyStoreName", "NewCustomKeyStoreName"] {
                            if let Some(n) = body[m].as_str() {
                                let rest = n.strip_prefix(NAME_REF).expect("a $name: reference");
                                assert!((prefix.clone() + rest).chars().count() <= max);
                            }
                        }
                        if operation == CREATE {
                            creates += 1;
                        }
                    }
                    Step::Settle { store } => assert!(*store < creates),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn without_create_key_no_key_is_created() {
        let mut ctx = ctx();
        ctx.allow_create_key = false;
        let s = strategy(&ctx);
        let mut runner = TestRunner::deterministic();
        for _ in 0..100 {
            let steps = sample(&s, &mut runner);
            assert!(
                steps
                    .iter()
                    .all(|s| !matches!(s, Step::Call { operation, .. } if operation == CREATE_KEY))
            );
        }
    }

    #[test]
    fn shrinking_removes_transitions_one_at_a_time_and_keeps_references_valid() {
        let ctx = ctx();
        let s = transitions_strategy(&ctx);
        let mut runner = TestRunner::deterministic();
        let mut tree = loop {
            let t = s.new_tree(&mut runner).unwrap();
            if t.current().len() >= 10 {
                break t;
            }
        };
        let start = tree.current().len();
        assert!(tree.simplify());
        assert_eq!(
            tree.current().len(),
            start - 1,
            "the first shrink deletes one transition"
        );
        // A test that always fails shrinks the sequence away, one acceptable step at a time.
        let mut lengths = vec![tree.current().len()];
        for _ in 0..10_000 {
            if !tree.simplify() {
                break;
            }
            let current = tree.current();
            let known: BTreeSet<usize> = current
                .iter()
                .filter_map(|t| match t {
                    Transition::Create { tag, .. } => Some(*tag),
                    _ => None,
                })
                .collect();
            for t in &current {
                if let Some(tag) = t.store() {
                    assert!(known.contains(&tag), "{current:?}");
                }
            }
            lengths.push(current.len());
        }
        assert!(lengths.windows(2).all(|w| w[1] <= w[0]));
        assert!(*lengths.last().unwrap() < 3, "{lengths:?}");
    }

    #[test]
    fn the_trait_reads_the_context_set_last() {
        set_context(Arc::new(ctx()));
        let mut runner = TestRunner::deterministic();
        let state = KmsMachine::init_state()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        assert_eq!(state.ctx.quota, 10);
        assert!(state.view().stores.is_empty());
    }
}
