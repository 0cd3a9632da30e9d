"""Every character of derive's own prose reaches a PDF: a label in any language, through the LaTeX escaping,
sets no character pdflatex cannot (which it would print as ``?``)."""

import pytest

from derive.report.escaping import tex_text
from derive.report.labels import LABELS


@pytest.mark.parametrize("lang", sorted(LABELS))
def test_every_label_reaches_latex_without_a_question_mark(lang):
    lost = {key: text for key, text in LABELS[lang].items()
            if tex_text(text, korean=lang == "ko").count("?") != text.count("?")}
    assert not lost, lost


def test_a_character_outside_the_table_is_a_question_mark():  # what the test above guards against
    assert tex_text("x ⊗ y") == "x ? y"


def test_the_attention_chapters_row_ranges_and_symbols_reach_latex():  # text made by code, not a label
    from derive.report.attention_page import rows_text

    for text in (rows_text((0, 1, 2, 3)), "H ≥ 0, ≈ 0.5, f′(z), φ, Φ, π, θ, a ≠ b"):
        assert "?" not in tex_text(text), text
