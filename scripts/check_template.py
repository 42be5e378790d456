#!/usr/bin/env python3
"""Production-defaults checks over the SAM template that cfn-lint does not make: least privilege and exposure.

Fails (exit 1, one line per finding, each naming the resource) when:

- an IAM statement allows a wildcard action (`*`, `service:*`, `service:Get*`), uses NotAction/NotResource,
  or allows `Resource: "*"` for an action outside ALLOWED_ON_ANY_RESOURCE; a role carries managed policies
  (their statements cannot be checked here); a SAM function has no explicit `Role` or has SAM `Policies`
  (SAM would attach AWS managed policies with `Resource: "*"`);
- a role may call `secretsmanager:GetSecretValue` on anything but the secrets its own consumers are given
  (a function: the secrets its `*_SECRET_ARN` variables name; a task execution role: its task definitions'
  `Secrets`; a task role: none), or a consumer is given a secret its role cannot read;
- `JWT_SECRET`, `REDIS_URL` or `MONGODB_URI` appear in plain text in a function's or container's environment;
- a component that reaches Redis (a function given `REDIS_URL_SECRET_ARN`, a container given `REDIS_URL`) does
  not set `REDIS_CLUSTER`, or sets it to something other than the rest (standalone and cluster clients
  cannot share one Redis);
- an ElastiCache replication group the template creates lacks in-transit or at-rest encryption or an AUTH
  token, uses a parameter group the template does not define or whose `maxmemory-policy` is not
  `noeviction`, or a URL built from its endpoint is not `rediss://`;
- a load balancer listener on HTTP does anything but a 301 redirect to HTTPS (or has listener rules), an
  HTTPS listener has no certificate or an old TLS policy, a listener's protocol is conditional, or an
  internet-facing load balancer has no HTTPS listener;
- a container behind a target group does not serve its metrics on a separate METRICS_ADDR port, or a target
  group, listener, service mapping or load-balancer security group rule reaches a metrics port, or the load
  balancer's security group allows in anything but 80/443.

`--self-test` first checks the template passes, then that every kind of breakage above (injected into a
copy, one at a time, including a wildcard written into a copy of the file in a temp dir) makes it fail.

Usage: check_template.py [--self-test [-v]] [template.yaml]
Needs PyYAML (installed with cfn-lint in the project venv).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

# Actions AWS only authorises on every resource, so `Resource: "*"` is required for them, and why.
ALLOWED_ON_ANY_RESOURCE = {
    "ecr:GetAuthorizationToken": "the registry login token has no resource (task execution roles)",
    "logs:CreateLogGroup": "Lambda's basic execution permission (not needed when the template owns the group)",
    "ec2:CreateNetworkInterface": "VPC Lambdas: Lambda creates the function's ENIs with the function's role",
    "ec2:DescribeNetworkInterfaces": "VPC Lambdas: only authorised on *",
    "ec2:DescribeSubnets": "VPC Lambdas: Describe* calls take no resource",
    "ec2:DeleteNetworkInterface": "VPC Lambdas: the ENIs' ids are not known in advance",
    "ec2:AssignPrivateIpAddresses": "VPC Lambdas: on the function's ENIs, ids not known in advance",
    "ec2:UnassignPrivateIpAddresses": "VPC Lambdas: on the function's ENIs, ids not known in advance",
}

# Values that must come from Secrets Manager, never from a plain environment variable; what to use instead
# in a function.
PLAINTEXT_SECRET_VARS = {
    "JWT_SECRET": "JWT_SECRET_ARN",
    "REDIS_URL": "REDIS_URL_SECRET_ARN",
    "MONGODB_URI": "a secret (functions do not use it)",
}
GET_SECRET = "secretsmanager:GetSecretValue"
MODERN_TLS_POLICY = re.compile(r"^ELBSecurityPolicy-TLS13-1-[23]-")

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
NO_VALUE = {"Ref": "AWS::NoValue"}


# ------------------------------------------------------------------------------------------ loading


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub, !If, …) as their long forms."""


def _short_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_tag)


def load(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


# ------------------------------------------------------------------------------------------ helpers


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def branches(value: Any) -> list:
    """Every value `value` can take: both sides of Fn::If, AWS::NoValue dropped, lists flattened."""
    out: list = []
    for item in as_list(value):
        if isinstance(item, dict) and "Fn::If" in item:
            _, yes, no = item["Fn::If"]
            out.extend(branches(yes))
            out.extend(branches(no))
        elif item != NO_VALUE:
            out.append(item)
    return out


def target(value: Any) -> str | None:
    """The logical id a Ref/GetAtt points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return as_list(value["Fn::GetAtt"])[0]
    return None


def referenced(value: Any) -> set[str]:
    """Every logical id `value` refers to (Ref, GetAtt, ${Id} in Sub), through If branches."""
    ids: set[str] = set()
    for item in branches(value):
        if isinstance(item, dict):
            if "Fn::Sub" in item:
                sub = item["Fn::Sub"]
                text = sub if isinstance(sub, str) else sub[0]
                ids.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
            elif target(item):
                ids.add(target(item))
    return ids


def port_of(addr: Any) -> int | None:
    if isinstance(addr, str) and re.fullmatch(r".*:\d+", addr):
        return int(addr.rsplit(":", 1)[1])
    return None


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Template:
    def __init__(self, doc: dict):
        self.doc = doc
        self.resources: dict[str, dict] = doc.get("Resources", {})

    def of_type(self, *types: str) -> Iterable[tuple[str, dict]]:
        for name, res in self.resources.items():
            if res.get("Type") in types:
                yield name, res.get("Properties", {}) or {}

    def function_env(self, props: dict, kind: str) -> dict:
        env: dict = {}
        if kind == "AWS::Serverless::Function":
            glob = self.doc.get("Globals", {}).get("Function", {})
            env.update(((glob.get("Environment") or {}).get("Variables")) or {})
        env.update(((props.get("Environment") or {}).get("Variables")) or {})
        return env


# ------------------------------------------------------------------------------------------ checks


def iam_statements(tpl: Template) -> Iterable[tuple[str, dict]]:
    """(role or policy logical id, statement) for every permission statement (not trust policies)."""
    for name, props in tpl.of_type("AWS::IAM::Role"):
        for policy in branches(props.get("Policies")):
            for st in branches((policy.get("PolicyDocument") or {}).get("Statement")):
                yield name, st
    for name, props in tpl.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
        for st in branches((props.get("PolicyDocument") or {}).get("Statement")):
            # Attributed to every role the policy attaches to, for the secrets check.
            roles = [target(r) or r for r in branches(props.get("Roles"))] + (
                [target(props["RoleName"]) or props["RoleName"]] if "RoleName" in props else []
            )
            for role in roles or [name]:
                yield role, st


def check_statements(tpl: Template) -> list[str]:
    errors = []
    for name, props in tpl.of_type("AWS::IAM::Role"):
        if branches(props.get("ManagedPolicyArns")):
            errors.append(f"{name}: ManagedPolicyArns cannot be checked for least privilege; use inline policies")
    for name, props in tpl.of_type("AWS::Serverless::Function"):
        if "Role" not in props:
            errors.append(f"{name}: no explicit Role (SAM would attach AWS managed policies on Resource \"*\")")
        if props.get("Policies"):
            errors.append(f"{name}: SAM Policies are not checked; give the function an explicit Role")
    for role, st in iam_statements(tpl):
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            errors.append(f"{role}: NotAction/NotResource grants everything else")
            continue
        actions = [a for a in branches(st.get("Action")) if isinstance(a, str)]
        for action in actions:
            if "*" in action:
                errors.append(f"{role}: wildcard action {action!r}")
        if "*" in branches(st.get("Resource")):
            for action in actions:
                if "*" not in action and action not in ALLOWED_ON_ANY_RESOURCE:
                    errors.append(f"{role}: {action} on Resource \"*\" (not an action AWS only grants on *)")
    return errors


def secret_consumers(tpl: Template) -> tuple[dict[str, set[str]], list[str]]:
    """role → the secrets its consumers are given; and consumers whose role cannot be determined."""
    secrets = {n for n, _ in tpl.of_type("AWS::SecretsManager::Secret")}
    allowed: dict[str, set[str]] = {}
    errors = []
    for name, props in tpl.of_type(*FUNCTION_TYPES):
        kind = tpl.resources[name]["Type"]
        role = target(props.get("Role"))
        env = tpl.function_env(props, kind)
        own = set()
        for var, value in env.items():
            if var.endswith("_SECRET_ARN"):
                own |= referenced(value) & secrets
        if role:
            allowed.setdefault(role, set()).update(own)
        elif own:
            errors.append(f"{name}: reads secrets but has no role defined in this template")
    for name, props in tpl.of_type("AWS::ECS::TaskDefinition"):
        own = set()
        for container in branches(props.get("ContainerDefinitions")):
            for secret in branches(container.get("Secrets")):
                own |= referenced(secret.get("ValueFrom")) & secrets
        exec_role = target(props.get("ExecutionRoleArn"))
        if exec_role:
            allowed.setdefault(exec_role, set()).update(own)
        task_role = target(props.get("TaskRoleArn"))
        if task_role:
            allowed.setdefault(task_role, set())
    return allowed, errors


def check_secret_access(tpl: Template) -> list[str]:
    secrets = {n for n, _ in tpl.of_type("AWS::SecretsManager::Secret")}
    allowed, errors = secret_consumers(tpl)
    granted: dict[str, set[str]] = {}
    for role, st in iam_statements(tpl):
        if st.get("Effect") != "Allow":
            continue
        actions = [a for a in branches(st.get("Action")) if isinstance(a, str)]
        if not any(a == GET_SECRET or (a.endswith("*") and GET_SECRET.startswith(a[:-1])) for a in actions):
            continue
        own = allowed.get(role, set())
        for resource in branches(st.get("Resource")):
            secret = target(resource)
            if secret in secrets and secret in own:
                granted.setdefault(role, set()).add(secret)
            else:
                shown = secret or resource
                errors.append(
                    f"{role}: {GET_SECRET} on {shown!r}, which is not one of its consumers' own secrets "
                    f"({', '.join(sorted(own)) or 'none'})"
                )
    for role, own in allowed.items():
        for secret in sorted(own - granted.get(role, set())):
            errors.append(f"{role}: its consumers are given {secret} but it may not read it")
    return errors


def check_plaintext(tpl: Template) -> list[str]:
    errors = []
    for name, props in tpl.of_type(*FUNCTION_TYPES):
        env = tpl.function_env(props, tpl.resources[name]["Type"])
        for var, instead in PLAINTEXT_SECRET_VARS.items():
            if var in env:
                errors.append(f"{name}: plaintext {var} in the function's Environment (use {instead})")
    for name, props in tpl.of_type("AWS::ECS::TaskDefinition"):
        for container in branches(props.get("ContainerDefinitions")):
            for item in branches(container.get("Environment")):
                if item.get("Name") in PLAINTEXT_SECRET_VARS:
                    errors.append(
                        f"{name}/{container.get('Name')}: plaintext {item['Name']} in Environment (use Secrets)"
                    )
    return errors


AGREED_REDIS_SETTINGS = ("REDIS_CLUSTER",)


def redis_components(tpl: Template) -> Iterable[tuple[str, dict]]:
    """(component, its environment as name → value) of every function and container that reaches Redis."""
    for name, props in tpl.of_type(*FUNCTION_TYPES):
        env = tpl.function_env(props, tpl.resources[name]["Type"])
        if "REDIS_URL_SECRET_ARN" in env or "REDIS_URL" in env:
            yield name, env
    for name, props in tpl.of_type("AWS::ECS::TaskDefinition"):
        for container in branches(props.get("ContainerDefinitions")):
            names = {item.get("Name") for item in branches(container.get("Secrets"))}
            names |= {item.get("Name") for item in branches(container.get("Environment"))}
            if "REDIS_URL" in names:
                env = {item.get("Name"): item.get("Value") for item in branches(container.get("Environment"))}
                yield f"{name}/{container.get('Name')}", env


def check_redis_settings_agree(tpl: Template) -> list[str]:
    errors = []
    for var in AGREED_REDIS_SETTINGS:
        values: dict[str, list[str]] = {}
        for component, env in redis_components(tpl):
            if var not in env:
                errors.append(f"{component}: reaches Redis but does not set {var} (every component must agree)")
                continue
            values.setdefault(repr(env[var]), []).append(component)
        if len(values) > 1:
            shown = "; ".join(f"{', '.join(c)}: {v}" for v, c in sorted(values.items()))
            errors.append(f"{var} differs between components ({shown})")
    return errors


def check_redis_clusters(tpl: Template) -> list[str]:
    errors = []
    groups = dict(tpl.of_type("AWS::ElastiCache::ReplicationGroup"))
    for name, props in groups.items():
        for key, what in (
            ("TransitEncryptionEnabled", "in-transit encryption (TLS)"),
            ("AtRestEncryptionEnabled", "at-rest encryption"),
        ):
            if props.get(key) is not True:
                errors.append(f"{name}: without {what} ({key} must be true)")
        if not props.get("AuthToken"):
            errors.append(f"{name}: without an AUTH token")
        param_group = target(props.get("CacheParameterGroupName"))
        param_props = tpl.resources.get(param_group or "", {}).get("Properties")
        if param_props is None:
            errors.append(f"{name}: a parameter group this template does not define (noeviction unchecked)")
        elif (param_props.get("Properties") or {}).get("maxmemory-policy") != "noeviction":
            errors.append(f"{param_group}: maxmemory-policy must be noeviction (an evicted lease breaks fencing)")
    for name, props in tpl.of_type("AWS::SecretsManager::Secret"):
        for value in branches(props.get("SecretString")):
            if isinstance(value, dict) and "Fn::Sub" in value and referenced(value) & set(groups):
                sub = value["Fn::Sub"]
                text = sub if isinstance(sub, str) else sub[0]
                if not text.startswith("rediss://"):
                    errors.append(f"{name}: a URL of the created Redis that is not rediss:// (TLS)")
    return errors


def metrics_ports(tpl: Template) -> dict[tuple[str, str], int]:
    """(task definition, container) → the port of its METRICS_ADDR."""
    ports = {}
    for name, props in tpl.of_type("AWS::ECS::TaskDefinition"):
        for container in branches(props.get("ContainerDefinitions")):
            for item in branches(container.get("Environment")):
                if item.get("Name") == "METRICS_ADDR" and port_of(item.get("Value")) is not None:
                    ports[(name, container.get("Name"))] = port_of(item.get("Value"))
    return ports


def sg_rules(tpl: Template, group: str, direction: str) -> list[dict] | None:
    """The ingress or egress rules of `group`, inline and standalone; None for egress when there is no
    inline egress (EC2's default allow-all egress stays)."""
    props = tpl.resources.get(group, {}).get("Properties", {})
    key = "SecurityGroupIngress" if direction == "ingress" else "SecurityGroupEgress"
    inline = branches(props.get(key))
    rule_type = "AWS::EC2::SecurityGroupIngress" if direction == "ingress" else "AWS::EC2::SecurityGroupEgress"
    standalone = [p for _, p in tpl.of_type(rule_type) if target(p.get("GroupId")) == group]
    if direction == "egress" and not inline:
        return None
    return inline + standalone


def rule_covers(rule: dict, port: int) -> bool:
    if str(rule.get("IpProtocol")) in ("-1", "all"):
        return True
    low, high = int_or_none(rule.get("FromPort")), int_or_none(rule.get("ToPort"))
    if low is None or high is None:
        return True  # conditional or unusual: assume the worst
    return low <= port <= high


def check_load_balancers(tpl: Template) -> list[str]:
    errors = []
    metrics = metrics_ports(tpl)
    all_metrics = set(metrics.values())
    listeners = dict(tpl.of_type("AWS::ElasticLoadBalancingV2::Listener"))
    rules = list(tpl.of_type("AWS::ElasticLoadBalancingV2::ListenerRule"))

    for name, props in listeners.items():
        protocol = props.get("Protocol")
        port = int_or_none(props.get("Port"))
        if not isinstance(protocol, str) or port is None:
            errors.append(f"{name}: listener protocol and port must be fixed, not conditional")
            continue
        if port in all_metrics:
            errors.append(f"{name}: listener on metrics port {port}")
        if protocol == "HTTP":
            actions = branches(props.get("DefaultActions"))
            redirects = [
                a
                for a in actions
                if a.get("Type") == "redirect"
                and (a.get("RedirectConfig") or {}).get("Protocol") == "HTTPS"
                and (a.get("RedirectConfig") or {}).get("StatusCode") == "HTTP_301"
            ]
            if not actions or len(redirects) != len(actions):
                errors.append(f"{name}: an HTTP listener may only redirect (HTTP_301) to HTTPS")
            for rule_name, rule in rules:
                if target(rule.get("ListenerArn")) == name:
                    errors.append(f"{rule_name}: a rule on the HTTP listener {name} (it may only redirect)")
        elif protocol == "HTTPS":
            if not branches(props.get("Certificates")):
                errors.append(f"{name}: HTTPS listener without a certificate")
            policy = props.get("SslPolicy")
            if not (isinstance(policy, str) and MODERN_TLS_POLICY.match(policy)):
                errors.append(f"{name}: SslPolicy {policy!r} is not a TLS 1.3 / 1.2 policy")
        else:
            errors.append(f"{name}: protocol {protocol} (HTTPS, or HTTP redirecting to it, only)")

    for lb, props in tpl.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        mine = [p for p in listeners.values() if target(p.get("LoadBalancerArn")) == lb]
        if props.get("Scheme") == "internet-facing" and not any(p.get("Protocol") == "HTTPS" for p in mine):
            errors.append(f"{lb}: internet-facing without an HTTPS listener")
        for group in {target(g) for g in branches(props.get("SecurityGroups"))} - {None}:
            for rule in sg_rules(tpl, group, "ingress") or []:
                low, high = int_or_none(rule.get("FromPort")), int_or_none(rule.get("ToPort"))
                if str(rule.get("IpProtocol")) != "tcp" or low != high or low not in (80, 443):
                    errors.append(f"{group}: load balancer ingress other than tcp 80/443: {rule}")
            egress = sg_rules(tpl, group, "egress")
            if egress is None:
                errors.append(f"{group}: default allow-all egress reaches the tasks' metrics ports")
                continue
            for rule in egress:
                for port in sorted(all_metrics):
                    if rule_covers(rule, port):
                        errors.append(f"{group}: load balancer egress reaches metrics port {port}")

    for tg, props in tpl.of_type("AWS::ElasticLoadBalancingV2::TargetGroup"):
        for key in ("Port", "HealthCheckPort"):
            if int_or_none(props.get(key)) in all_metrics:
                errors.append(f"{tg}: {key} is a metrics port ({props.get(key)})")

    lb_groups = {
        target(g)
        for _, p in tpl.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer")
        for g in branches(p.get("SecurityGroups"))
    } - {None}
    for service, props in tpl.of_type("AWS::ECS::Service"):
        task = target(props.get("TaskDefinition"))
        for mapping in branches(props.get("LoadBalancers")):
            container = mapping.get("ContainerName")
            public = int_or_none(mapping.get("ContainerPort"))
            metrics_port = metrics.get((task, container))
            if metrics_port is None:
                errors.append(f"{task}/{container}: behind a load balancer but no METRICS_ADDR port of its own")
            elif metrics_port == public:
                errors.append(f"{task}/{container}: METRICS_ADDR is the public port {public}")
            if public in all_metrics:
                errors.append(f"{service}: load balancer mapping to metrics port {public}")
        network = (props.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
        groups = {target(g) for g in branches(network.get("SecurityGroups"))} - {None}
        for group in groups:
            for rule in sg_rules(tpl, group, "ingress") or []:
                if target(rule.get("SourceSecurityGroupId")) in lb_groups:
                    for port in sorted(all_metrics):
                        if rule_covers(rule, port):
                            errors.append(f"{group}: ingress from the load balancer reaches metrics port {port}")
    return errors


CHECKS: list[Callable[[Template], list[str]]] = [
    check_statements,
    check_secret_access,
    check_plaintext,
    check_redis_settings_agree,
    check_redis_clusters,
    check_load_balancers,
]


def check(doc: dict) -> list[str]:
    tpl = Template(doc)
    return [e for c in CHECKS for e in c(tpl)]


# ------------------------------------------------------------------------------------------ self-test


def _first_statement(doc: dict, role: str, action: str) -> dict:
    for policy in doc["Resources"][role]["Properties"]["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            if action in as_list(st["Action"]):
                return st
    raise KeyError(f"{role}: no statement with {action}")


def _sse_task(doc: dict) -> tuple[str, dict]:
    for name, res in doc["Resources"].items():
        if res["Type"] == "AWS::ECS::TaskDefinition" and any(
            e.get("Name") == "METRICS_ADDR"
            for c in res["Properties"]["ContainerDefinitions"]
            for e in c.get("Environment", [])
            if isinstance(e, dict) and port_of(e.get("Value")) == 9092
        ):
            return name, res["Properties"]["ContainerDefinitions"][0]
    raise KeyError("no task definition with METRICS_ADDR on 9092")


def _of_type(doc: dict, kind: str) -> list[dict]:
    return [r["Properties"] for r in doc["Resources"].values() if r["Type"] == kind]


def _http_listener(doc: dict) -> dict:
    return next(p for p in _of_type(doc, "AWS::ElasticLoadBalancingV2::Listener") if p["Protocol"] == "HTTP")


def _https_listener(doc: dict) -> dict:
    return next(p for p in _of_type(doc, "AWS::ElasticLoadBalancingV2::Listener") if p["Protocol"] == "HTTPS")


def _lb_group(doc: dict) -> dict:
    lb = _of_type(doc, "AWS::ElasticLoadBalancingV2::LoadBalancer")[0]
    return doc["Resources"][target(lb["SecurityGroups"][0])]["Properties"]


def _statement_of(doc: dict, role: str, action: str) -> Callable[[dict], None]:
    return lambda change: _first_statement(doc, role, action).update(change)


def _add_task_role_policy(doc: dict) -> None:
    statement = {"Effect": "Allow", "Action": GET_SECRET, "Resource": {"Ref": "RedisUrlSecret"}}
    doc["Resources"]["SseTaskRole"]["Properties"]["Policies"] = [
        {"PolicyName": "x", "PolicyDocument": {"Statement": [statement]}}
    ]


def _replication_group(doc: dict) -> dict:
    return _of_type(doc, "AWS::ElastiCache::ReplicationGroup")[0]


def _redis_url_from_created_cluster(doc: dict) -> None:
    branch = doc["Resources"]["RedisUrlSecret"]["Properties"]["SecretString"]["Fn::If"][1]
    branch["Fn::Sub"] = branch["Fn::Sub"].replace("rediss://", "redis://", 1)


def _metrics_env(doc: dict) -> dict:
    return next(e for e in _sse_task(doc)[1]["Environment"] if e["Name"] == "METRICS_ADDR")


# (what is broken, a finding it must cause, how to break it): one per rule above.
MUTATIONS: list[tuple[str, str, Callable[[dict], None]]] = [
    ('Action "*"', "wildcard action '*'",
     lambda d: _statement_of(d, "WorkerTaskRole", "dynamodb:Scan")({"Action": "*"})),
    ("service:* action", "wildcard action 'dynamodb:*'",
     lambda d: _statement_of(d, "WorkerTaskRole", "dynamodb:Scan")({"Action": ["dynamodb:*"]})),
    ('Resource "*" on the score table', 'dynamodb:Scan on Resource "*"',
     lambda d: _statement_of(d, "WorkerTaskRole", "dynamodb:Scan")({"Resource": "*"})),
    ('Resource "*" on GetSecretValue', f'{GET_SECRET} on Resource "*"',
     lambda d: _statement_of(d, "UpdateFunctionRole", GET_SECRET)({"Resource": "*"})),
    ("NotResource", "NotAction/NotResource",
     lambda d: _first_statement(d, "WorkerTaskRole", "dynamodb:Scan").update(
         NotResource=_first_statement(d, "WorkerTaskRole", "dynamodb:Scan").pop("Resource"))),
    ("a function reading another's secret", "'MongoDbUriSecret', which is not one of its consumers' own",
     lambda d: _first_statement(d, "UpdateFunctionRole", GET_SECRET)["Resource"].append(
         {"Ref": "MongoDbUriSecret"})),
    ("a task role reading a secret", "SseTaskRole: secretsmanager:GetSecretValue on 'RedisUrlSecret'",
     _add_task_role_policy),
    ("a function given a secret its role cannot read", "given JwtHmacSecret but it may not read it",
     lambda d: _first_statement(d, "LeaderboardFunctionRole", GET_SECRET)["Resource"].pop()),
    ("a managed policy", "ManagedPolicyArns cannot be checked",
     lambda d: d["Resources"]["SseTaskRole"]["Properties"].update(
         ManagedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"])),
    ("a function without its own Role", "UpdateFunction: no explicit Role",
     lambda d: d["Resources"]["UpdateFunction"]["Properties"].pop("Role")),
    ("plaintext JWT_SECRET on the functions", "UpdateFunction: plaintext JWT_SECRET",
     lambda d: d["Globals"]["Function"]["Environment"]["Variables"].update(JWT_SECRET={"Ref": "JwtSecret"})),
    ("plaintext REDIS_URL on one function", "LeaderboardFunction: plaintext REDIS_URL",
     lambda d: d["Resources"]["LeaderboardFunction"]["Properties"]["Environment"]["Variables"].update(
         REDIS_URL={"Ref": "RedisUrl"})),
    ("plaintext REDIS_URL in a container", "plaintext REDIS_URL in Environment",
     lambda d: _sse_task(d)[1]["Environment"].append({"Name": "REDIS_URL", "Value": {"Ref": "RedisUrl"}})),
    ("a container without REDIS_CLUSTER", "sse: reaches Redis but does not set REDIS_CLUSTER",
     lambda d: _sse_task(d)[1]["Environment"].remove(
         next(e for e in _sse_task(d)[1]["Environment"] if e["Name"] == "REDIS_CLUSTER"))),
    ("a function with its own REDIS_CLUSTER", "REDIS_CLUSTER differs between components",
     lambda d: d["Resources"]["LeaderboardFunction"]["Properties"]["Environment"]["Variables"].update(
         REDIS_CLUSTER="true")),
    ("the created cluster without TLS", "without in-transit encryption",
     lambda d: _replication_group(d).update(TransitEncryptionEnabled=False)),
    ("the created cluster unencrypted at rest", "without at-rest encryption",
     lambda d: _replication_group(d).pop("AtRestEncryptionEnabled")),
    ("the created cluster without AUTH", "without an AUTH token",
     lambda d: _replication_group(d).pop("AuthToken")),
    ("the created cluster evicting keys", "maxmemory-policy must be noeviction",
     lambda d: _of_type(d, "AWS::ElastiCache::ParameterGroup")[0]["Properties"].update(
         {"maxmemory-policy": "volatile-lru"})),
    ("the created cluster on a default parameter group", "a parameter group this template does not define",
     lambda d: _replication_group(d).update(CacheParameterGroupName="default.redis7.cluster.on")),
    ("a plain redis:// URL to the created cluster", "not rediss://",
     _redis_url_from_created_cluster),
    ("HTTP listener forwarding", "may only redirect",
     lambda d: _http_listener(d).update(
         DefaultActions=[{"Type": "forward", "TargetGroupArn": {"Ref": "SseTargetGroup"}}])),
    ("HTTP listener redirecting to HTTP", "may only redirect",
     lambda d: _http_listener(d)["DefaultActions"][0]["RedirectConfig"].update(Protocol="HTTP")),
    ("a conditional listener protocol", "must be fixed, not conditional",
     lambda d: _https_listener(d).update(Protocol={"Fn::If": ["HasJwtSecret", "HTTPS", "HTTP"]})),
    ("no HTTPS listener", "internet-facing without an HTTPS listener",
     lambda d: _https_listener(d).update(Protocol="HTTP")),
    ("an old TLS policy", "is not a TLS 1.3 / 1.2 policy",
     lambda d: _https_listener(d).update(SslPolicy="ELBSecurityPolicy-2016-08")),
    ("the target group on the metrics port", "Port is a metrics port",
     lambda d: _of_type(d, "AWS::ElasticLoadBalancingV2::TargetGroup")[0].update(Port=9092)),
    ("the service mapping the metrics port", "load balancer mapping to metrics port 9092",
     lambda d: _of_type(d, "AWS::ECS::Service")[-1]["LoadBalancers"][0].update(ContainerPort=9092)),
    ("metrics on the public port", "METRICS_ADDR is the public port 8080",
     lambda d: _metrics_env(d).update(Value="0.0.0.0:8080")),
    ("no separate metrics port", "no METRICS_ADDR port of its own",
     lambda d: _sse_task(d)[1]["Environment"].remove(_metrics_env(d))),
    ("load balancer ingress on the metrics port", "ingress other than tcp 80/443",
     lambda d: _lb_group(d)["SecurityGroupIngress"].append(
         {"IpProtocol": "tcp", "FromPort": 9092, "ToPort": 9092, "CidrIp": "0.0.0.0/0"})),
    ("load balancer default egress", "default allow-all egress",
     lambda d: _lb_group(d).pop("SecurityGroupEgress")),
    ("load balancer egress to every port", "egress reaches metrics port 9092",
     lambda d: _lb_group(d)["SecurityGroupEgress"][0].update(FromPort=0, ToPort=65535)),
    ("task ingress from the load balancer on every port", "ingress from the load balancer reaches metrics port",
     lambda d: next(p for p in _of_type(d, "AWS::EC2::SecurityGroupIngress")).update(
         FromPort=0, ToPort=65535)),
]


def self_test(path: Path, verbose: bool) -> list[str]:
    """Problems with the checker itself: the template fails, or a breakage goes unnoticed."""
    problems = []
    doc = load(path)
    baseline = check(doc)
    if baseline:
        problems.append(f"the template itself fails: {baseline}")
    for label, expected, mutate in MUTATIONS:
        broken = copy.deepcopy(doc)
        try:
            mutate(broken)
        except (KeyError, IndexError, StopIteration, ValueError) as e:
            problems.append(f"breakage {label!r} no longer applies to the template: {e!r}")
            continue
        found = [f for f in check(broken) if expected in f]
        if not found:
            problems.append(f"breakage {label!r} went unnoticed (expected a finding with {expected!r})")
        elif verbose:
            print(f"  self-test: {label}: caught ({found[0]})")
    # The whole path once, as a user runs it: a wildcard written into a copy of the file.
    text = path.read_text(encoding="utf-8")
    needle = "Action: secretsmanager:GetSecretValue"
    if needle not in text:
        problems.append(f"self-test: {needle!r} not found in {path}")
        return problems
    with tempfile.TemporaryDirectory() as tmp:
        copy_path = Path(tmp) / "template.yaml"
        copy_path.write_text(text.replace(needle, 'Action: "secretsmanager:*"', 1), encoding="utf-8")
        run = subprocess.run(
            [sys.executable, __file__, str(copy_path)], capture_output=True, text=True, check=False
        )
        if run.returncode == 0:
            problems.append("a copy with 'secretsmanager:*' injected passed")
        elif verbose:
            first = run.stdout.splitlines()[0]
            print(f"  self-test: wildcard written into {copy_path}: exit {run.returncode}: {first}")
    return problems


def main(argv: list[str]) -> int:
    args = [a for a in argv if a not in ("--self-test", "-v", "--verbose")]
    path = Path(args[0] if args else "template.yaml")
    if "--self-test" in argv:
        problems = self_test(path, verbose="-v" in argv or "--verbose" in argv)
        for p in problems:
            print(f"check_template --self-test: {p}")
        if problems:
            return 1
        print(
            f"check_template --self-test: all {len(MUTATIONS)} breakages injected into a copy of {path} caught, "
            "and a copy with 'secretsmanager:*' written to a temp dir fails (-v lists them)"
        )
        return 0
    errors = check(load(path))
    for e in errors:
        print(f"{path}: {e}")
    if errors:
        return 1
    print(f"{path}: least privilege, secrets, Redis settings, HTTPS-only and private metrics checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
