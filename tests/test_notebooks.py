"""The notebooks run top to bottom, headless, on the shipped models, and the interpolation widget redraws."""

from pathlib import Path

import numpy as np
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
for module in ("nbclient", "nbformat", "ipykernel", "ipywidgets", "plotly"):
    pytest.importorskip(module, reason=f"{module} is needed for the notebook tests (pip install atomsmith[test])")


def _execute(name: str, tmp_path: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def _outputs(nb, mime: str) -> int:
    return sum(mime in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def test_latent_interpolation_notebook_runs(tmp_path):
    nb = _execute("latent_interpolation.ipynb", tmp_path)
    assert _outputs(nb, "image/png") >= 2, "the latent map and the frame strip must be saved as PNG outputs"
    assert _outputs(nb, "application/vnd.jupyter.widget-view+json") >= 1, "the slider widget must be displayed"
    assert (tmp_path / "interpolation.extxyz").stat().st_size > 0


def test_quickstart_notebook_runs(tmp_path):
    nb = _execute("quickstart.ipynb", tmp_path)
    assert _outputs(nb, "image/png") >= 1
    from atomsmith.structures import io

    assert len(io.read(tmp_path / "samples.extxyz")) >= 1  # clash-free samples of the shipped model


def test_widget_callback_redraws_with_new_coordinates():
    from atomsmith.generators.environments.interpolation import Trajectory
    from atomsmith.generators.environments.views import InterpolationViewer

    rng = np.random.default_rng(0)
    start = rng.normal(size=(8, 3))
    start = 2.4 * start / np.linalg.norm(start, axis=1, keepdims=True)
    frames = np.stack([start * (1.0 + 0.1 * i) for i in range(5)])
    viewer = InterpolationViewer(Trajectory(frames, np.zeros((5, 2)), np.linspace(0, 1, 5), np.full((5, 9), 14)))
    np.testing.assert_allclose(viewer.atom_positions()[1:], frames[0])
    viewer.slider.value = 3  # what a user's drag does: the observer calls the redraw
    assert viewer.step == 3
    np.testing.assert_allclose(viewer.atom_positions()[1:], frames[3])
    assert "step 3" in viewer.figure.layout.title.text
    n_bonds_far = sum(v is None for v in viewer.figure.data[1].x)
    viewer.slider.value = 0
    assert sum(v is None for v in viewer.figure.data[1].x) >= n_bonds_far  # bonds redrawn too
    with pytest.raises(IndexError):
        viewer.show(5)
