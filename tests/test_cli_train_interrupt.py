"""Ctrl-C during ``atomsmith train ...`` (issue 22.6): the command says where the training state is and which
command resumes it (exit code 130), and the rerun says from which step it resumes and finishes.

Ctrl-C is simulated by raising ``KeyboardInterrupt`` from the loop's progress update after step 2, which is where a
real SIGINT lands in the Python loop; the loop saves its state before re-raising (atomsmith.training.loop.fit).
"""

from __future__ import annotations

import csv
import sys

import pytest
from typer.testing import CliRunner

from atomsmith import datasets
from atomsmith.cli.main import app
from atomsmith.structures.io import to_cif
from atomsmith.training import loop


@pytest.fixture(scope="module")
def own_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("interrupt") / "own.csv"
    cells = datasets.load("perov_5", "val", limit=6)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["material_id", "cif", "gap"])
        writer.writeheader()
        writer.writerows({"material_id": f"m{i}", "cif": to_cif(c), "gap": f"{0.1 * i:.2f}"}
                         for i, c in enumerate(cells))
    return path


def test_ctrl_c_names_the_state_and_the_resume_command(own_csv, tmp_path, monkeypatch):
    out = tmp_path / "gap.ckpt"
    args = ["train", "predictor", "--data", str(own_csv), "--target", "gap", "--out", str(out), "--steps", "4",
            "--batch-size", "2", "--eval-every", "2", "--checkpoint-every", "100", "--irreps", "4x0e+2x1o",
            "--layers", "1", "--width", "8", "--no-progress"]
    monkeypatch.setattr(sys, "argv", ["atomsmith", *args])  # the command line a user typed
    real_update = loop._Progress.update

    def interrupt_after_two(self, step, metrics):
        real_update(self, step, metrics)
        if step >= 2:
            raise KeyboardInterrupt

    runner = CliRunner()
    with monkeypatch.context() as patch:
        patch.setattr(loop._Progress, "update", interrupt_after_two)
        interrupted = runner.invoke(app, args)
    assert interrupted.exit_code == 130, interrupted.output
    state = out.with_suffix(".train.ckpt")
    assert state.exists() and not out.exists()
    message = " ".join(interrupted.stderr.split())
    assert "interrupted: training state saved at step 2" in message, message
    assert str(state) in message and f"atomsmith train predictor --data {own_csv}" in message

    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming from step 2 (training state {state})" in " ".join(resumed.stderr.split())
    assert out.exists()

    again = runner.invoke(app, [*args, "--force"])  # the finished state: says so, writes the model again
    assert again.exit_code == 0, again.output
    assert "training already finished at step 4" in " ".join(again.stderr.split())


def test_ctrl_c_before_any_state_says_nothing_can_be_resumed(own_csv, tmp_path, monkeypatch):
    out = tmp_path / "gap.ckpt"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("atomsmith.predictors.training.fit", interrupt)
    result = CliRunner().invoke(app, ["train", "predictor", "--data", str(own_csv), "--target", "gap", "--out",
                                      str(out), "--steps", "2", "--no-progress"])
    assert result.exit_code == 130
    assert "nothing to resume" in result.stderr and not out.with_suffix(".train.ckpt").exists()
