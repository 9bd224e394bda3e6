"""``atomsmith.sample``: draw structures from a shipped or trained generator, optionally guided. With the shipped
models (a minute or so on a CPU, most of it compilation)::

    crystals = atomsmith.sample("perov-5", 8, target={"heat_ref": 0.6})      # gradient guidance
    crystals = atomsmith.sample("perov-5", 8, composition="SrTiO3")           # structure prediction

Requests are parsed and checked before any model runs:

    >>> from atomsmith.api.sampling import parse_cell, parse_composition, parse_requests
    >>> parse_composition("SrTiO3")
    [38, 22, 8, 8, 8]
    >>> parse_cell("10.92").diagonal().tolist()
    [10.92, 10.92, 10.92]
    >>> [(r.name, r.low, r.high) for r in parse_requests(target={"heat_ref": 0.6}, range="gap=1:")]
    [('heat_ref', 0.6, 0.6), ('gap', 1.0, inf)]

and a request the model cannot serve fails at once, naming the model (here an untrained Gram VAE; no weights are
needed to refuse):

    >>> import atomsmith
    >>> from atomsmith.generators.gram_vae import GramVAE, tiny_config
    >>> atomsmith.sample(GramVAE(tiny_config(), params=None, normalizer=None), 1, composition="Si2")
    Traceback (most recent call last):
    ...
    atomsmith.generators.protocol.UnsupportedRequestError: GramVAE does not take a composition: it samples local ...

The CLI (``atomsmith sample``) is a thin layer over :func:`plan_guidance` and :func:`sample_with_plan`; both end
in one call of ``generator.sample`` (:mod:`atomsmith.generators.protocol`), whatever the model.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from atomsmith.generators.protocol import InvalidRequestError, capabilities_of, options_for, unsupported
from atomsmith.structures.crystal import Crystal

#: Guidance modes: classifier-free when the model was trained with the property as input, else gradient.
GUIDANCE_MODES = ("auto", "gradient", "classifier-free")

ModelLike = Any  # a shipped name, a checkpoint path or a loaded model


_LOADED: dict[tuple[str, int, int], Any] = {}


def resolve_model(model: ModelLike | None, kinds: Sequence[str] | None = None) -> tuple[Any, str]:
    """``(loaded model, display name)`` from a name, a path or an already loaded model (default: ``perov-5``).

    Loaded checkpoints are kept for the life of the process (keyed by file, size and modification time), so that
    calling ``atomsmith.sample("perov-5", ...)`` again reuses the model and its compiled sampler instead of
    compiling it again (tens of seconds on a CPU).
    """
    from atomsmith.pretrained import DEFAULT_MODEL, kind_of, load_model, require_kind, resolve_path

    if model is None or isinstance(model, (str, os.PathLike)):
        name = str(model or DEFAULT_MODEL)
        path = resolve_path(name)  # UnknownModelError naming the shipped models
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _LOADED:
            _LOADED[key] = load_model(name, kinds=kinds)
        else:
            require_kind(name, kind_of(name), kinds)
        return _LOADED[key], name
    return model, str(getattr(model, "name", None) or type(model).__name__)


def parse_composition(text: str | Sequence[int]) -> list[int]:
    """Atomic numbers of a formula (``"SrTiO3"`` -> ``[38, 22, 8, 8, 8]``) or a list of atomic numbers.

    Raises :class:`InvalidRequestError` for an unparsable formula or a non-integer amount.
    """
    if not isinstance(text, str):
        return [int(z) for z in text]
    from pymatgen.core import Composition

    try:
        comp = Composition(text)
    except Exception as exc:  # noqa: BLE001 - pymatgen raises several types
        raise InvalidRequestError(f"cannot parse composition {text!r}: {exc}") from None
    numbers = []
    for element, amount in comp.items():
        if abs(amount - round(amount)) > 1e-8 or amount < 1:
            raise InvalidRequestError(f"composition {text!r} has a non-integer amount of {element}")
        numbers += [element.Z] * int(round(amount))
    if not numbers:
        raise InvalidRequestError(f"composition {text!r} is empty")
    return numbers


def parse_cell(cell: float | Sequence[float] | np.ndarray | str) -> np.ndarray:
    """A held cell ``[3, 3]`` (rows, Å) from ``a`` (cubic), ``(a, b, c)`` (orthorhombic) or 9 numbers / a matrix.

    Raises :class:`InvalidRequestError` for other sizes and left-handed or degenerate cells.
    """
    if isinstance(cell, str):
        try:
            cell = [float(x) for x in cell.replace(",", " ").split()]
        except ValueError:
            raise InvalidRequestError(f"cannot parse cell {cell!r}: give 'a', 'a,b,c' or 9 numbers (Å)") from None
    values = np.asarray(cell, np.float64).reshape(-1)
    if values.size == 1:
        lattice = np.eye(3) * values[0]
    elif values.size == 3:
        lattice = np.diag(values)
    elif values.size == 9:
        lattice = values.reshape(3, 3)
    else:
        raise InvalidRequestError(f"a cell takes 1, 3 or 9 numbers (Å), got {values.size}")
    if not np.all(np.isfinite(lattice)) or np.linalg.det(lattice) <= 1e-6:
        raise InvalidRequestError("the cell must be right-handed and non-degenerate")
    return lattice


@dataclasses.dataclass(frozen=True)
class GuidancePlan:
    """What property requests resolved to.

    Attributes:
      requests: the parsed requests (:class:`~atomsmith.guidance.requests.PropertyRequest`).
      predictors: ``{property: predictor}`` guiding (gradient mode) or only reporting (classifier-free mode).
      objective: the gradient-guidance objective, or ``None``.
      cfg_conditions: ``{property: value}`` for classifier-free guidance (empty in gradient mode).
      warnings: requests outside the values their predictor saw in training
        (:func:`atomsmith.predictors.applicability.check_request`), one message each.
    """

    requests: tuple = ()
    predictors: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    objective: Any = None
    cfg_conditions: Mapping[str, float] = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def parse_requests(target: Any = None, range: Any = None, property_scale: float = 0.1) -> list:  # noqa: A002
    """Property requests from ``target`` (``{"heat_ref": 0.6}``, ``"heat_ref=0.6"`` or a list of such strings)
    and ``range`` (``{"heat_ref": (0.3, 0.9)}``, ``"heat_ref=0.3:0.9"`` or a list); each property at most once.

    Raises :class:`InvalidRequestError` (a ``ValueError``) naming the bad request.
    """
    from atomsmith.guidance.requests import PropertyRequest

    def texts(spec: Any, is_range: bool) -> list[str]:
        if spec is None:
            return []
        if isinstance(spec, str):
            return [spec]
        if isinstance(spec, Mapping):
            if is_range:
                return [f"{k}={'' if lo is None else lo}:{'' if hi is None else hi}" for k, (lo, hi) in spec.items()]
            return [f"{k}={v}" for k, v in spec.items()]
        return [str(s) for s in spec]

    requests = []
    for text, is_range in [(t, False) for t in texts(target, False)] + [(r, True) for r in texts(range, True)]:
        try:
            request = PropertyRequest.parse(text, property_scale)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        if is_range == request.is_target:
            hint = "a range NAME=LOW:HIGH" if is_range else "a target NAME=VALUE"
            raise InvalidRequestError(f"{text!r}: write {hint}")
        requests.append(request)
    if len({r.name for r in requests}) != len(requests):
        raise InvalidRequestError("each property may be requested once")
    return requests


def plan_guidance(generator: Any, name: str, requests: Sequence, *, predictors: Sequence[str] = (),
                  mode: str = "auto") -> GuidancePlan:
    """Decide how to honour ``requests`` with ``generator``: classifier-free conditions when the model was trained
    with those properties as inputs (``mode="auto"`` or ``"classifier-free"``), else gradient guidance through
    predictors (given ones, or the shipped predictors of the model's dataset).

    Raises :class:`InvalidRequestError` for an impossible request and
    :class:`~atomsmith.guidance.requests.UnknownPropertyError` (listing what is available) for a property without
    a predictor.
    """
    from atomsmith.guidance.requests import UnknownPropertyError, build_objective
    from atomsmith.pretrained.predictors import resolve_predictors

    if mode not in GUIDANCE_MODES:
        raise InvalidRequestError(f"unknown guidance mode {mode!r}; choose {', '.join(GUIDANCE_MODES)}")
    requests = tuple(requests)
    if not requests:
        if predictors:
            raise InvalidRequestError("a predictor needs a target or range to guide")
        return GuidancePlan()
    conditioned = tuple(getattr(getattr(generator, "config", None), "properties", ()) or ())
    dataset = model_dataset(name, generator)
    usable = not predictors and all(r.is_target and r.name in conditioned for r in requests)
    if mode == "classifier-free" and not usable:
        raise InvalidRequestError(
            f"classifier-free guidance needs target values of properties the model was trained on (this model: "
            f"{', '.join(conditioned) or 'none'}) and no range or predictor")
    if mode != "gradient" and usable:  # the shipped predictors (when there are any) only report the result
        found = {}
        for request in requests:
            try:
                found.update(resolve_predictors([request], (), dataset, model_name=name))
            except UnknownPropertyError:
                pass
        return GuidancePlan(tuple(r for r in requests if r.name in found), found, None,
                            {r.name: r.low for r in requests}, _request_warnings(requests, found))
    found = resolve_predictors(requests, predictors, dataset, model_name=name)
    return GuidancePlan(requests, found, build_objective(requests, found), {}, _request_warnings(requests, found))


def _request_warnings(requests: Sequence, predictors: Mapping[str, Any]) -> tuple[str, ...]:
    """Requests outside the target values their predictor was trained on (the same check as ``predict``'s)."""
    from atomsmith.predictors.applicability import check_request

    return tuple(message for r in requests if r.name in predictors
                 for message in check_request(r.name, r.low, r.high, getattr(predictors[r.name], "domain", None)))


def model_dataset(name: str, generator: Any) -> str | None:
    """The dataset a model was trained on (registry field, else its checkpoint's ``how_trained``)."""
    from atomsmith.pretrained import available, info

    dataset = info(name).get("dataset") if name in available() else None
    if dataset is None:
        trained = getattr(generator, "metadata", {}).get("how_trained", {})
        dataset = str(trained.get("dataset", "") if isinstance(trained, Mapping) else "").split(":")[0] or None
    return dataset


def sample(model: ModelLike = None, n: int = 10, *, seed: int = 0, composition: str | Sequence[int] | None = None,
           cell: Any = None, target: Any = None, range: Any = None, guidance_scale: float = 10.0,  # noqa: A002
           property_scale: float = 0.1, predictors: Sequence[str] = (), guidance_mode: str = "auto",
           cfg_scale: float = 2.0, steps: int | None = None, sampler: str = "pc", batch_size: int = 256,
           guidance: Any = None, relax: bool = False, relax_steps: int = 300, potential: str | None = None,
           progress: bool = False, stats: dict | None = None) -> list[Crystal]:
    """Draw ``n`` structures.

    Args:
      model: shipped name (``"perov-5"``, ``"a-si"``, ``"perov-5-cfg"``, ``"gram-vae"``, ...), checkpoint path or
        a loaded model; default ``"perov-5"``.
      n: number of structures.
      seed: the same seed and arguments give the same structures.
      composition: structure prediction: a formula (``"SrTiO3"``) or atomic numbers, the same for every cell.
      cell: hold the cell (amorphous mode): ``a`` (cubic, Å), ``(a, b, c)`` or a ``[3, 3]`` matrix (rows, Å).
      target: property targets, ``{"heat_ref": 0.6}`` (eV) or ``"heat_ref=0.6"``.
      range: property ranges, ``{"heat_ref": (0.3, 0.9)}`` (``None`` for an open end).
      guidance_scale: gradient-guidance strength (0 = unguided).
      property_scale: tolerance of targets/ranges in the property's units (an error of this size costs 1).
      predictors: predictor names/paths providing the guided properties (default: the shipped ones of the
        model's dataset).
      guidance_mode: ``auto``, ``gradient`` or ``classifier-free``.
      cfg_scale: classifier-free guidance factor.
      steps: reverse diffusion steps (default 200).
      sampler: ``pc`` (predictor-corrector) or ``ode``.
      batch_size: cells sampled together.
      guidance: your own objective from :mod:`atomsmith.guidance` (e.g. ``MinDistance(1.5)``, ``2 * PropertyTarget(
        predictor, 0.5)``; lower is better), added to the target/range terms and applied with ``guidance_scale``.
      relax: short fixed-cell Stillinger-Weber relaxation of each sample (pure Si only); adds the property
        ``sw_energy_per_atom`` (eV/atom).
      relax_steps: iteration limit of the relaxation.
      potential: the SW parameter set of the relaxation (``"vink"``, ``"original"``; default the one the shipped
        a-Si was made with, ``atomsmith.physics.asi_set.SHIPPED_POTENTIAL``).
      progress: show a progress bar.
      stats: filled with sampler statistics (e.g. neighbour-list ``overflow`` count).

    Returns:
      ``n`` crystals (environment VAEs return environments as clusters in a box; composition, cell, targets,
      ranges and ``guidance`` do not apply to them and raise an ``UnsupportedRequestError`` naming the model).

    Raises:
      UnknownModelError, WrongModelKindError (e.g. a predictor checkpoint), InvalidRequestError,
      UnknownPropertyError (all ``ValueError``). A target or range outside the values the guiding predictor saw in
      training gives an :class:`~atomsmith.predictors.applicability.OutOfDomainWarning`.
    """
    from atomsmith.pretrained import GENERATOR_KINDS

    generator, name = resolve_model(model, kinds=GENERATOR_KINDS)
    if (target is not None or range is not None) and not capabilities_of(generator).guidance:
        raise unsupported(generator, "property targets or ranges", name)
    plan = plan_guidance(generator, name, parse_requests(target, range, property_scale), predictors=predictors,
                         mode=guidance_mode)
    if plan.warnings:
        import warnings

        from atomsmith.predictors.applicability import OutOfDomainWarning

        for message in plan.warnings:
            warnings.warn(OutOfDomainWarning(message), stacklevel=2)
    if guidance is not None:
        objective = guidance if plan.objective is None else plan.objective + guidance
        plan = dataclasses.replace(plan, objective=objective)
    return sample_with_plan(generator, n, plan, seed=seed, composition=composition, cell=cell, relax=relax,
                            relax_steps=relax_steps, potential=potential, name=name, guidance_scale=guidance_scale, cfg_scale=cfg_scale,
                            steps=steps or None, method=sampler, batch_size=batch_size, progress=progress,
                            stats=stats)


def sample_with_plan(generator: Any, n: int, plan: GuidancePlan, *, seed: int = 0, composition: Any = None,
                     cell: Any = None, relax: bool = False, relax_steps: int = 300, potential: str | None = None,
                     name: str | None = None, **settings: Any) -> list[Crystal]:
    """:func:`sample` for a loaded generator and a resolved :class:`GuidancePlan`: one call of
    ``generator.sample`` (the :class:`~atomsmith.generators.protocol.Generator` protocol).

    ``settings`` are sampler settings by the names of the generator's options dataclass (e.g. ``steps``,
    ``method``, ``guidance_scale`` of :class:`~atomsmith.generators.diffusion.options.DiffusionOptions`); those the
    generator does not have do not apply to it, ``None`` keeps its default. ``cfg_scale`` is used only with
    classifier-free conditions. ``relax`` (pure-Si crystals) applies to generators of crystals.
    """
    import jax

    conditions: dict[str, Any] = {}
    if composition is not None:
        conditions["composition"] = parse_composition(composition)
    if cell is not None:
        conditions["lattice"] = parse_cell(cell)
    conditions.update(plan.cfg_conditions)
    if not plan.cfg_conditions:
        settings["cfg_scale"] = None
    options = options_for(generator, label=name, **settings)
    crystals = generator.sample(jax.random.PRNGKey(seed), n, conditions=conditions or None, guidance=plan.objective,
                                options=options)
    if relax and capabilities_of(generator).produces == "crystals":  # environments (clusters) are never relaxed
        return relax_all(crystals, relax_steps, potential)[0]
    return crystals


def relax_all(crystals: Sequence[Crystal], max_steps: int = 300, potential: str | None = None
              ) -> tuple[list[Crystal], list[dict]]:
    """Short fixed-cell Stillinger-Weber relaxation (FIRE) of pure-Si cells with the parameter set ``potential``
    (default ``asi_set.SHIPPED_POTENTIAL``, the one the shipped a-Si was made with); returns the relaxed cells
    (property ``sw_energy_per_atom``, eV/atom) and each relaxation's record (with ``potential``). Raises
    :class:`InvalidRequestError` otherwise."""
    from atomsmith.physics.asi_set import SHIPPED_POTENTIAL
    from atomsmith.physics.relax import relax_crystal
    from atomsmith.physics.stillinger_weber import PARAMETER_SETS

    potential = SHIPPED_POTENTIAL if potential is None else potential
    if potential not in PARAMETER_SETS:
        raise InvalidRequestError(f"unknown potential {potential!r}; known: {', '.join(PARAMETER_SETS)}")

    if any(set(int(z) for z in c.numbers) != {14} for c in crystals):
        raise InvalidRequestError("relaxation uses the Stillinger-Weber Si potential: every structure must be "
                                  "pure Si")
    out, records = [], []
    for c in crystals:
        relaxed, record = relax_crystal(c, max_steps=max_steps, params=potential)
        out.append(relaxed.with_properties(sw_energy_per_atom=record["energy_per_atom"]))
        records.append({**record, "potential": potential})
    return out, records
