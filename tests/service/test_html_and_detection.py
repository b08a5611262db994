"""format=html through the service's document helper (the markup module's own tests are in
tests/nmt/text/test_faithful.py; the language detector's in test_detect.py)."""

from __future__ import annotations

from nmt.text.markup import parse_html


def test_html_round_trip_keeps_markup():
    fragment = ('<!DOCTYPE html><p title="a&amp;b">Eins &lt;zwei&gt;<br/>drei </p>'
                "<!-- note --><style>p{}</style><code>x &lt; y</code>")
    doc = parse_html(fragment)
    assert [b.text for b in doc.blocks] == ["Eins <zwei>", "drei", "x < y"]
    assert doc.blocks[2].protected == ["x < y"]
    identity = [(b.text, list(range(len(b.words)))) for b in doc.blocks]
    assert doc.render(identity) == fragment
    out = doc.render([("A", None), ("B", None), ("x < y", None)])
    assert out.startswith('<!DOCTYPE html><p title="a&amp;b">A<br/>B </p>')
