//! The container lifecycle: Docker's seven states and one table of the
//! transitions between them.
//!
//! Every state change goes through [`Transition::apply`]; callers never match on
//! states to decide what is allowed. The table ([`Transition::from_states`]):
//!
//! | transition | from                                        | to         |
//! |------------|---------------------------------------------|------------|
//! | `Start`    | created, exited, restarting                 | running    |
//! | `Pause`    | running                                     | paused     |
//! | `Unpause`  | paused                                      | running    |
//! | `Exit`     | running, paused, restarting                 | exited     |
//! | `Restart`  | running, exited                             | restarting |
//! | `Remove`   | every state (removing again: a retried `rm`) | removing   |
//! | `Die`      | created, running, paused, restarting, removing | dead     |
//!
//! `Exit` from paused is a paused container killed (`kill`, `rm -f`, the host
//! freezer thawed by `stop`); from restarting it is `stop` cancelling a pending
//! restart. `Restart` from running is `docker restart`, from exited a restart
//! policy acting on an exit. `Die` records a container whose monitor was lost or
//! whose removal failed part-way: it can only be removed.

use std::fmt;
use std::str::FromStr;

/// A container's state, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Removing,
    Dead,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Created,
        State::Running,
        State::Paused,
        State::Restarting,
        State::Exited,
        State::Removing,
        State::Dead,
    ];

    /// Docker's name (`docker inspect`'s `State.Status`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Removing => "removing",
            State::Dead => "dead",
        }
    }

    /// Whether the container has (or is about to have) a process: the states
    /// `ps` without `-a` lists and plain `rm` refuses.
    pub fn is_active(self) -> bool {
        matches!(self, State::Running | State::Paused | State::Restarting)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown container state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<State, UnknownState> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The container's process started (first start, start again, or a restart
    /// policy's start).
    Start,
    Pause,
    Unpause,
    /// The container's process ended (or was found gone).
    Exit,
    /// A restart began: `restart`, or a restart policy after an exit.
    Restart,
    /// Removal began.
    Remove,
    /// The container cannot be run again: its monitor was lost, or removal failed.
    Die,
}

impl Transition {
    pub const ALL: [Transition; 7] = [
        Transition::Start,
        Transition::Pause,
        Transition::Unpause,
        Transition::Exit,
        Transition::Restart,
        Transition::Remove,
        Transition::Die,
    ];

    /// The state the transition leads to.
    pub fn to(self) -> State {
        match self {
            Transition::Start | Transition::Unpause => State::Running,
            Transition::Pause => State::Paused,
            Transition::Exit => State::Exited,
            Transition::Restart => State::Restarting,
            Transition::Remove => State::Removing,
            Transition::Die => State::Dead,
        }
    }

    /// The states the transition may leave (the table in the module docs).
    pub fn from_states(self) -> &'static [State] {
        use State::*;
        match self {
            Transition::Start => &[Created, Exited, Restarting],
            Transition::Pause => &[Running],
            Transition::Unpause => &[Paused],
            Transition::Exit => &[Running, Paused, Restarting],
            Transition::Restart => &[Running, Exited],
            Transition::Remove => &State::ALL,
            Transition::Die => &[Created, Running, Paused, Restarting, Removing],
        }
    }

    /// The verb in "cannot `verb` container X: it is `state`".
    pub fn verb(self) -> &'static str {
        match self {
            Transition::Start => "start",
            Transition::Pause => "pause",
            Transition::Unpause => "unpause",
            Transition::Exit => "record the exit of",
            Transition::Restart => "restart",
            Transition::Remove => "remove",
            Transition::Die => "mark dead",
        }
    }

    /// Whether the transition may leave `from`.
    pub fn allowed_from(self, from: State) -> bool {
        self.from_states().contains(&from)
    }

    /// The new state, or `None` when the table has no such transition.
    pub fn apply(self, from: State) -> Option<State> {
        self.allowed_from(from).then(|| self.to())
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::Transition::*;
    use super::*;

    /// The whole table, written out independently of `from_states`: every
    /// (transition, from) pair and its expected outcome.
    fn expected(t: Transition, from: State) -> Option<State> {
        match (t, from) {
            (Start, Created | Exited | Restarting) => Some(Running),
            (Pause, Running) => Some(Paused),
            (Unpause, Paused) => Some(Running),
            (Exit, Running | Paused | Restarting) => Some(Exited),
            (Restart, Running | Exited) => Some(Restarting),
            (Remove, _) => Some(Removing),
            (Die, Created | Running | Paused | Restarting | Removing) => Some(Dead),
            _ => None,
        }
    }

    #[test]
    fn table_is_exactly_as_documented() {
        let mut allowed = 0;
        for t in Transition::ALL {
            for from in State::ALL {
                assert_eq!(t.apply(from), expected(t, from), "{t:?} from {from:?}");
                assert_eq!(t.allowed_from(from), expected(t, from).is_some());
                allowed += usize::from(expected(t, from).is_some());
            }
        }
        // 3 + 1 + 1 + 3 + 2 + 7 + 5
        assert_eq!(allowed, 22);
    }

    #[test]
    fn dead_and_removing_only_move_towards_removal() {
        for t in Transition::ALL {
            for from in [Dead, Removing] {
                if let Some(to) = t.apply(from) {
                    assert!(
                        matches!(to, Removing | Dead),
                        "{t:?} from {from:?} -> {to:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_state_is_reachable_and_removable() {
        for st in State::ALL {
            assert!(Remove.allowed_from(st));
            if st != Created {
                assert!(Transition::ALL.iter().any(|t| t.to() == st));
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for st in State::ALL {
            assert_eq!(st.as_str().parse::<State>(), Ok(st));
            assert_eq!(st.to_string(), st.as_str());
        }
        assert_eq!("up".parse::<State>(), Err(UnknownState("up".to_string())));
    }

    #[test]
    fn active_states() {
        let active: Vec<State> = State::ALL.into_iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, vec![Running, Paused, Restarting]);
    }
}
