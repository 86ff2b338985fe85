"""The option table: --help, defaults owned elsewhere, resolved placeholders, resume
comparisons, PETSc arguments (all in-process, no MPI)."""

import dataclasses
import json
import re
from pathlib import Path

import pytest

from mlpar.config import (
    GROUPS,
    OPTIONS,
    Config,
    ConfigError,
    config_from_json,
    parse,
    split_petsc_args,
    usage_help,
)
from mlpar.io.checkpoint import merge_resume_config
from mlpar.model.problems import default_point_count
from mlpar.multilevel.parameters import RARC_REBUILD_EVERY, RLM_REBUILD_EVERY, MultilevelParameters
from mlpar.optim.common import LMParameters


def test_help_shows_every_option_with_its_default_and_choices():
    text = " ".join(usage_help().split())     # argparse wraps lines
    for opt in OPTIONS:
        assert opt.flag in text, opt.flag
        if opt.type is not bool:
            assert f"(default: {opt.default_text})" in text, opt.flag
        if opt.choices:
            assert "{" + ",".join(opt.choices) + "}" in text, opt.flag


def test_help_lists_the_options_by_group():
    text = usage_help()
    sections = [text.index(f"\n{group}:\n") for group in GROUPS]
    assert sections == sorted(sections)
    bounds = dict(zip(GROUPS, zip(sections, sections[1:] + [len(text)])))
    for opt in OPTIONS:
        lo, hi = bounds[opt.group]
        assert lo < text.index(f"  {opt.flag} ") < hi, (opt.flag, opt.group)


def test_defaults_owned_by_the_methods_are_theirs():
    cfg = Config()
    shared = {f.name for f in dataclasses.fields(MultilevelParameters)} & {o.name for o in OPTIONS}
    assert {"levels", "kappa_h", "theta", "model_choice", "screen_age"} <= shared
    for name in shared - {"coarse_model", "rebuild_every", "amg_couplings"}:   # resolved
        assert getattr(cfg, name) == getattr(MultilevelParameters, name), name
    assert (cfg.lambda0, cfg.lambda_min) == (LMParameters.lambda0, LMParameters.lambda_min)


def test_the_sparse_amg_set_up_is_the_default_from_width_2048():
    assert Config(width=2047).validate().amg_couplings == 0
    assert Config(width=2048).validate().amg_couplings == 64
    assert Config(width=4096, interpolation="direct").validate().amg_couplings == 0
    assert Config(width=100, amg_couplings=7).validate().amg_couplings == 7
    with pytest.raises(ConfigError, match="--amg-couplings 8 keeps only the strongest"):
        Config(width=100, amg_couplings=8, interpolation="direct").validate()
    with pytest.raises(ConfigError, match="--amg-sample: must be >= 0"):
        Config(amg_sample=-1).validate()


@pytest.mark.parametrize("method,model,every", [
    ("rlm", MultilevelParameters.coarse_model, RLM_REBUILD_EVERY),
    ("rarc", "galerkin", RARC_REBUILD_EVERY)])
def test_validation_resolves_every_placeholder(method, model, every):
    cfg = Config(method=method, nu=7.0).validate()
    assert (cfg.coarse_model, cfg.rebuild_every) == (model, every)
    assert cfg.points == default_point_count(7.0)
    stored = json.loads(cfg.to_json())
    # --solve-form auto is chosen per level and per linearisation, --pc auto per solve: they
    # stay choices
    assert [k for k, v in stored.items() if v == "auto"] == ["pc", "solve_form"]
    assert stored["rebuild_every"] >= 0 and stored["points"] > 0
    assert (cfg.resolved_coarse_model, cfg.resolved_rebuild_every) == (model, every)
    # explicit values are kept
    explicit = Config(method=method, coarse_model="network", rebuild_every=3, points=11).validate()
    assert (explicit.coarse_model, explicit.rebuild_every, explicit.points) == ("network", 3, 11)


def test_a_stored_configuration_with_placeholders_is_read_resolved():
    """Checkpoints written before placeholders were resolved store auto and -1."""
    old = {**dataclasses.asdict(Config()), "method": "rarc", "coarse_model": "auto",
           "rebuild_every": -1, "points": 0}
    cfg = config_from_json(json.dumps(old))
    assert (cfg.coarse_model, cfg.rebuild_every, cfg.points) == (
        "galerkin", RARC_REBUILD_EVERY, default_point_count(cfg.nu))


@pytest.mark.parametrize("given", [{}, {"coarse_model": "auto"}, {"rebuild_every": -1},
                                   {"points": 0, "max_iter": 9}, {"coarse_model": "restricted"}])
def test_resume_accepts_placeholders_that_stand_for_the_stored_values(given):
    stored = Config(method="rlm", nu=5.0, width=16).validate()
    cfg = merge_resume_config(stored, given, "ck.h5")
    assert (cfg.coarse_model, cfg.rebuild_every) == (stored.coarse_model, stored.rebuild_every)
    assert cfg.max_iter == given.get("max_iter", stored.max_iter) and cfg.resume == "ck.h5"


@pytest.mark.parametrize("given,fragment", [
    ({"coarse_model": "network"}, "--coarse-model 'network' differs from the checkpoint's "
                                  "'restricted'"),
    ({"rebuild_every": 5}, "--rebuild-every 5 differs from the checkpoint's 400"),
    ({"points": 99}, "--points 99 differs")])
def test_resume_refuses_other_values(given, fragment):
    stored = Config(method="rlm", nu=5.0, width=16).validate()
    with pytest.raises(ConfigError, match=fragment):
        merge_resume_config(stored, given, "ck.h5")


def test_petsc_arguments_pass_through_and_mlpar_typos_do_not():
    ours, petsc = split_petsc_args(["--width", "8", "-ksp_rtol", "1e-3", "-ksp_monitor",
                                    "-pc_type", "jacobi", "--kappa-h", "-1e-3"])
    assert ours == ["--width", "8", "--kappa-h", "-1e-3"]
    assert petsc == ["-ksp_rtol", "1e-3", "-ksp_monitor", "-pc_type", "jacobi"]
    for typo in ("-width", "-max-iter", "-max_iter", "-config", "-quiet"):
        with pytest.raises(ConfigError, match=f"^{typo}: unknown option; did you mean --"):
            split_petsc_args([typo, "3"])


def test_toml_keys_take_both_spellings_and_the_command_line_wins(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('max-iter = 7\nmin_width = 4\ncoarse-model = "auto"\nwidth = 9\n')
    cfg, petsc, given = parse(["--config", str(path), "--width", "11", "-ksp_monitor"])
    assert (cfg.max_iter, cfg.min_width, cfg.width) == (7, 4, 11)
    assert cfg.coarse_model == MultilevelParameters.coarse_model and petsc == ["-ksp_monitor"]
    assert given == {"max_iter": 7, "min_width": 4, "coarse_model": "auto", "width": 11}


def test_the_user_guide_lists_every_option_with_its_default():
    """docs/guide.md's option tables are written by hand: they must follow the table."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide.md").read_text()
    for opt in OPTIONS:
        row = re.search(rf"^\| `{re.escape(opt.flag)}(?: [^`]*)?` \| ([^|]*) \|", guide, re.M)
        assert row, f"{opt.flag} is not in docs/guide.md"
        shown = ("off" if opt.type is bool else "(none)" if opt.default == ""
                 else f"`{opt.default}`" if opt.by_dimension is None
                 else "`{}` in 1D, `{}` in 2D/3D".format(*opt.by_dimension))
        assert row.group(1).strip() == shown, (opt.flag, row.group(1))


def test_the_solve_forms_offered_are_the_solver_s():
    """config cannot import linalg (PETSc must not start before the options are read), so
    the choices of --solve-form are written twice: they must agree."""
    from mlpar.config import SOLVE_FORMS
    from mlpar.linalg.linsolve import FORMS
    assert SOLVE_FORMS == FORMS


@pytest.mark.parametrize("problem", ["poisson2d", "poisson3d", "helmholtz2d"])
def test_the_2d_and_3d_problems_take_their_own_defaults_and_given_values_win(problem):
    cfg = Config(problem=problem).validate()
    assert (cfg.width, cfg.lambda_p, cfg.init, cfg.ftol) == (128, 1000.0, "spread", 1e-12)
    cfg, _, _ = parse(["--problem", problem, "--width", "64", "--lambda-p", "1",
                       "--init", "uniform", "--ftol", "0"])
    assert (cfg.width, cfg.lambda_p, cfg.init, cfg.ftol) == (64, 1.0, "uniform", 0.0)
    assert json.loads(Config(problem=problem).validate().to_json())["width"] == 128


@pytest.mark.parametrize("problem", ["poisson", "helmholtz", "fit"])
def test_the_1d_problems_keep_the_seed_s_defaults(problem):
    cfg = parse(["--problem", problem])[0]
    assert (cfg.width, cfg.lambda_p, cfg.init, cfg.ftol) == (512, 1.0, "uniform", 1e-10)


def test_a_per_problem_default_is_no_placeholder_a_user_can_give():
    """The defaults that depend on the problem are not spelt by a magic value: --width 0 and
    --lambda-p -1 are errors like any other bad value."""
    text = " ".join(usage_help().split())
    assert "hidden-layer width r (default: 512 in 1D, 128 in 2D/3D)" in text
    for argv, message in ((["--width", "0"], "--width: must be a positive integer, got 0"),
                          (["--lambda-p", "-1"], "--lambda-p: must be >= 0, got -1.0"),
                          (["--problem", "poisson2d", "--ftol", "-1"], "--ftol: must be >= 0")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse(argv)
