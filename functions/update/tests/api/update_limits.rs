//! Limits that need Redis to be exact: the per-user rate limit, idempotency under concurrency, the backlog
//! bound, and the one-round-trip guarantee. The contract tests run on standalone Redis and on a real
//! 3-master cluster (`<test>::standalone`, `<test>::cluster`), with users whose partitions live on every
//! master.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::future::join_all;

use scoreboard_shared::partition::{EventId, Partitioner};

use crate::helpers::*;
use scoreboard_testkit::on_standalone_and_cluster;

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

on_standalone_and_cluster!(
    fifty_concurrent_requests_from_each_user_accept_exactly_the_burst,
    idempotent_replay_returns_the_first_answer_and_enqueues_nothing,
    concurrent_requests_with_one_key_enqueue_once,
    the_backlog_bound_is_per_partition_so_a_full_partition_refuses_only_its_users,
    each_accepted_update_is_exactly_one_script_call_and_nothing_else,
);

/// The default partitioning the harness runs with.
fn partitioner() -> Partitioner {
    Partitioner::new(PARTITIONS)
}

async fn fifty_concurrent_requests_from_each_user_accept_exactly_the_burst(target: Target) {
    // 1 token/s so the refill during the burst cannot blur the count.
    let h = &UpdateHarness::on(
        target,
        &[("RATE_LIMIT_PER_SEC", "1"), ("RATE_LIMIT_BURST", "20")],
    );
    // One spammer per master (on a cluster): each limit lives on its own user's slot.
    let spammers = h.redis.spread_users(partitioner(), "spammer-", 1);
    let tokens: Vec<String> = spammers.iter().map(|u| hs_token(u)).collect();

    let started = Instant::now();
    let answers = join_all(
        (0..50)
            .flat_map(|_| {
                tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (i, post_update(t, BODY)))
            })
            .map(|(i, request)| async move { (i, h.send(request).await) }),
    )
    .await;
    // Exactly the burst when the requests take under 1 s (they take 0.2–0.5 s here); a slower machine
    // may have refilled one token per whole second.
    let refills = usize::try_from(started.elapsed().as_secs()).unwrap();
    for (i, spammer) in spammers.iter().enumerate() {
        let mine: Vec<&Answer> = answers
            .iter()
            .filter(|(who, _)| *who == i)
            .map(|(_, a)| a)
            .collect();
        let accepted = mine.iter().filter(|a| a.status == 202).count();
        let limited: Vec<_> = mine.iter().filter(|a| a.status == 429).collect();
        assert!(
            (20..=20 + refills).contains(&accepted),
            "{spammer}: {accepted} accepted"
        );
        assert_eq!(accepted + limited.len(), 50, "{spammer}");
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
    }
    let accepted = answers.iter().filter(|(_, a)| a.status == 202).count();
    assert_eq!(h.stream_len().await, accepted);

    // Other users are unaffected.
    assert_eq!(
        h.send(post_update(&hs_token("bystander"), BODY))
            .await
            .status,
        202
    );
    assert_eq!(h.stream_len().await, accepted + 1);
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

async fn idempotent_replay_returns_the_first_answer_and_enqueues_nothing(target: Target) {
    let h = UpdateHarness::on(target, &[]);
    // One user per master (on a cluster), all with the same key: keys are scoped to the user.
    let users = h.redis.spread_users(partitioner(), "ida-", 1);
    let mut firsts = Vec::new();
    for user in &users {
        let token = hs_token(user);
        let first = h
            .send(with_key(&token, "click-1", r#"{"scoreIncrement":7}"#))
            .await;
        let replay = h
            .send(with_key(&token, "click-1", r#"{"scoreIncrement":7}"#))
            .await;
        let replay_spaced = h
            .send(with_key(&token, "click-1", r#"{ "scoreIncrement" : 7 }"#))
            .await;

        assert_eq!(first.status, 202, "{user}: {first:?}");
        assert_eq!(first.header("idempotent-replayed"), None);
        assert_eq!(replay.status, 202);
        assert_eq!(replay.json["eventId"], first.json["eventId"], "{user}");
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(replay_spaced.json["eventId"], first.json["eventId"]);
        let event_id: EventId = first.json["eventId"].as_str().unwrap().parse().unwrap();
        assert_eq!(event_id.partition, partitioner().partition_of(user));
        firsts.push(event_id);
    }
    assert_eq!(h.stream_len().await, users.len(), "replays enqueue nothing");
    let distinct: HashSet<_> = firsts.iter().collect();
    assert_eq!(
        distinct.len(),
        users.len(),
        "another user's identical key is a new update"
    );

    for user in &users {
        let conflict = h
            .send(with_key(
                &hs_token(user),
                "click-1",
                r#"{"scoreIncrement":8}"#,
            ))
            .await;
        assert_eq!(conflict.status, 422);
        assert_eq!(conflict.problem_type(), "/problems/idempotency-key-reused");
    }
    let entries = stream_entries(&h.redis).await;
    let mut ids: Vec<EventId> = entries.iter().map(|(id, _)| id.parse().unwrap()).collect();
    ids.sort_by_key(|id| (id.partition, id.entry));
    firsts.sort_by_key(|id| (id.partition, id.entry));
    assert_eq!(ids, firsts, "exactly the first updates are queued");
}

async fn concurrent_requests_with_one_key_enqueue_once(target: Target) {
    let h = &UpdateHarness::on(target, &[]);
    let racers = h.redis.spread_users(partitioner(), "racer-", 1);
    let tokens: Vec<String> = racers.iter().map(|u| hs_token(u)).collect();

    let answers = join_all(
        (0..20)
            .flat_map(|_| tokens.iter().enumerate())
            .map(|(i, t)| async move { (i, h.send(with_key(t, "double-click", BODY)).await) }),
    )
    .await;

    assert!(answers.iter().all(|(_, a)| a.status == 202), "{answers:?}");
    for (i, racer) in racers.iter().enumerate() {
        let ids: HashSet<_> = answers
            .iter()
            .filter(|(who, _)| *who == i)
            .map(|(_, a)| a.json["eventId"].to_string())
            .collect();
        assert_eq!(ids.len(), 1, "one event id for all of {racer}: {ids:?}");
    }
    assert_eq!(h.stream_len().await, racers.len());
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

async fn the_backlog_bound_is_per_partition_so_a_full_partition_refuses_only_its_users(
    target: Target,
) {
    let h = UpdateHarness::on(target, &[("STREAM_MAX_BACKLOG", "2"), ("PARTITIONS", "4")]);
    let partitioner = Partitioner::new(4);
    let full = partitioner.partition_of("a");
    // On a cluster the 4 partitions live on every master, the other user's on another than the full one's.
    let by_master: HashSet<u16> = partitioner
        .all()
        .map(|p| h.redis.master_of_partition(p))
        .collect();
    assert_eq!(by_master.len(), h.redis.master_ports().len());
    let same: Vec<String> = (0..200)
        .map(|i| format!("same-{i}"))
        .filter(|u| partitioner.partition_of(u) == full)
        .take(3)
        .collect();
    let other = (0..200)
        .map(|i| format!("other-{i}"))
        .find(|u| {
            let p = partitioner.partition_of(u);
            p != full
                && (target == Target::Standalone
                    || h.redis.master_of_partition(p) != h.redis.master_of_partition(full))
        })
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

async fn each_accepted_update_is_exactly_one_script_call_and_nothing_else(target: Target) {
    let h = UpdateHarness::on(target, &[]);
    // Warm-up on every master: the connections' handshakes and the one-time script load on each.
    for user in h.redis.spread_users(partitioner(), "warm-", 1) {
        assert_eq!(
            h.send(post_update(&hs_token(&user), BODY)).await.status,
            202
        );
    }
    // The topology is read before the statistics restart: only the handler's commands are counted.
    let users = h.redis.spread_users(partitioner(), "u", 4);
    let by_master = h.redis.users_by_master(partitioner(), &users);
    let masters = h.redis.reset_stats();

    for (i, user) in users.iter().enumerate() {
        let answer = h
            .send(with_key(&hs_token(user), &format!("k{i}"), BODY))
            .await;
        assert_eq!(answer.status, 202);
    }

    let per_master = TestRedis::command_stats(&masters);
    let mut total: HashMap<String, u64> = HashMap::new();
    for (port, stats) in &per_master {
        let mine = by_master.get(port).map_or(0, Vec::len) as u64;
        assert!(mine > 0, "master {port} holds some of the users");
        // Each master ran exactly the scripts of its own users: no redirection, no retry elsewhere.
        assert_eq!(stats.get("evalsha"), Some(&mine), "{port}: {stats:?}");
        assert_eq!(stats.get("xadd"), Some(&mine), "{port}: {stats:?}");
        for (command, calls) in stats {
            *total.entry(command.clone()).or_default() += calls;
        }
    }
    let n = users.len() as u64;
    assert_eq!(total.get("evalsha"), Some(&n), "{total:?}");
    assert_eq!(total.get("xadd"), Some(&n), "{total:?}");
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
    let unexpected: Vec<_> = total
        .keys()
        .filter(|c| !allowed.contains(&c.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "commands outside the script: {unexpected:?}"
    );
    assert!(
        !total.contains_key("eval"),
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
