"""Service: what a bundle says about itself: a one-paragraph description and its size.

`/v1/models` shows these so that a client (or the web page) can tell a caption model from a
general-purpose one before sending text to it. Read once, when the registry is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from service.languages import language_name
from service.settings import BUNDLE_WEIGHTS

MODEL_CARD = "MODEL_CARD.md"
_MAX_CARD_BYTES = 64_000  # the summary is near the top; never read a huge file whole
_MAX_DESCRIPTION = 400

# What each known domain tag is for, in words a user understands.
DOMAIN_PHRASES = {
    "general": "general-purpose text",
    "caption": "short image captions",
}
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class ModelCard:
    description: str  # what the model is for, one paragraph of plain text
    # From the card's Hugging Face metadata (model-index): "<dataset> <split>" -> metric name
    # -> value, e.g. {"Multi30k task 1 test_2016_flickr test": {"BLEU (beam 5)": 41.2}}.
    scores: dict[str, dict[str, float]]
    file_bytes: int | None  # size of model.pt; None when there is no bundle directory (tests)
    parameters: int | None  # from the bundle's metadata, when recorded


def read_card(bundle_dir: Path | None, *, src: str, tgt: str, domains: list[str],
              metadata: dict[str, Any]) -> ModelCard:
    """The description (the model card's first paragraph, else one made from the domains) and
    the size of the bundle at `bundle_dir`, whose model translates `src` to `tgt`."""
    summary = card_summary(bundle_dir / MODEL_CARD) if bundle_dir is not None else None
    weights = bundle_dir / BUNDLE_WEIGHTS if bundle_dir is not None else None
    parameters = metadata.get("parameters")
    return ModelCard(
        description=summary or describe_domains(src, tgt, domains),
        scores=card_scores(bundle_dir / MODEL_CARD) if bundle_dir is not None else {},
        file_bytes=weights.stat().st_size if weights is not None and weights.is_file() else None,
        parameters=parameters if isinstance(parameters, int) else None,
    )


def card_summary(path: Path) -> str | None:
    """The first paragraph after the card's title, as plain text; None without one.

    A paragraph is a run of non-blank lines; tables, headings, lists of facts and code blocks
    are not summaries and are skipped.
    """
    try:
        with path.open("rb") as f:
            text = f.read(_MAX_CARD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    paragraph: list[str] = []
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":  # YAML front matter (Hugging Face's card metadata)
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        lines = lines[end + 1 :]
    for line in lines:
        stripped = line.strip()
        if not stripped:
            if paragraph:
                break
            continue
        if stripped.startswith(("#", "|", "```", "<!--", "---")):
            if paragraph:
                break
            continue
        paragraph.append(stripped)
    if not paragraph:
        return None
    plain = _LINK.sub(r"\1", " ".join(paragraph)).replace("**", "").replace("`", "")
    if len(plain) > _MAX_DESCRIPTION:
        plain = plain[:_MAX_DESCRIPTION - 1].rsplit(" ", 1)[0] + "…"
    return plain


def card_scores(path: Path) -> dict[str, dict[str, float]]:
    """The metric values of the card's model-index metadata; {} without (or with bad) metadata."""
    try:
        with path.open("rb") as f:
            text = f.read(_MAX_CARD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    try:
        meta = yaml.safe_load(text.split("---", 2)[1])
        scores: dict[str, dict[str, float]] = {}
        for index in meta.get("model-index", []):
            for result in index.get("results", []):
                dataset = result.get("dataset", {})
                name = f"{dataset.get('name', '?')} {dataset.get('split', '')}".strip()
                for metric in result.get("metrics", []):
                    if isinstance(metric.get("value"), (int, float)):
                        label = str(metric.get("name") or metric.get("type"))
                        scores.setdefault(name, {})[label] = float(metric["value"])
        return scores
    except (yaml.YAMLError, AttributeError, TypeError, IndexError):
        return {}


def describe_domains(src: str, tgt: str, domains: list[str]) -> str:
    """A description for a bundle without a model card, from its domain tags."""
    pair = f"{language_name(src)} → {language_name(tgt)}"
    if not domains:
        return (f"{pair}. The bundle has no model card and no domain tags, so what it was "
                "trained for is not recorded.")
    phrases = [DOMAIN_PHRASES.get(d, f"the {d!r} domain") for d in domains]
    joined = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{pair} for {joined} (domains: {', '.join(domains)})."
