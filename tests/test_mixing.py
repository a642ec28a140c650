"""The vectorised R-hat and ESS equal ArviZ's, quantity by quantity."""

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from disagree.model.mixing import rhat_ess


def _ar(rng: np.random.Generator, shape: tuple[int, int, int], phi: float) -> np.ndarray:
    """AR(1) chains with coefficient ``phi`` (``(chain, draw, quantity)``)."""
    noise = rng.normal(size=shape)
    x = np.zeros(shape)
    for t in range(shape[1]):
        x[:, t] = phi * (x[:, t - 1] if t else 0.0) + noise[:, t]
    return x


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    special = rng.normal(size=(3, 50, 5))
    special[:, :, 0] = 1.0  # constant
    special[0, 3, 1] = np.nan
    return {
        "iid": rng.normal(size=(4, 200, 30)),
        "slow (phi 0.9), odd draws": _ar(rng, (4, 301, 30), 0.9),
        "very slow (phi 0.99), 2 chains": _ar(rng, (2, 150, 30), 0.99),
        "antithetic (phi -0.7)": _ar(rng, (4, 100, 30), -0.7),
        "ties (3 values)": rng.integers(0, 3, size=(4, 100, 30)).astype(float),
        "chains apart": rng.normal(size=(4, 100, 30)) + 0.3 * np.arange(4)[:, None, None],
        "constant and NaN": special,
        "5 draws": rng.normal(size=(2, 5, 10)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_rhat_ess_equal_arviz(name):
    values = _cases()[name]
    data = xr.Dataset({"x": (("chain", "draw", "q"), values)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = (az.rhat(data)["x"].values, az.ess(data, method="bulk")["x"].values,
                    az.ess(data, method="tail")["x"].values)
    for got, want in zip(rhat_ess(values), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)  # NaN where ArviZ's is NaN
