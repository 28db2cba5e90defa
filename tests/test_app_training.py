"""AppTest for the collapse lab (pages/5_Training.py) and its cached training calls.

Small settings (K=32, 60 steps) keep the file fast. The toy data (2,000 x 16
correlated Gaussians) drive the page's mechanics; the shipped sample (unit-norm
sentence embeddings) shows the collapse the page is about.
"""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from apptest_helpers import chart_titles, ok
from streamlit.testing.v1 import AppTest

import vqcore.training
from ui import cache, charts
from ui import state as S
from vqcore.datasets import load_sample
from vqcore.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "pages" / "5_Training.py")
TIMEOUT = 120
RESULT = S.TRAIN_RESULT


def values(v):
    """A plotly JSON array (a list, or plotly's base64 ``{"bdata", "dtype"}``) as a numpy array."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def page(dataset=None):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if dataset is not None:
        S.seed(at.session_state, dataset)
    return at


def small(at, K=32, steps=60):
    """Both configurations at K codes and the given number of steps."""
    ok(at.run())
    for name in ("a", "b"):
        at.number_input(key=f"train_{name}_K").set_value(K)
    at.number_input(key="train_steps").set_value(steps)
    return ok(at.run())


def run_both(at):
    at.button(key="train_run").click()
    return ok(at.run())


def test_page_loads_with_the_sample_and_defaults_to_reset_off_and_on():
    at = ok(page().run())  # no data seeded: the page loads the shipped sample itself
    assert at.session_state[S.DATA].name == "MiniLM sentences"
    assert not chart_titles(at) and at.info  # nothing run yet
    assert at.selectbox(key="train_a_trainer").value == "ste" == at.selectbox(key="train_b_trainer").value
    assert at.toggle(key="train_a_reset").value is False and at.toggle(key="train_b_reset").value is True
    assert at.selectbox(key="train_a_init").value == "normal"
    assert at.number_input(key="train_rows").value == 4096 and at.number_input(key="train_a_K").value == 256
    text = " ".join(m.value for m in at.markdown)
    assert "NSVQ" in text and "counted on the training rows" in text


def test_runs_both_and_draws_the_titled_charts(toy):
    at = run_both(small(page(toy)))
    assert chart_titles(at) == charts.TRAINING_TITLES
    assert {"Training loss", "Perplexity over steps", "Active and dead codes",
            "Usage over training"} <= set(chart_titles(at))
    stored = at.session_state[RESULT]
    runs = {name: res["run"] for name, res in stored["runs"].items()}
    assert list(runs) == ["A", "B"]
    for run in runs.values():
        assert run.steps_run == 60 and run.codebook_size == 32 and not run.stopped_early
        assert stored["runs"]["A"]["n_train"] == 2000  # every toy row, so no other rows
    assert runs["A"].config.reset_after is None and runs["A"].resets == []
    assert runs["B"].config.reset_after == 20
    # same data, seed and settings but the reset: identical until B's first reset
    first = runs["B"].resets[0].step if runs["B"].resets else 61
    np.testing.assert_array_equal(runs["A"].history["loss"][:first], runs["B"].history["loss"][:first])
    table = at.table[0].value
    assert list(table.columns) == ["A", "B"] and list(table.loc["steps run"]) == ["60 of 60"] * 2
    assert list(table.loc["codes reset in all"]) == ["0", f"{sum(e.n_codes for e in runs['B'].resets):,}"]
    assert not at.error


@pytest.mark.slow
def test_the_sample_collapses_without_reset_and_not_with_it():
    """Unit-norm sentence embeddings, normal init (norm ~ sqrt(384)): one code takes every row.

    The codeword of smallest norm is nearest to almost every row, it alone gets
    a gradient and moves in; the rest never win. Resetting a code unused for 20
    steps onto a batch row brings them back (the engine's tests give the why).
    """
    at = run_both(small(page(load_sample())))
    runs = {name: res["run"] for name, res in at.session_state[RESULT]["runs"].items()}
    a, b = runs["A"].final, runs["B"].final
    assert a["dead_codes"] == [31] and a["perplexity"][0] < 1.5
    assert b["dead_codes"][0] <= 2 and b["perplexity"][0] > 10
    assert runs["B"].resets and b["mse"] < a["mse"]
    other = at.session_state[RESULT]["runs"]["A"]["other"]
    assert other["n"] == 6000 - 4096 and other["dead_codes"] == [31]
    codes = json.loads(at.get("plotly_chart")[2].proto.spec)  # Active and dead codes
    names = [t.get("name") for t in codes["data"]]
    assert "B: resets" in names and "A: resets" not in names


def test_result_survives_a_rerun_and_a_page_switch_and_is_cached(toy, monkeypatch):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    S.seed(at.session_state, toy)
    ok(at.run())
    at.switch_page("pages/5_Training.py")
    run_both(small(at))
    before = at.session_state[RESULT]["runs"]["B"]["run"].history["loss"]
    ok(at.run())  # a plain rerun: no Run pressed, the stored runs are drawn again
    assert chart_titles(at) == charts.TRAINING_TITLES
    at.switch_page("app.py")
    ok(at.run())
    at.switch_page("pages/5_Training.py")
    ok(at.run())
    assert chart_titles(at) == charts.TRAINING_TITLES
    assert at.number_input(key="train_a_K").value == 32 and at.number_input(key="train_steps").value == 60

    def boom(*a, **k):
        raise AssertionError("trained again a run that was already cached")

    monkeypatch.setattr(vqcore.training, "train_codebook", boom)
    monkeypatch.setattr(cache, "train_codebook", boom)
    run_both(at)
    assert at.session_state[RESULT]["runs"]["B"]["run"].history["loss"] == before
    assert chart_titles(at) == charts.TRAINING_TITLES


def test_the_usage_histogram_steps_through_every_snapshot(toy):
    at = run_both(small(page(toy)))
    hist = json.loads(at.get("plotly_chart")[3].proto.spec)
    assert hist["layout"]["title"]["text"] == charts.TITLES["train_usage_at"]
    steps = [t for t in range(2, 61, 2)]  # a usage snapshot every ceil(60 / 50) = 2 steps
    assert [f["name"] for f in hist["frames"]] == [str(t) for t in steps]
    slider = hist["layout"]["sliders"][0]
    assert slider["active"] == len(steps) - 1 and [s["label"] for s in slider["steps"]] == [str(t) for t in steps]
    # the figure opens on the last step: its traces are the last frame's
    assert hist["data"][0]["y"] == hist["frames"][-1]["data"][0]["y"]
    run = at.session_state[RESULT]["runs"]["A"]["run"]
    first = np.sort(run.usage_snapshots["counts"][0, 0])[::-1]
    np.testing.assert_array_equal(values(hist["frames"][0]["data"][0]["y"]), first[first > 0])


@pytest.mark.parametrize(
    "setting, value, fragment",
    [
        ("train_a_batch", 5000, "batch_size=5000 should be <= n_samples=2000"),
        ("train_b_K", 4096, "n_samples=2000 should be >= codebook_size=4096"),
    ],
    ids=["batch-larger-than-the-rows", "K-larger-than-the-rows-with-data-init"],
)
def test_bad_settings_are_an_error_not_an_exception(toy, setting, value, fragment):
    at = small(page(toy))
    at.selectbox(key="train_b_init").set_value("data")
    at.number_input(key=setting).set_value(value)
    run_both(ok(at.run()))
    assert at.error and fragment in " ".join(e.value for e in at.error)
    assert chart_titles(at) == charts.TRAINING_TITLES  # the other configuration still ran and is drawn


def test_an_invalid_config_disables_run(toy):
    at = small(page(toy))
    at.number_input(key="train_a_lr").set_value(0.0)
    ok(at.run())
    assert at.error and "lr=0.0" in at.error[0].value
    assert at.button(key="train_run").disabled


def test_a_preset_sets_both_configurations(toy):
    at = ok(page(toy).run())
    at.selectbox(key="train_preset").set_value("STE / EMA (data init)")
    ok(at.run())
    assert at.selectbox(key="train_a_trainer").value == "ste" and at.selectbox(key="train_b_trainer").value == "ema"
    assert at.selectbox(key="train_a_init").value == "data" == at.selectbox(key="train_b_init").value


class _Interrupt(BaseException):
    """Stands in for Streamlit's rerun request, raised from an st call during a run."""


class _Bar:
    """A progress bar whose n-th update is interrupted (None: never)."""

    def __init__(self, interrupt_at=None):
        self.calls, self.interrupt_at = 0, interrupt_at

    def progress(self, value, text=""):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise _Interrupt


class _State(dict):
    """Session state whose n-th read is interrupted (None: never), as Streamlit's is a yield point too."""

    def __init__(self, interrupt_at=None):
        super().__init__()
        self.reads, self.interrupt_at = 0, interrupt_at

    def get(self, key, default=None):
        self.reads += 1
        if self.reads == self.interrupt_at:
            raise _Interrupt
        return super().get(key, default)


@pytest.mark.parametrize(
    "bar, state, steps_run",
    [
        (_Bar(interrupt_at=3), _State(), 30),  # progress drawn at steps 10, 20, 30; should_stop asked before 31
        (_Bar(), _State(interrupt_at=45), 44),  # should_stop reads the flag before every step
    ],
    ids=["from-the-progress-bar", "from-a-session-state-read"],
)
def test_an_interrupted_run_stops_early_keeps_its_result_and_reraises(toy, bar, state, steps_run):
    """A click during a run: the engine stops at the next step, the partial run is kept, not cached."""
    class Slot:
        def progress(self, value, text=""):
            return bar

    config = TrainConfig(trainer="ste", codebook_size=16, steps=200, batch_size=64, random_state=0)
    store = {}
    with pytest.raises(_Interrupt):
        cache.train_with_progress("toy", config, 1000, toy.X, name="A", slot=Slot(), store=store, state=state)
    run = store["A"]["run"]
    assert run.stopped_early and run.steps_run == steps_run
    assert state[cache.TRAIN_STOP] is True
    # not cached: the same call trains again, to the end
    result, cached = cache.train("toy", config, 1000, toy.X)
    assert not cached and result["run"].steps_run == 200
    again, cached = cache.train("toy", config, 1000, toy.X)
    assert cached and again["run"].history == result["run"].history


@pytest.mark.parametrize(
    "settings",
    [
        {"train_b_trainer": "ema"},
        {"train_b_trainer": "nsvq"},
        {"train_b_trainer": "lloyd", "train_b_init": "kmeans++"},
        {"train_b_trainer": "fsq"},
        {"train_b_stages": 3},
        {"train_b_cosine": True, "train_b_init": "data"},
        {"train_b_optimizer": "sgd", "train_b_lr": 0.1},
    ],
    ids=["ema", "nsvq", "lloyd", "fsq", "three-stages", "cosine", "sgd-lr"],
)
def test_every_trainer_and_option_runs_against_a(toy, settings):
    at = small(page(toy))
    for key, value in settings.items():
        widget = at.selectbox(key=key) if key.endswith(("trainer", "init", "optimizer")) else (
            at.checkbox(key=key) if key.endswith("cosine") else at.number_input(key=key))
        widget.set_value(value)
        ok(at.run())
    run_both(at)
    assert chart_titles(at) == charts.TRAINING_TITLES and not at.error
    b = at.session_state[RESULT]["runs"]["B"]["run"]
    assert b.steps_run == 60
    if "train_b_stages" in settings:
        assert b.n_stages == 3 and at.number_input(key="train_stage").value == 1
        perplexity = json.loads(at.get("plotly_chart")[1].proto.spec)
        assert sum(t["name"].startswith("B") for t in perplexity["data"]) == 3  # one line per stage
    if settings.get("train_b_trainer") == "fsq":
        assert b.codebook_size == 1000  # the implicit codebook of levels 8x5x5x5


def test_cache_fit_follows_the_fit_and_keeps_it(toy):
    """cache.fit reports the fit's progress while it computes, then serves the same fit from
    its store without fitting (or reporting) again."""
    seen = []
    args = ("toy-progress", "RQ4x4", (), 1000, 0)
    first = cache.fit(*args, toy.X, on_progress=lambda f, m: seen.append((f, m)))
    assert [m for _, m in seen] == [f"stage {s} of 4" for s in range(1, 5)]
    again = cache.fit(*args, toy.X, on_progress=lambda f, m: seen.append((f, m)))
    assert len(seen) == 4
    np.testing.assert_array_equal(again["quantizer"].codebooks_, first["quantizer"].codebooks_)


def test_cache_fit_keeps_nothing_when_the_callback_stops_it(toy):
    """An exception from the progress callback (Streamlit's stop on a click) ends the fit;
    the next call fits afresh."""
    class Stop(Exception):
        pass

    def stop(f, m):
        raise Stop

    args = ("toy-progress-stop", "RQ4x4", (), 1000, 0)
    with pytest.raises(Stop):
        cache.fit(*args, toy.X, on_progress=stop)
    seen = []
    cache.fit(*args, toy.X, on_progress=lambda f, m: seen.append(m))
    assert seen == [f"stage {s} of 4" for s in range(1, 5)]


def test_a_click_during_a_fit_is_held_until_the_fit_is_kept(toy):
    """Streamlit's stop or rerun request (a BaseException raised by the next st call, here the
    bar's update) is held back: the fit finishes and is kept, then the request is raised."""
    class Rerun(BaseException):
        pass

    drawn = []

    def draw(fraction, message):
        drawn.append(message)
        raise Rerun

    args = ("toy-held", "RQ4x4", (), 1000, 0)
    with pytest.raises(Rerun), cache.drawing_progress(draw) as on_progress:
        cache.fit(*args, toy.X, on_progress=on_progress)
    assert drawn == ["stage 1 of 4"]  # no more drawing once a request is held
    seen = []
    cache.fit(*args, toy.X, on_progress=lambda f, m: seen.append(m))
    assert seen == []  # kept: served without fitting again


def test_cache_run_follows_a_long_encoding_and_keeps_it(toy, monkeypatch):
    """cache.run reports the blocks of the encoding of every row while it computes, then serves
    the result from its store."""
    import vqcore.base

    monkeypatch.setattr(vqcore.base, "ENCODE_BLOCK_ROWS", 1000)
    args = ("toy-run-progress", "PQ4x4", (), 1000, 0)
    seen = []
    first = cache.run(*args, toy.X, on_progress=lambda f, m: seen.append(m))
    n = first["report"]["n"]
    assert n == 2000 and seen == [f"encoding rows 1-1,000 of {n:,}", f"encoding rows 1,001-{n:,} of {n:,}"]
    again = cache.run(*args, toy.X, on_progress=lambda f, m: seen.append(m))
    assert len(seen) == 2
    np.testing.assert_array_equal(again["codes"], first["codes"])
