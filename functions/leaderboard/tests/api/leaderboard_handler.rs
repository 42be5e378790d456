//! `GET /api/v1/scores/leaderboard` and `/me`: snapshot shape, ETag/304, the fallback from the sorted set,
//! the ranking rule for ties, ranked and unranked users, and rejections.

use redis::AsyncCommands;
use scoreboard_shared::redis::keys;
use scoreboard_shared::snapshot::{Entry, Snapshot};
use serde_json::json;

use scoreboard_testkit::token;

use crate::helpers::*;

const BOARD: &str = "/api/v1/scores/leaderboard";
const ME: &str = "/api/v1/scores/me";

async fn seed_set(h: &LeaderboardHarness, rows: &[(&str, u64)], version: u64) {
    let mut conn = h.redis.connection().await;
    for (user, score) in rows {
        let _: () = conn.zadd(keys::LEADERBOARD, *user, *score).await.unwrap();
        let _: () = conn
            .hset(keys::NAMES, *user, format!("Name {user}"))
            .await
            .unwrap();
    }
    let _: () = conn.set(keys::VERSION, version).await.unwrap();
}

#[tokio::test]
async fn returns_the_stored_snapshot_with_its_version_as_etag() {
    let h = LeaderboardHarness::start(&[]);
    let snapshot = Snapshot {
        version: 5,
        updated_at: "2026-11-28T16:00:00Z".into(),
        entries: vec![Entry {
            rank: 1,
            user_id: "u1".into(),
            name: "Ann".into(),
            score: 120,
        }],
    };
    let _: () = h
        .redis
        .connection()
        .await
        .set(keys::TOP, serde_json::to_string(&snapshot).unwrap())
        .await
        .unwrap();
    let token = hs_token("viewer");

    let answer = h.get(BOARD, Some(&token), &[]).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("etag"), Some("\"5\""));
    assert_eq!(
        answer.json,
        json!({"version":5,"updatedAt":"2026-11-28T16:00:00Z",
               "entries":[{"rank":1,"userId":"u1","name":"Ann","score":120}]})
    );

    let not_modified = h
        .get(BOARD, Some(&token), &[("if-none-match", "\"5\"")])
        .await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(
        not_modified.json,
        serde_json::Value::Null,
        "304 has no body"
    );
    assert_eq!(not_modified.header("etag"), Some("\"5\""));

    let stale = h
        .get(BOARD, Some(&token), &[("if-none-match", "\"4\"")])
        .await;
    assert_eq!(stale.status, 200);
}

#[tokio::test]
async fn an_empty_board_is_version_zero_with_no_entries() {
    let h = LeaderboardHarness::start(&[]);
    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["version"], 0);
    assert_eq!(answer.json["entries"], json!([]));
}

#[tokio::test]
async fn without_a_snapshot_the_board_is_read_from_the_set_with_ties_by_user_id() {
    let h = LeaderboardHarness::start(&[("LEADERBOARD_SIZE", "3")]);
    // "d" and "b" and "c" tie at 50; the boundary keeps the two smallest ids.
    seed_set(
        &h,
        &[("a", 90), ("d", 50), ("c", 50), ("b", 50), ("e", 10)],
        7,
    )
    .await;

    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("etag"), Some("\"7\""));
    let rows: Vec<(u64, String, u64)> = answer.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["rank"].as_u64().unwrap(),
                e["userId"].as_str().unwrap().to_owned(),
                e["score"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, "a".into(), 90),
            (2, "b".into(), 50),
            (3, "c".into(), 50)
        ]
    );
    assert_eq!(answer.json["entries"][0]["name"], "Name a");
}

#[tokio::test]
async fn me_gives_rank_and_score_with_the_same_tie_rule_and_null_when_unranked() {
    let h = LeaderboardHarness::start(&[]);
    seed_set(
        &h,
        &[("a", 90), ("d", 50), ("c", 50), ("b", 50), ("e", 10)],
        1,
    )
    .await;

    for (user, rank, score) in [
        ("a", 1, 90),
        ("b", 2, 50),
        ("c", 3, 50),
        ("d", 4, 50),
        ("e", 5, 10),
    ] {
        let answer = h.get(ME, Some(&hs_token(user)), &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.json,
            json!({"userId": user, "name": format!("Name {user}"), "rank": rank, "score": score}),
            "{user}"
        );
    }
    let newcomer = h.get(ME, Some(&hs_token("zed")), &[]).await;
    assert_eq!(newcomer.status, 200);
    assert_eq!(
        newcomer.json,
        json!({"userId":"zed","name":null,"rank":null,"score":0})
    );
}

#[tokio::test]
async fn reads_require_a_valid_token_and_a_known_route() {
    let h = LeaderboardHarness::start(&[]);
    for path in [BOARD, ME] {
        let missing = h.get(path, None, &[]).await;
        assert_eq!(missing.status, 401, "{path}");
        assert_eq!(
            missing.header("www-authenticate"),
            Some(r#"Bearer realm="scoreboard""#)
        );
        let expired = token::hs256_with(SECRET, &token::claims("x", "x", -3600));
        let bad = h.get(path, Some(&expired), &[]).await;
        assert_eq!(bad.status, 401, "{path}");
        assert!(
            bad.header("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
        assert_eq!(h.get(path, Some("garbage"), &[]).await.status, 401);
    }
    let token = hs_token("x");
    assert_eq!(
        h.get("/api/v1/scores/other", Some(&token), &[])
            .await
            .status,
        404
    );
    let post = h
        .service
        .handle(event(
            "POST",
            BOARD,
            &[("authorization", &format!("Bearer {token}"))],
            Some("{}"),
        ))
        .await;
    let post = answer(post);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
}

#[tokio::test]
async fn redis_down_is_503_problem() {
    let mut h = LeaderboardHarness::start(&[]);
    h.redis.stop();
    let answer = h.get(BOARD, Some(&hs_token("v")), &[]).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.problem_type(), "/problems/unavailable");
}
