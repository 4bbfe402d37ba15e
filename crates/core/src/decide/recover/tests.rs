//! Recovery decisions for every kind and state an action can be left in.

use super::*;
use crate::domain::AgentHandle;

fn action(state: ActionState, change: Change) -> Action {
    Action {
        id: 7,
        kind: change.kind(),
        pool: "web".into(),
        agent: None,
        state,
        inverse: change.inverse(),
        change,
        reason: String::new(),
        evidence: crate::domain::evidence::Evidence::empty(),
        expected_effect: String::new(),
        created_ms: 1_000,
        updated_ms: 2_000,
        risk: None,
        expires_ms: None,
        approvals: Vec::new(),
    }
}

fn sized(size: usize) -> Found {
    Found {
        size: PoolSize::Reported(size),
        driver: "process",
        ..Found::default()
    }
}

fn agent(id: &str, started_ms: i64, running: bool) -> DriverAgent {
    DriverAgent {
        handle: AgentHandle {
            id: id.into(),
            pool: "web".into(),
            pid: Some(42),
            endpoint: None,
            started_ms,
        },
        running,
    }
}

/// The state `plan` ends the action in (`verifying` for a re-verification, `rolled_back`
/// for a restore or an undo to carry out), and the restoring change if there is one.
fn check(action: &Action, found: &Found) -> (&'static str, Option<Change>) {
    match plan(action, found) {
        Recovery::Reverify(_) => ("verifying", None),
        Recovery::Settle(state, _) => (state.as_str(), None),
        Recovery::Restore(change, _) => ("rolled_back", Some(change)),
        Recovery::Undo(_) => ("rolled_back", None),
    }
}

#[test]
fn an_interrupted_rollback_is_completed_from_what_the_driver_reports() {
    use ActionState::RollingBack;
    let grow = Change::Scale { from: 2, to: 4 };
    let threshold = Change::AdjustThreshold {
        rule: "mem_warn".into(),
        from: 80.0,
        to: 50.0,
    };
    let weights = |a: f64| BTreeMap::from([("a".to_string(), a), ("b".to_string(), 1.0)]);
    let reweigh = Change::Redistribute {
        from: weights(1.0),
        to: weights(0.5),
    };
    let table = [
        // The pool is back where it began: the undo had finished, only the log had not.
        (
            "scale undone",
            action(RollingBack, grow.clone()),
            sized(2),
            ("rolled_back", None),
        ),
        // Still at the target, or part way: the rest of the way back, from where it is.
        (
            "scale not undone",
            action(RollingBack, grow.clone()),
            sized(4),
            ("rolled_back", Some(Change::Scale { from: 4, to: 2 })),
        ),
        (
            "scale half undone",
            action(RollingBack, grow.clone()),
            sized(3),
            ("rolled_back", Some(Change::Scale { from: 3, to: 2 })),
        ),
        (
            "driver silent",
            action(RollingBack, grow),
            Found {
                size: PoolSize::Failed("connection refused".into()),
                ..Found::default()
            },
            ("failed", None),
        ),
        (
            "threshold back",
            action(RollingBack, threshold.clone()),
            Found {
                threshold: Some(80.0),
                ..Found::default()
            },
            ("rolled_back", None),
        ),
        (
            "threshold still lowered: the overlay entry goes",
            action(RollingBack, threshold),
            Found {
                threshold: Some(50.0),
                ..Found::default()
            },
            ("rolled_back", None),
        ),
        (
            "weights back",
            action(RollingBack, reweigh.clone()),
            Found::default(),
            ("rolled_back", None),
        ),
        (
            "weights still moved: set back",
            action(RollingBack, reweigh),
            Found {
                weights: weights(0.5),
                ..Found::default()
            },
            ("rolled_back", None),
        ),
    ];
    for (what, action, found, expected) in table {
        assert_eq!(check(&action, &found), expected, "{what}");
    }
    // Which of the two "rolled_back" outcomes each is: settled, or work left to do.
    let lowered = action(
        RollingBack,
        Change::AdjustThreshold {
            rule: "mem_warn".into(),
            from: 80.0,
            to: 50.0,
        },
    );
    let still = Found {
        threshold: Some(50.0),
        ..Found::default()
    };
    assert!(matches!(plan(&lowered, &still), Recovery::Undo(why)
        if why == "recovered after a restart: mem_warn is Some(50.0), not yet back to 80: \
                   finishing the rollback"));
    let back = Found {
        threshold: Some(80.0),
        ..Found::default()
    };
    assert!(matches!(
        plan(&lowered, &back),
        Recovery::Settle(ActionState::RolledBack, _)
    ));
}

#[test]
fn restarts_and_redistributions_in_flight_are_checked_against_the_driver() {
    let restart = Change::Restart { agent: "a".into() };
    let applying = action(ActionState::Applying, restart);
    let with = |agents: Vec<DriverAgent>, remote: bool| Found {
        agents,
        remote,
        driver: if remote { "http" } else { "process" },
        ..Found::default()
    };
    // (what, found, outcome, words the reason holds)
    let table = [
        (
            "a new incarnation",
            with(vec![agent("a", 1_500, true)], false),
            "verifying",
            "the restart took place",
        ),
        (
            "the old incarnation",
            with(vec![agent("a", 500, true)], false),
            "failed",
            "never took effect",
        ),
        (
            "gone with the controller",
            with(vec![agent("a", 1_500, false)], false),
            "failed",
            "not running under the driver",
        ),
        (
            "a remote driver cannot tell",
            with(Vec::new(), true),
            "failed",
            "the http driver cannot tell",
        ),
    ];
    for (what, found, state, words) in table {
        let recovery = plan(&applying, &found);
        let (Recovery::Reverify(why) | Recovery::Settle(_, why)) = &recovery else {
            panic!("{what}: {recovery:?}");
        };
        assert_eq!(check(&applying, &found).0, state, "{what}");
        assert!(why.contains(words), "{what}: {why}");
    }

    let weights = |a: f64| BTreeMap::from([("a".to_string(), a)]);
    let reweigh = action(
        ActionState::Verifying,
        Change::Redistribute {
            from: weights(1.0),
            to: weights(0.5),
        },
    );
    let now = |a: f64| Found {
        weights: weights(a),
        ..Found::default()
    };
    assert_eq!(check(&reweigh, &now(0.5)), ("verifying", None));
    assert_eq!(check(&reweigh, &now(1.0)), ("failed", None));
}
