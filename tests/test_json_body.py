"""Answers are written by orjson (handlers.base.json_body): the same text the json module
writes for every value the server may answer with (floats aside: the same numbers, some spelt
``1e-8`` where json writes ``1e-08``), and the json module's text for the values orjson
refuses."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.base import json_body

# What session data may hold once validated (server/sessions.py): finite floats, 64-bit
# integers, strings without lone surrogates, nesting.
_INT64 = 2**63
scalars = (st.none() | st.booleans() | st.integers(-_INT64, _INT64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(st.characters(blacklist_categories=("Cs",))))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def as_json_module_writes(payload) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_the_same_text_as_the_json_module(payload):
    body = json_body(payload)
    assert isinstance(body, bytes)
    expected = as_json_module_writes(payload)
    if has_float(payload):
        # Exactly the same numbers, and everything else the same.
        assert json.loads(body) == json.loads(expected)
        assert [type(v) for v in leaves(json.loads(body))] == \
            [type(v) for v in leaves(json.loads(expected))]
    else:
        assert body.decode("utf-8") == expected


def leaves(value):
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


def has_float(value) -> bool:
    return any(isinstance(leaf, float) for leaf in leaves(value))


def test_what_orjson_refuses_is_written_by_the_json_module():
    for payload in ({"n": 2**70}, {"n": -(2**64)}, {"s": "lone \ud800 surrogate"}):
        assert json_body(payload) == as_json_module_writes(payload)


def test_escapes_and_characters_as_clients_expect_them():
    body = json_body({"text": 'a "quote", a \\, a\nnewline, \x01, é, 中, 😀, \u2028, </script>'})
    assert body.decode("utf-8") == (
        '{"text":"a \\"quote\\", a \\\\, a\\nnewline, \\u0001, é, 中, 😀, \u2028, </script>"}')
