"""Views of a crystal interpolation path in a notebook: a 3D view of a cell with its edges (plotly), a slider that
moves along the path and redraws the cell, its lattice parameters and a marker on the property curve
(ipywidgets), and a static matplotlib summary (lattice parameters and a property along the path) so that notebooks
also render as files. The environment counterpart is :mod:`atomsmith.generators.latent_views`.

plotly and ipywidgets are optional (``pip install atomsmith[notebooks]``); they are imported only when used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atomsmith.structures.crystal import Crystal

#: the 12 edges of the unit cell, as pairs of corners in fractional coordinates.
_CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], np.float64)
_EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if np.sum(np.abs(_CORNERS[a] - _CORNERS[b])) == 1]


def cell_traces(crystal: Crystal) -> dict:
    """Plotly trace data of one cell: ``{"atoms": dict(x, y, z, text), "cell": dict(x, y, z)}`` (Å; atoms at the
    crystal's own fractional coordinates, which need not lie in ``[0, 1)``; cell edges with None separators)."""
    pos = np.asarray(crystal.frac_coords, np.float64) @ np.asarray(crystal.lattice, np.float64)
    corners = _CORNERS @ np.asarray(crystal.lattice, np.float64)
    xs, ys, zs = [], [], []
    for a, b in _EDGES:
        for coords, k in zip((xs, ys, zs), range(3)):
            coords.extend([float(corners[a, k]), float(corners[b, k]), None])
    text = [f"{s} ({f[0]:.2f}, {f[1]:.2f}, {f[2]:.2f})" for s, f in zip(crystal.symbols, crystal.frac_coords)]
    return {"atoms": {"x": pos[:, 0].tolist(), "y": pos[:, 1].tolist(), "z": pos[:, 2].tolist(), "text": text},
            "cell": {"x": xs, "y": ys, "z": zs}}


def lattice_text(crystal: Crystal) -> str:
    """``a b c`` (Å) and ``alpha beta gamma`` (degrees), volume (Å^3) and formula, one line."""
    a, b, c, al, be, ga = crystal.lattice_parameters
    return (f"{crystal.formula}: a = {a:.3f}, b = {b:.3f}, c = {c:.3f} Å; alpha = {al:.1f}, beta = {be:.1f}, "
            f"gamma = {ga:.1f}°; V = {crystal.volume:.2f} Å^3")


def cell_figure(crystal: Crystal, title: str = "", axis_range: float | None = None):
    """A plotly 3D figure of one cell (atoms coloured by atomic number, cell edges grey). Trace 0 holds the atoms,
    trace 1 the cell."""
    import plotly.graph_objects as go

    tr = cell_traces(crystal)
    atoms = go.Scatter3d(**tr["atoms"], mode="markers", hoverinfo="text", name="atoms",
                         marker={"size": 8, "color": np.asarray(crystal.numbers, float), "colorscale": "Viridis",
                                 "cmin": 1.0, "cmax": 90.0})
    cell = go.Scatter3d(**tr["cell"], mode="lines", line={"color": "gray", "width": 3}, name="cell",
                        hoverinfo="skip")
    r = axis_range or float(np.max(np.abs(np.asarray(crystal.lattice).sum(0)))) * 1.2 + 1.0
    axis = {"range": [-1.0, r], "showticklabels": False, "title": ""}
    fig = go.Figure([atoms, cell])
    fig.update_layout(title=title, height=420, width=520, margin={"l": 0, "r": 0, "t": 40, "b": 0},
                      scene={"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube"}, showlegend=False)
    return fig


class CrystalPathViewer:
    """A slider along a crystal path; its callback redraws the cell (3D), the lattice-parameter line and the marker
    on the property curve.

    Attributes:
      frames: the crystals shown; t: ``[T]`` path parameter; values: ``[T]`` a property along the path or ``None``.
      figure: plotly 3D figure (trace 0 atoms, trace 1 cell edges), updated in place by :meth:`show`.
      curve: plotly 2D figure of ``values`` against ``t`` (trace 0 the curve, trace 1 the current step), or None.
      slider: ``ipywidgets.IntSlider`` over the frame index; label: ``ipywidgets.Label`` with the lattice line.
      step: the frame shown.
    """

    def __init__(self, frames: Sequence[Crystal], t: Sequence[float] | None = None,
                 values: Sequence[float] | None = None, value_label: str = "property",
                 title: str = "crystal interpolation"):
        import ipywidgets as widgets
        import plotly.graph_objects as go

        self.frames = list(frames)
        if not self.frames:
            raise ValueError("no frames to show")
        self.t = np.linspace(0.0, 1.0, len(self.frames)) if t is None else np.asarray(t, np.float64)
        self.values = None if values is None else np.asarray(values, np.float64)
        self.title = title
        lattice_sum = np.stack([np.abs(np.asarray(f.lattice)).sum(0) for f in self.frames])
        self.axis_range = float(lattice_sum.max()) * 1.2 + 1.0
        self.figure = cell_figure(self.frames[0], axis_range=self.axis_range)
        self.curve = None
        if self.values is not None:
            self.curve = go.Figure([go.Scatter(x=self.t.tolist(), y=self.values.tolist(), mode="lines+markers",
                                               name=value_label),
                                    go.Scatter(x=[float(self.t[0])], y=[float(self.values[0])], mode="markers",
                                               marker={"size": 14, "color": "red"}, name="shown")])
            self.curve.update_layout(height=260, width=520, xaxis_title="t", yaxis_title=value_label,
                                     margin={"l": 40, "r": 10, "t": 10, "b": 40}, showlegend=False)
        self.slider = widgets.IntSlider(value=0, min=0, max=len(self.frames) - 1, step=1, description="step",
                                        continuous_update=False)
        self.label = widgets.Label()
        self.output = widgets.Output()
        self.step = -1
        self.slider.observe(self._on_change, names="value")
        self.show(0)

    def _on_change(self, change: dict) -> None:
        self.show(int(change["new"]))

    def show(self, step: int) -> None:
        """Redraw the cell, the lattice line and the curve marker for frame ``step``."""
        if not 0 <= step < len(self.frames):
            raise IndexError(f"step {step} outside 0..{len(self.frames) - 1}")
        frame = self.frames[step]
        tr = cell_traces(frame)
        with self.figure.batch_update():
            self.figure.data[0].update(**tr["atoms"], marker={"color": np.asarray(frame.numbers, float)})
            self.figure.data[1].update(**tr["cell"])
            self.figure.layout.title = f"{self.title}: step {step}, t = {self.t[step]:.2f}"
        if self.curve is not None:
            with self.curve.batch_update():
                self.curve.data[1].update(x=[float(self.t[step])], y=[float(self.values[step])])
        self.label.value = lattice_text(frame)
        self.step = step
        self.output.clear_output(wait=True)
        with self.output:
            self.figure.show()
            if self.curve is not None:
                self.curve.show()

    def atom_positions(self) -> np.ndarray:
        """``[n, 3]`` the positions currently drawn (Å)."""
        d = self.figure.data[0]
        return np.stack([np.asarray(d.x, float), np.asarray(d.y, float), np.asarray(d.z, float)], axis=1)

    @property
    def widget(self):
        """The slider, the lattice line and the views, ready to display."""
        import ipywidgets as widgets

        return widgets.VBox([self.slider, self.label, self.output])


def path_summary_figure(frames: Sequence[Crystal], t: Sequence[float] | None = None,
                        values: dict[str, Sequence[float]] | None = None, valid: Sequence[bool] | None = None):
    """A static matplotlib figure along a path: cell lengths (Å) and angles (degrees) against ``t``, and each
    series of ``values`` (``{label: [T]}``, e.g. predicted heat_ref), with invalid frames (``valid`` False)
    marked by crosses. Returns the figure."""
    import matplotlib.pyplot as plt

    frames = list(frames)
    t = np.linspace(0.0, 1.0, len(frames)) if t is None else np.asarray(t, np.float64)
    params = np.array([f.lattice_parameters for f in frames])
    n = 2 + len(values or {})
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.0))
    for k, name in enumerate("abc"):
        axes[0].plot(t, params[:, k], "-o", ms=3, label=name)
    axes[0].set_ylabel("length (Å)")
    for k, name in enumerate(("alpha", "beta", "gamma")):
        axes[1].plot(t, params[:, 3 + k], "-o", ms=3, label=name)
    axes[1].set_ylabel("angle (°)")
    for ax, (label, series) in zip(axes[2:], (values or {}).items()):
        series = np.asarray(series, np.float64)
        ax.plot(t, series, "-o", ms=3, color="tab:purple")
        if valid is not None:
            bad = ~np.asarray(valid, bool)
            ax.plot(t[bad], series[bad], "x", color="red", ms=8, label="invalid")
        ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlabel("t")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
