"""Config: YAML parsing without anchors and aliases (the first stage; `nmt.config` reads with it).

`yaml.safe_load` builds no objects, but it does expand aliases: a 428-byte file whose nine
anchors each repeat the previous one nine times ("billion laughs") becomes a tree of 10^9
nodes and eats the machine's memory and minutes of CPU. Config files need neither anchors nor
aliases, so the loader here refuses both at the first one, before anything is expanded.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that fails on the first anchor (`&name`) or alias (`*name`, `<<: *name`)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            _refuse(f"YAML aliases (*{event.anchor})", event.start_mark)
        if isinstance(event, (ScalarEvent, CollectionStartEvent)) and event.anchor is not None:
            _refuse(f"YAML anchors (&{event.anchor})", event.start_mark)
        return super().compose_node(parent, index)


def _refuse(what: str, mark: Any) -> None:
    # A ComposerError with a problem_mark: callers report its line and column.
    raise ComposerError(None, None, f"{what} are not allowed in config files; write the value "
                                    "out", mark)


def safe_yaml_load(text: str) -> Any:
    """Parses one YAML document like `yaml.safe_load`, refusing anchors and aliases.

    Raises:
        yaml.YAMLError: invalid YAML, or an anchor or alias (a ComposerError whose
            `problem_mark` gives the line and column).
    """
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
