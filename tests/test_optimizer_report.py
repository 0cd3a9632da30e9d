"""The report's update by each optimizer: rendered in KaTeX, its numbers those of torch.optim.

Every expected number is torch's (its optimizer state and parameters after a step), printed to the report's
digits with the report's own rounding rule; nothing here reruns derive's update.
"""

import copy
import re
from pathlib import Path

import pytest

import derive
from derive.cli import main
from derive.report.numformat import fmt, plain
from tests.test_optimizers import CASES, IDS, Residual, chain_run, torch_run
from tests.test_report_tools import katex, markdown_math, read_equations  # noqa: F401

torch = pytest.importorskip("torch")


def display(md, lhs):
    """The parts of the display whose left side is ``lhs``."""
    found = [parts for left, parts in read_equations(md) if "".join(left.split()) == "".join(lhs.split())]
    assert found, lhs
    return ["".join(part.split()) for part in found[0]]


def shown(value, digits):
    """A number as a display prints it (spaces removed, as `display` gives the parts)."""
    return "".join(fmt(value, digits).split())


def cell(value, digits):
    """A number as a Markdown table prints it (plain text: 7.437e-5)."""
    return plain(fmt(value, digits))


def step_rows(md):
    return [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines() if re.match(r"\| [0-9]+ \|", line)]


@pytest.mark.parametrize("name, torch_class, options", CASES, ids=IDS)
def test_three_steps_render_in_katex_with_torchs_losses_and_parameters(name, torch_class, options, katex):  # noqa: F811
    net = derive.examples.seed()
    md = derive.report(net, format="md", steps=3, optimizer=name, **options)
    formulas = [(f"{name}-{i}", m) for i, m in enumerate(markdown_math(md))]
    assert formulas and katex.errors(formulas) == []
    losses, _, params, _ = chain_run(net, torch_class, options)
    rows = step_rows(md)
    assert [row[1] for row in rows[:3]] == [cell(v, 4) for v in losses]
    final = {p.name: cell(float(params[p.torch][p.index]), 4) for p in net.parameters()}
    first_table = rows[:4]
    header = [line for line in md.splitlines() if line.startswith("| t | L |")][0]
    names = [c.strip() for c in header.split("|")[3:-1]]
    assert dict(zip(names, first_table[3][2:])) == {n: final[n] for n in names}
    assert f"torch.optim.{torch_class}'s update" in md


def test_adam_writes_m_v_their_bias_corrections_and_the_step_with_torchs_numbers():
    net = derive.examples.seed()
    md = derive.report(net, format="md", steps=1, optimizer="adam", lr=0.1, digits=6)
    _, grads, params, opt = chain_run(net, "Adam", dict(lr=0.1), steps=1)
    weight = opt.param_groups[0]["params"][2]  # layer 2's weight: W5, W6
    state = opt.state[weight]
    m, v = float(state["exp_avg"][0, 0]), float(state["exp_avg_sq"][0, 0])
    assert display(md, r"m_{W_{5}}(t)")[-1] == shown(m, 6)
    assert display(md, r"v_{W_{5}}(t)")[-1] == shown(v, 6)
    assert display(md, r"\hat{m}_{W_{5}}")[-1] == shown(m / (1 - 0.9), 6)
    assert display(md, r"\hat{v}_{W_{5}}")[-1] == shown(v / (1 - 0.999), 6)
    assert display(md, r"\hat{m}_{W_{5}}")[1] == r"\frac{0.0272738}{1-0.9^{1}}"
    assert display(md, r"W_{5}(t+1)")[-1] == shown(float(params["2.weight"][0, 0]), 6)


def test_sgd_with_nesterov_and_weight_decay_writes_g_the_buffer_and_the_step():
    net = derive.examples.seed()
    md = derive.report(net, format="md", optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=0.01, digits=6)
    _, _, params, opt = chain_run(net, "SGD", dict(lr=1.0, momentum=0.9, nesterov=True, weight_decay=0.01), 1)
    weight = opt.param_groups[0]["params"][2]
    assert display(md, r"b_{W_{5}}(t)")[-1] == shown(float(opt.state[weight]["momentum_buffer"][0, 0]), 6)
    assert r"\mub_{W_{5}}(t)" in display(md, r"W_{5}(t+1)")[0].replace(r"\,", "")
    assert display(md, r"W_{5}(t+1)")[-1] == shown(float(params["2.weight"][0, 0]), 6)


def test_plain_sgd_by_name_is_the_report_of_today():
    net = derive.examples.seed()
    golden = (Path(__file__).parent / "golden" / "seed_steps3.md").read_text(encoding="utf-8")
    assert derive.report(net, "md", steps=3, optimizer="sgd") == golden
    assert r"W_{5}(t) - \alpha \frac{\partial" in golden
    assert derive.report(net, "md", optimizer="sgd", lr=0.5) == derive.report(net.replace(lr=0.5), "md")


def test_the_command_of_the_issue(capsys, katex):  # noqa: F811
    argv = ["report", "--example", "seed", "--optimizer", "adam", "--lr", "0.1", "--steps", "3", "--format", "md"]
    assert main(argv) == 0
    md = capsys.readouterr().out
    assert katex.errors([(str(i), m) for i, m in enumerate(markdown_math(md))]) == []
    losses, _, params, _ = chain_run(derive.examples.seed(), "Adam", dict(lr=0.1))
    assert [row[1] for row in step_rows(md)[:3]] == [cell(v, 4) for v in losses]
    assert step_rows(md)[3][2] == cell(float(params["0.weight"][0, 0]), 4)  # W1 after three steps


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "adam", "--momentum", "0.9"], "adam has no option --momentum"),
    (["--optimizer", "sgd", "--nesterov"], "nesterov needs a momentum"),
    (["--optimizer", "adamm"], "unknown optimizer 'adamm'"),
    (["--betas", "0.9"], "expected two numbers"),
])
def test_bad_optimizer_options_exit_2_with_one_line(argv, message, capsys):
    assert main(["report", "--example", "seed", *argv]) == 2
    assert message in capsys.readouterr().err


def test_grads_prints_torchs_values_after_one_step(capsys):
    assert main(["grads", "--example", "seed", "--optimizer", "rmsprop", "--alpha", "0.9", "--momentum", "0.5",
                 "--lr", "0.1", "--format", "json"]) == 0
    import json

    step = json.loads(capsys.readouterr().out)["optimizer"]
    _, _, params, _ = chain_run(derive.examples.seed(), "RMSprop", dict(lr=0.1, alpha=0.9, momentum=0.5), 1)
    for p in derive.examples.seed().parameters():
        assert step["updated"][p.name] == pytest.approx(float(params[p.torch][p.index]), abs=1e-12)


def test_graph_model_report_with_adamw_renders_and_has_torchs_final_loss(katex):  # noqa: F811
    module = Residual()
    x, y = [[1.0, 2.0], [0.5, -1.0]], [[0.5], [-0.25]]
    model = derive.from_torch(copy.deepcopy(module), loss="mse", x=x, y=y)
    md = derive.report(model, format="md", steps=3, optimizer="adamw", lr=0.1, weight_decay=0.1)
    assert katex.errors([(str(i), m) for i, m in enumerate(markdown_math(md))]) == []
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    losses, _, _, _ = torch_run(module, lambda m: torch.nn.functional.mse_loss(m(xt), yt), "AdamW",
                                dict(lr=0.1, weight_decay=0.1), 3)
    assert [row[1] for row in step_rows(md)[:3]] == [cell(v, 4) for v in losses]
    assert r"(1 - \alpha \lambda)" in md
