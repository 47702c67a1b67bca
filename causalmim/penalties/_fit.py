"""Fitting a penalty's critic against fixed samples, with early stopping on held-out rows."""

from __future__ import annotations

import inspect
import math

import torch

from ._base import Penalty, _as_tensor, _check_weights, _validate


class _EarlyStopping:
    """Patience-based early stopping on a loss, keeping the best state of a module.

    ``step(loss)`` records one loss and returns True once training should stop: after more than
    ``patience`` consecutive losses that do not improve on the best one by more than
    ``min_delta * max(|best|, 1)`` (the first loss always counts as an improvement). Each
    improvement stores a copy of ``module``'s state; ``restore()`` loads the best one back.

    Parameters
    ----------
    module : torch.nn.Module
        The module whose state is tracked.
    patience : int
        Consecutive losses without improvement that are tolerated.
    min_delta : float, default=0.0
        Smallest decrease, relative to ``max(|best|, 1)``, that counts as an improvement.
    """

    def __init__(self, module, patience, min_delta=0.0):
        self.module = module
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.best_state = None
        self.since = 0

    def step(self, loss):
        """Record ``loss`` (a float); return True when training should stop."""
        if self.best == math.inf or loss < self.best - self.min_delta * max(abs(self.best), 1.0):
            self.best, self.since = loss, 0
            self.best_state = {k: t.detach().clone() for k, t in self.module.state_dict().items()}
            return False
        self.since += 1
        return self.since > self.patience

    def restore(self):
        """Load the best state back into the module (nothing happens before the first loss)."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)


def _n_groups_ok(b):
    """False for a label vector that holds a single group (a float ``b`` is always fine)."""
    return b.ndim != 1 or torch.unique(b).numel() >= 2


def _rows(arrays, idx):
    """The rows ``idx`` of each tensor of ``arrays`` (None stays None)."""
    return tuple(None if x is None else x[idx] for x in arrays)


def _split(a, b, validation_fraction):
    """Random (train, validation) row indices, or None when no usable validation set exists.

    None when ``validation_fraction`` is 0, when either side would have fewer than 2 rows, or
    when either side of the drawn split holds a single group of labels.
    """
    n = a.shape[0]
    n_val = int(round(validation_fraction * n))
    if not (validation_fraction > 0 and n_val >= 2 and n - n_val >= 2):
        return None
    perm = torch.randperm(n, device=a.device)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if not (_n_groups_ok(b[val_idx]) and _n_groups_ok(b[train_idx])):
        return None
    return train_idx, val_idx


def fit_critic(
    penalty,
    a,
    b,
    n_steps=2000,
    lr=None,
    batch_size=None,
    weights=None,
    *,
    validation_fraction=0.2,
    patience=None,
    min_delta=3e-3,
    init_least_squares=True,
    ridge_fraction=0.25,
):
    """Fit a penalty's critic against fixed samples with Adam.

    Minimizes ``penalty.learning_loss`` on ``(a, b)`` (detached), full batch or on random
    minibatches. A critic fitted for long on a fixed sample overfits it (a flexible q shrinks
    its variance and inflates CLUB, a lower-bound critic inflates MINE), so by default a random
    ``validation_fraction`` of the rows is held out: the critic's validation loss (the
    ``learning_loss``, or minus the estimate for the MI lower bounds) is tracked before the
    first step and after every step, training stops once it has not improved for more than
    ``patience`` steps in a row, and the best state is restored. For the Gaussian q of the CLUB
    family, the linear-Gaussian part is first set to a ridge least-squares fit of ``b`` on the
    training rows (``init_least_squares``), so that the gradient steps only have to learn what
    is not linear. For a closed-form measure this is a no-op that returns ``[]``.

    All randomness (the split, minibatches, sampled negatives) comes from torch's global random
    generator.

    Parameters
    ----------
    penalty : Penalty
        The penalty whose critic is fitted (built from the data if it is not built yet).
    a : torch.Tensor of shape (n_samples, dim_a)
    b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
    n_steps : int, default=2000
        Maximum number of iterations, each one optimizer step on a batch; a random minibatch
        that holds a single group of labels is skipped (no step, no loss) but counts.
    lr : float, optional
        Adam's learning rate; None uses the penalty's default (5e-3 for the CLUB family, 1e-3
        for the MI lower bounds).
    batch_size : int, optional
        Minibatch size; None uses all the training rows at every step.
    weights : torch.Tensor of shape (n_samples,), optional
        Per-sample weights, only for penalties whose ``learning_loss`` takes ``weights``
        (:class:`IWCLUB`).
    validation_fraction : float, default=0.2
        Fraction of the rows held out for early stopping; 0 trains on all rows for ``n_steps``
        (as does a sample too small to hold out 2 rows on each side, or whose split leaves a
        single group of labels on one side).
    patience : int, optional
        Steps without improvement of the validation loss that are tolerated: training stops at
        the next one. None uses the penalty's default (50 for the CLUB family, 100 for the MI
        lower bounds).
    min_delta : float, default=3e-3
        Smallest decrease of the validation loss, relative to ``max(|best|, 1)``, that counts
        as an improvement (a guard against selecting a state that fits the validation rows by
        chance).
    init_least_squares : bool, default=True
        Initialize a Gaussian q's linear part by ridge least squares (CLUB family only); this
        resets the critic. Pass False to continue from the current critic.
    ridge_fraction : float, default=0.25
        The initialization's ridge penalty, as a fraction of the one chosen by generalized
        cross-validation (0: ordinary least squares). The GCV penalty shrinks coefficients that
        carry only noise to 0 (so CLUB stays near 0 on independent samples even for large
        ``dim_a``), but also real ones, which biases CLUB down by the same factor; a quarter
        of it keeps that bias to a few percent.

    Returns
    -------
    list of float
        The critic's training loss at every optimizer step.
    """
    if not isinstance(penalty, Penalty):
        raise TypeError(f"penalty must be a Penalty; got {type(penalty).__name__}.")
    if not penalty.has_critic:
        return []
    lr = penalty._fit_defaults["lr"] if lr is None else lr
    patience = penalty._fit_defaults["patience"] if patience is None else patience
    takes_weights = "weights" in inspect.signature(penalty.learning_loss).parameters
    if weights is not None and not takes_weights:
        raise ValueError(
            f"{type(penalty).__name__}.learning_loss takes no weights; use IWCLUB ('iwclub') "
            "for per-sample weights."
        )
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1); got {validation_fraction}.")
    if batch_size is not None and batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 or None; got {batch_size}.")
    a = _as_tensor(a, "a").detach()
    b = _as_tensor(b, "b").detach()
    _validate(a, b)
    penalty.build(a, b)
    if weights is not None:
        weights = _as_tensor(weights, "weights").detach()
        ref = a if torch.is_floating_point(a) else a.float()
        weights = _check_weights(weights, a.shape[0], ref)

    def loss_on(xa, xb, xw, validation=False):
        if validation and penalty.bound == "lower":
            return -penalty(xa, xb)
        if takes_weights:
            return penalty.learning_loss(xa, xb, weights=xw)
        return penalty.learning_loss(xa, xb)

    split = _split(a, b, validation_fraction)
    train = (a, b, weights) if split is None else _rows((a, b, weights), split[0])
    if init_least_squares and hasattr(penalty, "_init_critic"):
        penalty._init_critic(penalty._prepare(train[0], train[1]), train[2], ridge_fraction)

    stopper = None
    if split is not None:
        val = _rows((a, b, weights), split[1])
        stopper = _EarlyStopping(penalty, patience, min_delta)

        def validation_loss():
            with torch.no_grad():
                return float(loss_on(*val, validation=True))

        stopper.step(validation_loss())

    opt = torch.optim.Adam(penalty.parameters(), lr=lr)
    n_train = train[0].shape[0]
    losses = []
    for _ in range(int(n_steps)):
        batch = train
        if batch_size is not None and batch_size < n_train:
            batch = _rows(train, torch.randperm(n_train, device=a.device)[:batch_size])
            if not _n_groups_ok(batch[1]):
                continue
        opt.zero_grad()
        loss = loss_on(*batch)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if stopper is not None and stopper.step(validation_loss()):
            break
    if stopper is not None:
        stopper.restore()
    return losses


def held_out_estimate(penalty, a, b, fit_rows, eval_rows):
    """Fit ``penalty``'s critic on the rows ``fit_rows`` of ``(a, b)`` (:func:`fit_critic`)
    and return its estimate on the rows ``eval_rows`` as a float: a dependence measured after
    the fact, on rows the critic has not seen."""
    fit_critic(penalty, a[fit_rows], b[fit_rows])
    with torch.no_grad():
        return float(penalty(a[eval_rows], b[eval_rows]))
