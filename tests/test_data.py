"""``--x``/``--y`` data: the text form and .npy, .pt, .json files of any rank (`derive.sources.data`)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from derive.cli import main
from derive.errors import DeriveError, ShapeError, ValueDomainError
from derive.sources.data import load_data

ROOT = Path(__file__).resolve().parent.parent


def test_the_text_form_keeps_its_meaning_with_negative_first_values():
    array = load_data("-1,2.5;3,-4")
    assert array.dtype == np.float64 and array.tolist() == [[-1.0, 2.5], [3.0, -4.0]]
    assert load_data("2;0;1").dtype == np.float64  # as before: the text form gives floats


def test_files_of_any_rank_and_integer_class_indices(tmp_path):
    cube = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    np.save(tmp_path / "x.npy", cube)
    got = load_data(str(tmp_path / "x.npy"))
    assert got.shape == (2, 3, 4) and got.dtype == np.float64 and np.array_equal(got, cube.astype(np.float64))
    np.save(tmp_path / "y.npy", np.array([2, 0, 1], dtype=np.uint8))
    assert load_data(str(tmp_path / "y.npy")).dtype == np.int64
    (tmp_path / "y.json").write_text("[[2], [0], [1]]")
    labels = load_data(str(tmp_path / "y.json"))
    assert labels.dtype == np.int64 and labels.tolist() == [[2], [0], [1]]
    (tmp_path / "x.json").write_text("[[[1, 2.5]], [[3, 4]]]")
    assert load_data(str(tmp_path / "x.json")).shape == (2, 1, 2)


def test_a_torch_file_holds_one_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.ones(2, 3, 4, dtype=torch.float32) / 3, tmp_path / "x.pt")
    got = load_data(str(tmp_path / "x.pt"))
    assert got.shape == (2, 3, 4) and got[0, 0, 0] == np.float64(np.float32(1 / 3))
    torch.save(torch.tensor([1, 0]), tmp_path / "y.pt")
    assert load_data(str(tmp_path / "y.pt")).dtype == np.int64
    torch.save({"x": torch.ones(2)}, tmp_path / "dict.pt")
    with pytest.raises(DeriveError, match="expected one tensor, got dict"):
        load_data(str(tmp_path / "dict.pt"))


@pytest.mark.parametrize(
    "name, content, error, message",
    [
        ("none.npy", None, DeriveError, "none.npy: no such file"),
        ("x.csv", "1,2", DeriveError, r"data files end in \.npy .*, got '\.csv'"),
        ("ragged.json", "[[1, 2], [3]]", ShapeError, r"ragged lists: \[1\] has 1 entries, expected 2"),
        ("words.json", '[[1, "a"]]', DeriveError, r'\[0\]\[1\] is "a", not a number'),
        ("flags.json", "[[true, 1]]", DeriveError, r"is true, not a number"),
        ("nan.json", "[[1, NaN]]", ValueDomainError, r"x\[0\]\[1\] is nan; values must be finite"),
        ("broken.json", "[[1, 2]", DeriveError, "malformed JSON"),
        ("text.npy", "not numpy", DeriveError, r"not a plain numeric \.npy array"),
    ],
)
def test_bad_data_files_are_refused_with_what_and_where(tmp_path, name, content, error, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(error, match=message):
        load_data(str(tmp_path / name), "--x")


def test_non_finite_values_in_an_array_are_refused(tmp_path):
    np.save(tmp_path / "inf.npy", np.array([[1.0, np.inf]]))
    with pytest.raises(ValueDomainError, match=r"x\[0\]\[1\] is inf"):
        load_data(str(tmp_path / "inf.npy"))
    np.save(tmp_path / "c.npy", np.array([1 + 2j]))
    with pytest.raises(DeriveError, match="expected integers or real numbers, got dtype complex128"):
        load_data(str(tmp_path / "c.npy"))


def test_the_command_line_reads_files_as_it_reads_text(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([[1.0, 0.0], [0.0, 1.0]]))
    (tmp_path / "y.json").write_text("[[1], [0]]")
    assert main(["grads", "--example", "seed", "--x", str(tmp_path / "x.npy"), "--y", str(tmp_path / "y.json"),
                 "--format", "json"]) == 0
    from_files = json.loads(capsys.readouterr().out)
    assert main(["grads", "--example", "seed", "--x", "1,0;0,1", "--y", "1;0", "--format", "json"]) == 0
    assert from_files == json.loads(capsys.readouterr().out)


def test_class_indices_from_a_file_stay_integers(tmp_path, capsys):
    (tmp_path / "y.json").write_text("[1, 0]")
    args = ["grads", "--example", "classic_2_2_2", "--loss", "cross_entropy", "--x", "1,2;3,4", "--format", "json"]
    assert main([*args, "--y", str(tmp_path / "y.json")]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert main([*args, "--y", "1;0"]) == 0
    assert from_file == json.loads(capsys.readouterr().out)


def test_rank_3_data_for_a_chain_network_is_a_clear_error(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 2)))
    result = subprocess.run([sys.executable, "-m", "derive", "grads", "--example", "seed", "--x",
                             str(tmp_path / "x.npy"), "--y", "0;1"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--x has shape (2, 3, 2) (rank 3); a chain of Linear layers takes one row" in result.stderr


def test_a_rank_3_file_completes_a_graph_spec_and_is_refused_by_a_chain_spec(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 2)))
    chain = tmp_path / "chain.json"
    chain.write_text((ROOT / "examples" / "seed.json").read_text())
    assert main(["grads", "--spec", str(chain), "--x", str(tmp_path / "x.npy")]) == 2
    assert "--x has shape (1, 2, 2) (rank 3)" in capsys.readouterr().err
