"""Posterior draws with chain and draw flattened, read from the fit's file only as needed.

A loaded fit's posterior is backed lazily by ``posterior.nc``: :func:`flat_draws` reads one
variable, optionally one dimension of it and some of its draws, so a stage that needs a thinned
slice never holds the whole variable (at ten times the study's size the rater effects alone
are 0.9 GB). ``xarray``'s ``stack(sample=("chain", "draw"))`` would read everything and copy it
with a MultiIndex.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def thinned(n_total: int, draws: int | None) -> np.ndarray | None:
    """Positions of ``draws`` draws evenly spaced over ``n_total`` (None: keep all).

    Parameters
    ----------
    n_total : int
        Draws over all chains.
    draws : int, optional
        How many to keep; None or at least ``n_total`` keeps all.

    Returns
    -------
    int array (sorted) or None
    """
    if draws is None or draws >= n_total:
        return None
    return np.round(np.linspace(0, n_total - 1, draws)).astype(int)


def flat_draws(post: xr.Dataset, name: str, dimension: int | None = None,
               pick: np.ndarray | None = None) -> np.ndarray:
    """``post[name]`` with its draws flattened chain-major into a first axis.

    Parameters
    ----------
    post : xarray.Dataset
        A posterior with ``chain`` and ``draw`` as its first two dimensions.
    name : str
        The variable.
    dimension : int, optional
        Position on the variable's ``dimension`` axis to read (that axis is dropped).
    pick : int array, optional
        Sorted positions of the draws to read, over all chains chain-major; default all.

    Returns
    -------
    array (S, *rest)
        ``rest`` are the variable's other dimensions in their order.
    """
    da = post[name]
    if dimension is not None:
        da = da.isel(dimension=dimension)
    da = da.transpose("chain", "draw", ...)
    if pick is None:
        values = da.values
        return values.reshape(-1, *values.shape[2:])
    chain, draw = np.divmod(np.asarray(pick), post.sizes["draw"])
    return np.concatenate([da.isel(chain=c, draw=draw[chain == c]).values
                           for c in np.unique(chain)])
