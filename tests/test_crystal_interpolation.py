"""Crystal latents by probability-flow inversion and latent interpolation between crystals (issue 20).

Tiny untrained diffusion models: the probability-flow ODE is invertible whatever the network, so the round trip
decode(encode(x)) must give x back to the solver tolerance (no training needed); the end frames of a path are those
round trips; paths go the short way round the torus; atoms are matched species to species; the CLI refuses bad
requests with one line and exit code 2 before any model runs.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from atomsmith.generators.diffusion import inversion as inv
from atomsmith.generators.diffusion import interpolation as ci
from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.correspondence import match_atoms, proper_axis_relabellings, wrap
from atomsmith.generators.diffusion.model import DiffusionModel
from atomsmith.generators.diffusion.training import init_params
from atomsmith.generators.environments.interpolation import latent_path as env_latent_path
from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.structures import io
from atomsmith.structures.crystal import Crystal

ODE_STEPS = 12  # enough for the mechanics; the round trip is exact to the solver tolerance at any step count
FRAMES = 4  # path frames: one compiled decoder batch (bucketed to 4) serves paths and round trips

#: SrTiO3-like cells in the tiny config's vocabulary (O, Ti, Sr), ~4 Å, slightly distorted; Sr near the cell edge
SR_TI_O3 = np.array([[0.98, 0.03, 0.01], [0.50, 0.48, 0.52], [0.50, 0.52, 0.02], [0.47, 0.01, 0.50],
                     [0.03, 0.50, 0.47]])
NUMBERS = np.array([38, 22, 8, 8, 8])


def _cell(frac=SR_TI_O3, numbers=NUMBERS, lattice=None) -> Crystal:
    lattice = np.array([[4.0, 0.0, 0.0], [0.1, 4.05, 0.0], [0.0, 0.15, 3.95]]) if lattice is None else lattice
    return Crystal(lattice, frac, numbers)


def _other() -> Crystal:
    """A second cell of the same composition: different cell and positions."""
    frac = SR_TI_O3 + np.array([[0.04, -0.02, 0.03], [0.03, 0.04, -0.05], [-0.02, 0.03, 0.04], [0.05, -0.03, 0.02],
                                [-0.04, 0.02, 0.05]])
    return _cell(frac, lattice=np.array([[4.2, 0.0, 0.0], [0.0, 3.9, 0.1], [0.2, 0.0, 4.1]]))


@pytest.fixture(scope="module")
def model():
    config = DiffusionConfig.tiny()  # relaxed one-hot ("gaussian") species: a continuous species latent
    return DiffusionModel(config, init_params(config, jax.random.PRNGKey(0)))


@pytest.fixture(scope="module")
def masked():
    config = DiffusionConfig.tiny(species_process="absorbing")
    return DiffusionModel(config, init_params(config, jax.random.PRNGKey(0)))


@pytest.fixture(scope="module")
def latents(model):
    return inv.encode(model, [_cell(), _other()], steps=ODE_STEPS)


# ---------------------------------------------------------------------------------------------- paths (no network)
def test_torus_path_goes_the_short_way_round():
    fa = np.array([[0.97, 0.2, 0.5]], np.float32)
    fb = np.array([[0.03, 0.4, 0.5]], np.float32)
    tau = np.linspace(0, 1, 7).astype(np.float32)
    path = np.asarray(ci.torus_path(fa, fb, tau))
    assert path.shape == (7, 1, 3) and np.all((path >= 0) & (path < 1))
    np.testing.assert_array_equal(path[0], fa)
    np.testing.assert_array_equal(path[-1], fb)
    steps = wrap(np.diff(path, axis=0))
    np.testing.assert_allclose(steps[:, 0, 0], 0.06 / 6, atol=1e-6)  # across the boundary, not back through 0.5
    np.testing.assert_allclose(steps[:, 0, 1], 0.2 / 6, atol=1e-6)
    assert abs(wrap(path[3, 0, 0] - 0.0)) < 1e-6  # halfway is the cell edge


def test_slerp_matches_the_environment_paths_and_hits_the_ends():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=6), rng.normal(size=6)
    tau = np.linspace(0, 1, 5)
    for spherical in (True, False):
        got = np.asarray(ci.slerp(a.astype(np.float32), b.astype(np.float32), tau.astype(np.float32), spherical))
        np.testing.assert_allclose(got, env_latent_path(a, b, 5, spherical), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(got[0], a.astype(np.float32))
        np.testing.assert_array_equal(got[-1], b.astype(np.float32))
    sa, sb = rng.normal(size=(2, 5, 3)).astype(np.float32)  # [A, K] parts are slerped as one vector
    got = np.asarray(ci.slerp(sa, sb, np.array([0.0, 0.5, 1.0], np.float32)))
    assert got.shape == (3, 5, 3) and np.all(np.isfinite(got))
    np.testing.assert_allclose(np.linalg.norm(got[1]), 0.5 * (np.linalg.norm(sa) + np.linalg.norm(sb)), rtol=1e-5)
    antipodal = np.asarray(ci.slerp(sa, -sa, np.array([0.0, 0.5, 1.0], np.float32)))
    assert np.all(np.isfinite(antipodal))


# ---------------------------------------------------------------------------------------------- matching (no network)
def test_axis_relabellings_are_the_24_proper_signed_permutations():
    mats = proper_axis_relabellings()
    assert len(mats) == 24 and np.array_equal(mats[0], np.eye(3))
    assert all(round(np.linalg.det(m)) == 1 and np.array_equal(np.abs(m).sum(0), np.ones(3)) for m in mats)
    assert len({m.tobytes() for m in mats}) == 24


def test_matching_undoes_a_permutation_a_translation_and_an_axis_relabelling():
    a = _cell()
    perm = np.array([3, 0, 4, 2, 1])
    axes = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # cyclic: det +1
    lattice = axes @ a.lattice
    frac = (a.frac_coords @ axes.T + np.array([0.31, -0.12, 0.45])) % 1.0
    b = Crystal(lattice, frac[perm], a.numbers[perm])
    corr = match_atoms(a, b)
    aligned = corr.apply(b)
    np.testing.assert_array_equal(aligned.numbers, a.numbers)
    np.testing.assert_allclose(wrap(aligned.frac_coords - a.frac_coords), 0.0, atol=1e-9)
    np.testing.assert_allclose(aligned.lattice_parameters, a.lattice_parameters, atol=1e-9)
    assert corr.rms < 1e-8 and corr.species_changed == 0
    same = match_atoms(a, a)  # a crystal against itself is left exactly as it is
    np.testing.assert_array_equal(same.order, np.arange(5))
    np.testing.assert_array_equal(same.axes, np.eye(3))
    np.testing.assert_array_equal(same.shift, np.zeros(3))


def test_matching_keeps_species_where_it_can_and_needs_equal_atom_counts():
    a = _cell()
    b_numbers = np.array([56, 22, 8, 8, 8])  # Sr -> Ba: four pairs keep their species, one changes
    b = _cell(SR_TI_O3[[2, 0, 1, 4, 3]], b_numbers[[2, 0, 1, 4, 3]])
    corr = match_atoms(a, b)
    aligned = corr.apply(b)
    assert corr.species_changed == 1
    np.testing.assert_array_equal(aligned.numbers, [56, 22, 8, 8, 8])
    np.testing.assert_allclose(wrap(aligned.frac_coords - a.frac_coords), 0.0, atol=1e-9)
    with pytest.raises(InvalidRequestError, match="same number of atoms"):
        match_atoms(a, Crystal(a.lattice, a.frac_coords[:4], a.numbers[:4]))


# ---------------------------------------------------------------------------------------------- inversion
def test_inversion_is_deterministic(model, latents):
    again = inv.encode(model, [_cell(), _other()], steps=ODE_STEPS)
    for name in ("frac", "z", "species", "residual"):
        np.testing.assert_array_equal(getattr(again, name), getattr(latents, name))
    assert latents.frac.shape == (2, 5, 3) and latents.z.shape == (2, 6) and latents.species.shape == (2, 5, 3)
    assert not latents.csp and latents.steps == ODE_STEPS
    assert np.all((latents.frac >= 0) & (latents.frac < 1))
    # the latent is not the input: the ODE moved it (a vacuous "inversion" would pass the round trip too)
    assert np.max(np.abs(wrap(latents.frac[0] - _cell().frac_coords))) > 1e-5
    z_input = np.asarray(model.config.lattice.encode(np.asarray(_cell().lattice, np.float32)))
    assert np.max(np.abs(latents.z[0] - z_input)) > 1e-2
    assert np.max(np.abs(latents.species[0] - np.eye(3)[[2, 1, 0, 0, 0]])) > 1e-2


def test_round_trip_gives_the_crystal_back(model, latents):
    crystals = [_cell(), _other()]
    decoded = inv.decode(model, latents)
    assert np.all(latents.residual < 1e-4), latents.residual
    for x, y in zip(crystals, decoded):
        np.testing.assert_array_equal(y.numbers, x.numbers)  # species latent decoded to the input species
        assert ci.max_wrapped_error(y, x) < 2e-3
        length, angle = ci.lattice_errors(y, x)
        assert length < 2e-3 and angle < 0.05, (length, angle)
    report = ci.round_trip(model, crystals, ode_steps=ODE_STEPS)
    assert all(report["species_ok"]) and max(report["frac_error"]) < 2e-3
    assert all(r is not None and r < 1e-2 for r in report["rms"]), report["rms"]  # StructureMatcher RMS


def test_the_fixed_point_iteration_beats_plain_ddim_inversion(model, latents):
    """max_iters=2 is the usual one-evaluation DDIM inversion; its round trip is measurably worse (the control that
    shows the tolerances above can fail)."""
    crystals = [_cell(), _other()]
    plain = inv.encode(model, crystals, steps=ODE_STEPS, max_iters=2)
    err = [ci.max_wrapped_error(y, x) + ci.lattice_errors(y, x)[0]
           for x, y in zip(crystals, inv.decode(model, plain))]
    exact = [ci.max_wrapped_error(y, x) + ci.lattice_errors(y, x)[0]
             for x, y in zip(crystals, inv.decode(model, latents))]
    assert max(err) > 2 * max(exact), (err, exact)
    assert np.all(plain.residual > latents.residual)


def test_masked_species_are_held_and_round_trip(masked):
    crystals = [_cell(), _other()]
    latent = inv.encode(masked, crystals, steps=ODE_STEPS)
    assert latent.csp and latent.species.shape == (2, 5, 4)  # clean one-hot plus the (empty) MASK channel
    np.testing.assert_array_equal(latent.species[..., 3], 0.0)
    for x, y in zip(crystals, inv.decode(masked, latent)):
        np.testing.assert_array_equal(y.numbers, x.numbers)
        assert ci.max_wrapped_error(y, x) < 2e-3 and ci.lattice_errors(y, x)[0] < 2e-3
    with pytest.raises(InvalidRequestError, match="no continuous latent"):
        inv.encode(masked, crystals, steps=ODE_STEPS, csp=False)
    with pytest.raises(InvalidRequestError, match="species='held'"):
        ci.interpolate(masked, crystals[0], crystals[1], species="latent")


# ---------------------------------------------------------------------------------------------- paths
def test_path_ends_decode_to_the_inputs_within_the_reported_error(model, latents):
    a, b = _cell(), _other()
    path = ci.interpolate(model, a, b, steps=FRAMES, ode_steps=ODE_STEPS)
    assert len(path) == FRAMES and [f.properties["step"] for f in path.frames] == list(range(FRAMES))
    np.testing.assert_allclose([f.properties["t"] for f in path.frames], np.linspace(0, 1, FRAMES))
    assert path.species == "latent" and path.switch is None
    first, last = path.frames[0].wrapped(), path.frames[-1].wrapped()
    assert ci.max_wrapped_error(first, a) == pytest.approx(path.end_error[0], abs=1e-12)
    assert ci.max_wrapped_error(last, path.second) == pytest.approx(path.end_error[1], abs=1e-12)
    assert max(path.end_error) < 2e-3
    assert all(r is not None and r < 1e-2 for r in path.end_rms), path.end_rms
    # the end frames are the round trips of the inputs (b re-described to line up with a)
    round_a = inv.decode(model, latents.rows([0]))[0]
    assert ci.max_wrapped_error(first, round_a) < 1e-4
    # inner frames are new crystals, finite and in the vocabulary
    for f in path.frames[1:-1]:
        assert np.isfinite(f.lattice).all() and f.volume > 1.0 and set(f.numbers) <= {8, 22, 38}
        assert ci.max_wrapped_error(f, first) > 1e-4


def test_paths_respect_periodicity(model):
    """Sr moves from x = 0.98 to x = 0.02 (+0.04 across the cell edge): the path takes the short way, every frame is
    a small move from the previous one, and the unwrapped output ends at x ~ 1.0, not back through the cell."""
    a = _cell()
    frac = SR_TI_O3.copy()
    frac[0, 0] = 0.02
    b = _cell(frac)
    path = ci.interpolate(model, a, b, steps=FRAMES, ode_steps=ODE_STEPS)
    lat = path.latents.frac
    steps = wrap(np.diff(lat, axis=0))
    np.testing.assert_allclose(steps, steps[:1].repeat(len(steps), 0), atol=1e-5)  # one geodesic, equal steps
    assert np.max(np.abs(steps)) <= 0.5 / (FRAMES - 1) + 1e-6
    frames = np.stack([f.frac_coords for f in path.frames])
    moves = np.diff(frames, axis=0)
    np.testing.assert_allclose(moves, wrap(moves), atol=1e-9)  # the output is unwrapped frame to frame
    assert np.max(np.abs(moves)) < 0.2, np.max(np.abs(moves))
    x0 = frames[0, 0, 0]
    expected = x0 + wrap(path.second.frac_coords[0, 0] - x0)
    assert expected > x0  # the aligned b still has Sr just across the edge
    assert abs(frames[-1, 0, 0] - expected) < 0.01


def test_a_permuted_copy_gives_a_constant_path(model):
    """b is a with its atoms listed in another order (and translated): matched, the two latents
    agree and every frame is the round trip of a; unmatched, slot i would travel to another atom."""
    a = _cell()
    perm = np.array([4, 2, 0, 3, 1])
    b = Crystal(a.lattice, (a.frac_coords + np.array([0.25, 0.0, -0.5]))[perm], a.numbers[perm])
    path = ci.interpolate(model, a, b, steps=FRAMES, ode_steps=ODE_STEPS)
    frames = np.stack([f.frac_coords for f in path.frames])
    assert np.max(np.abs(frames - frames[0])) < 1e-3
    assert path.correspondence.species_changed == 0
    np.testing.assert_array_equal(path.second.numbers, a.numbers)


def test_different_compositions_switch_species_at_the_midpoint(masked):
    a = _cell()
    b = _cell(numbers=np.array([38, 38, 8, 8, 8]))  # Ti -> Sr
    path = ci.interpolate(masked, a, b, steps=FRAMES, ode_steps=ODE_STEPS)
    assert path.species == "held" and path.switch == 2  # tau = 0, 1/3 | 2/3, 1
    for f in path.frames[:2]:
        np.testing.assert_array_equal(f.numbers, a.numbers)
    for f in path.frames[2:]:
        np.testing.assert_array_equal(f.numbers, path.second.numbers)
    assert max(path.end_error) < 2e-3


def test_guided_interpolation_keeps_the_ends_and_moves_the_middle(model):
    from atomsmith.guidance import PropertyTarget
    from atomsmith.nn.encoder import EncoderConfig
    from atomsmith.predictors.model import PredictorConfig, init_predictor

    predictor = init_predictor(PredictorConfig.for_target("heat_ref", encoder=EncoderConfig.tiny(cutoff=4.0)),
                               jax.random.PRNGKey(1))
    a, b = _cell(), _other()
    plain = ci.interpolate(model, a, b, steps=FRAMES, ode_steps=ODE_STEPS)
    guided = ci.interpolate(model, a, b, steps=FRAMES, ode_steps=ODE_STEPS,
                            objective=PropertyTarget(predictor, target=5.0, scale=0.1), guidance_scale=1.0)
    for i in (0, FRAMES - 1):  # zero guidance at the ends
        assert ci.max_wrapped_error(guided.frames[i], plain.frames[i]) < 1e-4
    assert all(np.isfinite(f.properties["guidance_objective"]) for f in guided.frames)
    moved = max(ci.max_wrapped_error(g, p) + ci.lattice_errors(g, p)[0]
                for g, p in zip(guided.frames[1:-1], plain.frames[1:-1]))
    assert moved > 1e-4


def test_bad_requests(model):
    a = _cell()
    with pytest.raises(InvalidRequestError, match="steps"):
        ci.interpolate(model, a, a, steps=1)
    with pytest.raises(InvalidRequestError, match="same number of atoms"):
        ci.interpolate(model, a, Crystal(a.lattice, a.frac_coords[:4], a.numbers[:4]))
    with pytest.raises(ValueError, match="vocabulary"):
        ci.interpolate(model, a, _cell(numbers=np.array([56, 22, 8, 8, 8])))
    with pytest.raises(InvalidRequestError, match="unknown species mode"):
        ci.interpolate(model, a, a, species="mixed")
    with pytest.raises(InvalidRequestError, match="one atom count"):
        inv.encode(model, [a, Crystal(a.lattice, a.frac_coords[:4], a.numbers[:4])])
    with pytest.raises(ValueError, match="max_iters"):
        inv.make_inverse_runner(model.config, max_iters=1)


def test_public_api_dispatches_crystal_models(model):
    import atomsmith

    frames = atomsmith.interpolate(model, _cell(), _other(), steps=FRAMES, ode_steps=ODE_STEPS)
    assert len(frames) == FRAMES and all(isinstance(f, Crystal) and f.n_atoms == 5 for f in frames)
    with pytest.raises(InvalidRequestError, match="centre atoms"):
        atomsmith.interpolate(model, _cell(), _other(), centre_first=1)
    with pytest.raises(InvalidRequestError, match="crystal diffusion"):
        atomsmith.interpolate("gram-vae", _cell(), _other(), ode_steps=3)


# ---------------------------------------------------------------------------------------------- CLI
runner = CliRunner()


def _invoke(*args):
    from atomsmith.cli.main import app

    return runner.invoke(app, [str(x) for x in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory, model, masked):
    root = tmp_path_factory.mktemp("crystal_interpolate")
    io.write(root / "a.cif", _cell())
    io.write(root / "b.cif", _other())
    io.write(root / "four.cif", Crystal(_cell().lattice, SR_TI_O3[:4], NUMBERS[:4]))
    io.write(root / "barium.cif", _cell(numbers=np.array([56, 22, 8, 8, 8])))
    (root / "garbage.cif").write_text("data_x\n_cell_length_a nonsense\n")
    model.save(root / "tiny.ckpt")
    masked.save(root / "masked.ckpt")
    return root


def test_cli_writes_the_path_and_refuses_to_overwrite(files, tmp_path):
    out = tmp_path / "path.extxyz"
    result = _invoke("interpolate", "--model", files / "tiny.ckpt", files / "a.cif", files / "b.cif", "--steps", 3,
                     "--ode-steps", 3, "--out", out)
    assert result.exit_code == 0, result.output
    frames = io.read(out, min_distance=None)
    assert len(frames) == 3 and all(f.n_atoms == 5 for f in frames)
    assert [f.properties["step"] for f in frames] == [0, 1, 2]
    assert "StructureMatcher" in result.stderr  # the summary table
    from tests.test_cli_errors import assert_one_line_error

    again = _invoke("interpolate", "--model", files / "tiny.ckpt", files / "a.cif", files / "b.cif", "--out", out)
    assert_one_line_error(again, "exists", "--force")


@pytest.mark.parametrize("case", ["atom counts", "bad file", "vocabulary", "latent masked", "centre", "env options"])
def test_cli_bad_requests_are_one_line(files, tmp_path, case):
    from tests.test_cli_errors import assert_one_line_error

    out = tmp_path / "path.extxyz"
    tiny, masked = files / "tiny.ckpt", files / "masked.ckpt"
    args, needles = {
        "atom counts": (["--model", tiny, files / "a.cif", files / "four.cif"], ["same number of atoms", "four.cif"]),
        "bad file": (["--model", tiny, files / "garbage.cif", files / "a.cif"], ["garbage.cif"]),
        "vocabulary": (["--model", tiny, files / "a.cif", files / "barium.cif"], ["barium.cif", "vocabulary"]),
        "latent masked": (["--model", masked, files / "a.cif", files / "b.cif", "--species", "latent"],
                          ["--species", "no continuous latent"]),
        "centre": (["--model", tiny, files / "a.cif", files / "b.cif", "--centre-first", 1], ["whole crystals"]),
        "env options": (["--model", "gram-vae", files / "a.cif", files / "b.cif", "--ode-steps", 3],
                        ["local environments", "--ode-steps"]),
    }[case]
    assert_one_line_error(_invoke("interpolate", *args, "--out", out), *needles)
    assert not out.exists()
