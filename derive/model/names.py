r"""Names of scalars: element names and their LaTeX, from torch keys, node names and indices (the vocabulary
of the graph naming policy, shared by the model, its lowering and its reports).

>>> parameter_base("fc.weight"), list(indexed_names("W", "W", (1, 2)))
(('W_fc', 'W^{\\mathrm{fc}}'), [('W_1_1', 'W_{1,1}'), ('W_1_2', 'W_{1,2}')])
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import numpy as np


def latex_text(name: str) -> str:
    r"""A name as upright LaTeX: ``relu_1`` -> ``\mathrm{relu\_1}``."""
    return r"\mathrm{" + name.replace("\\", "").replace("_", r"\_").replace("{", "").replace("}", "") + "}"


def _identifier(name: str) -> str:
    """A SymPy-parseable symbol name from a torch key or fx name (``fc.weight`` -> ``fc_weight``)."""
    text = re.sub(r"\W", "_", name)
    return text if text and not text[0].isdigit() else f"p{text}"


def parameter_base(key: str) -> tuple[str, str]:
    """Symbol stem and LaTeX stem of a parameter tensor: ``fc.weight`` -> (``W_fc``, ``W^{fc}``).

    >>> parameter_base("layer1.0.bias"), parameter_base("W1")
    (('b_layer1_0', 'b^{\\\\mathrm{layer1.0}}'), ('W1', '\\\\mathrm{W1}'))
    """
    path, _, last = key.rpartition(".")
    recurrent = re.fullmatch(r"(weight|bias)_(ih|hh)(?:_l(\d+))?", last)
    if path and recurrent:  # rnn.weight_hh_l0 -> W_hh_rnn, {W_{hh}^{rnn}}; layer 2: W_hh_rnn_l1, {W_{hh}^{rnn,(2)}}
        kind, which, layer = recurrent.groups()
        letter = "W" if kind == "weight" else "b"
        stem = f"{letter}_{which}_{re.sub(r'[^0-9A-Za-z_]', '_', path)}" + (f"_l{layer}" if layer and layer != "0" else "")
        level = f",({int(layer) + 1})" if layer and layer != "0" else ""
        return stem, f"{{{letter}_{{{which}}}^{{{latex_text(path)}{level}}}}}"
    if path and last in ("weight", "bias"):
        letter = "W" if last == "weight" else "b"
        stem = re.sub(r"\W", "_", path)  # after "W_" a leading digit is fine: W_0 for "0.weight"
        return f"{letter}_{stem}", f"{letter}^{{{latex_text(path)}}}"
    return _identifier(key), latex_text(key)


def indexed(stem: str, latex: str, index: tuple[int, ...]) -> tuple[str, str]:
    """Name and LaTeX of element ``index`` of a tensor (1-based): ``("W_fc_1_2", "W^{fc}_{1,2}")``."""
    if not index:
        return stem, latex
    return "_".join([stem, *(str(i + 1) for i in index)]), f"{latex}_{{{','.join(str(i + 1) for i in index)}}}"


def indexed_names(stem: str, latex: str, shape: tuple[int, ...]) -> Iterator[tuple[str, str]]:
    """`indexed` of every index of ``shape``, row-major (the labels of each dim made once).

    >>> list(indexed_names("W", "W", (1, 2)))
    [('W_1_1', 'W_{1,1}'), ('W_1_2', 'W_{1,2}')]
    """
    if not shape:
        yield stem, latex
        return
    for labels in itertools.product(*([str(i + 1) for i in range(n)] for n in shape)):
        yield f"{stem}_{'_'.join(labels)}", f"{latex}_{{{','.join(labels)}}}"



def _data_names(stem: str, latex: str, shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """Names of a data tensor's elements, row-major: chain style (x1, x1_2) for batch × features."""
    if shape == ():
        return [(stem, latex)]
    if len(shape) <= 2:
        batch, width = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
        single = width == 1 and stem == "y"
        names = []
        for n in range(batch):
            for k in range(width):
                name, tex = (stem, stem) if single else (f"{stem}{k + 1}", f"{latex}_{{{k + 1}}}")
                if batch > 1:
                    name, tex = f"{name}_{n + 1}", f"{tex}^{{({n + 1})}}"
                names.append((name, tex))
        return names
    return [indexed(stem, latex, index) for index in np.ndindex(shape)]
