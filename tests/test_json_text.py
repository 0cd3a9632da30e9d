"""`derive.json_text.dumps` writes exactly what ``json.dumps(obj, indent=2, ensure_ascii=False)`` writes."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from derive.json_text import dumps

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    | st.tuples(inner, inner) | st.dictionaries(st.integers(), inner, max_size=2),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(values)
def test_the_same_text_as_the_standard_library(obj):
    assert dumps(obj) == json.dumps(obj, indent=2, ensure_ascii=False)


def test_a_grads_document():
    import derive

    doc = derive.grads_document(derive.examples.seed(), form="program")
    assert dumps(doc) == json.dumps(doc, indent=2, ensure_ascii=False)
    assert '"index": [\n        0,\n        0\n      ]' in dumps(doc)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(), min_size=1, max_size=8))
def test_lists_of_floats_with_nan_and_infinities(values):
    """A list of floats takes one pass; NaN and ±∞ must still read as JSON's NaN, Infinity, -Infinity."""
    assert dumps({"gradient": values}) == json.dumps({"gradient": values}, indent=2, ensure_ascii=False)
