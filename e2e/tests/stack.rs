//! End to end, every part a process: updates POSTed to the update function URL (`cargo lambda watch`) reach
//! 50 SSE clients as the new top 10; the leaderboard function and the MongoDB store agree. And a real
//! browser presses the demo page's button and sees the board change. Each runs on standalone Redis and
//! once on a 3-master Redis Cluster (`REDIS_CLUSTER=true` for every component).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document};
use scoreboard_e2e::{CLUSTER_MASTERS, SseClient, Stack, StackOptions, workspace_root};
use scoreboard_shared::partition::Partitioner;

const T: Duration = Duration::from_secs(30);

/// (user id, name, increments) of the players; 12 players so two fall off the top 10.
fn players() -> Vec<(String, String, Vec<u64>)> {
    (1..=12u64)
        .map(|i| {
            let increments = vec![i * 3, i * 4 + 1];
            (format!("player-{i:02}"), format!("Player {i}"), increments)
        })
        .collect()
}

fn score_of(doc: &Document) -> u64 {
    match doc.get("score") {
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap(),
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap(),
        Some(Bson::Double(n)) => *n as u64,
        other => panic!("unexpected score {other:?}"),
    }
}

fn on_a_cluster() -> StackOptions {
    StackOptions {
        redis_cluster: true,
        ..StackOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sse_clients_get_the_new_top_10_and_function_and_store_agree() {
    fifty_sse_clients_get_the_new_top_10(StackOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sse_clients_get_the_new_top_10_and_function_and_store_agree_on_a_redis_cluster() {
    fifty_sse_clients_get_the_new_top_10(on_a_cluster()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_presses_the_demo_button_and_sees_the_board_change() {
    browser_presses_the_demo_button(StackOptions::default(), "demo-page.png").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_presses_the_demo_button_and_sees_the_board_change_on_a_redis_cluster() {
    browser_presses_the_demo_button(on_a_cluster(), "demo-page-cluster.png").await;
}

async fn fifty_sse_clients_get_the_new_top_10(options: StackOptions) {
    let stack = Stack::start(options).await;
    if let Some(cluster) = stack.cluster() {
        // The players' partitions (P = 16, the default) live on every master.
        let partitioner = Partitioner::new(16);
        let masters: HashSet<u16> = players()
            .iter()
            .map(|(user, _, _)| {
                let tag = format!("{{sb:{}}}", partitioner.partition_of(user));
                cluster.master_of_slot(cluster.key_slot(&tag))
            })
            .collect();
        assert_eq!(
            masters.len(),
            CLUSTER_MASTERS,
            "the players' partitions span every master"
        );
    }

    let mut clients = Vec::new();
    for i in 0..50 {
        let token = stack.token(&format!("viewer-{i}"), "Viewer");
        let mut client = SseClient::connect(&stack.http, &stack.events_url(), &token).await;
        client.next_snapshot(T).await.expect("snapshot on connect");
        clients.push(client);
    }

    let mut expected: HashMap<String, u64> = HashMap::new();
    for (user, name, increments) in players() {
        let token = stack.token(&user, &name);
        for inc in increments {
            let status = stack.post_update(&token, inc).await;
            assert_eq!(status, 202, "update for {user}; logs:\n{}", stack.logs());
            *expected.entry(user.clone()).or_default() += inc;
        }
    }
    let mut ranking: Vec<(String, u64)> = expected.clone().into_iter().collect();
    ranking.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top10: Vec<(String, u64)> = ranking.into_iter().take(10).collect();

    let entries_of = |json: &serde_json::Value| -> Vec<(String, u64)> {
        json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["userId"].as_str().unwrap().to_owned(),
                    e["score"].as_u64().unwrap(),
                )
            })
            .collect()
    };

    let mut final_version = 0;
    for (i, client) in clients.iter_mut().enumerate() {
        loop {
            let Some(message) = client.next_snapshot(T).await else {
                panic!(
                    "client {i} never saw the final top 10; logs:\n{}",
                    stack.logs()
                );
            };
            let json = message.json();
            if entries_of(&json) == top10 {
                final_version = final_version.max(json["version"].as_u64().unwrap());
                break;
            }
        }
    }

    let token = stack.token("viewer-0", "Viewer");
    let board: serde_json::Value = stack
        .http
        .get(stack.leaderboard_url())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        entries_of(&board),
        top10,
        "leaderboard function agrees with SSE"
    );
    assert!(board["version"].as_u64().unwrap() >= final_version);
    let ranks: Vec<u64> = board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, (1..=10).collect::<Vec<_>>());

    let mongo = mongodb::Client::with_uri_str(&stack.mongo_uri)
        .await
        .unwrap();
    // User documents carry their partition `p`; the partitions' high-water mark documents do not.
    let docs: Vec<Document> = mongo
        .database(&stack.database)
        .collection::<Document>("scores")
        .find(mongodb::bson::doc! {"p": {"$exists": true}})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let stored: HashMap<String, u64> = docs
        .iter()
        .map(|d| (d.get_str("_id").unwrap().to_owned(), score_of(d)))
        .collect();
    assert_eq!(
        stored, expected,
        "the store holds every accepted increment once"
    );
}

async fn browser_presses_the_demo_button(options: StackOptions, screenshot: &str) {
    let stack = Stack::start(options).await;
    // A board with room to move: Grace starts fourth of six and climbs with +10.
    for (user, name, score) in [
        ("demo-ada", "Ada", 60),
        ("demo-linus", "Linus", 44),
        ("demo-margaret", "Margaret", 31),
        ("demo-grace", "Grace", 25),
        ("demo-alan", "Alan", 18),
        ("demo-hedy", "Hedy", 9),
    ] {
        let status = stack.post_update(&stack.token(user, name), score).await;
        assert_eq!(status, 202);
    }
    // Wait until the board holds all six, so the page starts from it.
    let viewer = stack.token("viewer", "Viewer");
    let mut client = SseClient::connect(&stack.http, &stack.events_url(), &viewer).await;
    loop {
        let message = client
            .next_snapshot(T)
            .await
            .unwrap_or_else(|| panic!("seed never published; logs:\n{}", stack.logs()));
        if message.json()["entries"].as_array().unwrap().len() == 6 {
            break;
        }
    }

    let screenshot = workspace_root().join("target/e2e").join(screenshot);
    let output = tokio::process::Command::new("node")
        .arg(workspace_root().join("e2e/browser.mjs"))
        .env("BASE_URL", format!("{}/", stack.sse_base))
        .env("SCREENSHOT", &screenshot)
        .env("DEMO_NAME", "Grace")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("browser test finishes within 2 min")
        .expect("run node (is Node.js installed? `make setup`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed\nstdout: {stdout}\nstderr: {stderr}\nlogs:\n{}",
        stack.logs()
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["me"], "demo-grace");
    assert_eq!(seen["after"], 35);
    assert!(
        screenshot.is_file(),
        "screenshot saved at {}",
        screenshot.display()
    );
}
