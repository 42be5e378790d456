//! CloudWatch Embedded Metric Format: the Lambdas' counters (accepted, rejected by reason, rate-limited) as
//! one JSON log line per request, which CloudWatch turns into metrics without an SDK call or an agent.
//! Namespace `Scoreboard`, dimensions `Function` and `Function`+`Outcome`; the line carries no user data.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// The CloudWatch namespace of every function metric.
pub const NAMESPACE: &str = "Scoreboard";

/// How one request ended, for the metrics: `accepted`, `replayed`, or the problem type's slug
/// (`rate-limited`, `validation`, `unauthorized`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome(pub &'static str);

impl Outcome {
    pub const ACCEPTED: Self = Self("accepted");
    pub const REPLAYED: Self = Self("replayed");
    pub const SERVED: Self = Self("served");

    fn is_success(self) -> bool {
        matches!(self.0, "accepted" | "replayed" | "served")
    }
}

/// The EMF line for one request of `function` that ended with `outcome`: `Requests` = 1, and
/// `Accepted`, `Rejected` and `RateLimited` as 0/1, per function and per function and outcome.
pub fn line(function: &str, outcome: Outcome) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let flag = |on: bool| u8::from(on);
    json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"], ["Function", "Outcome"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Accepted", "Unit": "Count"},
                    {"Name": "Rejected", "Unit": "Count"},
                    {"Name": "RateLimited", "Unit": "Count"},
                ],
            }],
        },
        "Function": function,
        "Outcome": outcome.0,
        "Requests": 1,
        "Accepted": flag(outcome == Outcome::ACCEPTED),
        "Rejected": flag(!outcome.is_success()),
        "RateLimited": flag(outcome.0 == "rate-limited"),
    })
    .to_string()
}

/// Writes the line to stdout, where the Lambda runtime sends it to CloudWatch Logs.
pub fn emit(function: &str, outcome: Outcome) {
    println!("{}", line(function, outcome));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(function: &str, outcome: Outcome) -> serde_json::Value {
        serde_json::from_str(&line(function, outcome)).unwrap()
    }

    #[test]
    fn the_line_declares_every_metric_it_carries() {
        let line = parse("update", Outcome::ACCEPTED);
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        for metric in declared["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} has a value");
        }
        for dimensions in declared["Dimensions"].as_array().unwrap() {
            for dimension in dimensions.as_array().unwrap() {
                assert!(line[dimension.as_str().unwrap()].is_string());
            }
        }
        assert!(line["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn outcomes_map_to_accepted_rejected_and_rate_limited() {
        let counts = |o| {
            let l = parse("update", o);
            (
                l["Accepted"].clone(),
                l["Rejected"].clone(),
                l["RateLimited"].clone(),
            )
        };
        assert_eq!(counts(Outcome::ACCEPTED), (json!(1), json!(0), json!(0)));
        assert_eq!(counts(Outcome::REPLAYED), (json!(0), json!(0), json!(0)));
        assert_eq!(
            counts(Outcome("rate-limited")),
            (json!(0), json!(1), json!(1))
        );
        assert_eq!(
            counts(Outcome("validation")),
            (json!(0), json!(1), json!(0))
        );
        assert_eq!(
            parse("update", Outcome("validation"))["Outcome"],
            "validation"
        );
    }
}
