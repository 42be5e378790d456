//! Real function-URL (API Gateway v2 payload) events, as AWS sends them, and decoded Lambda responses:
//! how the function tests and the worker tests drive the handlers without a Lambda runtime.

use std::collections::HashMap;

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// A function-URL event for `method path` with `headers` and an optional body.
pub fn event(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .collect();
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnop",
            "domainName": "abcdefghijklmnop.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefghijklmnop",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test"
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1_795_881_600_000u64
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("valid function URL event")
}

/// `POST /api/v1/scores/update` with a bearer token and a JSON body.
pub fn post_update(token: &str, body: &str) -> Request {
    event(
        "POST",
        "/api/v1/scores/update",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
}

/// A decoded response: status, headers and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem `type`, after checking the body is problem+json.
    pub fn problem_type(&self) -> &str {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        self.json["type"].as_str().unwrap_or_default()
    }
}

/// Decodes a handler's response.
pub fn answer(response: Response<Body>) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let json = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Answer {
        status,
        headers,
        json,
    }
}
