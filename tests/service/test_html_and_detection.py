"""format=html splitting, and the language detector over loaded languages."""

from __future__ import annotations

from service.detect import detect_language
from service.markup import parse_html


def test_html_round_trip_keeps_markup():
    doc = parse_html('<!DOCTYPE html><p title="a&amp;b">Eins &lt;zwei&gt;<br/>drei </p>'
                     "<!-- note --><style>p{}</style><code>x &lt; y</code>")
    assert doc.texts == ["Eins <zwei>", "drei"]
    assert doc.render(doc.texts) == ('<!DOCTYPE html><p title="a&amp;b">Eins &lt;zwei&gt;<br/>'
                                     "drei </p><!-- note --><style>p{}</style>"
                                     "<code>x &lt; y</code>")
    assert doc.render(["A", "B"]).startswith('<!DOCTYPE html><p title="a&amp;b">A<br/>B </p>')


def test_detection_chooses_among_candidates():
    assert detect_language("Der Mann und die Frau", ["de", "en", "fr"])[0][0] == "de"
    assert detect_language("The man and the woman", ["de", "en"])[0][0] == "en"
    assert detect_language("Привет, как дела?", ["de", "ru"])[0][0] == "ru"
    ranked = detect_language("???", ["en", "de"])
    assert ranked == [("de", 50.0), ("en", 50.0)]
    assert abs(sum(c for _, c in detect_language("le chien", ["fr", "de"])) - 100) < 0.5
