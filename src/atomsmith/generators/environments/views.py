"""Views for exploring an environment VAE's latent space in a notebook (both VAEs): a 3D view of an environment
(plotly), a slider that moves along an interpolation path and redraws it (ipywidgets), a 2D projection of the
latent space coloured by a property, and static matplotlib figures so that notebooks also render as files.

plotly and ipywidgets are optional (``pip install atomsmith[notebooks]``); they are imported only when used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from atomsmith.generators.environments import ops
from atomsmith.generators.environments.interpolation import Trajectory

BOND_CUTOFF = 2.85  # Å, Si-Si bonds drawn (a-Si first shell)
_SYMBOLS = {8: "O", 14: "Si", 22: "Ti", 38: "Sr", 56: "Ba"}


def _bonds(env: np.ndarray, cutoff: float) -> tuple[list, list, list]:
    """Line segments (x, y, z lists with None separators) between atoms (centre at the origin) closer than
    ``cutoff``."""
    pts = np.concatenate([np.zeros((1, 3)), env])
    xs, ys, zs = [], [], []
    for i in range(len(pts)):
        for j in range(i + 1, len(pts)):
            if np.linalg.norm(pts[i] - pts[j]) < cutoff:
                for coords, (a, b) in zip((xs, ys, zs), ((pts[i, k], pts[j, k]) for k in range(3))):
                    coords.extend([float(a), float(b), None])
    return xs, ys, zs


def environment_traces(env: np.ndarray, numbers: Any = None, bond_cutoff: float = BOND_CUTOFF) -> dict:
    """Plotly trace data of one environment ``[n, 3]`` Å: ``{"atoms": dict(x, y, z, text), "bonds": dict(x, y,
    z)}`` with the centre first."""
    env = ops.check_environment(env)
    pts = np.concatenate([np.zeros((1, 3)), env])
    numbers = np.full(len(pts), 14) if numbers is None else np.asarray(numbers)
    text = [f"{'centre ' if i == 0 else ''}{_SYMBOLS.get(int(z), str(int(z)))} {np.linalg.norm(p):.2f} Å"
            for i, (z, p) in enumerate(zip(numbers, pts))]
    bx, by, bz = _bonds(env, bond_cutoff)
    return {"atoms": {"x": pts[:, 0].tolist(), "y": pts[:, 1].tolist(), "z": pts[:, 2].tolist(), "text": text},
            "bonds": {"x": bx, "y": by, "z": bz}}


def environment_figure(env: np.ndarray, numbers: Any = None, title: str = "", bond_cutoff: float = BOND_CUTOFF,
                       axis_range: float = 4.5):
    """A plotly 3D figure of one environment (centre black, neighbours coloured by distance, bonds as lines).
    Trace 0 holds the atoms, trace 1 the bonds."""
    import plotly.graph_objects as go

    tr = environment_traces(env, numbers, bond_cutoff)
    dist = np.sqrt(np.asarray(tr["atoms"]["x"]) ** 2 + np.asarray(tr["atoms"]["y"]) ** 2
                   + np.asarray(tr["atoms"]["z"]) ** 2)
    atoms = go.Scatter3d(**tr["atoms"], mode="markers", hoverinfo="text", name="atoms",
                         marker={"size": [9] + [6] * (len(dist) - 1), "color": dist, "colorscale": "Viridis",
                                 "cmin": 0.0, "cmax": 4.0, "colorbar": {"title": "Å"}})
    bonds = go.Scatter3d(**tr["bonds"], mode="lines", line={"color": "gray", "width": 4}, name="bonds",
                         hoverinfo="skip")
    axis = {"range": [-axis_range, axis_range], "showticklabels": False, "title": ""}
    fig = go.Figure([atoms, bonds])
    fig.update_layout(title=title, height=420, width=520, margin={"l": 0, "r": 0, "t": 40, "b": 0},
                      scene={"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube"},
                      showlegend=False)
    return fig


class InterpolationViewer:
    """A slider along an interpolation :class:`Trajectory` and a 3D view that the slider's callback redraws.

    Attributes:
      trajectory: the frames shown.
      figure: the plotly figure (trace 0: atoms, trace 1: bonds), updated in place by :meth:`show`.
      slider: ``ipywidgets.IntSlider`` over the frame index; moving it calls :meth:`show`.
      output: ``ipywidgets.Output`` where the figure is (re)displayed.
      step: the frame shown.
    """

    def __init__(self, trajectory: Trajectory, title: str = "latent interpolation"):
        import ipywidgets as widgets

        self.trajectory = trajectory
        self.title = title
        self.figure = environment_figure(trajectory.frames[0], trajectory.numbers[0])
        self.slider = widgets.IntSlider(value=0, min=0, max=len(trajectory) - 1, step=1, description="step",
                                        continuous_update=False)
        self.output = widgets.Output()
        self.step = -1
        self.slider.observe(self._on_change, names="value")
        self.show(0)

    def _on_change(self, change: dict) -> None:
        self.show(int(change["new"]))

    def show(self, step: int) -> None:
        """Redraw the figure with frame ``step`` (atoms and bonds replaced in place) and display it."""
        if not 0 <= step < len(self.trajectory):
            raise IndexError(f"step {step} outside 0..{len(self.trajectory) - 1}")
        tr = environment_traces(self.trajectory.frames[step], self.trajectory.numbers[step])
        with self.figure.batch_update():
            self.figure.data[0].update(**tr["atoms"])
            self.figure.data[1].update(**tr["bonds"])
            self.figure.layout.title = (f"{self.title}: step {step}, t = {self.trajectory.t[step]:.2f}, "
                                        f"coordination {int(ops.coordination(self.trajectory.frames[step]))}")
        self.step = step
        self.output.clear_output(wait=True)
        with self.output:
            self.figure.show()

    def atom_positions(self) -> np.ndarray:
        """``[n + 1, 3]`` the positions currently drawn (centre first)."""
        d = self.figure.data[0]
        return np.stack([np.asarray(d.x, float), np.asarray(d.y, float), np.asarray(d.z, float)], axis=1)

    @property
    def widget(self):
        """The slider above the view, ready to display."""
        import ipywidgets as widgets

        return widgets.VBox([self.slider, self.output])


def pca_2d(points: np.ndarray, fit_on: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Project ``points`` ``[m, d]`` onto the two leading principal axes of ``fit_on`` (default: ``points``).
    Returns ``(projected [m, 2], explained variance fraction [2])``."""
    ref = np.asarray(points if fit_on is None else fit_on, np.float64)
    centre = ref.mean(axis=0)
    _, s, vt = np.linalg.svd(ref - centre, full_matrices=False)
    return (np.asarray(points, np.float64) - centre) @ vt[:2].T, (s[:2] ** 2) / np.sum(s ** 2)


def latent_map_figure(model: Any, environments: np.ndarray, trajectory: Trajectory | None = None,
                      color: str = "coordination", bond_cutoff: float = BOND_CUTOFF, ax=None):
    """Matplotlib scatter of the posterior means of ``environments`` ``[m, n, 3]`` in the 2D PCA plane of the
    latent space, coloured by ``"coordination"`` (neighbours closer than ``bond_cutoff``) or ``"distance"``
    (mean neighbour distance, Å), with the interpolation path drawn on top. Returns the figure."""
    import matplotlib.pyplot as plt

    mean, _ = model.encode(environments)
    xy, var = pca_2d(mean)
    if color == "coordination":
        values, label = ops.coordination(environments, bond_cutoff), f"coordination (< {bond_cutoff} Å)"
    elif color == "distance":
        values, label = ops.neighbor_distances(environments).mean(axis=1), "mean neighbour distance (Å)"
    else:
        raise ValueError(f"color must be 'coordination' or 'distance', got {color!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
    else:
        fig = ax.figure
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=8, cmap="viridis", alpha=0.8)
    fig.colorbar(sc, ax=ax, label=label)
    if trajectory is not None:
        path, _ = pca_2d(trajectory.latents, fit_on=mean)
        ax.plot(path[:, 0], path[:, 1], "-o", color="tab:red", ms=4, label="interpolation path")
        ax.plot(*path[0], "s", color="black", ms=8, label="start")
        ax.plot(*path[-1], "*", color="black", ms=12, label="end")
        ax.legend(fontsize=8, loc="best")
    ax.set_xlabel(f"latent PC 1 ({100 * var[0]:.0f} %)")
    ax.set_ylabel(f"latent PC 2 ({100 * var[1]:.0f} %)")
    return fig


def trajectory_strip_figure(trajectory: Trajectory, n_panels: int = 6, bond_cutoff: float = BOND_CUTOFF):
    """A static matplotlib strip of ``n_panels`` frames along the path (bonded neighbours red). Returns it."""
    import matplotlib.pyplot as plt

    idx = np.unique(np.linspace(0, len(trajectory) - 1, n_panels).round().astype(int))
    fig = plt.figure(figsize=(2.3 * len(idx), 2.6))
    for k, i in enumerate(idx):
        ax = fig.add_subplot(1, len(idx), k + 1, projection="3d")
        env = trajectory.frames[i]
        d = np.linalg.norm(env, axis=1)
        ax.scatter(*env.T, c=np.where(d < bond_cutoff, "tab:red", "tab:gray"), s=30, depthshade=False)
        ax.scatter([0], [0], [0], c="black", s=50)
        xs, ys, zs = _bonds(env, bond_cutoff)
        ax.plot([np.nan if v is None else v for v in xs], [np.nan if v is None else v for v in ys],
                [np.nan if v is None else v for v in zs], color="gray", lw=1)
        ax.set_xlim(-4, 4), ax.set_ylim(-4, 4), ax.set_zlim(-4, 4)
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
        ax.set_title(f"t = {trajectory.t[i]:.2f}", fontsize=8)
    fig.tight_layout()
    return fig
