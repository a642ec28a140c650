"""Sampling until the diagnostics are ok: checkpoints, budgets, and the same draws as asked for."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

from disagree.data import simulate_survey
from disagree.model import fit
from disagree.model.sampling import SamplerSettings, next_look_in, sample_until

pytestmark = pytest.mark.filterwarnings("ignore:fit diagnostics")


class FakeSampler:
    """A trace that grows by 70 draws a look (NaN past the draws done), like nutpie's."""

    def __init__(self, total: int):
        self.values = np.random.default_rng(0).normal(size=(2, total))
        self.done, self.cancelled = 0, False

    def inspect(self) -> az.InferenceData:
        self.done = min(self.done + 70, self.values.shape[1])
        x = np.full_like(self.values, np.nan)
        x[:, :self.done] = self.values[:, :self.done]
        return az.from_dict(posterior={"x": x})

    def wait(self) -> az.InferenceData:
        self.done = self.values.shape[1]
        return az.from_dict(posterior={"x": self.values})

    def cancel(self) -> None:
        self.cancelled = True


def test_stops_at_the_first_checkpoint_that_meets_the_target():
    seen = []

    def target(head):
        seen.append(head.posterior.sizes["draw"])
        return head.posterior.sizes["draw"] >= 300

    fake = FakeSampler(1000)
    head, rec = sample_until(fake, SamplerSettings(draws=100, max_draws=1000, converged=target),
                             poll=0)
    assert seen == [100, 200, 300]
    assert rec == {"draws_used": 300.0, "checkpoints": 3.0, "target_met": 1.0}
    assert fake.cancelled and np.array_equal(head.posterior["x"].values, fake.values[:, :300])


def test_stops_at_the_draw_budget_without_the_target():
    fake = FakeSampler(250)
    head, rec = sample_until(fake, SamplerSettings(draws=100, max_draws=250,
                                                   converged=lambda _: False), poll=0)
    assert rec == {"draws_used": 250.0, "checkpoints": 3.0, "target_met": 0.0}
    assert head.posterior.sizes["draw"] == 250


def test_stops_at_the_time_budget():
    fake = FakeSampler(1000)
    _, rec = sample_until(fake, SamplerSettings(draws=100, max_draws=1000, max_seconds=0.0,
                                                converged=lambda _: False), poll=0)
    assert rec["draws_used"] == 100.0 and rec["target_met"] == 0.0


def test_looks_while_tuning_say_nothing():
    """nutpie's trace has no draws while tuning; ArviZ warns about that on every look."""
    class Tuning(FakeSampler):
        looks = 0

        def inspect(self) -> az.InferenceData:
            self.looks += 1
            if self.looks <= 3:  # still tuning
                return az.from_dict(posterior={"x": np.empty((2, 0))})
            return super().inspect()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, rec = sample_until(Tuning(300), SamplerSettings(draws=100, max_draws=300,
                                                           converged=lambda _: True), poll=0)
    assert rec["draws_used"] == 100.0


def test_the_next_look_is_when_the_chains_should_reach_the_checkpoint():
    # 100 draws at t=0, 200 at t=10: 10 draws a second
    assert next_look_in((0.0, 100), 10.0, 200, 300, poll=0.5) == 10.0
    assert next_look_in((0.0, 100), 10.0, 200, 1000, poll=0.5) == 60.0  # at most a minute
    assert next_look_in((0.0, 100), 10.0, 200, 201, poll=0.5) == 0.5    # at least poll
    assert next_look_in(None, 10.0, 0, 300, poll=0.5) == 0.5             # still tuning
    assert next_look_in((10.0, 200), 10.0, 200, 300, poll=0.5) == 0.5    # no rate yet


@pytest.mark.slow
def test_a_fit_that_needs_more_draws_gets_them_and_they_are_the_exact_ones():
    """100 draws a chain cannot give a bulk ESS of 400; sampling goes on to the first ok
    checkpoint, and the posterior is the one an exact request for that many draws gives."""
    table = simulate_survey(seed=2, n_raters=150, n_prompts=10, dimensions=("toxicity",)).table
    settings = dict(tune=300, seed=4, progress=False)
    grown = fit(table, ["gender"], draws=100, max_draws=1000, **settings)
    ext = grown.diagnostics["extension"]
    assert grown.diagnostics["ok"] and ext["target_met"]
    assert 200 <= ext["draws_used"] <= 1000 and ext["draws_used"] % 100 == 0
    assert grown.idata.posterior.sizes["draw"] == ext["draws_used"]
    assert "stopped because the diagnostics were ok" in grown.summary()
    exact = fit(table, ["gender"], draws=ext["draws_used"], **settings)
    assert "extension" not in exact.diagnostics
    assert np.array_equal(grown.idata.posterior["beta"].values,
                          exact.idata.posterior["beta"].values)
