//! Bad input at scale: 10,000 seeded random malformed requests — random and wrongly typed bodies, out of
//! range increments, extra fields, wrong content types, missing, forged, expired, unsigned and oversized
//! tokens, bad methods and paths, oversized headers, bad `Idempotency-Key`s, with random noise headers —
//! sent concurrently to the real handler against a real Redis. Every one is refused with the 4xx its
//! first defect calls for (problem+json), none is accepted, and nothing reaches the stream; a valid
//! request afterwards is accepted, so the refusals are the input's fault, not the harness's.
//!
//! Requests come from proptest strategies driven by one `TestRunner` with a fixed seed (the same 10,000
//! every run). Long random strings are expanded from a seed rather than drawn character by character,
//! and a generator thread builds requests while the test task sends them, so the run stays well under
//! 20 s in a debug build. (Over 400 lines on purpose: generator, oracle and run read as one spec.)

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::HeaderValue;
use jsonwebtoken::{Algorithm, EncodingKey};
use lambda_http::{Body, Request};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use scoreboard_shared::config::Env;
use scoreboard_testkit::lambda_event::{answer, event, post_update};
use scoreboard_testkit::{RedisServer, fixture, token};
use serde_json::{Map, Value, json};
use update::UpdateService;

use crate::helpers::queued;

const REQUESTS: usize = 10_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 64;
const SEED: &[u8; 32] = b"scoreboard malformed load seed 1";
const SECRET: &str = "malformed-load-secret-that-is-at-least-32-bytes";
const PATH: &str = "/api/v1/scores/update";
const SCOPE: &str = "scores:write";
const MAX_BODY: usize = 1024;
const MAX_INCREMENT: u64 = 100;
/// Token subjects are drawn from this many users, so signed tokens can be reused.
const USERS: usize = 32;

/// Visible ASCII (`!` to `~`), and the same with the space.
const VISIBLE: &[u8] = &ascii_range::<94>(b'!');
const PRINTABLE: &[u8] = &ascii_range::<95>(b' ');
const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=-";
const PATH_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-/";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
/// Characters for random JSON strings: ASCII, accents, CJK, RTL override, zero-width, emoji, quotes.
const UNICODE: &[char] = &[
    'a',
    'Z',
    '0',
    ' ',
    '"',
    '\\',
    '/',
    '\u{e9}',
    '\u{5f20}',
    '\u{202e}',
    '\u{200b}',
    '\u{1f600}',
    '\u{0}',
    '\u{7f}',
    '\u{fffd}',
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
];

/// What is wrong with the `Authorization` header (every variant is refused).
#[derive(Debug, Clone)]
enum BadToken {
    Missing,
    /// Another scheme in front of a valid token.
    Scheme(&'static str),
    /// `Bearer` with something that is not a JWT.
    Garbage(String),
    AlgNone(&'static str),
    Forged,
    Expired,
    NotYetValid,
    NoSubject,
    /// Signed with a key or algorithm the function does not accept.
    WrongAlgorithm(Algorithm),
    /// Another token's payload under this token's signature.
    Tampered,
    /// A validly signed token over 8 KiB (the claim padding, in bytes).
    Oversized(usize),
    /// Valid but without [`SCOPE`] (403, not 401).
    NoScope,
}

/// One defect; a request carries one to three.
#[derive(Debug, Clone)]
enum Defect {
    Path(String),
    Method(&'static str),
    Token(BadToken),
    /// `None`: no `Content-Type` header.
    ContentType(Option<String>),
    /// `None`: no body.
    Body(Option<Vec<u8>>),
    /// The `Idempotency-Key` values sent (one bad value, or two).
    IdempotencyKey(Vec<Vec<u8>>),
}

/// A generated request: a valid one, then the defects applied, plus noise headers that fix nothing.
#[derive(Debug, Clone)]
struct Spec {
    user: usize,
    increment: u64,
    idempotency_key: Option<String>,
    noise: Vec<(String, String)>,
    defects: Vec<Defect>,
}

/// The ASCII characters from `first` to `~`.
const fn ascii_range<const N: usize>(first: u8) -> [u8; N] {
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = first + i as u8;
        i += 1;
    }
    out
}

/// `len` pseudo-random bytes from `seed` (splitmix64).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// Random strings over `alphabet` with a length in `len`, expanded from one drawn seed (a regex
/// strategy draws, and keeps a shrink tree for, every character: too slow for 10,000 requests).
fn text(alphabet: &'static [u8], len: RangeInclusive<usize>) -> impl Strategy<Value = String> {
    (any::<u64>(), len).prop_map(move |(seed, n)| {
        bytes(seed, n)
            .into_iter()
            .map(|b| char::from(alphabet[usize::from(b) % alphabet.len()]))
            .collect()
    })
}

/// A random JSON value (nested at most twice) from a seed.
fn json_from(seed: u64, depth: u32) -> Value {
    let r = bytes(seed, 8);
    let next = u64::from_le_bytes(r.clone().try_into().unwrap());
    match r[0] % if depth == 0 { 6 } else { 8 } {
        0 => Value::Null,
        1 => Value::Bool(r[1].is_multiple_of(2)),
        2 => Value::from(next as i64),
        3 => Value::from((next as i64) as f64 / 1e3),
        4 => Value::from(""),
        5 => Value::from(
            r[1..]
                .iter()
                .map(|b| UNICODE[usize::from(*b) % UNICODE.len()])
                .collect::<String>(),
        ),
        6 => Value::Array(
            (0..r[1] % 3)
                .map(|i| json_from(next ^ u64::from(i), depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..r[1] % 3)
                .map(|i| {
                    let key = char::from(b'a' + r[2 + usize::from(i)] % 26).to_string();
                    (key, json_from(next ^ u64::from(i), depth - 1))
                })
                .collect::<Map<_, _>>(),
        ),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    any::<u64>().prop_map(|seed| json_from(seed, 2))
}

/// A body the handler would accept: `{"scoreIncrement": n}` with an integer in range, nothing else.
fn acceptable_body(bytes: &[u8]) -> bool {
    if bytes.len() > MAX_BODY || bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => {
            map.len() == 1
                && map
                    .get("scoreIncrement")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| (1..=MAX_INCREMENT).contains(&n))
        }
        _ => false,
    }
}

fn bad_body() -> impl Strategy<Value = Option<Vec<u8>>> {
    let text_body = |s: String| Some(s.into_bytes());
    let increment = prop_oneof![
        Just("0".to_owned()),
        (1u64..=u64::MAX).prop_map(|n| format!("-{n}")),
        (MAX_INCREMENT + 1..=u64::MAX).prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("1e400".to_owned()),
        (1u64..=MAX_INCREMENT).prop_map(|n| format!("{n}.0")),
        (1u64..=MAX_INCREMENT).prop_map(|n| format!("{n}.5")),
        (1u64..=MAX_INCREMENT).prop_map(|n| format!("{n}e0")),
        (1u64..=MAX_INCREMENT).prop_map(|n| format!("\"{n}\"")),
        json_value()
            .prop_filter("not a number", |v| !v.is_number())
            .prop_map(|v| v.to_string()),
    ];
    prop_oneof![
        1 => Just(None),
        3 => (any::<u64>(), 0..1200usize).prop_map(|(seed, len)| Some(bytes(seed, len))),
        3 => increment.prop_map(move |n| text_body(format!(r#"{{"scoreIncrement":{n}}}"#))),
        2 => (1u64..=MAX_INCREMENT, text(LOWER, 1..=10), json_value())
            .prop_map(move |(n, k, v)| text_body(json!({"scoreIncrement": n, k: v}).to_string())),
        1 => (1u64..=MAX_INCREMENT, json_value())
            .prop_map(move |(n, v)| text_body(json!({"scoreIncrement": n, "userId": v}).to_string())),
        1 => (1u64..=MAX_INCREMENT).prop_map(move |n| {
            text_body(format!(r#"{{"scoreIncrement":{n},"scoreIncrement":{n}}}"#))
        }),
        1 => (1u64..=MAX_INCREMENT).prop_map(move |n| text_body(format!("[{n}]"))),
        1 => (1u64..=MAX_INCREMENT)
            .prop_map(move |n| text_body(format!(r#"[{{"scoreIncrement":{n}}}]"#))),
        1 => json_value().prop_map(move |v| text_body(v.to_string())),
        1 => (1u64..=MAX_INCREMENT, MAX_BODY..4 * MAX_BODY).prop_map(move |(n, pad)| {
            text_body(format!(r#"{{"scoreIncrement":{n}}}{}"#, " ".repeat(pad)))
        }),
        1 => Just(Some(b"{\"scoreIncrement\":\"\xff\xfe\"}".to_vec())),
    ]
    .prop_filter("not an acceptable body", |b| {
        !b.as_deref().is_some_and(acceptable_body)
    })
}

fn bad_token() -> impl Strategy<Value = BadToken> {
    let dotted = (
        text(TOKEN_CHARS, 1..=40),
        text(TOKEN_CHARS, 1..=80),
        text(TOKEN_CHARS, 0..=60),
    )
        .prop_map(|(a, b, c)| format!("{a}.{b}.{c}"));
    prop_oneof![
        Just(BadToken::Missing),
        proptest::sample::select(vec!["Basic", "Token", "Digest", "JWT"])
            .prop_map(BadToken::Scheme),
        text(TOKEN_CHARS, 0..=300).prop_map(BadToken::Garbage),
        dotted.prop_map(BadToken::Garbage),
        proptest::sample::select(vec!["none", "None", "NONE"]).prop_map(BadToken::AlgNone),
        Just(BadToken::Forged),
        Just(BadToken::Expired),
        Just(BadToken::NotYetValid),
        Just(BadToken::NoSubject),
        proptest::sample::select(vec![Algorithm::HS384, Algorithm::HS512, Algorithm::RS256])
            .prop_map(BadToken::WrongAlgorithm),
        Just(BadToken::Tampered),
        proptest::sample::select(vec![8_200usize, 12_000, 20_000]).prop_map(BadToken::Oversized),
        Just(BadToken::NoScope),
    ]
}

fn bad_idempotency_key() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let one = |s: String| vec![s.into_bytes()];
    prop_oneof![
        Just(vec![Vec::new()]),
        text(VISIBLE, 129..=400).prop_map(one),
        (text(LOWER, 1..=10), text(LOWER, 1..=10)).prop_map(move |(a, b)| one(format!("{a} {b}"))),
        (text(LOWER, 1..=10), text(LOWER, 1..=10)).prop_map(move |(a, b)| one(format!("{a}\t{b}"))),
        (text(LOWER, 0..=10), any::<u64>(), 1..6usize).prop_map(|(a, seed, n)| {
            let high: Vec<u8> = bytes(seed, n).into_iter().map(|b| b | 0x80).collect();
            vec![[a.into_bytes(), high].concat()]
        }),
        (text(VISIBLE, 1..=40), text(VISIBLE, 1..=40))
            .prop_map(|(a, b)| vec![a.into_bytes(), b.into_bytes()]),
    ]
}

fn defect() -> impl Strategy<Value = Defect> {
    let near_misses = vec![
        "/",
        "/api/v1/scores/update/",
        "/api/v1/scores/Update",
        "/api/v1/scores/update.json",
        "/api/v2/scores/update",
        "/api/v1/scores/leaderboard",
        "/api/v1/scores",
        "/API/V1/SCORES/UPDATE",
    ];
    let path = prop_oneof![
        proptest::sample::select(near_misses).prop_map(str::to_owned),
        text(PATH_CHARS, 0..=60).prop_map(|p| format!("/{p}")),
    ]
    .prop_filter("not the route", |p| p != PATH);
    let method = proptest::sample::select(vec![
        "GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "BREW",
    ]);
    let content_type = prop_oneof![
        Just(None),
        proptest::sample::select(vec![
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; version=2",
            "application/xml",
            "json",
        ])
        .prop_map(|ct| Some(ct.to_owned())),
        (text(LOWER, 1..=10), text(LOWER, 1..=12)).prop_map(|(a, b)| Some(format!("{a}/{b}"))),
    ];
    prop_oneof![
        1 => path.prop_map(Defect::Path),
        1 => method.prop_map(Defect::Method),
        4 => bad_token().prop_map(Defect::Token),
        2 => content_type.prop_map(Defect::ContentType),
        4 => bad_body().prop_map(Defect::Body),
        2 => bad_idempotency_key().prop_map(Defect::IdempotencyKey),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let noise = prop_oneof![
        8 => (text(LOWER, 1..=12).prop_map(|n| format!("x-{n}")), text(PRINTABLE, 0..=64)),
        2 => (Just("x-request-id".to_owned()), text(PRINTABLE, 0..=300)),
        1 => (Just("x-padding".to_owned()), text(LOWER, 9_000..=20_000)),
    ];
    (
        0..USERS,
        1..=MAX_INCREMENT,
        proptest::option::of(text(VISIBLE, 1..=128)),
        proptest::collection::vec(noise, 0..3),
        proptest::collection::vec(defect(), 1..=3),
    )
        .prop_map(|(user, increment, idempotency_key, noise, defects)| Spec {
            user,
            increment,
            idempotency_key,
            noise,
            defects,
        })
}

fn claims(user: &str, scope: &str) -> Value {
    let mut c = token::claims(user, &format!("Player {user}"), 3600);
    c["scope"] = scope.into();
    c
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Mints `Authorization` values; signed ones are kept per user and defect (signing is slow in a debug
/// build, and any such token is as good as another).
struct Tokens {
    secret: EncodingKey,
    forged: EncodingKey,
    rsa: EncodingKey,
    signed: RefCell<HashMap<String, String>>,
}

impl Tokens {
    fn new() -> Self {
        Self {
            secret: EncodingKey::from_secret(SECRET.as_bytes()).expect("an HMAC key"),
            forged: EncodingKey::from_secret(b"another-secret-that-is-at-least-32-bytes!")
                .expect("an HMAC key"),
            rsa: EncodingKey::from_rsa_pem(fixture("rsa1.key.pem").as_bytes()).unwrap(),
            signed: RefCell::default(),
        }
    }

    fn signed(&self, user: &str, what: &str, sign: impl FnOnce() -> String) -> String {
        self.signed
            .borrow_mut()
            .entry(format!("{user}/{what}"))
            .or_insert_with(sign)
            .clone()
    }

    /// The `Authorization` value (`None`: no header) and the status it earns (`None`: accepted).
    fn authorization(&self, user: &str, bad: Option<&BadToken>) -> (Option<String>, Option<u16>) {
        let scoped = || claims(user, &format!("profile {SCOPE}"));
        let hs256 = |c: &Value| token::sign(Algorithm::HS256, &self.secret, None, c);
        let valid = || self.signed(user, "valid", || hs256(&scoped()));
        let bearer = |t: String| Some(format!("Bearer {t}"));
        let Some(bad) = bad else {
            return (bearer(valid()), None);
        };
        let what = format!("{bad:?}");
        let value = match bad {
            BadToken::Missing => None,
            BadToken::Scheme(scheme) => Some(format!("{scheme} {}", valid())),
            BadToken::Garbage(garbage) => bearer(garbage.clone()),
            BadToken::AlgNone(alg) => bearer(format!(
                "{}.{}.",
                b64(&json!({"alg": alg, "typ": "JWT"})),
                b64(&scoped())
            )),
            BadToken::Forged => bearer(self.signed(user, &what, || {
                token::sign(Algorithm::HS256, &self.forged, None, &scoped())
            })),
            BadToken::Expired => bearer(self.signed(user, &what, || {
                let mut c = scoped();
                c["exp"] = (token::now_secs() - 3600).into();
                hs256(&c)
            })),
            BadToken::NotYetValid => bearer(self.signed(user, &what, || {
                let mut c = scoped();
                c["nbf"] = (token::now_secs() + 3600).into();
                hs256(&c)
            })),
            BadToken::NoSubject => bearer(self.signed(user, &what, || {
                let mut c = scoped();
                c.as_object_mut().unwrap().remove("sub");
                hs256(&c)
            })),
            BadToken::WrongAlgorithm(alg) => bearer(self.signed(user, &what, || {
                let key = if *alg == Algorithm::RS256 {
                    &self.rsa
                } else {
                    &self.secret
                };
                token::sign(*alg, key, None, &scoped())
            })),
            BadToken::Tampered => bearer(self.signed(user, &what, || {
                let mine = hs256(&scoped());
                let theirs = hs256(&claims("admin", SCOPE));
                let parts: Vec<&str> = mine.split('.').collect();
                let payload = theirs.split('.').nth(1).unwrap();
                format!("{}.{payload}.{}", parts[0], parts[2])
            })),
            BadToken::Oversized(pad) => bearer(self.signed(user, &what, || {
                let mut c = scoped();
                c["pad"] = "x".repeat(*pad).into();
                hs256(&c)
            })),
            BadToken::NoScope => {
                bearer(self.signed(user, &what, || hs256(&claims(user, "profile"))))
            }
        };
        let status = if matches!(bad, BadToken::NoScope) {
            403
        } else {
            401
        };
        (value, Some(status))
    }
}

/// The request as it goes to the handler, the status its first defect calls for, and its spec.
struct Built {
    request: Request,
    expected: u16,
    spec: Spec,
}

fn build(tokens: &Tokens, spec: Spec) -> Built {
    let mut method = "POST";
    let mut path = PATH.to_owned();
    let mut bad_token = None;
    let mut content_type = Some("application/json".to_owned());
    let mut body = Some(format!(r#"{{"scoreIncrement":{}}}"#, spec.increment).into_bytes());
    let mut idempotency: Vec<Vec<u8>> = spec
        .idempotency_key
        .iter()
        .map(|k| k.clone().into_bytes())
        .collect();
    let (mut bad_content_type, mut bad_body, mut bad_key) = (false, false, false);
    for defect in &spec.defects {
        match defect {
            Defect::Path(p) => path.clone_from(p),
            Defect::Method(m) => method = *m,
            Defect::Token(t) => bad_token = Some(t),
            Defect::ContentType(ct) => {
                content_type.clone_from(ct);
                bad_content_type = true;
            }
            Defect::Body(b) => {
                body.clone_from(b);
                bad_body = true;
            }
            Defect::IdempotencyKey(values) => {
                idempotency.clone_from(values);
                bad_key = true;
            }
        }
    }
    let user = format!("user-{}", spec.user);
    let (auth, token_status) = tokens.authorization(&user, bad_token);
    let body_len = body.as_ref().map_or(0, Vec::len);
    // The handler's order: route, method, token, scope, size, content type, body, Idempotency-Key.
    let expected = if path != PATH {
        404
    } else if method != "POST" {
        405
    } else if let Some(status) = token_status {
        status
    } else if body_len > MAX_BODY {
        413
    } else if bad_content_type {
        415
    } else if bad_body || bad_key {
        400
    } else {
        unreachable!("every spec carries a defect: {spec:?}")
    };

    let mut headers: Vec<(&str, &str)> = spec
        .noise
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    if let Some(ct) = &content_type {
        headers.push(("content-type", ct));
    }
    let mut request = event(method, &path, &headers, None);
    *request.body_mut() = match body {
        None => Body::Empty,
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        },
    };
    for value in &idempotency {
        let value = HeaderValue::from_bytes(value).expect("a header value http can carry");
        request.headers_mut().append("idempotency-key", value);
    }
    Built {
        request,
        expected,
        spec,
    }
}

/// Generates and builds the requests on a thread of their own (in seed order), handing them over
/// through a bounded channel.
fn generate() -> tokio::sync::mpsc::Receiver<Built> {
    let (tx, rx) = tokio::sync::mpsc::channel(4 * CONCURRENCY);
    std::thread::spawn(move || {
        let tokens = Tokens::new();
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, SEED),
        );
        let strategy = spec();
        for _ in 0..REQUESTS {
            let spec = strategy
                .new_tree(&mut runner)
                .expect("generate a request")
                .current();
            if tx.blocking_send(build(&tokens, spec)).is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_malformed_requests_are_all_refused_and_enqueue_nothing() {
    let redis = RedisServer::start();
    let url = redis.url();
    let service = UpdateService::from_env(&Env::from_pairs([
        ("REDIS_URL", url.as_str()),
        ("JWT_SECRET", SECRET),
        ("UPDATE_REQUIRED_SCOPE", SCOPE),
        ("MAX_SCORE_INCREMENT", "100"),
    ]))
    .expect("valid test config");

    let started = Instant::now();
    let requests = futures::stream::unfold(generate(), |mut rx| {
        Box::pin(async move { rx.recv().await.map(|built| (built, rx)) })
    });
    let mut responses = requests
        .map(|built| {
            let service = &service;
            async move {
                let got = answer(service.handle(built.request).await);
                (got, built.expected, built.spec)
            }
        })
        .buffer_unordered(CONCURRENCY);
    let mut statuses = BTreeMap::<u16, usize>::new();
    let mut wrong = Vec::new();
    while let Some((got, expected, spec)) = responses.next().await {
        *statuses.entry(got.status).or_default() += 1;
        let problem = got.header("content-type") == Some("application/problem+json");
        if (got.status != expected || !problem) && wrong.len() < 5 {
            wrong.push(format!(
                "expected {expected}, got {} {:?} for {spec:?}",
                got.status, got.json
            ));
        }
    }
    drop(responses);
    let elapsed = started.elapsed();

    assert_eq!(statuses.values().sum::<usize>(), REQUESTS);
    let server_errors: usize = statuses.range(500..).map(|(_, n)| n).sum();
    assert_eq!(server_errors, 0, "no 5xx: {statuses:?}");
    assert_eq!(statuses.get(&202), None, "none accepted: {statuses:?}");
    assert!(
        wrong.is_empty(),
        "refused for another reason than its first defect:\n{}",
        wrong.join("\n")
    );
    for status in [400, 401, 403, 404, 405, 413, 415] {
        assert!(
            statuses.get(&status).is_some_and(|n| *n >= 20),
            "the mix covers {status}: {statuses:?}"
        );
    }
    assert_eq!(queued(&redis).await, 0, "nothing enqueued");
    // A guard against a hang or a quadratic path, not a performance test: a debug build on a loaded 2-core
    // CI machine has taken 70 s.
    eprintln!("{REQUESTS} malformed requests refused in {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(300),
        "{REQUESTS} requests took {elapsed:?}"
    );

    // The same service accepts a valid request: the refusals above were the input's fault.
    let valid = token::hs256_with(SECRET, &claims("control", SCOPE));
    let accepted = answer(
        service
            .handle(post_update(&valid, r#"{"scoreIncrement":5}"#))
            .await,
    );
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert_eq!(queued(&redis).await, 1);
}
