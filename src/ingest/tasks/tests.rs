//! The task book's timing, queueing, timeouts, rates and errors.

use super::*;

const LIMITS: TaskLimits = TaskLimits {
    max_open_per_agent: 3,
    timeout_secs: 10,
};

const NONE: TaskUsage = TaskUsage {
    error_kind: None,
    tokens_in: None,
    tokens_out: None,
    model: None,
    provider: None,
};
const PRICES: GenAiPolicy = GenAiPolicy {
    currency: String::new(),
    prices: Vec::new(),
};

fn values(report: &AgentReport) -> Vec<(&str, f64)> {
    report
        .samples
        .iter()
        .map(|s| (s.metric.as_str(), s.value))
        .collect()
}

#[test]
fn an_interval_gives_response_time_throughput_and_rates() {
    let mut book = TaskBook::default();
    for (i, task) in ["t1", "t2", "t3", "t4"].into_iter().enumerate() {
        let agent = if i < 3 { "a" } else { "b" };
        book.start(task, agent, Some("ext"), false, 0, LIMITS)
            .unwrap();
    }
    assert_eq!(book.end("t1", "a", true, &NONE, &PRICES, 100, 10), Ok(100));
    assert_eq!(book.end("t2", "a", false, &NONE, &PRICES, 300, 10), Ok(300));
    let reports = book.tick(2000, 2000, 10);
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0].agent.as_str(), reports[0].pool.as_deref()),
        ("a", Some("ext"))
    );
    assert_eq!(
        values(&reports[0]),
        [
            ("active_tasks", 1.0),
            ("queue_size", 0.0),
            ("throughput_per_s", 1.0),
            ("error_rate", 50.0),
            ("success_rate", 50.0),
            ("response_time_ms", 200.0),
        ]
    );
    // b ended nothing: no rates, no response time.
    assert_eq!(
        values(&reports[1]),
        [
            ("active_tasks", 1.0),
            ("queue_size", 0.0),
            ("throughput_per_s", 0.0)
        ]
    );
    // The next interval starts afresh.
    let next = book.tick(4000, 2000, 10);
    assert_eq!(values(&next[0])[2], ("throughput_per_s", 0.0));
}

#[test]
fn a_queued_task_waits_then_runs_and_its_wait_counts_in_response_time() {
    let mut book = TaskBook::default();
    assert_eq!(
        book.start("t", "a", None, true, 0, LIMITS),
        Ok(Started::Queued)
    );
    assert_eq!(
        values(&book.tick(1000, 1000, 10)[0])[..2],
        [("active_tasks", 0.0), ("queue_size", 1.0)]
    );
    assert_eq!(
        book.start("t", "a", None, false, 1500, LIMITS),
        Ok(Started::Begun)
    );
    assert_eq!(
        values(&book.tick(2000, 1000, 10)[0])[..2],
        [("active_tasks", 1.0), ("queue_size", 0.0)]
    );
    // Beginning twice is a duplicate; so is queueing again.
    assert!(matches!(
        book.start("t", "a", None, false, 1600, LIMITS),
        Err(TaskError::Duplicate { .. })
    ));
    assert!(matches!(
        book.start("t", "a", None, true, 1600, LIMITS),
        Err(TaskError::Duplicate { .. })
    ));
    assert_eq!(book.end("t", "a", true, &NONE, &PRICES, 2500, 10), Ok(2500));
}

#[test]
fn a_task_open_past_the_timeout_ends_as_failed() {
    let mut book = TaskBook::default();
    book.start("slow", "a", None, false, 0, LIMITS).unwrap();
    book.start("fast", "a", None, false, 5_000, LIMITS).unwrap();
    // Not yet: ten seconds are not over.
    assert_eq!(
        values(&book.tick(9_999, 1000, 10)[0])[0],
        ("active_tasks", 2.0)
    );
    let report = book.tick(10_000, 1000, 10);
    assert_eq!(
        values(&report[0]),
        [
            ("active_tasks", 1.0),
            ("queue_size", 0.0),
            ("throughput_per_s", 1.0),
            ("error_rate", 100.0),
            ("success_rate", 0.0),
        ]
    );
    assert!(matches!(
        book.end("slow", "a", true, &NONE, &PRICES, 10_001, 10),
        Err(TaskError::Unknown { .. })
    ));
    assert_eq!(book.open_tasks(), 1);
}

#[test]
fn errors_name_what_is_wrong_and_the_cap_holds() {
    let mut book = TaskBook::default();
    book.start("t1", "a", None, false, 0, LIMITS).unwrap();
    assert!(matches!(
        book.start("t1", "b", None, false, 0, LIMITS),
        Err(TaskError::WrongAgent { .. })
    ));
    assert!(matches!(
        book.end("t1", "b", true, &NONE, &PRICES, 0, 10),
        Err(TaskError::WrongAgent { .. })
    ));
    assert!(matches!(
        book.end("nope", "a", true, &NONE, &PRICES, 0, 10),
        Err(TaskError::Unknown { .. })
    ));
    book.start("t2", "a", None, true, 0, LIMITS).unwrap();
    book.start("t3", "a", None, false, 0, LIMITS).unwrap();
    assert_eq!(
        book.start("t4", "a", None, false, 0, LIMITS),
        Err(TaskError::TooMany {
            agent: "a".into(),
            open: 3
        })
    );
    // Another agent has its own cap; an end makes room.
    assert!(book.start("t4", "b", None, false, 0, LIMITS).is_ok());
    book.end("t1", "a", true, &NONE, &PRICES, 1, 10).unwrap();
    assert!(book.start("t5", "a", None, false, 0, LIMITS).is_ok());
    assert!(check_task_id("job-42").is_ok());
    assert!(check_task_id("a b").is_err());
    assert!(check_task_id("").is_err());
}

#[test]
fn an_idle_agent_reports_zeros_once_then_is_forgotten() {
    let mut book = TaskBook::default();
    book.start("t", "a", None, false, 0, LIMITS).unwrap();
    book.end("t", "a", true, &NONE, &PRICES, 10, 10).unwrap();
    assert_eq!(book.tick(1000, 1000, 10).len(), 1);
    let zeros = book.tick(2000, 1000, 10);
    assert_eq!(
        values(&zeros[0]),
        [
            ("active_tasks", 0.0),
            ("queue_size", 0.0),
            ("throughput_per_s", 0.0)
        ]
    );
    assert!(book.tick(3000, 1000, 10).is_empty());
    assert!(!book.knows("a"));
}

#[test]
fn ended_tasks_give_tokens_cost_and_errors_by_kind() {
    let prices = GenAiPolicy {
        currency: "USD".into(),
        prices: vec![crate::policy::ModelPrice {
            provider: None,
            model: "m-*".into(),
            input_per_million: 1.0,
            output_per_million: 4.0,
        }],
    };
    let used = |tokens_in: f64, tokens_out: f64, model: &str| TaskUsage {
        tokens_in: Some(tokens_in),
        tokens_out: Some(tokens_out),
        model: Some(model.into()),
        ..NONE
    };
    let mut book = TaskBook::default();
    for task in ["t1", "t2", "t3"] {
        book.start(task, "a", None, false, 0, LIMITS).unwrap();
    }
    book.end(
        "t1",
        "a",
        true,
        &used(1000.0, 500.0, "m-1"),
        &prices,
        100,
        10,
    )
    .unwrap();
    // An unpriced model counts its tokens, not their cost.
    book.end(
        "t2",
        "a",
        true,
        &used(1000.0, 0.0, "other"),
        &prices,
        100,
        10,
    )
    .unwrap();
    let throttled = TaskUsage {
        error_kind: Some(ErrorKind::RateLimited),
        ..NONE
    };
    book.end("t3", "a", false, &throttled, &prices, 100, 10)
        .unwrap();
    let report = book.tick(2000, 2000, 10);
    let got = values(&report[0]);
    let find = |name: &str| got.iter().find(|(m, _)| *m == name).map(|&(_, v)| v);
    assert_eq!(find(metric::TOKENS_IN_PER_S), Some(1000.0));
    assert_eq!(find(metric::TOKENS_OUT_PER_S), Some(250.0));
    // 0.003 over 2 s is 5.4 an hour; over three tasks, 0.001 a task.
    let cost_per_hour = find(metric::COST_PER_HOUR).unwrap();
    assert!((cost_per_hour - 5.4).abs() < 1e-9, "{cost_per_hour}");
    let per_task = find(metric::COST_PER_TASK).unwrap();
    assert!((per_task - 0.001).abs() < 1e-12, "{per_task}");
    assert_eq!(find(metric::RATE_LIMITED_PER_S), Some(0.5));
    assert_eq!(find(metric::OTHER_ERRORS_PER_S), Some(0.0));
    // Quiet intervals say zero, not nothing.
    book.start("t4", "a", None, false, 2000, LIMITS).unwrap();
    let quiet = book.tick(4000, 2000, 10);
    let got = values(&quiet[0]);
    assert!(got.contains(&(metric::TOKENS_IN_PER_S, 0.0)));
    assert!(got.contains(&(metric::RATE_LIMITED_PER_S, 0.0)));
    assert!(
        !got.iter().any(|(m, _)| *m == metric::COST_PER_TASK),
        "no task ended"
    );
}
