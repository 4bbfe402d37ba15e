use super::*;

fn route(channels: &[&str]) -> Route {
    Route {
        matchers: BTreeMap::new(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        group_by: vec!["pool".into(), "rule".into()],
        group_wait_secs: 5,
        group_interval_secs: 60,
        repeat_interval_secs: 600,
    }
}

fn alert(rule: &str, agent: &str, level: &str, firing: bool) -> RoutedAlert {
    let labels = [
        ("rule", rule),
        ("agent", agent),
        ("pool", "web"),
        ("level", level),
        ("metric", "cpu_percent"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    RoutedAlert {
        key: format!("{rule}/{agent}"),
        labels,
        firing,
        value: 91.0,
        starts_ms: 0,
    }
}

fn never(_: &BTreeMap<String, String>) -> bool {
    false
}

#[test]
fn twenty_agents_are_one_message_then_a_repeat_then_one_resolved() {
    let routes = [route(&["ops"])];
    let mut router = Router::default();
    let firing: Vec<RoutedAlert> = (0..20)
        .map(|i| alert("cpu_high", &format!("w-{i}"), "warning", true))
        .collect();
    assert!(
        router.step(&routes, &firing, &never, 0).is_empty(),
        "group_wait"
    );
    let first = router.step(&routes, &firing, &never, 5_000);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].channels, ["ops"]);
    assert_eq!(first[0].notification.title, "[FIRING:20] web cpu_high");
    assert_eq!(first[0].notification.text.lines().count(), 20);
    // Nothing new: quiet until the repeat interval.
    for t in [6_000, 60_000, 300_000, 604_000] {
        assert!(
            router.step(&routes, &firing, &never, t).is_empty(),
            "at {t}"
        );
    }
    let repeat = router.step(&routes, &firing, &never, 605_000);
    assert_eq!(repeat.len(), 1, "repeat after repeat_interval");
    // All resolved: one resolved message after group_interval, then the group is gone.
    let resolved: Vec<RoutedAlert> = firing
        .iter()
        .map(|a| RoutedAlert {
            firing: false,
            ..a.clone()
        })
        .collect();
    assert!(router.step(&routes, &resolved, &never, 610_000).is_empty());
    let done = router.step(&routes, &resolved, &never, 665_000);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].notification.title, "[RESOLVED] web cpu_high");
    assert_eq!(done[0].notification.labels["status"], "resolved");
    assert!(
        router
            .step(&routes, &resolved, &never, 2_000_000)
            .is_empty(),
        "told once"
    );
}

#[test]
fn ticks_between_steps_send_nothing_new_until_the_repeat() {
    // The alert actor only ticks the groups' timers while no alert changed.
    let routes = [route(&["ops"])];
    let mut router = Router::default();
    let firing = vec![alert("cpu_high", "w-1", "warning", true)];
    router.step(&routes, &firing, &never, 0);
    assert_eq!(router.step(&routes, &firing, &never, 5_000).len(), 1);
    for t in [65_000, 125_000, 604_000] {
        assert!(router.tick(&routes, t).is_empty(), "at {t}");
    }
    assert_eq!(router.tick(&routes, 605_000).len(), 1, "the repeat");
}

#[test]
fn a_new_alert_in_a_group_waits_for_the_group_interval() {
    let routes = [route(&["ops"])];
    let mut router = Router::default();
    let one = vec![alert("cpu_high", "w-1", "warning", true)];
    router.step(&routes, &one, &never, 0);
    assert_eq!(router.step(&routes, &one, &never, 5_000).len(), 1);
    let two = vec![one[0].clone(), alert("cpu_high", "w-2", "warning", true)];
    assert!(router.step(&routes, &two, &never, 10_000).is_empty());
    let update = router.step(&routes, &two, &never, 65_000);
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].notification.title, "[FIRING:2] web cpu_high");
}

#[test]
fn silences_and_a_critical_alert_on_the_pool_mute_the_warning() {
    let routes = [route(&["ops"])];
    let mut router = Router::default();
    let warning = alert("cpu_warn", "w-1", "warning", true);
    let critical = alert("cpu_crit", "w-2", "critical", true);
    let both = vec![warning.clone(), critical.clone()];
    router.step(&routes, &both, &never, 0);
    let sent = router.step(&routes, &both, &never, 5_000);
    assert_eq!(sent.len(), 1, "only the critical group: {sent:?}");
    assert!(sent[0].notification.title.contains("cpu_crit"));

    let mut quiet = Router::default();
    let silenced = |labels: &BTreeMap<String, String>| labels["rule"] == "cpu_warn";
    quiet.step(&routes, std::slice::from_ref(&warning), &silenced, 0);
    assert!(
        quiet
            .step(&routes, &[warning], &silenced, 10_000)
            .is_empty()
    );
}

#[test]
fn a_breach_that_resolves_before_the_group_wait_sends_nothing_and_routes_match_labels() {
    let mut pager = route(&["pager"]);
    pager.matchers.insert("level".into(), "critical".into());
    let routes = [pager, route(&["ops"])];
    let mut router = Router::default();
    let brief = alert("cpu_crit", "w-1", "critical", true);
    router.step(&routes, std::slice::from_ref(&brief), &never, 0);
    let gone = RoutedAlert {
        firing: false,
        ..brief.clone()
    };
    assert!(router.step(&routes, &[gone], &never, 2_000).is_empty());
    assert!(router.step(&routes, &[], &never, 10_000).is_empty());
    router.step(&routes, std::slice::from_ref(&brief), &never, 20_000);
    let sent = router.step(&routes, &[brief], &never, 25_000);
    let mut channels: Vec<&str> = sent.iter().map(|o| o.channels[0].as_str()).collect();
    channels.sort();
    assert_eq!(
        channels,
        ["ops", "pager"],
        "every matching route, once each"
    );
}

#[test]
fn changes_between_two_ticks_of_the_group_timer_go_out_together() {
    let routes = [route(&["ops"])];
    let mut router = Router::default();
    let all = |firing: [bool; 3]| -> Vec<RoutedAlert> {
        (0..3)
            .map(|i| alert("cpu_high", &format!("w-{i}"), "warning", firing[i]))
            .collect()
    };
    router.step(&routes, &all([true; 3]), &never, 0);
    assert_eq!(
        router.step(&routes, &all([true; 3]), &never, 5_000).len(),
        1
    );
    // Ticks at 65 s, 125 s, ...: two agents resolve at 100 s and 110 s, told at 125 s.
    assert!(
        router
            .step(&routes, &all([true; 3]), &never, 65_000)
            .is_empty()
    );
    let one = all([false, true, true]);
    assert!(
        router.step(&routes, &one, &never, 100_000).is_empty(),
        "before the tick"
    );
    let two = all([false, false, true]);
    assert!(
        router.step(&routes, &two, &never, 110_000).is_empty(),
        "before the tick"
    );
    let told = router.step(&routes, &two, &never, 125_000);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].notification.title, "[FIRING:1] web cpu_high");
    assert_eq!(told[0].notification.text.matches("resolved").count(), 2);
}
