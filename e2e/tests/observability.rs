//! The operations kit agrees with the binaries: every metric named by the alert rules
//! (`ops/prometheus/alerts.yml`) and by the dashboard (`ops/grafana/scoreboard.json`) is exported by the real
//! worker, the real SSE server or a real `prometheus-redis-exporter` in front of the stack's Redis — so a
//! renamed metric fails here instead of silencing an alert. Also: every alert links a runbook section that
//! exists in `docs/operations.md`, and the dashboard has the shape Grafana imports.
//!
//! `SCOREBOARD_OPS_DIR` points the test at another copy of `ops/` (to try an edit without touching the tree).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use scoreboard_e2e::{Proc, SseClient, Stack, StackOptions, workspace_root};
use scoreboard_testkit::free_port;

const EXPORTER: &str = "/usr/bin/prometheus-redis-exporter";

/// Series the binaries create only on an event the test cannot cause cheaply; for these the name must at
/// least be the one the component declares (its metric-name constants), so a rename still fails.
const LAZY: &[(&str, &str)] = &[
    // Needs a client too slow to see every version.
    ("sse_versions_skipped_total", "sse/src/telemetry.rs"),
];

fn ops_dir() -> PathBuf {
    std::env::var_os("SCOREBOARD_OPS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("ops"))
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `expr:` values of a rules file (one line, or a `|` block of deeper-indented lines).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        i += 1;
        let Some(value) = trimmed.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value == "|" || value == ">" || value.starts_with("|-") || value.starts_with(">-") {
            let indent = line.len() - trimmed.len();
            let mut block = String::new();
            while i < lines.len() {
                let next = lines[i];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push_str(next.trim());
                block.push(' ');
                i += 1;
            }
            exprs.push(block);
        } else {
            exprs.push(value.trim_matches(|c| c == '\'' || c == '"').to_owned());
        }
    }
    exprs
}

/// Every `"expr"` string of a Grafana dashboard (panels, rows, targets, at any depth).
fn dashboard_exprs(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(expr) if key == "expr" => out.push(expr.clone()),
                    other => dashboard_exprs(other, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Metric names in a PromQL expression: identifiers that are not functions, keywords, label names (in
/// `{…}` or after `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`), Grafana variables (`$…`),
/// strings, durations or numbers. `up` (Prometheus' own) is left out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const LABEL_LIST: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
    // Aggregations may put `by (…)` between their name and their `(`.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_to = |mut i: usize, close: char| {
        let mut quote = None;
        while i < chars.len() {
            let c = chars[i];
            match quote {
                Some(_) if c == '\\' => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
                None if c == close => return i + 1,
                None => {}
            }
            i += 1;
        }
        i
    };
    let mut names = BTreeSet::new();
    let mut label_list_next = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                // A string literal: skip it, escapes included.
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' => i = skip_to(i + 1, '}'),
            '[' => i = skip_to(i + 1, ']'),
            '(' if label_list_next => {
                label_list_next = false;
                i = skip_to(i + 1, ')');
            }
            '$' => {
                i += 1;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len()
                    && (is_ident(chars[i])
                        || chars[i] == '.'
                        || ((chars[i] == '+' || chars[i] == '-')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
            }
            c if is_ident(c) => {
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                let ident: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = ident.to_ascii_lowercase();
                if LABEL_LIST.contains(&lower.as_str()) {
                    label_list_next = true;
                } else if next == Some(&'(')
                    || KEYWORDS.contains(&lower.as_str())
                    || AGGREGATIONS.contains(&lower.as_str())
                    || ident == "up"
                {
                    // A function call, an operator keyword, or Prometheus' own `up`.
                } else {
                    names.insert(ident);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Metric name → where the kit refers to it.
fn referenced_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let ops = ops_dir();
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let rules = ops.join("prometheus/alerts.yml");
    for expr in rule_exprs(&read(&rules)) {
        for name in metric_names(&expr) {
            refs.entry(name)
                .or_default()
                .insert("ops/prometheus/alerts.yml".into());
        }
    }
    let dashboard = ops.join("grafana/scoreboard.json");
    let json: serde_json::Value = serde_json::from_str(&read(&dashboard)).expect("dashboard JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&json, &mut exprs);
    assert!(!exprs.is_empty(), "no expressions in the dashboard");
    for expr in exprs {
        for name in metric_names(&expr) {
            refs.entry(name)
                .or_default()
                .insert("ops/grafana/scoreboard.json".into());
        }
    }
    refs
}

/// Metric names in a Prometheus text exposition (samples and `# TYPE` lines).
fn exposition_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                rest.split_whitespace().next()
            } else if line.starts_with('#') || line.trim().is_empty() {
                None
            } else {
                line.split(['{', ' ']).next()
            }
        })
        .map(str::to_owned)
        .collect()
}

/// Whether `name` is exported, reading `x_sum`/`x_count`/`x_bucket` as series of summary or histogram `x`.
fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_sum", "_count", "_bucket"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| exported.contains(base))
        })
}

async fn scrape(http: &reqwest::Client, url: &str) -> Option<String> {
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.text().await.ok()
}

fn redis_cli(redis_url: &str, args: &[&str]) {
    let status = Command::new("redis-cli")
        .args(["-u", redis_url])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run redis-cli");
    assert!(status.success(), "redis-cli {args:?} failed");
}

#[test]
fn promql_tokenizer_finds_metric_names_only() {
    let names = metric_names(
        r#"sum by (job, stage) (rate(foo_total{stage="store",x=~"a|{b}"}[5m])) / on() group_left(instance)
           (bar_bytes > 0) and max_over_time(baz:ratio[$__range]) > 1e9 or vector(0) unless up == 0"#,
    );
    let expected: BTreeSet<String> = ["foo_total", "bar_bytes", "baz:ratio"]
        .map(String::from)
        .into();
    assert_eq!(names, expected);
    assert_eq!(
        rule_exprs(
            "  - alert: A\n    expr: a_total > 0\n  - alert: B\n    expr: |\n      b\n        / c\n    for: 1m\n"
        ),
        vec!["a_total > 0".to_owned(), "b / c ".to_owned()]
    );
}

/// Every alert has a `runbook_url` into `docs/operations.md` whose anchor is one of its headings.
#[test]
fn every_alert_links_an_existing_runbook_section() {
    let rules = read(&ops_dir().join("prometheus/alerts.yml"));
    let doc = read(&workspace_root().join("docs/operations.md"));
    let anchors: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let alerts = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    let urls: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("runbook_url:"))
        .map(|v| v.trim().trim_matches('"'))
        .collect();
    assert!(alerts > 0);
    assert_eq!(alerts, urls.len(), "every alert needs a runbook_url");
    for url in urls {
        let anchor = url
            .strip_prefix("docs/operations.md#")
            .unwrap_or_else(|| panic!("runbook_url {url} does not point into docs/operations.md"));
        assert!(
            anchors.contains(anchor),
            "runbook_url {url}: no heading with that anchor in docs/operations.md"
        );
    }
}

/// The dashboard is what Grafana imports: a recent schema, a Prometheus data source variable that every
/// panel uses, unique panel ids.
#[test]
fn dashboard_has_the_shape_grafana_imports() {
    let json: serde_json::Value =
        serde_json::from_str(&read(&ops_dir().join("grafana/scoreboard.json"))).expect("JSON");
    assert!(json["schemaVersion"].as_u64().unwrap_or(0) >= 36);
    assert!(json["uid"].is_string() && json["title"].is_string());
    let vars = json["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );
    let panels = json["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate panel id"
        );
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "gridPos");
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
            assert!(!panel["targets"].as_array().expect("targets").is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_rules_and_the_dashboard_is_exported() {
    let refs = referenced_metrics();
    assert!(refs.len() > 10, "suspiciously few metric names: {refs:?}");
    assert!(
        std::path::Path::new(EXPORTER).exists(),
        "{EXPORTER} missing: run `make setup` (Debian package prometheus-redis-exporter)"
    );

    let stack = Stack::start(StackOptions::default()).await;
    let exporter_port = free_port();
    let mut exporter_cmd = Command::new(EXPORTER);
    exporter_cmd
        .arg(format!("--redis.addr={}", stack.redis_url))
        .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"));
    let mut exporter = Proc::spawn(
        "prometheus-redis-exporter",
        exporter_cmd,
        &stack.dir().join("redis-exporter.log"),
    );
    exporter.wait_port(exporter_port, Duration::from_secs(20));

    // Make the lazily created series exist: an applied update (worker counters, lag, snapshot), a stream
    // that receives it (SSE connections, events), a refused stream, a dropped Pub/Sub subscription
    // (resubscription) and dropped worker connections (a retried fetch).
    let token = stack.token("u", "U");
    let mut client = SseClient::connect(&stack.http, &stack.events_url(), &token).await;
    client
        .next_snapshot(Duration::from_secs(30))
        .await
        .expect("snapshot on connect");
    assert_eq!(
        stack.post_update(&token, 5).await,
        202,
        "logs:\n{}",
        stack.logs()
    );
    client
        .next_snapshot(Duration::from_secs(30))
        .await
        .expect("the new board");
    let refused = stack
        .http
        .get(stack.events_url())
        .send()
        .await
        .expect("SSE answers");
    assert_eq!(refused.status(), 401);
    redis_cli(&stack.redis_url, &["CLIENT", "KILL", "TYPE", "pubsub"]);
    redis_cli(&stack.redis_url, &["CLIENT", "KILL", "TYPE", "normal"]);

    let exporter_url = format!("http://127.0.0.1:{exporter_port}/metrics");
    let worker_url = format!("{}/metrics", stack.worker_base);
    // Scrape until every referenced name shows up (or only the lazy ones are left), at most 30 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (missing, exported) = loop {
        let mut names = BTreeSet::new();
        for url in [&worker_url, &exporter_url] {
            names.extend(exposition_names(
                &scrape(&stack.http, url).await.unwrap_or_default(),
            ));
        }
        // The private metrics listener; before it existed the public port served /metrics.
        let sse = match scrape(&stack.http, &format!("{}/metrics", stack.sse_metrics_base)).await {
            Some(text) => Some(text),
            None => scrape(&stack.http, &format!("{}/metrics", stack.sse_base)).await,
        };
        names.extend(exposition_names(&sse.unwrap_or_default()));
        let missing: BTreeMap<String, BTreeSet<String>> = refs
            .iter()
            .filter(|(name, _)| !is_exported(name, &names))
            .map(|(name, files)| (name.clone(), files.clone()))
            .collect();
        let only_lazy = missing
            .keys()
            .all(|name| LAZY.iter().any(|(lazy, _)| lazy == name));
        if only_lazy || tokio::time::Instant::now() >= deadline {
            break (missing, names);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    eprintln!(
        "observability: {} metric names referenced; not exported (lazy, checked in source): {:?}",
        refs.len(),
        missing.keys().collect::<Vec<_>>()
    );
    let mut unexplained = Vec::new();
    for (name, files) in &missing {
        match LAZY.iter().find(|(lazy, _)| lazy == name) {
            Some((_, source)) => {
                let text = read(&workspace_root().join(source));
                if !text.contains(&format!("\"{name}\"")) {
                    unexplained.push(format!(
                        "{name} (used by {files:?}; not declared in {source})"
                    ));
                }
            }
            None => unexplained.push(format!("{name} (used by {files:?})")),
        }
    }
    assert!(
        unexplained.is_empty(),
        "metrics referenced by the ops kit but exported by no component:\n  {}\nexported:\n  {}\nlogs:\n{}",
        unexplained.join("\n  "),
        exported
            .iter()
            .filter(|n| n.starts_with("scoreboard_")
                || n.starts_with("sse_")
                || n.starts_with("redis_"))
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        stack.logs()
    );
    drop(exporter);
}
