//! Limits that need Redis to be exact: the per-user rate limit, idempotency under concurrency, the backlog
//! bound, and the one-round-trip guarantee.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::future::join_all;

use scoreboard_shared::partition::Partitioner;

use crate::helpers::*;

const BODY: &str = r#"{"scoreIncrement":1}"#;

fn with_key(token: &str, key: &str, body: &str) -> lambda_http::Request {
    event(
        "POST",
        "/api/v1/scores/update",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        Some(body),
    )
}

#[tokio::test]
async fn fifty_concurrent_requests_from_one_user_accept_exactly_the_burst() {
    // 1 token/s so the refill during the burst cannot blur the count.
    let h = UpdateHarness::start(&[("RATE_LIMIT_PER_SEC", "1"), ("RATE_LIMIT_BURST", "20")]);
    let token = hs_token("spammer");

    let started = Instant::now();
    let answers = join_all((0..50).map(|_| h.send(post_update(&token, BODY)))).await;
    let elapsed = started.elapsed();

    assert!(
        elapsed.as_millis() < 1000,
        "burst took {elapsed:?}; exactness needs < 1 s"
    );
    let accepted = answers.iter().filter(|a| a.status == 202).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(accepted, 20);
    assert_eq!(limited.len(), 30);
    for answer in &limited {
        assert_eq!(answer.problem_type(), "/problems/rate-limited");
        let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "retry-after {retry}");
        assert_eq!(
            answer.header("ratelimit-policy"),
            Some(r#""burst";q=20;w=20"#)
        );
        assert!(answer.header("ratelimit").unwrap().contains("r=0"));
    }
    assert_eq!(h.stream_len().await, 20);

    // Other users are unaffected.
    assert_eq!(
        h.send(post_update(&hs_token("bystander"), BODY))
            .await
            .status,
        202
    );
    assert_eq!(h.stream_len().await, 21);
}

#[tokio::test]
async fn default_limits_allow_a_burst_of_twenty_then_refuse() {
    let h = UpdateHarness::start(&[]);
    let token = hs_token("steady");
    let mut statuses = Vec::new();
    for _ in 0..21 {
        statuses.push(h.send(post_update(&token, BODY)).await.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 202), "{statuses:?}");
    // At 10/s a slow machine may have refilled one token; never more than that.
    let started = Instant::now();
    let extra = join_all((0..5).map(|_| h.send(post_update(&token, BODY)))).await;
    let refills = 1 + started.elapsed().as_millis() / 100;
    let accepted_extra = extra.iter().filter(|a| a.status == 202).count() as u128;
    assert!(
        accepted_extra <= refills,
        "{accepted_extra} accepted beyond the burst"
    );
    assert!(extra.iter().any(|a| a.status == 429));
}

#[tokio::test]
async fn idempotent_replay_returns_the_first_answer_and_enqueues_nothing() {
    let h = UpdateHarness::start(&[]);
    let token = hs_token("ida");

    let first = h
        .send(with_key(&token, "click-1", r#"{"scoreIncrement":7}"#))
        .await;
    let replay = h
        .send(with_key(&token, "click-1", r#"{"scoreIncrement":7}"#))
        .await;
    let replay_spaced = h
        .send(with_key(&token, "click-1", r#"{ "scoreIncrement" : 7 }"#))
        .await;

    assert_eq!(first.status, 202);
    assert_eq!(replay.status, 202);
    assert_eq!(replay.json["eventId"], first.json["eventId"]);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay_spaced.json["eventId"], first.json["eventId"]);
    assert_eq!(h.stream_len().await, 1);

    let conflict = h
        .send(with_key(&token, "click-1", r#"{"scoreIncrement":8}"#))
        .await;
    assert_eq!(conflict.status, 422);
    assert_eq!(conflict.problem_type(), "/problems/idempotency-key-reused");
    assert_eq!(h.stream_len().await, 1);

    // Keys are scoped to the user: another user's identical key is a new update.
    let other = h
        .send(with_key(
            &hs_token("bo"),
            "click-1",
            r#"{"scoreIncrement":7}"#,
        ))
        .await;
    assert_eq!(other.status, 202);
    assert_ne!(other.json["eventId"], first.json["eventId"]);
    assert_eq!(h.stream_len().await, 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_enqueue_once() {
    let h = UpdateHarness::start(&[]);
    let token = hs_token("racer");

    let answers = join_all((0..20).map(|_| h.send(with_key(&token, "double-click", BODY)))).await;

    assert!(answers.iter().all(|a| a.status == 202), "{answers:?}");
    let ids: HashSet<_> = answers
        .iter()
        .map(|a| a.json["eventId"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one event id for all: {ids:?}");
    assert_eq!(h.stream_len().await, 1);
}

#[tokio::test]
async fn bad_idempotency_keys_are_400_and_enqueue_nothing() {
    let h = UpdateHarness::start(&[]);
    let token = hs_token("k");
    let long = "k".repeat(129);
    for key in ["", "has space", long.as_str(), "tab\tkey"] {
        let answer = h.send(with_key(&token, key, BODY)).await;
        assert_eq!(answer.status, 400, "{key:?}");
    }
    assert_eq!(h.stream_len().await, 0);
}

#[tokio::test]
async fn a_stream_at_its_backlog_bound_answers_503_with_retry_after() {
    let h = UpdateHarness::start(&[("STREAM_MAX_BACKLOG", "3"), ("PARTITIONS", "1")]);
    for user in ["a", "b", "c"] {
        assert_eq!(h.send(post_update(&hs_token(user), BODY)).await.status, 202);
    }
    let answer = h.send(post_update(&hs_token("d"), BODY)).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.problem_type(), "/problems/backlogged");
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(h.stream_len().await, 3);
}

#[tokio::test]
async fn the_backlog_bound_is_per_partition_so_a_full_partition_refuses_only_its_users() {
    let h = UpdateHarness::start(&[("STREAM_MAX_BACKLOG", "2"), ("PARTITIONS", "4")]);
    let partitioner = Partitioner::new(4);
    let full = partitioner.partition_of("a");
    let same: Vec<String> = (0..200)
        .map(|i| format!("same-{i}"))
        .filter(|u| partitioner.partition_of(u) == full)
        .take(3)
        .collect();
    let other = (0..200)
        .map(|i| format!("other-{i}"))
        .find(|u| partitioner.partition_of(u) != full)
        .unwrap();
    assert_eq!(
        h.send(post_update(&hs_token(&same[0]), BODY)).await.status,
        202
    );
    assert_eq!(
        h.send(post_update(&hs_token(&same[1]), BODY)).await.status,
        202
    );
    let refused = h.send(post_update(&hs_token(&same[2]), BODY)).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    let accepted = h.send(post_update(&hs_token(&other), BODY)).await;
    assert_eq!(
        accepted.status, 202,
        "another partition still accepts: {accepted:?}"
    );
    let event_id = accepted.json["eventId"].as_str().unwrap();
    let partition: u16 = event_id.split('-').next().unwrap().parse().unwrap();
    assert_eq!(partition, partitioner.partition_of(&other), "{event_id}");
    assert_eq!(h.stream_len().await, 3);
}

async fn command_stats(h: &UpdateHarness) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut h.redis.connection().await)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test]
async fn each_accepted_update_is_exactly_one_script_call_and_nothing_else() {
    let h = UpdateHarness::start(&[]);
    // Warm-up: the connection handshake and the one-time script load.
    assert_eq!(
        h.send(post_update(&hs_token("warm"), BODY)).await.status,
        202
    );
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut h.redis.connection().await)
        .await
        .unwrap();

    let n = 12;
    for i in 0..n {
        let answer = h
            .send(with_key(
                &hs_token(&format!("u{i}")),
                &format!("k{i}"),
                BODY,
            ))
            .await;
        assert_eq!(answer.status, 202);
    }

    let stats = command_stats(&h).await;
    assert_eq!(stats.get("evalsha"), Some(&n), "{stats:?}");
    assert_eq!(stats.get("xadd"), Some(&n), "{stats:?}");
    // Everything else seen was run by the script itself, or is this test's own CONFIG/INFO.
    let allowed = [
        "evalsha",
        "get",
        "xlen",
        "time",
        "set",
        "xadd",
        "config|resetstat",
        "info",
    ];
    let unexpected: Vec<_> = stats
        .keys()
        .filter(|c| !allowed.contains(&c.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "commands outside the script: {unexpected:?}"
    );
    assert!(
        !stats.contains_key("eval"),
        "script is sent by hash, not text"
    );
}

#[tokio::test]
async fn idempotency_records_of_users_with_colons_in_their_ids_never_collide() {
    let h = UpdateHarness::start(&[]);
    let first = h.send(with_key(&hs_token("a:b"), "c", BODY)).await;
    let second = h.send(with_key(&hs_token("a"), "b:c", BODY)).await;
    assert_eq!((first.status, second.status), (202, 202));
    assert_ne!(first.json["eventId"], second.json["eventId"]);
    assert_eq!(second.header("idempotent-replayed"), None);
    assert_eq!(h.stream_len().await, 2);
}
