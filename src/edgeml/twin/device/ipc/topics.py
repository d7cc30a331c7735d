"""Topic matching: MQTT filters (`+` one level, `#` the rest) and authorization globs (`*`)."""

from __future__ import annotations

import re
from functools import lru_cache


def is_mqtt_filter(topic: str) -> bool:
    """True when `topic` holds an MQTT wildcard level."""
    return "+" in topic or "#" in topic


@lru_cache(maxsize=4096)
def _levels(topic: str) -> tuple[str, ...]:
    return tuple(topic.split("/"))


def mqtt_topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether `topic` is selected by the MQTT filter `topic_filter`."""
    if topic_filter == topic:
        return True
    filter_levels, topic_levels = _levels(topic_filter), _levels(topic)
    for index, level in enumerate(filter_levels):
        if level == "#":
            return index == len(filter_levels) - 1
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def glob_matches(pattern: str, text: str) -> bool:
    """Whether `text` matches `pattern`, where `*` stands for any run of characters."""
    if pattern == "*" or pattern == text:
        return True
    return "*" in pattern and _glob(pattern).fullmatch(text) is not None
