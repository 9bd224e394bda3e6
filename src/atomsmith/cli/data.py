"""``atomsmith data``: list the datasets, show one in detail, parse and cache them ahead of time."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import typer

_DATA_DIR = typer.Option(None, "--data-dir", help="Directory with data that is not shipped (bto_400K, mp_20); "
                                                 "default $ATOMSMITH_DATA_DIR, then ../shared/data.")
_CACHE_DIR = typer.Option(None, "--cache-dir", help="Cache root; default $ATOMSMITH_CACHE_DIR or ~/.cache/atomsmith.")


def _where(info) -> str:
    spec = info.spec
    present = [s for s, p in info.files.items() if p is not None]
    cached = [s for s, p in info.cached.items() if p is not None]
    if spec.location == "package":
        text = "[green]shipped[/green]"
    elif len(present) == len(info.files):
        text = "[green]yes[/green]"
    elif present:
        text = f"[yellow]{', '.join(present)}[/yellow]"
    else:
        text = "[red]no[/red]: " + ("download on first load" if spec.location == "download" else "--data-dir")
    if cached:
        text += f"\ncached: {', '.join(cached)}"
    return text


def list_datasets(data_dir: Optional[Path] = _DATA_DIR, cache_dir: Optional[Path] = _CACHE_DIR) -> None:
    """Table of every dataset: splits with structure counts, atoms per cell, properties, licence, local files."""
    from rich.console import Console
    from rich.table import Table

    from atomsmith import datasets

    table = Table(title="atomsmith datasets", show_lines=True,
                  caption="every structure also has material_id; `atomsmith data info NAME` for details")
    for column in ("name", "splits", "atoms", "properties", "license", "here"):
        table.add_column(column, overflow="fold", no_wrap=column in ("name", "atoms"))
    for name in datasets.available():
        info = datasets.info(name, data_dir=data_dir, cache_dir=cache_dir)
        spec = info.spec
        splits = "\n".join(f"{s} {f.n_structures:,}" for s, f in spec.splits.items())
        if spec.missing_splits and spec.location != "data_dir":
            splits += "\n" + "\n".join(f"[dim]{s}: n/a[/dim]" for s in spec.missing_splits)
        props = ", ".join([*(k for k in spec.properties if k != "material_id"),
                           *(f"{k} (per atom)" for k in spec.site_properties)]) or "-"
        table.add_row(name, splits, spec.atoms_per_cell, props, spec.license.split(" (")[0].split(";")[0],
                      _where(info))
    Console().print(table)


def show_info(name: str = typer.Argument(..., help="Dataset name (see `atomsmith data list`)."),
              data_dir: Optional[Path] = _DATA_DIR, cache_dir: Optional[Path] = _CACHE_DIR) -> None:
    """Details of one dataset, and statistics of each split that has been parsed (cached)."""
    from rich.console import Console
    from rich.table import Table

    from atomsmith import datasets

    console = Console()
    try:
        info = datasets.info(name, data_dir=data_dir, cache_dir=cache_dir)
    except datasets.DatasetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    spec = info.spec
    console.print(f"[bold]{spec.name}[/bold]: {spec.title}")
    for label, value in (("source", spec.source), ("license", spec.license), ("cite", spec.citation),
                         ("atoms per cell", spec.atoms_per_cell), ("notes", spec.notes)):
        if value:
            console.print(f"  [bold]{label}:[/bold] {value}")
    for split, reason in spec.missing_splits.items():
        if spec.location != "data_dir" or split == "train":
            console.print(f"  [bold]no {split} split:[/bold] {reason}")
    props = Table(title="properties", show_header=True)
    props.add_column("name")
    props.add_column("meaning")
    for key, text in spec.properties.items():
        props.add_row(key, text)
    for key, text in spec.site_properties.items():
        props.add_row(f"{key} (per atom)", text)
    console.print(props)

    files = Table(title="splits", show_header=True)
    for column in ("split", "structures", "file", "sha256", "cache"):
        files.add_column(column, overflow="fold")
    for split, split_file in spec.splits.items():
        path = info.files[split]
        cache = info.cached[split]
        files.add_row(split, f"{split_file.n_structures:,}", str(path) if path else "[red]not here[/red]",
                      split_file.sha256[:16] + "...", str(cache) if cache else "not parsed yet")
    console.print(files)

    for split in spec.splits:
        stats = datasets.statistics(name, split, data_dir=data_dir, cache_dir=cache_dir)
        if stats is None:
            continue
        table = Table(title=f"{split}: statistics", show_header=True)
        table.add_column("quantity")
        table.add_column("value", overflow="fold")
        lo, mean, hi = stats["atoms_per_cell"]
        table.add_row("structures", f"{stats['n_structures']:,}")
        table.add_row("atoms per cell (min / mean / max)", f"{lo} / {mean:.2f} / {hi}")
        table.add_row("volume per atom (Å³, mean ± std)", "{:.2f} ± {:.2f}".format(*stats["volume_per_atom"]))
        table.add_row("lattice lengths (Å, min - max)", "{:.2f} - {:.2f}".format(*stats["lattice_lengths"]))
        elements = stats["elements"]
        head = ", ".join(f"{el} {count}" for el, count in list(elements.items())[:12])
        more = " ..." if len(elements) > 12 else ""
        table.add_row(f"elements ({len(elements)}; structures containing)", head + more)
        for key, (m, s, a, b) in stats["properties"].items():
            table.add_row(key, f"mean {m:.4g}, std {s:.4g}, min {a:.4g}, max {b:.4g}")
        console.print(table)
    if not any(info.cached.values()):
        console.print(f"[dim]No split parsed yet: `atomsmith data prepare {name}` parses and caches them "
                      "(statistics appear here afterwards).[/dim]")


def prepare(name: str = typer.Argument(..., help="Dataset name."),
            split: Optional[list[str]] = typer.Option(None, "--split", help="Split(s); default all."),
            data_dir: Optional[Path] = _DATA_DIR, cache_dir: Optional[Path] = _CACHE_DIR,
            workers: Optional[int] = typer.Option(None, "--workers", help="Parser processes (default: CPUs).")
            ) -> None:
    """Parse and cache dataset splits now (downloading mp_20 if needed), so later loads are fast."""
    from rich.console import Console

    from atomsmith import datasets

    console = Console()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        spec = datasets.info(name, data_dir=data_dir, cache_dir=cache_dir).spec
        for s in split or list(spec.splits):
            start = time.perf_counter()
            packed = datasets.load_packed(name, s, data_dir=data_dir, cache_dir=cache_dir, workers=workers)
            console.print(f"{name} {s}: {len(packed):,} structures ready ({time.perf_counter() - start:.1f} s)")
    except datasets.DatasetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Datasets: what is there, details, and parsing ahead of time.", no_args_is_help=True)
    data_app.command("list")(list_datasets)
    data_app.command("info")(show_info)
    data_app.command("prepare")(prepare)
    app.add_typer(data_app, name="data")
