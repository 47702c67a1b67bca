"""The one training engine: a skorch ``NeuralNet`` whose loss is composed of optional terms.

All models train here. They differ only in the network's parts (``_nn.CausalNetwork``) and in
which loss terms carry a non-zero weight. The network has a leading *member* axis: M members
(an ensemble, or bootstrap replicates) train in one forward and one backward pass per batch.

Data. ``fit`` receives a dict of per-row arrays: ``x`` (features), ``t`` (arm index), ``y``
is the target, and two (n, M) weight matrices: ``wm`` (member m's training weight of a row:
the sample weight, times the row's bootstrap count, and 0 when the row is in member m's
validation part) and ``vm`` (the sample weight on member m's validation rows, else 0). The
rows are moved to the device once; batches are slices of a shuffled index, so there is no
per-row Python work and no host synchronization inside a training step.

Loss of member m on a batch (the engine minimizes the sum over members, so that each member's
gradient is the one it would have alone):

* factual loss on the observed arm (squared error, or log-loss for binary outcomes), weighted
  by ``wm`` and, optionally, by DR-CFR's importance weights; a network with parallel paths
  (``path_outcomes`` in its output) has each path's factual loss, averaged over the paths;
* propensity cross-entropy (``propensity_weight``);
* dependence penalties (``penalty_terms``, :class:`causalmim._terms.PenaltyTerm`):
  ``weight * critic_[name](inputs[a], inputs[b])`` where ``b`` is a factor, the arms ``"t"``
  or any per-row column of the data dict (e.g. ``"s"`` for ``sensitive=``), each member with
  its own critic (``causalmim._members``). Only terms on labels (the arms, or group labels
  such as a categorical ``sensitive=``) are skipped on a batch whose labels hold one group.
  Terms that can share one batched critic (same penalty, parameters and weight, between
  factors) arrive as one :class:`causalmim._terms.TermGroup` and are computed as one penalty
  with their inputs stacked along the member axis.
  Penalties with a variational critic (CLUB and its relatives) have it fitted by its own
  optimizer in alternation (``train_step``);
* DragonNet's targeted regularization (``targeted_weight``).

Divergence: a non-finite training loss (or a member's non-finite validation loss) stops
training with a ``TrainingDivergedError`` that names the epoch and the learning rate; a loss
more than ``EXPLOSION_FACTOR`` times the first epoch's (capped at 1) warns
(``UnstableTrainingWarning``).

Early stopping is per member (:class:`MemberEarlyStopping`): after each epoch, every member's
factual loss on its own validation rows; each member keeps the weights of its own best epoch,
and training ends when every member has run out of patience.

Weight averaging (``ema_decay > 0``): the net keeps an exponential moving average of the
network's weights over the training steps; early stopping validates and keeps the averaged
weights, and a net without early stopping ends with them.

The penalties are registered the skorch way (an extra module ``critic_``, a ``ModuleDict``, with
its own optimizer ``critic_optimizer_``) so that they move to the device and persist with the net.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PrintLog
from skorch.utils import TeeGenerator
from torch import nn

from .exceptions import TrainingDivergedError, UnstableTrainingWarning

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A training loss this many times the first epoch's is an explosion worth a warning.
EXPLOSION_FACTOR = 1e3
# DR-CFR importance weights: the learned propensity is clipped to this range before inverting.
_PROPENSITY_CLIP = (0.1, 0.9)
# Rows per forward pass when a whole data set is evaluated (validation, prediction): small
# chunks keep the activations in the CPU's cache (2x the throughput of 65,536-row chunks);
# a GPU wants large ones.
EVAL_CHUNK = {"cpu": 2048, "cuda": 65536}


def eval_chunk(device):
    return EVAL_CHUNK.get(torch.device(device).type, EVAL_CHUNK["cuda"])


# Validation rows per epoch row on large data: the validation sample is this many times
# ``epoch_size`` (a sample tied to the epoch, 10,000 rows of a 2%-conversion campaign, stopped
# training too early at 1M rows).
VALID_ROWS_PER_EPOCH_ROW = 10

_FUSED = {}


def fused_adam_kwargs(device):
    """``{"fused": True}`` where this torch has a fused Adam for ``device`` (one kernel for
    all parameters: 4x faster than the per-tensor loop on these small networks), else ``{}``."""
    kind = torch.device(device).type
    if kind not in _FUSED:
        try:
            p = nn.Parameter(torch.zeros(1, device=device))
            p.grad = torch.zeros_like(p)
            torch.optim.Adam([p], fused=True).step()
            _FUSED[kind] = {"fused": True}
        except (RuntimeError, TypeError, ValueError):
            _FUSED[kind] = {}
    return _FUSED[kind]


class _Batches:
    """Shuffled mini-batches sliced from tensors that already sit on the device.

    ``rows`` are the rows that train at least one member. An epoch is a pass over them, cut
    into batches of equal size (at most ``batch_size``, so no small remainder batch makes a
    full-size noisy Adam step), or, with more than ``epoch_size`` rows, the next
    ``epoch_size`` rows of an endless shuffled stream over them.

    Yields ``(data, varied)``: a dict of row slices and the names of the label columns
    (``labels``: ``"t"`` and any column of group labels, as host copies) that hold at least two
    groups in the batch, computed on the host, so no device synchronization.
    """

    def __init__(self, data, labels, rows, batch_size, rng, epoch_size=None):
        self.data, self.labels, self.rows = data, labels, rows
        self.batch_size, self.rng = batch_size, rng
        n = len(rows)
        self.epoch_rows = n if epoch_size is None else min(n, int(epoch_size))
        self._stream = np.empty(0, dtype=np.int64)

    def __len__(self):
        return -(-self.epoch_rows // self.batch_size)

    def _next_rows(self):
        if self.epoch_rows == len(self.rows):
            return self.rows[self.rng.permutation(len(self.rows))]
        while len(self._stream) < self.epoch_rows:
            self._stream = np.concatenate(
                [self._stream, self.rows[self.rng.permutation(len(self.rows))]])
        order, self._stream = self._stream[:self.epoch_rows], self._stream[self.epoch_rows:]
        return order

    def __iter__(self):
        order = self._next_rows()
        sorted_labels = {name: column[order] for name, column in self.labels.items()}
        index = torch.as_tensor(order, device=self.data["x"].device)
        bounds = np.linspace(0, len(order), len(self) + 1).round().astype(int)
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            varied = frozenset(name for name, column in sorted_labels.items()
                               if column[start:stop].min() != column[start:stop].max())
            rows = index[start:stop]
            yield {k: v[rows] for k, v in self.data.items()}, varied


class _PrintLog(PrintLog):
    """skorch's epoch table, without terminal colour codes when stdout is not a terminal
    (a log file, a notebook's captured output, CI)."""

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not getattr(sys.stdout, "isatty", lambda: False)():
            text = _ANSI.sub("", text)
        return text


class MemberEarlyStopping(Callback):
    """Early stopping per member on the factual loss of the member's own validation rows.

    Each epoch it records ``valid_loss`` (mean over members) and ``valid_losses`` (one per
    member) in the history; a member whose loss has not improved for ``patience`` epochs is
    done, training stops when all are, and every member ends with its best epoch's weights.
    """

    def __init__(self, patience, threshold=1e-4):
        self.patience = patience
        self.threshold = threshold

    def on_train_begin(self, net, **kwargs):
        m = net.module_.n_members
        self.best_ = np.full(m, np.inf)
        self.wait_ = np.zeros(m, dtype=int)
        self.best_epoch_ = np.zeros(m, dtype=int)
        self.best_params_ = [p.detach().clone() for p in net.module_.parameters()]

    def on_epoch_end(self, net, **kwargs):
        # With weight averaging (``ema_decay``) the averaged weights are validated and kept.
        with net.averaged_weights():
            self._record(net)

    def _record(self, net):
        losses = net.member_validation_loss().cpu().numpy()
        if not np.all(np.isfinite(losses)):
            bad = np.flatnonzero(~np.isfinite(losses)).tolist()
            net._check_divergence(float(losses[bad[0]]),
                                  what=f"validation loss of member(s) {bad}")
        net.history.record("valid_losses", losses.tolist())
        net.history.record("valid_loss", float(losses.mean()))
        improved = losses < self.best_ * (1.0 - self.threshold)
        self.best_ = np.where(improved, losses, self.best_)
        self.best_epoch_ = np.where(improved, len(net.history), self.best_epoch_)
        self.wait_ = np.where(improved, 0, self.wait_ + 1)
        if improved.any():
            mask = torch.as_tensor(improved, device=self.best_params_[0].device)
            m = len(improved)
            with torch.no_grad():
                for best, p in zip(self.best_params_, net.module_.parameters(), strict=True):
                    b, cur = best.view(m, -1), p.detach().view(m, -1)
                    b.copy_(torch.where(mask[:, None], cur, b))
        if (self.wait_ >= self.patience).all():
            raise KeyboardInterrupt  # skorch's way of ending training from a callback

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            for best, p in zip(self.best_params_, net.module_.parameters(), strict=True):
                p.copy_(best)
        net.best_epochs_ = self.best_epoch_.copy()
        del self.best_params_


class CausalNet(NeuralNet):
    """skorch net for the causal model family (internal; built by the estimators in ``fit``).

    ``X`` is a dict with ``x`` (float features), ``t`` (int64 arm index), ``wm`` and ``vm``
    ((n, M) float training and validation weights); ``y`` is the float outcome (standardized
    for continuous outcomes).
    """

    def __init__(self, module, *args, critic=None, penalty_terms=(),
                 critic_optimizer=torch.optim.Adam, critic_lr=1e-3, critic_steps=1,
                 outcome="continuous", propensity_weight=0.0, importance_weighting=False,
                 targeted_weight=0.0, arm_shares=None, shuffle_seed=0, epoch_size=None,
                 ema_decay=0.0, **kwargs):
        self.critic = critic
        self.penalty_terms = penalty_terms
        self.critic_optimizer = critic_optimizer
        self.critic_lr = critic_lr
        self.critic_steps = critic_steps
        self.outcome = outcome
        self.propensity_weight = propensity_weight
        self.importance_weighting = importance_weighting
        self.targeted_weight = targeted_weight
        self.arm_shares = arm_shares
        self.shuffle_seed = shuffle_seed
        self.epoch_size = epoch_size
        self.ema_decay = ema_decay
        super().__init__(module, *args, **kwargs)

    # ------------------------------------------------------------------ initialization
    def get_default_callbacks(self):
        # Losses are recorded per epoch by the engine itself (no per-batch host sync).
        return [("epoch_timer", EpochTimer()),
                ("print_log", _PrintLog(keys_ignored=["valid_losses"]))]

    def initialize_module(self):
        super().initialize_module()
        critic = self.critic if self.critic is not None else nn.ModuleDict()
        self.critic_ = self.initialized_instance(critic, self.get_params_for("critic"))
        return self

    def get_all_learnable_params(self):
        # The main optimizer sees the network only; the critics have their own optimizer.
        yield from self.module_.named_parameters()

    def initialize_optimizer(self, triggered_directly=None):
        super().initialize_optimizer()
        self._critic_params = [p for p in self.critic_.parameters() if p.requires_grad]
        kwargs = fused_adam_kwargs(self.device) if self.critic_optimizer is torch.optim.Adam \
            else {}
        self.critic_optimizer_ = (
            self.critic_optimizer(self._critic_params, lr=self.critic_lr, **kwargs)
            if self._critic_params else None)
        return self

    # ------------------------------------------------------------------ data
    def get_split_datasets(self, X, y=None, **fit_params):
        """The whole data set trains; validation rows are masked per member (``wm``/``vm``)."""
        dev = self.device
        data = {k: torch.as_tensor(np.asarray(v), device=dev) for k, v in X.items()}
        data["y"] = torch.as_tensor(np.asarray(y), device=dev)
        self.data_ = data
        names = {"t"} | {name for group in self.penalty_terms for name in group.labels}
        self._labels_host = {name: np.asarray(X[name]) for name in sorted(names)}
        self._rng = np.random.default_rng(self.shuffle_seed)
        self._train_rows = np.flatnonzero(np.asarray(X["wm"]).sum(1) > 0)
        valid_rows = np.flatnonzero(np.asarray(X["vm"]).sum(1) > 0)
        cap = None if self.epoch_size is None else VALID_ROWS_PER_EPOCH_ROW * self.epoch_size
        if cap is not None and len(valid_rows) > cap:
            valid_rows = np.sort(self._rng.choice(valid_rows, int(cap), replace=False))
        self._valid_rows = torch.as_tensor(valid_rows, device=dev)
        return data, None

    def release_fit_data(self):
        """Drop the per-row training state (data, host copies, row index) and the weight
        average after ``fit``, so that a fitted net carries neither its training set nor a
        second copy of its weights."""
        for name in ("data_", "_labels_host", "_train_rows", "_ema", "_ema_steps"):
            self.__dict__.pop(name, None)

    def get_iterator(self, dataset, training=False):
        if not training:
            return None
        return _Batches(dataset, self._labels_host, self._train_rows, self.batch_size, self._rng,
                        self.epoch_size)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """One pass over the batches; the losses stay on the device until the epoch ends."""
        if iterator is None:
            return
        total, count = 0.0, 0
        self._penalty_sums, self._penalty_loss_sums = {}, {}
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            total = total + step["loss"].detach()
            count += 1
            self.notify("on_batch_end", batch=batch, training=training, **step)
        m = self.module_.n_members
        loss = float(total) / (count * m)
        if training:
            self._check_divergence(loss, penalty_scale=count * m)
        self.history.record(prefix + "_loss", loss)
        self.history.record(prefix + "_batch_count", count)
        for key, value in self._penalty_sums.items():
            self.history.record(key, float(value) / (count * m))

    # ------------------------------------------------------------------ divergence
    def _weighted_penalties(self, scale):
        """Each penalty parameter's (``mi_weight``...) weighted share of this epoch's loss:
        ``{weight parameter: weight * estimate / scale}``, estimates clamped at 0 as in the
        loss."""
        out = {}
        for group in self.penalty_terms:
            for term in group.terms:
                value = self._penalty_loss_sums.get(term.name)
                if value is None:
                    continue
                key = (term.route or term.name).replace("_penalty", "_weight")
                out[key] = out.get(key, 0.0) + group.weight * float(value) / scale
        return out

    def _check_divergence(self, loss, what="training loss", penalty_scale=None):
        """A non-finite loss stops training with an error; a loss more than
        ``EXPLOSION_FACTOR`` times the first epoch's (capped at 1, the loss of the mean on the
        standardized outcome) warns once per fit. ``penalty_scale``: for the training loss, the
        divisor that made it a mean (batches x members); the warning then weighs the penalty
        terms (:meth:`_weighted_penalties`, computed only when it warns) and names their
        weights instead of the learning rate when they make up most of the loss."""
        epoch = len(self.history)
        if not np.isfinite(loss):
            raise TrainingDivergedError(
                f"Training diverged: the {what} is {loss} in epoch {epoch}. The learning rate "
                f"(learning_rate={self.lr}) is the most likely cause; try one 10 times smaller. "
                "X and y are standardized inside the estimator, so columns with extreme "
                "outliers are the next suspect.")
        if epoch <= 1 or not hasattr(self, "_loss_scale"):
            # The outcome is standardized: predicting its mean costs about 1 (0.69 in log-loss),
            # so the first epoch's loss, capped at 1, is the scale of a sane loss.
            self._loss_scale, self._warned = min(abs(loss), 1.0), False
        if abs(loss) > EXPLOSION_FACTOR * max(self._loss_scale, 1e-8) and not self._warned:
            self._warned = True
            penalties = ({} if penalty_scale is None
                         else self._weighted_penalties(penalty_scale))
            penalty = sum(penalties.values())
            if penalty > 0.5 * abs(loss):
                parts = ", ".join(f"{k} {v:.3g}" for k, v in sorted(
                    penalties.items(), key=lambda kv: -kv[1]))
                warnings.warn(
                    f"The {what} is {loss:.3g} in epoch {epoch}, more than "
                    f"{EXPLOSION_FACTOR:g} times its sane scale ({self._loss_scale:.3g}), and "
                    f"the penalty terms make up {penalty / abs(loss):.0%} of it ({parts}): "
                    "their weight is too large for the scale of their estimates, so the "
                    "outcome loss hardly steers training. Lower that weight.",
                    UnstableTrainingWarning, stacklevel=2)
                return
            warnings.warn(
                f"The {what} is {loss:.3g} in epoch {epoch}, more than {EXPLOSION_FACTOR:g} "
                f"times its sane scale ({self._loss_scale:.3g}): training is unstable and the "
                f"model is likely garbage. Try a smaller learning_rate (now {self.lr}).",
                UnstableTrainingWarning, stacklevel=2)

    # ------------------------------------------------------------------ training
    def train_step(self, batch, **fit_params):
        data, varied = batch
        self._set_training(True)
        out = self.module_(data["x"])
        self._critic_step(out["factors"], data, varied)
        self.optimizer_.zero_grad(set_to_none=True)
        # The critics are fitted by their own step: no gradient for their weights here.
        for p in self._critic_params:
            p.requires_grad_(False)
        try:
            loss = self._training_loss(out, data, varied)
            loss.backward()
        finally:
            for p in self._critic_params:
                p.requires_grad_(True)
        self.notify("on_grad_computed",
                    named_parameters=TeeGenerator(self.get_all_learnable_params()),
                    X=data, y=data["y"], training=True)
        self.optimizer_.step()
        self._update_average()
        return {"loss": loss, "y_pred": out}

    # ------------------------------------------------------------------ weight averaging
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # The average of the weights, or None without weight averaging.
        self._ema = ([p.detach().clone() for p in self.module_.parameters()]
                     if self.ema_decay else None)
        self._ema_steps = 0

    def _update_average(self):
        """One step of the exponential moving average of the network's weights, with
        decay ``min(ema_decay, (1 + k) / (10 + k))`` at step k, so that the first steps do
        not tie the average to the initial weights."""
        if self._ema is None:
            return
        self._ema_steps += 1
        k = self._ema_steps
        decay = min(self.ema_decay, (1.0 + k) / (10.0 + k))
        with torch.no_grad():
            torch._foreach_lerp_(self._ema, list(self.module_.parameters()), 1.0 - decay)

    def _load_weights(self, weights):
        with torch.no_grad():
            torch._foreach_copy_(list(self.module_.parameters()), weights)

    @contextlib.contextmanager
    def averaged_weights(self):
        """Within the block the network holds its averaged weights (``ema_decay``), its own
        ones again afterwards; without averaging, nothing changes."""
        if getattr(self, "_ema", None) is None:
            yield
            return
        own = [p.detach().clone() for p in self.module_.parameters()]
        self._load_weights(self._ema)
        try:
            yield
        finally:
            self._load_weights(own)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # The net's own hook runs before the callbacks': early stopping then replaces these
        # weights with its best epoch's (averaged ones, when averaging).
        super().on_train_end(net, X=X, y=y, **kwargs)
        if self._ema is not None:
            self._load_weights(self._ema)

    def _active_terms(self, varied, critic_only=False):
        """The active term groups (:class:`causalmim._terms.TermGroup`) of a batch whose label
        columns ``varied`` hold at least two groups."""
        for group in self.penalty_terms:
            if not group.weight or not group.labels <= varied:
                continue  # a batch with one arm (or one group) carries no signal for the term
            if critic_only and not self.critic_[group.name].has_critic:
                continue
            yield group

    def _penalty_inputs(self, factors, data, groups, detach=False):
        """The inputs the terms read: standardized factors (and ``"outcome"``, the factors
        of the outcome heads concatenated), the arms and any per-row data column."""
        inputs = {k: _standardize(v.detach() if detach else v) for k, v in factors.items()}
        terms = [term for group in groups for term in group.terms]
        if any(term.a == "outcome" for term in terms):
            inputs["outcome"] = torch.cat(
                [inputs[f] for f in self.module_.outcome_inputs], dim=-1)
        m = self.module_.n_members
        for term in terms:
            if term.b not in inputs:
                column = data[term.b]
                if column.is_floating_point():  # a continuous column, shared by the members
                    column = column.reshape(1, column.shape[0], -1).expand(m, -1, -1)
                inputs[term.b] = column
        return inputs

    def _penalty(self, group, inputs, data, method="forward"):
        """The group's estimates (G * M,), term-major, or its critics' learning loss."""
        critic = self.critic_[group.name]
        fn = critic if method == "forward" else critic.learning_loss
        if len(group.terms) == 1:
            a, b = inputs[group.terms[0].a], inputs[group.terms[0].b]
        else:  # one batched critic: the terms' inputs stacked along the member axis
            a = torch.cat([inputs[term.a] for term in group.terms])
            b = torch.cat([inputs[term.b] for term in group.terms])
        if group.weights is None:
            return fn(a, b)
        return fn(a, b, weights=data[group.weights])

    def _critic_step(self, factors, data, varied):
        """Fit each penalty's variational critics on the current (detached) factors."""
        if self.critic_optimizer_ is None:
            return
        groups = list(self._active_terms(varied, critic_only=True))
        if not groups:
            return
        inputs = self._penalty_inputs(factors, data, groups, detach=True)
        for _ in range(self.critic_steps):
            self.critic_optimizer_.zero_grad(set_to_none=True)
            loss = sum(self._penalty(group, inputs, data, "learning_loss") for group in groups)
            loss.backward()
            self.critic_optimizer_.step()

    def _factual(self, outcomes, t, y):
        """Per-member, per-row factual loss (M, n)."""
        m = outcomes.shape[0]
        fact = outcomes.gather(2, t[None, :, None].expand(m, -1, 1)).squeeze(2)
        if self.outcome == "binary":
            return F.binary_cross_entropy_with_logits(
                fact, y[None].expand_as(fact), reduction="none"), fact
        return (fact - y) ** 2, fact

    @staticmethod
    def _weighted_mean(values, weights):
        return (weights * values).sum(1) / weights.sum(1).clamp_min(1e-12)

    def _training_loss(self, out, data, varied):
        t, y = data["t"], data["y"]
        w = data["wm"].T  # (M, n)
        outcomes, prop = out["outcomes"], out["propensity"]
        paths = out.get("path_outcomes")
        if paths is None:
            per_unit, fact = self._factual(outcomes, t, y)
        else:  # parallel paths: each path's own factual loss, averaged over the paths
            m, p, n, k = paths.shape
            per_unit, fact = self._factual(paths.reshape(m * p, n, k), t, y)
            per_unit = per_unit.view(m, p, n).mean(1)
        weights = w
        if self.importance_weighting and prop is not None:
            weights = w * self._importance_weights(prop.detach(), t)
        loss = self._weighted_mean(per_unit, weights).sum()
        if prop is not None and self.propensity_weight:
            m, n, k = prop.shape
            ce = F.cross_entropy(prop.reshape(m * n, k), t.repeat(m),
                                 reduction="none").view(m, n)
            loss = loss + self.propensity_weight * self._weighted_mean(ce, w).sum()
        groups = list(self._active_terms(varied))
        if groups:
            inputs = self._penalty_inputs(out["factors"], data, groups)
            for group in groups:
                value = self._penalty(group, inputs, data)
                # A dependence is never negative: a negative estimate is critic error,
                # and minimizing it further would only chase the critic.
                counted = value.clamp_min(0.0)
                loss = loss + group.weight * counted.sum()
                # the estimates (history) and what the loss counts of them (clamped per member)
                shape = (len(group.terms), -1)
                for term, v, c in zip(group.terms, value.detach().view(shape).sum(1),
                                      counted.detach().view(shape).sum(1), strict=True):
                    self._penalty_sums[term.name] = self._penalty_sums.get(term.name, 0.0) + v
                    self._penalty_loss_sums[term.name] = (
                        self._penalty_loss_sums.get(term.name, 0.0) + c)
        if self.targeted_weight and prop is not None:
            g = torch.softmax(prop, dim=2)[:, :, 1].clamp(*_PROPENSITY_CLIP)
            tf = t.to(fact.dtype)
            h = tf / g - (1 - tf) / (1 - g)
            perturbed = fact + out["epsilon"][:, None] * h
            loss = loss + self.targeted_weight * self._weighted_mean((y - perturbed) ** 2,
                                                                     w).sum()
        return loss

    def _importance_weights(self, prop_logits, t):
        """CFR-ISW / DR-CFR weights 1 + [P(t)/(1-P(t))] [(1-pi(t|x))/pi(t|x)], mean 1 per
        member."""
        m = prop_logits.shape[0]
        pi = torch.softmax(prop_logits, dim=2)
        pi_t = pi.gather(2, t[None, :, None].expand(m, -1, 1)).squeeze(2)
        pi_t = pi_t.clamp(*_PROPENSITY_CLIP)
        shares = torch.as_tensor(self.arm_shares, dtype=pi_t.dtype, device=pi_t.device)[t]
        w = 1.0 + shares / (1.0 - shares) * (1.0 - pi_t) / pi_t
        return w / w.mean(1, keepdim=True)

    # ------------------------------------------------------------------ evaluation
    def member_validation_loss(self):
        """Each member's factual loss on its own validation rows (M,), on the device (on at
        most ``10 * epoch_size`` rows of them, drawn once per fit)."""
        data = self.data_
        was_training = self.module_.training
        self.module_.eval()
        num = den = 0.0
        with torch.no_grad():
            chunk = eval_chunk(self.device)
            for start in range(0, len(self._valid_rows), chunk):
                sl = self._valid_rows[start:start + chunk]
                outcomes = self.module_.predict_outcomes(data["x"][sl])
                per_unit, _ = self._factual(outcomes, data["t"][sl], data["y"][sl])
                v = data["vm"][sl].T
                num = num + (v * per_unit).sum(1)
                den = den + v.sum(1)
        self.module_.train(was_training)
        return num / den.clamp_min(1e-12)


def _standardize(z, eps=1e-5):
    """Per-dimension batch standardization (no affine part) of a representation, per member.

    Penalties see standardized factors, so the network cannot lower a dependence estimate by
    rescaling a factor (the Gaussian critic of CLUB, an RBF bandwidth, a transport cost).
    """
    return (z - z.mean(-2, keepdim=True)) / (z.std(-2, keepdim=True) + eps)
