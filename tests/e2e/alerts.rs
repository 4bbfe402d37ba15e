//! Alerts through routes to a real webhook receiver: grouping, no repeats before the repeat
//! interval, and one resolved message.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::{agents_up, wait_state};
use crate::util::{Receiver, Server, wait_for};

#[tokio::test]
async fn a_breach_on_every_agent_is_one_grouped_message_then_one_resolved() {
    let receiver = Receiver::start();
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("hook.url");
    std::fs::write(&url_file, &receiver.url).unwrap();
    let policy = format!(
        "[global]\nsampling_interval_secs = 1\n[pools.web]\nmin_agents = 3\nmax_agents = 3\n\
         [[alerts]]\nname = \"mem_tiny\"\nmetric = \"memory_percent\"\nabove = 0.001\n\
         level = \"warning\"\npool = \"web\"\n\
         [channels.ops]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
         [[routes]]\nmatchers = {{ rule = \"mem_tiny\" }}\nchannels = [\"ops\"]\n\
         group_wait_secs = 3\ngroup_interval_secs = 2\n\
         repeat_interval_secs = 3600\n",
        url_file.display()
    );
    let server = Server::start(&policy);
    agents_up(&server, 3).await;
    let first = wait_for("the grouped message", Duration::from_secs(30), || async {
        receiver.bodies().into_iter().next()
    })
    .await;
    assert_eq!(first["title"], "[FIRING:3] web mem_tiny", "{first}");
    assert_eq!(first["details"]["alerts"].as_array().unwrap().len(), 3);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        receiver.bodies().len(),
        1,
        "no repeat before repeat_interval"
    );

    // The operator raises the threshold: every agent's alert resolves, told once.
    let raise = json!({"pool": "web", "change": {"type": "adjust_threshold", "rule": "mem_tiny", "to": 1000}});
    let (status, action) = server.post_json("/api/v1/actions", &raise).await;
    assert_eq!(status, 202, "{action}");
    wait_state(&server, action["id"].as_i64().unwrap(), "applied", 30).await;
    let resolved = wait_for("the resolved message", Duration::from_secs(30), || async {
        let bodies = receiver.bodies();
        (bodies.len() >= 2).then(|| bodies[1].clone())
    })
    .await;
    assert_eq!(resolved["title"], "[RESOLVED] web mem_tiny", "{resolved}");
    assert_eq!(resolved["labels"]["status"], "resolved");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let all: Vec<Value> = receiver.bodies();
    assert_eq!(all.len(), 2, "{all:?}");
}
