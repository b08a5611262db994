"""Benchmarks: writes a general bundle's evaluation reports into its model card.

    python benchmarks/model_card_scores.py models/general-de-en

Reads docs/evaluation/<bundle>/<set>/report.json (from benchmarks/evaluate_general.sh) for the
four held-out sets and rewrites, in <bundle>/MODEL_CARD.md, the metric values of the front
matter's model-index (which the service reads, service/model_cards.py) and the rows of the
"## Scores" table. Everything else in the card is left as written.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETS = {  # the card's name for a set -> its report folder
    "Tatoeba valid (held out)": "tatoeba-valid",
    "Tatoeba test (held out)": "tatoeba-test",
    "Multi30k val": "multi30k-val",
    "Multi30k test_2016_flickr": "multi30k-test_2016_flickr",
}


def _scores(report: Path) -> dict[str, dict[str, float]]:
    """system name (beam1, beam5) -> bleu, chrf, bleu_ci."""
    data = json.loads(report.read_text(encoding="utf-8"))
    return {s["name"]: {"bleu": s["scores"]["bleu"]["score"],
                        "chrf": s["scores"]["chrf"]["score"],
                        "bleu_ci": s["scores"]["bleu"]["ci_radius"]} for s in data["systems"]}


def update_card(card: str, scores: dict[str, dict[str, dict[str, float]]]) -> str:
    """`card` with every score of `scores` (set name -> system -> metric) written in."""
    lines, current = card.split("\n"), None
    for i, line in enumerate(lines):
        named = re.search(r"dataset: \{.*name: ([^,}]+)", line)
        if named:
            current = named.group(1).strip()
            continue
        metric = re.match(
            r"(\s*- \{type: (bleu|chrf), value: )[\d.]+(, name: .*\((greedy|beam 5)\)\})", line)
        if metric and current in scores:
            system = "beam1" if metric.group(4) == "greedy" else "beam5"
            value = scores[current][system][metric.group(2)]
            lines[i] = f"{metric.group(1)}{value:.1f}{metric.group(3)}"
            continue
        for name, by_system in scores.items():
            if line.startswith(f"| {name} |"):
                cells = line.split("|")
                g, b = by_system["beam1"], by_system["beam5"]
                cells[3] = f" {g['bleu']:.1f} / {g['chrf']:.1f} "
                cells[4] = f" {b['bleu']:.1f} ± {b['bleu_ci']:.1f} / {b['chrf']:.1f} "
                lines[i] = "|".join(cells)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    args = parser.parse_args()
    reports = REPO / "docs/evaluation" / args.bundle.name
    scores = {name: _scores(reports / folder / "report.json") for name, folder in SETS.items()}
    card = args.bundle / "MODEL_CARD.md"
    card.write_text(update_card(card.read_text(encoding="utf-8"), scores), encoding="utf-8")
    for name, by_system in scores.items():
        greedy, beam = by_system["beam1"]["bleu"], by_system["beam5"]["bleu"]
        print(f"{name}: BLEU greedy {greedy:.1f}, beam 5 {beam:.1f}")


if __name__ == "__main__":
    main()
