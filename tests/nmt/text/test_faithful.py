"""The Translator is faithful to a text's structure: one output sentence per input sentence,
every separator kept byte for byte, nothing dropped, inline HTML tags kept around their words."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmt.text.markup import parse_html
from nmt.translator import Translator
from tests.support.tiny import write_tiny_bundle

SENTENCES = [
    "Ein Mann fährt Fahrrad.",
    "Der Hund rennt schnell!",
    "Zwei Frauen spielen im Park.",
    "Spielen die Kinder?",
    "Ein roter Vogel sitzt auf dem Dach.",
    "Die Frau liest ein Buch.",
]
SEPARATORS = [" ", "  ", "\n", "\n\n", "\r\n", " \n  ", "\t", "\n\n\n"]


@pytest.fixture(scope="module")
def translator(tmp_path_factory: pytest.TempPathFactory) -> Translator:
    return Translator.from_checkpoint(write_tiny_bundle(tmp_path_factory.mktemp("f") / "b"))


@pytest.fixture(scope="module")
def alone(translator: Translator) -> dict[str, str]:
    """Each sentence translated on its own (greedy)."""
    out = translator.translate(SENTENCES, beam_size=1)
    return {s: t.text for s, t in zip(SENTENCES, out, strict=True)}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(range(len(SENTENCES))), min_size=1, max_size=6),
    st.lists(st.sampled_from(SEPARATORS), min_size=7, max_size=7),
    st.sampled_from(["", " ", "\n", "  \n"]),
    st.sampled_from(["", " ", "\n", "\n\n"]),
)
def test_a_text_is_its_sentences_translated_alone_with_every_separator_kept(
    translator: Translator, alone: dict[str, str], picks: list[int], seps: list[str],
    lead: str, trail: str,
) -> None:
    sentences = [SENTENCES[i] for i in picks]
    text = lead + "".join(s + sep for s, sep in zip(sentences, seps, strict=False))
    text = text[: len(text) - len(seps[len(sentences) - 1])] + trail
    expected = lead + "".join(
        alone[s] + (seps[i] if i < len(sentences) - 1 else trail)
        for i, s in enumerate(sentences)
    )
    result = translator.translate([text], beam_size=1)[0]
    assert result.text == expected


def test_texts_are_batched_together_and_keep_their_order(translator: Translator,
                                                         alone: dict[str, str]) -> None:
    texts = [" ".join(SENTENCES[:3]), "", SENTENCES[3], "\n".join(SENTENCES[3:])]
    out = translator.translate(texts, beam_size=1)
    assert [t.text for t in out] == [
        " ".join(alone[s] for s in SENTENCES[:3]), "", alone[SENTENCES[3]],
        "\n".join(alone[s] for s in SENTENCES[3:]),
    ]


@pytest.mark.parametrize("span", ["https://example.com/a?b=1", "3,50", "12:30", "😀🎉",
                                  "max@example.org", "@tom", "#tag", "`ls -l`", "1.000"])
def test_protected_spans_survive_a_model_without_placeholders(translator: Translator,
                                                              span: str) -> None:
    result = translator.translate([f"Der Hund {span} rennt."], beam_size=1)[0]
    assert span in result.text


def test_terms_and_glossary(translator: Translator) -> None:
    result = translator.translate(["Der Hund Fido rennt."], beam_size=1, terms=["Fido"],
                                  glossary={"Hund": "DOG"})[0]
    assert "Fido" in result.text and "DOG" in result.text


def test_alignment_has_one_entry_per_output_word(translator: Translator) -> None:
    text = "Ein Mann fährt Fahrrad. Der Hund rennt schnell!"
    for result in translator.translate([text], beam_size=2, align=True):
        cand = result.candidates[0]
        assert cand.alignment is not None
        assert len(cand.alignment) == len(cand.text.split())
        assert all(0 <= a < len(text.split()) for a in cand.alignment)


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[tuple[str, tuple]] = []
        self.ok = True

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.seen.append((tag, tuple(attrs)))
        if tag not in {"br", "img"}:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.ok = False


def _translate_html(translator: Translator, fragment: str) -> str:
    doc = parse_html(fragment)
    texts = [b.text for b in doc.blocks]
    terms = [t for b in doc.blocks for t in b.protected]
    out = translator.translate(texts, beam_size=1, align=True, terms=terms)
    return doc.render([(t.text, t.candidates[0].alignment) for t in out])


@pytest.mark.parametrize("fragment", [
    '<p>Ein <b>Hund</b> rennt über die <a href="x" title="t">Wiese</a>.</p>',
    "<div><p>Der <i>rote <b>Vogel</b> sitzt</i> auf dem Dach.</p><ul><li>Zwei <em>Frauen</em>"
    "</li><li>spielen <span class='c'>im</span> Park.</li></ul></div>",
    "<p>Ein Mann<br>fährt <strong>Fahrrad</strong>. <!-- note --> Der Hund rennt.</p>",
    "<p>Nutze <code>ls -l</code> und <sup>2</sup> sowie &amp; Entitäten.</p>"
    "<script>var x = '<b>';</script><style>p { color: red }</style>",
])
def test_html_keeps_every_tag_once_well_formed_with_attributes(translator: Translator,
                                                               fragment: str) -> None:
    out = _translate_html(translator, fragment)
    source, target = _Balance(), _Balance()
    source.feed(fragment)
    target.feed(out)
    assert target.ok and not target.stack, out
    assert sorted(target.seen) == sorted(source.seen), out  # same tags, same attributes
    assert out.count("<!-- note -->") == fragment.count("<!-- note -->")
    if "<script>" in fragment:
        assert "<script>var x = '<b>';</script><style>p { color: red }</style>" in out
        assert "<code>ls -l</code>" in out  # code is kept verbatim, tag and all


def test_html_sentences_are_not_cut_by_inline_tags(translator: Translator) -> None:
    fragment = "<p>Ein <b>Mann</b> fährt <i>Fahrrad</i>.</p>"
    doc = parse_html(fragment)
    assert [b.text for b in doc.blocks] == ["Ein Mann fährt Fahrrad."]
    plain = translator.translate(["Ein Mann fährt Fahrrad."], beam_size=1)[0].text
    out = _translate_html(translator, fragment)
    stripped = out.replace("<b>", "").replace("</b>", "").replace("<i>", "").replace("</i>", "")
    assert stripped == f"<p>{plain}</p>"


def test_identity_alignment_renders_the_source_back(tmp_path: Path) -> None:
    fragment = ('<p>Sie sagte „<i>Hallo</i>“ und <b>ging <a href="/x">nach Hause</a></b>.</p>'
                "\n<p>  Zweiter   Absatz  </p>")
    doc = parse_html(fragment)
    out = doc.render([(b.text, list(range(len(b.words)))) for b in doc.blocks])
    assert out == fragment.replace("Zweiter   Absatz", "Zweiter Absatz")
