"""The cloud twin runs the IoT topic rules moto stores (moto keeps rules but never runs them).

On every iot-data Publish the endpoint calls `TopicRuleEngine.on_publish`. Each enabled rule of the
region whose FROM filter matches is evaluated (`sql.parse`); when WHERE holds, its actions run:

- `cloudwatchMetric`: one datapoint into moto's CloudWatch. The action's strings are substitution
  templates `${expr}`, evaluated against the *original payload* and the message (topic(), timestamp()),
  never against SELECT's aliases (IOTDG iot-substitution-templates: "you can't reference an alias created
  using the AS clause"). The value must be a number; `metricTimestamp`, when given, is epoch seconds;
  otherwise the datapoint is stamped with the twin's clock (the time the rule ran).
- `cloudwatchLogs` (as an error action): the failure, as IoT Core writes it, into that log group.

An action that fails (a value that is not a number, an unknown template, an action the twin does not run)
runs the rule's `errorAction` with the error; every failure is also kept in `failures` so tests can see
it. Rules whose SQL the twin cannot run are reported in `failures` too, never half-run.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.backends import get_backend
from moto.core.models import DEFAULT_ACCOUNT_ID

from edgeml.twin.cloud.rules.sql import UNDEFINED, Message, RuleSqlError, Statement, parse, parse_expression
from edgeml.twin.cloud.service import Clock

LOG = logging.getLogger(__name__)
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")
CLOUDWATCH_UNITS = frozenset(
    [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ]
)


class ActionFailed(Exception):
    """One rule action could not run (the message is what IoT Core's error record would say)."""


@dataclass(frozen=True)
class RuleFailure:
    rule: str
    topic: str
    message: str


def substitute(template: str, message: Message) -> str:
    """`${expr}` replaced by the expression's value on the original message."""

    def one(match: re.Match[str]) -> str:
        try:
            value = parse_expression(match.group(1))(message)
        except RuleSqlError as error:
            raise ActionFailed(f"substitution template {match.group(0)}: {error}") from error
        if value is UNDEFINED or value is None:
            return ""
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"))
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _TEMPLATE.sub(one, template)


class TopicRuleEngine:
    """Runs moto's stored topic rules for each publish; `failures` lists what did not run."""

    def __init__(self, clock: Clock, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self._clock = clock
        self._account = account_id
        self._parsed: dict[str, Statement | RuleSqlError] = {}
        self._lock = threading.Lock()
        self.failures: list[RuleFailure] = []
        self.actions: dict[str, Callable[[dict[str, Any], Message, str], None]] = {
            "cloudwatchMetric": self._cloudwatch_metric,
            "cloudwatchLogs": self._cloudwatch_logs,
        }

    def _statement(self, sql: str) -> Statement | RuleSqlError:
        found = self._parsed.get(sql)
        if found is None:
            try:
                found = parse(sql)
            except RuleSqlError as error:
                found = error
            self._parsed[sql] = found
        return found

    def on_publish(self, topic: str, payload: bytes, region: str, client_id: str = "") -> int:
        """Runs the matching rules; returns how many rules' actions ran."""
        rules = list(get_backend("iot")[self._account][region].rules.values())
        if not rules:
            return 0
        try:
            document: Any = json.loads(payload)
        except ValueError:
            document = UNDEFINED
        now = self._clock.now()
        message = Message(topic, document, int(now.timestamp() * 1000), client_id)
        ran = 0
        for rule in rules:
            if rule.rule_disabled:
                continue
            statement = self._statement(rule.sql)
            if isinstance(statement, RuleSqlError):
                self._fail(rule.rule_name, topic, f"the twin cannot run this rule's SQL: {statement}")
                continue
            if not statement.matches(topic):
                continue
            if statement.run(message) is None:
                continue
            ran += 1
            for action in rule.actions:
                self._run_action(rule, action, message, region)
        return ran

    def _run_action(self, rule: Any, action: dict[str, Any], message: Message, region: str) -> None:
        try:
            self._one(action, message, region)
        except ActionFailed as error:
            self._fail(rule.rule_name, message.topic, str(error))
            if rule.error_action:
                try:
                    self._one(rule.error_action, message, region, failure=(rule.rule_name, str(error)))
                except ActionFailed as second:
                    self._fail(rule.rule_name, message.topic, f"error action: {second}")

    def _one(
        self, action: dict[str, Any], message: Message, region: str, failure: tuple[str, str] | None = None
    ) -> None:
        if len(action) != 1:
            raise ActionFailed(f"an action holds exactly one action type, not {sorted(action)}")
        kind, parameters = next(iter(action.items()))
        run = self.actions.get(kind)
        if run is None:
            raise ActionFailed(f"the twin does not run {kind} actions")
        if failure is not None and kind == "cloudwatchLogs":
            self._log_failure(parameters, message, region, failure)
            return
        run(parameters, message, region)

    def _fail(self, rule: str, topic: str, text: str) -> None:
        LOG.warning("topic rule %s on %s: %s", rule, topic, text)
        with self._lock:
            self.failures.append(RuleFailure(rule, topic, text))

    # --- actions ---------------------------------------------------------------------------------
    def _cloudwatch_metric(self, parameters: dict[str, Any], message: Message, region: str) -> None:
        namespace = substitute(str(parameters.get("metricNamespace", "")), message)
        name = substitute(str(parameters.get("metricName", "")), message)
        raw_value = substitute(str(parameters.get("metricValue", "")), message)
        unit = substitute(str(parameters.get("metricUnit", "")), message)
        if not namespace or not name:
            raise ActionFailed("cloudwatchMetric: metricNamespace and metricName must not be empty")
        try:
            value = float(raw_value)
        except ValueError:
            raise ActionFailed(
                f"cloudwatchMetric {name}: metricValue {raw_value!r} is not a number"
            ) from None
        if math.isnan(value) or math.isinf(value):
            raise ActionFailed(f"cloudwatchMetric {name}: metricValue {raw_value!r} is not a finite number")
        if unit not in CLOUDWATCH_UNITS:
            raise ActionFailed(f"cloudwatchMetric {name}: metricUnit {unit!r} is not a CloudWatch unit")
        stamp_text = substitute(str(parameters.get("metricTimestamp", "")), message)
        if stamp_text:
            try:
                stamp = datetime.fromtimestamp(float(stamp_text), UTC)
            except ValueError:
                raise ActionFailed(f"cloudwatchMetric {name}: metricTimestamp {stamp_text!r}") from None
        else:
            stamp = datetime.fromtimestamp(message.timestamp_ms / 1000.0, UTC)
        stamp = stamp.replace(tzinfo=None)  # moto keeps naive UTC datetimes (moto.core.utils.utcnow)
        backend = get_backend("cloudwatch")[self._account][region]
        backend.put_metric_data(
            namespace, [{"MetricName": name, "Value": value, "Unit": unit, "Timestamp": stamp}]
        )

    def _cloudwatch_logs(self, parameters: dict[str, Any], message: Message, region: str) -> None:
        self._write_log(parameters, message, region, json.dumps(message.payload, default=str))

    def _log_failure(
        self, parameters: dict[str, Any], message: Message, region: str, failure: tuple[str, str]
    ) -> None:
        rule, text = failure
        record = {
            "ruleName": rule,
            "topic": message.topic,
            "failures": [{"failedAction": "CloudwatchMetricAction", "errorMessage": text}],
        }
        self._write_log(parameters, message, region, json.dumps(record))

    def _write_log(self, parameters: dict[str, Any], message: Message, region: str, text: str) -> None:
        group = substitute(str(parameters.get("logGroupName", "")), message)
        logs = get_backend("logs")[self._account][region]
        if group not in logs.groups:
            raise ActionFailed(f"cloudwatchLogs: log group {group!r} does not exist")
        stream = "iot-rules"
        log_group = logs.groups[group]
        if stream not in log_group.streams:
            logs.create_log_stream(group, stream)
        logs.put_log_events(group, stream, [{"timestamp": message.timestamp_ms, "message": text}])
