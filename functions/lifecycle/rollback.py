"""Rolls a canary back when a CloudWatch alarm on its version's metrics goes into ALARM.

EventBridge delivers the alarm's state change ("CloudWatch Alarm State Change"); the alarm
watches the request metrics of one model version (dimensions `model` and `version`, as the API
function emits them). Every alias of that model whose canary is that version is rolled back to
its stable version, with the alarm's name and reason recorded in the alias object. A second
event for the same alarm finds no canary and does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from functions.core.errors import MaasError
from functions.core.repository import Repository

ALARM_PREFIX = "maas-canary-"  # the alarms this function acts on (the CDK rule matches it too)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: the process's repository, from MAAS_STORE."""
    from functions.runtime import get_runtime

    runtime = get_runtime()
    result = roll_back(runtime.registry.repository, event)
    runtime.telemetry.logger.info("canary alarm", extra=result)
    return result


def roll_back(repo: Repository, event: dict[str, Any]) -> dict[str, Any]:
    """Act on one alarm state change event; what was done, for the log."""
    detail = event.get("detail") or {}
    name = str(detail.get("alarmName", ""))
    state = (detail.get("state") or {}).get("value")
    result: dict[str, Any] = {"alarm": name, "state": state, "rolled_back": []}
    if event.get("detail-type") != "CloudWatch Alarm State Change" or state != "ALARM":
        return result | {"action": "none: not an alarm going into ALARM"}
    targets = sorted(set(_watched(detail)))
    if not targets:
        return result | {"action": "none: the alarm watches no model version"}
    why = f"alarm {name}: {(detail.get('state') or {}).get('reason', '')}".strip()
    for model, version in targets:
        for alias, route in repo.alias_routes(model).items():
            if route.canary != version:
                continue
            try:
                kept, _ = repo.end_canary(model, alias, promote=False, reason=why, by="alarm")
            except MaasError as exc:  # ended meanwhile, or the store refused: say so, go on
                result.setdefault("errors", []).append(f"{model}:{alias}: {exc}")
                continue
            result["rolled_back"].append(
                {"model": model, "alias": alias, "canary": version, "now": kept}
            )
    action = "rolled back" if result["rolled_back"] else "none: no alias runs that canary"
    return result | {"action": action, "watched": [f"{m}:{v}" for m, v in targets]}


def _watched(detail: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """(model, version) of each metric the alarm watches: a single metric or metric math."""
    configuration = detail.get("configuration") or {}
    for metric in configuration.get("metrics") or []:
        stat = (metric or {}).get("metricStat") or {}
        dimensions = ((stat.get("metric") or {}).get("dimensions")) or {}
        model, version = dimensions.get("model"), str(dimensions.get("version", ""))
        if isinstance(model, str) and version.isdigit():
            yield model, int(version)
