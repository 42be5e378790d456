//! Rejections: missing or bad tokens (`401` with `WWW-Authenticate`), unknown routes, other methods, and
//! Redis down (`503` problem).

use scoreboard_testkit::token;

use crate::helpers::*;

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
    h.redis.standalone_mut().stop();
    for path in [BOARD, ME] {
        let answer = h.get(path, Some(&hs_token("v")), &[]).await;
        assert_eq!(answer.status, 503, "{path}");
        assert_eq!(answer.problem_type(), "/problems/unavailable");
    }
}
