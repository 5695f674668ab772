//! Property tests of the pure room: any sequence of joins, resumes, leaves, posts, renames,
//! evictions and deletions keeps the room's promises.
//!
//! A model alongside the room records every seq handed out and which were deleted; after each
//! step the room must agree with it: seqs strictly increase, no two members share a name key, and
//! a replay after any `since` holds exactly the later messages still standing, or says `truncated`.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;

use super::history::Stored;
use super::ids::{ConnId, ResumeSecret};
use super::room::{tests, Arrival, Room};
use crate::domain::{DisplayName, MessageText, Timestamp};

/// Names that clash in pairs by key ("ann" and "ANN"), so renames and joins meet taken names.
const NAMES: [&str; 6] = ["ann", "ANN", "bob", "Bob", "cy", "dee"];

#[derive(Debug, Clone)]
enum Step {
    /// A newcomer by the name at this index, having seen messages up to `since`.
    Join {
        name: usize,
        since: Option<u64>,
    },
    /// Someone who left comes back with their resume secret (the index picks among them).
    Resume {
        who: usize,
        since: Option<u64>,
    },
    Leave {
        who: usize,
    },
    Post {
        who: usize,
    },
    Rename {
        who: usize,
        name: usize,
    },
    /// Evicted: presence gave the name to someone else.
    Evict {
        who: usize,
    },
    /// The member deletes the message this many seqs back from the last.
    Delete {
        who: usize,
        back: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let since = proptest::option::of(0..40u64);
    prop_oneof![
        2 => (0..NAMES.len(), since.clone()).prop_map(|(name, since)| Step::Join { name, since }),
        2 => (0..8usize, since).prop_map(|(who, since)| Step::Resume { who, since }),
        1 => (0..8usize).prop_map(|who| Step::Leave { who }),
        4 => (0..8usize).prop_map(|who| Step::Post { who }),
        1 => (0..8usize, 0..NAMES.len()).prop_map(|(who, name)| Step::Rename { who, name }),
        1 => (0..8usize).prop_map(|who| Step::Evict { who }),
        1 => (0..8usize, 0..6u64).prop_map(|(who, back)| Step::Delete { who, back }),
    ]
}

/// What the room must agree with: every seq handed out (`true` once deleted), and who may come back.
#[derive(Default)]
struct Model {
    seqs: BTreeMap<u64, bool>,
    members: Vec<ConnId>,
    departed: Vec<ResumeSecret>,
}

impl Model {
    /// The standing messages after `since`, oldest first.
    fn after(&self, since: u64) -> Vec<u64> {
        self.seqs
            .range(since + 1..)
            .filter(|(_, deleted)| !**deleted)
            .map(|(seq, _)| *seq)
            .collect()
    }

    fn pick<T: Copy>(items: &[T], index: usize) -> Option<T> {
        (!items.is_empty()).then(|| items[index % items.len()])
    }
}

fn arrival(name: &str, resume: Option<ResumeSecret>, since: Option<u64>) -> Arrival {
    Arrival {
        resume,
        since,
        ..tests::arrival(ConnId::random(), name)
    }
}

/// Admits `arrival` if the room will, checks its welcome's replay against the model, and
/// records the new member.
fn join(room: &mut Room, model: &mut Model, arrival: Arrival) -> Result<(), TestCaseError> {
    let (conn, since) = (arrival.conn, arrival.since);
    let Ok(admission) = room.join(arrival, Stored::NOTHING, Timestamp::now()) else {
        return Ok(());
    };
    if let Some(since) = since {
        let replayed: Vec<u64> = admission.welcome.history.iter().map(|m| m.seq).collect();
        let expected = model.after(since);
        prop_assert_eq!(
            admission.welcome.truncated,
            replayed != expected,
            "truncated must say exactly whether the replay misses something"
        );
        prop_assert!(
            expected.ends_with(&replayed),
            "a replay is the newest of the later messages"
        );
    }
    let resume = admission.welcome.resume.clone();
    model.departed.retain(|secret| *secret != resume);
    model.members.push(conn);
    Ok(())
}

fn apply(room: &mut Room, model: &mut Model, step: Step) -> Result<(), TestCaseError> {
    let now = Timestamp::now();
    match step {
        Step::Join { name, since } => join(room, model, arrival(NAMES[name], None, since))?,
        Step::Resume { who, since } => {
            if let Some(index) = (!model.departed.is_empty()).then(|| who % model.departed.len()) {
                let secret = model.departed[index].clone();
                // The name is the client's last; the room gives back the identity's own.
                join(room, model, arrival("zed", Some(secret), since))?;
            }
        }
        Step::Leave { who } => {
            if let Some(conn) = Model::pick(&model.members, who) {
                let resume = room
                    .local_members()
                    .find(|m| m.conn == conn)
                    .map(|m| m.resume.clone());
                prop_assert!(
                    room.depart(conn, now).is_some(),
                    "a member leaves with a left"
                );
                model.members.retain(|c| *c != conn);
                model.departed.extend(resume);
            }
        }
        Step::Post { who } => {
            if let Some(conn) = Model::pick(&model.members, who) {
                let text = MessageText::parse("hello").expect("a valid text");
                let last = room.last_seq();
                let seq = room.post(conn, text, None, now, u64::MAX).map(|m| m.seq);
                prop_assert_eq!(seq, Some(last + 1), "seqs go up by one");
                model.seqs.insert(last + 1, false);
            }
        }
        Step::Rename { who, name } => {
            if let Some(conn) = Model::pick(&model.members, who) {
                let name = DisplayName::parse(NAMES[name]).expect("a valid name");
                // Refused when taken: the invariant below says it must be.
                let _ = room.rename(conn, name, now);
            }
        }
        Step::Evict { who } => {
            if let Some(conn) = Model::pick(&model.members, who) {
                prop_assert!(room.evict(conn, now).is_some());
                model.members.retain(|c| *c != conn);
            }
        }
        Step::Delete { who, back } => {
            if let Some(conn) = Model::pick(&model.members, who) {
                let seq = room.last_seq().saturating_sub(back);
                if room.delete(conn, seq).is_ok() {
                    prop_assert_eq!(model.seqs.insert(seq, true), Some(false), "deleted once");
                }
            }
        }
    }
    let keys: Vec<&str> = room.local_members().map(|m| m.key.as_str()).collect();
    let distinct: HashSet<&str> = keys.iter().copied().collect();
    prop_assert_eq!(
        distinct.len(),
        keys.len(),
        "two members share a name: {:?}",
        keys
    );
    prop_assert_eq!(
        room.last_seq(),
        model.seqs.keys().last().copied().unwrap_or(0)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// With memory holding everything, every replay is exact and never truncated.
    #[test]
    fn a_room_keeps_its_promises_when_memory_holds_everything(
        steps in proptest::collection::vec(step(), 1..80)
    ) {
        let (mut room, mut model) = (tests::room_with(5, 1_000, 0), Model::default());
        for step in steps {
            apply(&mut room, &mut model, step)?;
        }
    }

    /// With a small memory (nothing in storage to read), replays that reach past it say truncated,
    /// and only those.
    #[test]
    fn a_room_says_truncated_exactly_when_its_memory_falls_short(
        steps in proptest::collection::vec(step(), 1..80)
    ) {
        let (mut room, mut model) = (tests::room_with(5, 4, 0), Model::default());
        for step in steps {
            apply(&mut room, &mut model, step)?;
        }
    }
}
