"""The suggested documents' YAML: PyYAML's layout for ordinary values, and no value can add structure."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.analyse import yaml_text

PEER_AUTHENTICATION = {
    "apiVersion": "security.istio.io/v1",
    "kind": "PeerAuthentication",
    "metadata": {"name": "web-strict", "namespace": "shop"},
    "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}, "mtls": {"mode": "STRICT"}},
}
AUTHORIZATION_POLICY = {
    "apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "web-limit-plaintext", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "action": "ALLOW",
        "rules": [
            {"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/cart", "cluster.local/ns/a/sa/b"]}}]},
            {"from": [{"source": {"notPrincipals": ["*"]}}]},
        ],
    },
}


def test_ordinary_documents_read_as_pyyaml_writes_them() -> None:
    for doc in (PEER_AUTHENTICATION, AUTHORIZATION_POLICY):
        text = yaml_text.dump(doc)
        assert yaml.safe_load(text) == doc
        expected = yaml.safe_dump(doc, sort_keys=False).replace("'*'", '"*"')  # PyYAML single-quotes
        assert text == expected


def test_words_yaml_would_read_as_something_else_are_quoted() -> None:
    for word in ["yes", "No", "on", "true", "null", "~", "8000", "1e3", "0x1F", "-", "a: b", "#x", "*", "&a", ""]:
        doc = {"k": word}
        assert yaml.safe_load(yaml_text.dump(doc)) == doc, word
    assert yaml_text.dump({"port": 8000, "on": True}) == 'port: 8000\n"on": true\n'


def test_hostile_values_stay_one_scalar_and_are_escaped() -> None:
    evil = 'web\n  injected: true\n"x": \u202e\u2066 ${{x}} \x00'
    text = yaml_text.dump({"metadata": {"name": evil}, "list": [evil]})
    assert yaml.safe_load(text) == {"metadata": {"name": evil}, "list": [evil]}
    assert text.isascii() and "\u202e" not in text  # bidi controls cannot reorder what a reviewer reads
    assert len(text.splitlines()) == 4


_SCALARS = st.one_of(st.text(max_size=30), st.integers(-(10**6), 10**6), st.booleans())
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), _DOCS, min_size=1, max_size=5))
def test_any_document_reads_back_the_same(doc: dict) -> None:
    assert yaml.safe_load(yaml_text.dump(doc)) == doc
