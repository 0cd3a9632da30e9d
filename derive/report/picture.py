r"""The picture of a network: TikZ for LaTeX, an inline SVG for HTML, from one layout.

Units stand in columns (inputs, each layer, the loss); an edge carries its weight's name and value above
it and the gradient below, placed at different points along crossing edges so labels do not collide.

>>> from derive.report.document import Picture, Unit, Edge
>>> p = Picture((Unit(0, 0, "x_{1}"), Unit(1, 0, "a_{1}")), (Edge((0, 0), (1, 0), "W_{1} = 1", "g"),), "")
>>> position(p, (1, 0))
(5.5, 0.0)
"""

from __future__ import annotations

from html import escape

from derive.report.document import Picture
from derive.report.numformat import plain

#: Column and row spacing (cm in TikZ; 40 px per unit in SVG).
DX, DY = 5.5, 3.4
PX = 40


def _column_sizes(p: Picture) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for unit in p.units:
        sizes[unit.layer] = max(sizes.get(unit.layer, 0), unit.index + 1)
    return sizes


def position(p: Picture, key: tuple[int, int]) -> tuple[float, float]:
    """(x, y) of unit (layer, index) in picture units; columns centred vertically."""
    layer, index = key
    n = _column_sizes(p)[layer]
    return layer * p.spacing, ((n - 1) / 2 - index) * DY


def _label_position(p: Picture, source: tuple[int, int], target: tuple[int, int]) -> float:
    """Where along an edge its labels go: rising edges early, falling ones late, level ones midway, so
    the labels of crossing edges sit apart."""
    rise = position(p, target)[1] - position(p, source)[1]
    return 0.5 if abs(rise) < 1e-9 else (0.25 if rise > 0 else 0.75)


def tikz(p: Picture) -> str:
    """A ``tikzpicture`` (needs the ``tikz`` package)."""
    lines = [
        r"\begin{tikzpicture}[unit/.style={circle, draw, thick, minimum size=9mm, inner sep=1pt},"
        r" edge/.style={->, >=stealth, thin}]"
    ]
    for u in p.units:
        x, y = position(p, (u.layer, u.index))
        name = f"u{u.layer}x{u.index}"
        lines.append(rf"\node[unit] ({name}) at ({x:.2f},{y:.2f}) {{${u.label}$}};")
        if u.lines:
            text = r" \\ ".join(f"${line}$" for line in u.lines)
            lines.append(rf"\node[above=1pt of {name}, font=\scriptsize, align=center] {{{text}}};")
    for e in p.edges:
        source, target = f"u{e.source[0]}x{e.source[1]}", f"u{e.target[0]}x{e.target[1]}"
        labels = ""
        if p.labelled and e.label:
            at = _label_position(p, e.source, e.target)
            labels = (
                rf" node[pos={at:.2f}, sloped, above, font=\tiny] {{${e.label}$}}"
                rf" node[pos={at:.2f}, sloped, below, font=\tiny] {{${e.gradient}$}}"
            )
        path = "to[bend left=35]" if e.bend else "--"
        lines.append(rf"\draw[edge] ({source}) {path}{labels} ({target});")
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def svg(p: Picture) -> str:
    """An inline ``<svg>`` element with plain-text labels."""
    xs = [position(p, (u.layer, u.index)) for u in p.units]
    width = (max(x for x, _ in xs) + 2 * 1.6) * PX
    top = max(y for _, y in xs) + 1.7
    height = (top - min(y for _, y in xs) + 2.0) * PX

    def at(key: tuple[int, int]) -> tuple[float, float]:
        x, y = position(p, key)
        return (x + 1.6) * PX, (top - y) * PX

    radius = 0.5 * PX
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="serif" font-size="11" role="img">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>',
    ]
    for e in p.edges:
        (x1, y1), (x2, y2) = at(e.source), at(e.target)
        length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        if e.bend:  # an arc above the straight line, as TikZ's bend left
            cx, cy = (x1 + x2) / 2 + uy * length * 0.3, (y1 + y2) / 2 - ux * length * 0.3
            out.append(f'<path d="M {x1:.1f} {y1 - radius:.1f} Q {cx:.1f} {cy:.1f} {x2:.1f} {y2 - radius:.1f}" '
                       'fill="none" stroke="black" marker-end="url(#arrow)"/>')
        else:
            out.append(
                f'<line x1="{x1 + ux * radius:.1f}" y1="{y1 + uy * radius:.1f}" x2="{x2 - ux * radius:.1f}" '
                f'y2="{y2 - uy * radius:.1f}" stroke="black" marker-end="url(#arrow)"/>'
            )
        if p.labelled and e.label_text:
            t = _label_position(p, e.source, e.target)
            mx, my = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
            angle = _degrees(uy, ux)
            transform = f'transform="rotate({angle:.1f} {mx:.1f} {my:.1f})"'
            out.append(f'<text x="{mx:.1f}" y="{my - 3:.1f}" text-anchor="middle" font-size="9" {transform}>'
                       f"{escape(plain(e.label_text))}</text>")
            out.append(f'<text x="{mx:.1f}" y="{my + 10:.1f}" text-anchor="middle" font-size="9" '
                       f'fill="#a0301c" {transform}>{escape(plain(e.gradient_text))}</text>')
    for u in p.units:
        x, y = at((u.layer, u.index))
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="white" stroke="black" '
                   'stroke-width="1.5"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="14">'
                   f"{escape(u.label_text)}</text>")
        for i, line in enumerate(u.lines_text):
            out.append(f'<text x="{x:.1f}" y="{y - radius - 5 - 12 * (len(u.lines_text) - 1 - i):.1f}" text-anchor="middle" '
                       f'font-size="10">{escape(plain(line))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _degrees(dy: float, dx: float) -> float:
    import math

    return math.degrees(math.atan2(dy, dx))
