//! The proposals a crash leaves behind.

use super::*;
use crate::domain::Proposal;

#[test]
fn proposals_a_crash_left_ungated_are_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let proposal = |to| Proposal {
        pool: "web".into(),
        change: Change::Scale { from: 2, to },
        reason: "load".into(),
        evidence: crate::domain::evidence::Evidence::empty(),
        confidence: 1.0,
        expected_effect: String::new(),
    };
    let left = store.insert_action(&proposal(3), "auto").unwrap();
    let gated = store.insert_action(&proposal(4), "auto").unwrap();
    store
        .transition(gated.id, ActionState::PendingApproval, "waits", "policy")
        .unwrap();

    assert_eq!(supersede_proposed(&store).unwrap(), 1);
    let left = store.action(left.id).unwrap().unwrap();
    assert_eq!(left.state, ActionState::Superseded);
    let gated = store.action(gated.id).unwrap().unwrap();
    assert_eq!(
        gated.state,
        ActionState::PendingApproval,
        "approvals wait on"
    );
    let log = store
        .log(&crate::store::LogFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let row = log.iter().find(|r| r.action_id == left.id).unwrap();
    assert_eq!(
        (
            row.from_state.map(ActionState::as_str),
            row.to_state.as_str(),
            row.actor.as_str()
        ),
        (Some("proposed"), "superseded", "recovery")
    );
    assert!(row.reason.contains("never gated"), "{}", row.reason);
    assert_eq!(supersede_proposed(&store).unwrap(), 0, "once");
}
