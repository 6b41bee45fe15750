"""Golden replay: every recorded MindSpore 2.10 case, one test item per case (and call style).

The replay logic and the tolerances live in ``golden_replay.py``; this module only parametrizes.
No case is skipped or expected to fail: a case msoptim cannot match fails with the numbers.
"""

from __future__ import annotations

import pytest

import golden_replay as gr


def params_of(*families: str) -> list:
    return [pytest.param(case, id=gr.case_id(case)) for f in families for case in gr.cases(f)]


def styled_params_of(*families: str) -> list:
    return [
        pytest.param(case, style, id=f"{gr.case_id(case)}-{style}")
        for family in families
        for case in gr.cases(family)
        for style in gr.replay_styles(case)
    ]


def test_every_family_is_present_and_replayed():
    loaded = gr.load_all()
    unknown = sorted(set(loaded) - set(gr.FAMILIES))
    assert not unknown, f"golden families without a replay: {unknown}"
    empty = [family for family in gr.FAMILIES if not loaded.get(family)]
    assert not empty, f"no golden cases for {empty} in {gr.golden_dir()}"


def test_case_ids_are_unique_and_match_the_index():
    ids = [case["id"] for family in gr.load_all().values() for case in family]
    assert len(ids) == len(set(ids)), "duplicate golden case ids"
    files = gr.load_index().get("files", {})  # no index.json: nothing to cross-check
    for name, entry in files.items():
        assert entry["count"] == len(entry["ids"]), f"index.json count for {name}"
    listed = {i for entry in files.values() for i in entry["ids"]}
    indexed = {case["id"] for case in gr.cases_in(gr.golden_dir())}  # the index covers its own dir
    if files:
        assert listed == indexed, (
            f"index.json and the case files disagree: only in the index {sorted(listed - indexed)}"
            f", only in the files {sorted(indexed - listed)}"
        )


@pytest.mark.parametrize("case", params_of("lr_function"))
def test_lr_function(case):
    gr.check_lr_function(case)


@pytest.mark.parametrize("case", params_of("lr_function_error"))
def test_lr_function_error(case):
    gr.check_lr_function_error(case)


@pytest.mark.parametrize("case", params_of("schedule"))
def test_schedule(case):
    gr.check_schedule(case)


@pytest.mark.parametrize("case", params_of("schedule_error"))
def test_schedule_error(case):
    gr.check_schedule_error(case)


@pytest.mark.parametrize(("case", "style"), styled_params_of("optimizer", "optimizer_gc_emulated"))
def test_optimizer(case, style):
    gr.check_optimizer(case, style)


@pytest.mark.parametrize(("case", "style"), styled_params_of("optimizer_error"))
def test_optimizer_error(case, style):
    gr.check_optimizer_error(case, style)


@pytest.mark.parametrize("case", params_of("group_error"))
def test_group_error(case):
    gr.check_group_error(case)


@pytest.mark.parametrize("case", params_of("arg_error"))
def test_arg_error(case):
    gr.check_arg_error(case)


@pytest.mark.parametrize("case", params_of("lr_scheduler_callback"))
def test_lr_scheduler_callback(case):
    gr.check_lr_scheduler_callback(case)


def derived_params() -> list:
    derived = [*gr.derived_defect_cases(), gr.derived_exhausted_table_case()]
    return [
        pytest.param(case, style, id=f"{gr.case_id(case)}-{style}")
        for case in derived
        if case is not None
        for style in ("call", "step")
    ]


@pytest.mark.parametrize(("case", "style"), derived_params())
def test_derived_case(case, style):
    """Paths the sample lacks (defect settings, a table shorter than the run), derived from it."""
    gr.check_optimizer(case, style)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=gr.case_id(c)) for c in gr.derived_defect_cases()]
)
def test_reference_drift_is_within_tolerance(case):
    """The measurement behind REF_ULPS: float32 vs float64 runs of the reference itself."""
    drift = gr.reference_float32_drift(case)
    assert drift <= gr.REF_ULPS / 4, f"float32 drift {drift:.2f} units: REF_ULPS needs revisiting"
