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
