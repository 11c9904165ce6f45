//! Workflows as declarations: the states of an entity's status field, the transitions between them
//! (each bound to an access [`Action`], so roles grant "approve" or "complete" like any other action),
//! the guards that may refuse a transition with a typed reason, what the core stamps on the record, and
//! the event each transition raises. One use case, `Service::transition`, runs every workflow; the
//! status field is read-only everywhere else.

use crate::access::Action;
use crate::entity::WriteCtx;
use crate::error::FieldError;
use crate::record::Record;
use crate::value::{Id, Timestamp, Value};

/// The state machine of one entity type.
#[derive(Debug)]
pub struct Workflow {
    /// The status field the workflow owns (declared read-only; its default is the initial state).
    pub field: &'static str,
    pub transitions: &'static [Transition],
    /// States in which the generic update refuses every change (a sent quote is immutable).
    pub locked: &'static [&'static str],
    /// An edit of a record in one of these states moves it back to the given state (an approved
    /// document re-enters approval when it changes).
    pub reenter_on_edit: Option<(&'static [&'static str], &'static str)>,
    /// Fields the core sets when a record is created (a quote's number).
    pub create_stamps: &'static [(&'static str, Stamp)],
}

/// One named transition.
#[derive(Debug)]
pub struct Transition {
    /// What clients ask for: `publish`, `submit`, `approve`, `complete`.
    pub name: &'static str,
    /// The access action a role must grant on the entity type (with a scope reaching the record).
    pub action: Action,
    /// States it may start from.
    pub from: &'static [&'static str],
    /// The state it moves the record to; `None`: the record stays where it is (a duplicate is made
    /// of it); see also [`Transition::decide`].
    pub to: Option<&'static str>,
    /// The event kind raised in the same change set.
    pub event: &'static str,
    /// Fields the core sets on the transition (who and when), never taken from the client.
    pub stamps: &'static [(&'static str, Stamp)],
    /// Entering `to` moves every other record of the tenant in `to` into this state (one published
    /// scoring model at a time).
    pub displaces_to: Option<&'static str>,
    /// Writable fields the transition's input may set (a rejection's reason).
    pub accepts: &'static [&'static str],
    pub guard: Option<Guard>,
    /// Chooses the target state (and fields to record with it) by rules, after the guard: a quote's
    /// submission is approved at once when no approval rule applies, else waits for the level the
    /// rule names.
    pub decide: Option<Decide>,
    /// The transition makes a copy of the record and its children (a revision, a duplicate), in the
    /// same change set; the copy is what the use case returns.
    pub spawn: Option<Spawn>,
    /// What the service does after the transition's change set is applied.
    pub then: Option<Effect>,
}

impl Transition {
    /// A transition with nothing but its name, action, states and event; the rest is added with
    /// struct update syntax (`..Transition::new(..)`).
    pub const fn new(
        name: &'static str,
        action: Action,
        from: &'static [&'static str],
        to: Option<&'static str>,
        event: &'static str,
    ) -> Self {
        Transition {
            name,
            action,
            from,
            to,
            event,
            stamps: &[],
            displaces_to: None,
            accepts: &[],
            guard: None,
            decide: None,
            spawn: None,
            then: None,
        }
    }
}

/// How a spawning transition numbers and links the copy. The copy starts as the original with new
/// ids; every field a client cannot write (state, stamps, derived values) goes back to its default
/// unless kept, and the parent recomputes what it derives.
#[derive(Debug)]
pub struct Spawn {
    /// Non-writable fields the copy keeps (a revision keeps the quote number).
    pub keep: &'static [&'static str],
    /// Fields the core stamps on the copy ([`Stamp::Increment`] counts from the original's value).
    pub stamps: &'static [(&'static str, Stamp)],
    /// A field of the copy that points at the original (`supersedes_id`).
    pub link: Option<&'static str>,
}

/// Where a [`Decide`] sends the record, and what it records on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub to: &'static str,
    pub set: Vec<(&'static str, Value)>,
}

/// Chooses a transition's target state by rules; may refuse like a guard.
pub type Decide = fn(&GuardCtx<'_>) -> Result<Decision, Refusal>;

/// Work that follows a transition in change sets of its own (too large for one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Re-score every scored record of the tenant (a scoring model was published).
    RescoreAll,
}

/// A value the core stamps on a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// The service clock's time.
    Now,
    /// The acting user's id.
    Actor,
    /// One more than the largest value of this field in the tenant (model versions, quote numbers).
    NextSequence,
    /// One more than the original's value (a spawned copy's revision).
    Increment,
}

/// What a guard sees: the record as it would be after the transition (input applied, state and stamps
/// not yet set), the record before, who acts, and the tenant data the entity's rules need.
#[allow(missing_debug_implementations)]
pub struct GuardCtx<'a> {
    pub record: &'a Record,
    pub before: &'a Record,
    pub actor: Option<Id>,
    /// The acting role's name (approval levels name roles).
    pub role: &'a str,
    pub now: Timestamp,
    pub ctx: &'a WriteCtx,
}

/// A guard: a pure core function that lets a transition through or refuses it with a reason.
pub type Guard = fn(&GuardCtx<'_>) -> Result<(), Refusal>;

/// Why a guard refused a transition: the field it concerns, a stable code and a message. It reaches
/// clients as a validation error on that field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub FieldError);

impl Refusal {
    pub fn new(path: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Refusal(FieldError::new(path, code, message))
    }
}

impl Workflow {
    /// The transition of this name.
    pub fn transition(&self, name: &str) -> Option<&'static Transition> {
        self.transitions.iter().find(|t| t.name == name)
    }

    /// The names of every transition, for error messages and API documents.
    pub fn names(&self) -> Vec<&'static str> {
        self.transitions.iter().map(|t| t.name).collect()
    }

    /// The transitions that may start from `state`.
    pub fn available<'a>(&'a self, state: &'a str) -> impl Iterator<Item = &'static Transition> + 'a {
        self.transitions.iter().filter(move |t| t.from.contains(&state))
    }
}
