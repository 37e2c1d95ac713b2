//! The protocol facts the engine and the edge must agree on, in one place: every event type
//! the engine emits (its stored v2 name, its v1 name, its stream tier, whether it ends a
//! run) and the run statuses (which are terminal). Plain Rust with no dependencies, so the
//! edge compiles this same file (`#[path]`) without linking the extension; SQL reads the
//! same facts through `openwop._terminal_statuses()` and `openwop._event_name(...)`.

/// The stream tier an event belongs to: `updates` (the default stream), `debug` (everything)
/// or `messages` (token streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Updates,
    Debug,
    Messages,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Updates => "updates",
            Tier::Debug => "debug",
            Tier::Messages => "messages",
        }
    }
}

macro_rules! event_types {
    ($( $variant:ident => $v2:literal, v1 $v1:literal, $tier:ident, terminal $terminal:literal; )*) => {
        /// Every event type the engine emits. Stored under the v2 name (event-log era 3).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $( $variant, )* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant, )* ];

            /// The stored (v2) name.
            pub fn name(self) -> &'static str {
                match self { $( EventType::$variant => $v2, )* }
            }

            /// The name v1 readers see (the inverse of the protocol's v1 -> v2 rename map).
            pub fn v1_name(self) -> &'static str {
                match self { $( EventType::$variant => $v1, )* }
            }

            pub fn tier(self) -> Tier {
                match self { $( EventType::$variant => Tier::$tier, )* }
            }

            /// Whether the event ends its run (it is then the last event of the log).
            pub fn is_terminal(self) -> bool {
                match self { $( EventType::$variant => $terminal, )* }
            }
        }
    };
}

event_types! {
    RunStarted    => "run.started",    v1 "run.started",    Updates, terminal false;
    RunCompleted  => "run.completed",  v1 "run.completed",  Updates, terminal true;
    RunFailed     => "run.failed",     v1 "run.failed",     Updates, terminal true;
    RunCancelled  => "run.cancelled",  v1 "run.cancelled",  Updates, terminal true;
    NodeStarted   => "node.started",   v1 "node.started",   Debug,   terminal false;
    NodeCompleted => "node.completed", v1 "node.completed", Updates, terminal false;
    NodeFailed    => "node.failed",    v1 "node.failed",    Updates, terminal false;
    NodeSkipped   => "node.skipped",   v1 "node.skipped",   Updates, terminal false;
    NodeCancelled => "node.cancelled", v1 "node.cancelled", Updates, terminal false;
    CapBreached   => "cap.breached",   v1 "cap.breached",   Updates, terminal false;
}

impl EventType {
    /// The type stored under `name` (v2), if the engine emits it.
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|e| e.name() == name)
    }

    /// The tier of a stored event type; types the engine does not know (a vendor's) are
    /// debug-only.
    pub fn tier_of(name: &str) -> Tier {
        EventType::from_name(name).map_or(Tier::Debug, EventType::tier)
    }

    /// Whether a stored event type ends its run.
    pub fn is_terminal_name(name: &str) -> bool {
        EventType::from_name(name).is_some_and(EventType::is_terminal)
    }
}

/// Run statuses that are final: nothing happens to such a run again.
pub const TERMINAL_STATUSES: [&str; 3] = ["completed", "failed", "cancelled"];

pub fn is_terminal_status(status: &str) -> bool {
    TERMINAL_STATUSES.contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_the_v1_map_is_one_to_one() {
        let v2: HashSet<_> = EventType::ALL.iter().map(|e| e.name()).collect();
        let v1: HashSet<_> = EventType::ALL.iter().map(|e| e.v1_name()).collect();
        assert_eq!(v2.len(), EventType::ALL.len(), "duplicate v2 name");
        assert_eq!(v1.len(), EventType::ALL.len(), "two types share a v1 name");
        for e in EventType::ALL {
            assert_eq!(EventType::from_name(e.name()), Some(*e));
        }
    }

    #[test]
    fn terminal_events_and_statuses_agree() {
        let terminal: Vec<_> = EventType::ALL
            .iter()
            .filter(|e| e.is_terminal())
            .map(|e| e.name().trim_start_matches("run.").to_string())
            .collect();
        assert_eq!(terminal, TERMINAL_STATUSES);
        assert!(EventType::is_terminal_name("run.failed"));
        assert!(!EventType::is_terminal_name("node.failed"));
        assert_eq!(EventType::tier_of("vendor.thing"), Tier::Debug);
        assert_eq!(EventType::tier_of("node.started"), Tier::Debug);
        assert_eq!(EventType::tier_of("node.completed"), Tier::Updates);
    }
}
