r"""Escaping of text (never of derive's own mathematics) for LaTeX, Markdown and HTML.

User-supplied text (a network's name) reaches reports only through these functions.

>>> tex_text(r"a_b & 50% {x} \input")
'a\\_b \\& 50\\% \\{x\\} \\textbackslash{}input'
>>> md_text("*bold* <script>")
'\\*bold\\* &lt;script&gt;'
"""

from __future__ import annotations

import html
import re

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",  # OT1 would set ¡ ¿ —
}
#: Characters of derive's own prose that pdflatex needs as math.
_TEX_UNICODE = {
    "σ": r"$\sigma$", "δ": r"$\delta$", "Δ": r"$\Delta$", "α": r"$\alpha$", "∂": r"$\partial$",
    "−": r"$-$", "ᵀ": r"$^{\top}$", "ℓ": r"$\ell$", "Σ": r"$\Sigma$", "ₙ": r"$_n$", "⁽": r"$^{(}$",
    "ⁿ": r"$^{n}$", "⁾": r"$^{)}$", "→": r"$\to$", "ŷ": r"$\hat{y}$", "≤": r"$\le$", "…": r"\dots{}",
    "β": r"$\beta$", "γ": r"$\gamma$", "ε": r"$\epsilon$", "η": r"$\eta$", "λ": r"$\lambda$", "μ": r"$\mu$",
    "τ": r"$\tau$", "ᵗ": r"$^{t}$", "ḡ": r"$\bar{g}$", "√": r"$\surd$", "⊙": r"$\odot$", "⋆": r"$\star$",
    "∗": r"$\ast$", "∞": r"$\infty$", "‖": r"$\|$", "—": "---", "–": "--", "≥": r"$\ge$", "≠": r"$\neq$",
    "≈": r"$\approx$", "′": r"$'$", "π": r"$\pi$", "φ": r"$\phi$", "Φ": r"$\Phi$", "θ": r"$\theta$",
}
#: A combining circumflex (x̂): the letter before it with a hat.
_HAT = "\u0302"


#: Superscript and subscript digits (10⁻⁴, W₁ in prose): a run of them becomes one math super- or subscript.
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-"))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉", "0123456789"))
_SCRIPT_RUN = re.compile(f"[{''.join(_SUPERSCRIPTS)}]+|[{''.join(_SUBSCRIPTS)}]+")


def tex_text(text: str, korean: bool = False) -> str:
    """Plain text for LaTeX: specials escaped, known symbols as math; other characters outside Latin-1 as
    ``?`` (pdflatex cannot set them), except Hangul when the document loads kotex.

    >>> tex_text("below 10⁻⁴, from 10⁶, as 0 below 10⁻¹⁵; W₁₂")
    'below 10$^{-4}$, from 10$^{6}$, as 0 below 10$^{-15}$; W$_{12}$'
    >>> print(tex_text("1/√d, x̂ ⊙ g"))
    1/$\\surd$d, $\\hat{x}$ $\\odot$ g
    """
    out = []
    runs = {m.start(): m.group() for m in _SCRIPT_RUN.finditer(text)}
    skip = 0
    for i, char in enumerate(text):
        if skip:
            skip -= 1
            continue
        if i in runs:  # one math group: "$^{-}$$^{4}$" would open display math
            sub = runs[i][0] in _SUBSCRIPTS
            table = _SUBSCRIPTS if sub else _SUPERSCRIPTS
            out.append(("$_{" if sub else "$^{") + "".join(table[c] for c in runs[i]) + "}$")
            skip = len(runs[i]) - 1
        elif i + 1 < len(text) and text[i + 1] == _HAT and char.isalpha():
            out.append(rf"$\hat{{{char}}}$")
            skip = 1
        elif char in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[char])
        elif char in _TEX_UNICODE:
            out.append(_TEX_UNICODE[char])
        elif ord(char) < 0x20:
            out.append(" ")
        elif ord(char) < 0x100 or (korean and _hangul(char)):
            out.append(char)
        else:
            out.append("?")
    return "".join(out)


def _hangul(char: str) -> bool:
    return 0xAC00 <= ord(char) <= 0xD7A3 or 0x1100 <= ord(char) <= 0x11FF or 0x3130 <= ord(char) <= 0x318F


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#|$~!])")


def md_text(text: str) -> str:
    """Plain text for Markdown: punctuation backslash-escaped, HTML's ``& < >`` as entities."""
    text = " ".join(text.split())
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def html_text(text: str) -> str:
    """Plain text for HTML."""
    return html.escape(text, quote=True)
