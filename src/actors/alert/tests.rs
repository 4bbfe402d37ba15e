//! The alert actor's timing: `for`, `keep_firing_for`, cooldown, availability, callbacks.

use super::*;
use crate::actors::messages::{AnomalyObserved, ThresholdCrossed};
use crate::analytics::anomaly::ChannelScores;
use crate::policy::{AlertLevel, AlertRule};

#[actix::test]
async fn an_anomaly_fires_at_once_and_is_kept_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let alert = Alert::new(Store::open(dir.path()).unwrap()).start();
    alert
        .send(AnomalyObserved(crate::domain::evidence::AnomalyNote {
            agent: "w-1".into(),
            pool: "w".into(),
            metric: "cpu_percent".into(),
            value: 95.0,
            score: 0.9,
            channels: ChannelScores::default(),
            ts_ms: crate::clock::now_ms(),
        }))
        .await
        .unwrap();
    let alerts = alert.send(GetAlerts).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].rule.as_str(), alerts[0].state),
        ("anomaly_cpu_percent", AlertState::Firing)
    );
}

#[actix::test]
async fn pool_alerts_are_only_the_named_pools_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let alert = Alert::new(Store::open(dir.path()).unwrap()).start();
    for (agent, pool, ts_ms) in [("w-1", "w", 1), ("x-1", "x", 2), ("w-2", "w", 3)] {
        let now = crate::clock::now_ms();
        alert
            .send(AnomalyObserved(crate::domain::evidence::AnomalyNote {
                agent: agent.into(),
                pool: pool.into(),
                metric: "cpu_percent".into(),
                value: 95.0,
                score: 0.9,
                channels: ChannelScores::default(),
                ts_ms: now + ts_ms,
            }))
            .await
            .unwrap();
    }
    let of = |pools: &[&str]| {
        let pools = pools.iter().map(|p| p.to_string()).collect();
        alert.send(GetPoolAlerts(pools))
    };
    let w: Vec<String> = (of(&["w"]).await.unwrap().into_iter())
        .map(|a| a.agent)
        .collect();
    assert_eq!(w, ["w-2", "w-1"]);
    assert_eq!(of(&["w", "x"]).await.unwrap().len(), 3);
    assert!(of(&["y"]).await.unwrap().is_empty());
}

/// Collects what the alert actor tells its subscribers.
#[derive(Default)]
struct Listener(std::sync::Arc<std::sync::Mutex<Vec<AlertChanged>>>);

impl Actor for Listener {
    type Context = Context<Self>;
}

impl Handler<AlertChanged> for Listener {
    type Result = ();
    fn handle(&mut self, msg: AlertChanged, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg);
    }
}

fn rule(keep_firing_for_secs: u64, cooldown_secs: u64) -> AlertRule {
    AlertRule {
        name: "hot".into(),
        metric: "cpu_percent".into(),
        above: 50.0,
        for_secs: 0,
        level: AlertLevel::Critical,
        pool: Some("w".into()),
        keep_firing_for_secs,
        clear_below: None,
        cooldown_secs,
    }
}

fn crossing(rule: &AlertRule, breached: bool) -> ThresholdCrossed {
    ThresholdCrossed {
        rule: rule.clone(),
        agent: "w-1".into(),
        pool: "w".into(),
        value: if breached { 60.0 } else { 40.0 },
        ts_ms: crate::clock::now_ms(),
        breached,
    }
}

async fn state_of(alert: &actix::Addr<Alert>, rule: &str) -> Option<AlertState> {
    let alerts = alert.send(GetAlerts).await.unwrap();
    alerts.iter().find(|a| a.rule == rule).map(|a| a.state)
}

/// Waits (polling, with a deadline) until `rule` is in `state`.
async fn wait_state(alert: &actix::Addr<Alert>, rule: &str, state: AlertState) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while state_of(alert, rule).await != Some(state) {
        assert!(
            std::time::Instant::now() < deadline,
            "{rule} never {state:?}"
        );
        actix::clock::sleep(Duration::from_millis(50)).await;
    }
}

#[actix::test]
async fn keep_firing_for_holds_an_alert_through_a_dip() {
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::default();
    let seen = listener.0.clone();
    let alert = Alert::new(Store::open(dir.path()).unwrap())
        .with_subscriber(listener.start().recipient())
        .start();
    let rule = rule(1, 0);
    alert.send(crossing(&rule, true)).await.unwrap();
    assert_eq!(state_of(&alert, "hot").await, Some(AlertState::Firing));
    // A dip and a new breach: it never stopped firing.
    alert.send(crossing(&rule, false)).await.unwrap();
    assert_eq!(state_of(&alert, "hot").await, Some(AlertState::Firing));
    alert.send(crossing(&rule, true)).await.unwrap();
    let cleared = std::time::Instant::now();
    alert.send(crossing(&rule, false)).await.unwrap();
    wait_state(&alert, "hot", AlertState::Resolved).await;
    assert!(
        cleared.elapsed() >= Duration::from_secs(1),
        "resolved before keep_firing_for"
    );
    let states: Vec<AlertState> = seen.lock().unwrap().iter().map(|c| c.alert.state).collect();
    assert_eq!(
        states,
        [AlertState::Firing, AlertState::Resolved],
        "one fire, one resolve"
    );
}

#[actix::test]
async fn a_cooldown_keeps_a_new_breach_pending() {
    let dir = tempfile::tempdir().unwrap();
    let alert = Alert::new(Store::open(dir.path()).unwrap()).start();
    let rule = rule(0, 1);
    alert.send(crossing(&rule, true)).await.unwrap();
    alert.send(crossing(&rule, false)).await.unwrap();
    assert_eq!(state_of(&alert, "hot").await, Some(AlertState::Resolved));
    let resolved = std::time::Instant::now();
    alert.send(crossing(&rule, true)).await.unwrap();
    assert_eq!(state_of(&alert, "hot").await, Some(AlertState::Pending));
    wait_state(&alert, "hot", AlertState::Firing).await;
    assert!(resolved.elapsed() >= Duration::from_millis(900));
}

#[actix::test]
async fn an_offline_agent_is_a_critical_alert_until_it_reports() {
    let dir = tempfile::tempdir().unwrap();
    let alert = Alert::new(Store::open(dir.path()).unwrap()).start();
    let health = |status| crate::actors::messages::AgentHealthChanged {
        agent: "w-1".into(),
        pool: "w".into(),
        status,
        last_seen_ms: crate::clock::now_ms() - 7_000,
    };
    alert
        .send(health(crate::domain::AgentStatus::Offline))
        .await
        .unwrap();
    let alerts = alert.send(GetAlerts).await.unwrap();
    assert_eq!(
        (alerts[0].rule.as_str(), alerts[0].level, alerts[0].state),
        (AGENT_OFFLINE, AlertLevel::Critical, AlertState::Firing)
    );
    assert!(
        alerts[0].value >= 7.0,
        "seconds silent: {}",
        alerts[0].value
    );
    alert
        .send(health(crate::domain::AgentStatus::Active))
        .await
        .unwrap();
    assert_eq!(
        state_of(&alert, AGENT_OFFLINE).await,
        Some(AlertState::Resolved)
    );
}

mod driven;
