"""The one training engine: a skorch ``NeuralNet`` whose loss is composed of optional terms.

All models train here. They differ only in the network's parts (``_nn.CausalNetwork``) and in
which loss terms carry a non-zero weight:

* factual loss on the observed arm (squared error, or log-loss for binary outcomes), weighted
  by the sample weights and, optionally, by DR-CFR's importance weights;
* propensity cross-entropy (``propensity_weight``);
* dependence penalties from ``causalmim.penalties``: a balance penalty between one factor and
  the treatment, mutual-information penalties between factor pairs. Each is a term
  ``(key, a, b, weight)`` of ``penalty_terms``: ``weight * critic_[key](factors[a], factors[b])``,
  with ``b == "t"`` meaning the treatment labels. Penalties with a variational critic (CLUB and
  its relatives) have it fitted by its own optimizer in alternation (``train_step``);
* DragonNet's targeted regularization (``targeted_weight``).

The penalties are registered the skorch way (an extra module ``critic_``, a ``ModuleDict``, with
its own optimizer ``critic_optimizer_``) so that they move to the device and persist with the net.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from torch import nn

# DR-CFR importance weights: the learned propensity is clipped to this range before inverting.
_PROPENSITY_CLIP = (0.1, 0.9)


class CausalNet(NeuralNet):
    """skorch net for the causal model family (internal; built by the estimators in ``fit``).

    ``X`` is a dict with ``x`` (float features), ``t`` (int64 arm index) and ``w`` (float sample
    weights); ``y`` is the float outcome (standardized for continuous outcomes).
    """

    def __init__(self, module, *args, critic=None, penalty_terms=(),
                 critic_optimizer=torch.optim.Adam, critic_lr=1e-3, critic_steps=1,
                 outcome="continuous", propensity_weight=0.0, importance_weighting=False,
                 targeted_weight=0.0, arm_shares=None, **kwargs):
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
        super().__init__(module, *args, **kwargs)

    # ------------------------------------------------------------------ initialization
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
        params = list(self.critic_.parameters())
        self.critic_optimizer_ = (self.critic_optimizer(params, lr=self.critic_lr)
                                  if params else None)
        return self

    # ------------------------------------------------------------------ training
    def train_step(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        self._critic_step(y_pred["factors"], Xi["t"].to(y_pred["outcomes"].device))
        self.optimizer_.zero_grad()
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        loss.backward()
        self.notify("on_grad_computed",
                    named_parameters=TeeGenerator(self.get_all_learnable_params()),
                    X=Xi, y=yi, training=True)
        self.optimizer_.step()
        return {"loss": loss, "y_pred": y_pred}

    def _critic_step(self, factors, t):
        """Fit each penalty's variational critic on the current (detached) factors."""
        if self.critic_optimizer_ is None:
            return
        inputs = {k: _standardize(v.detach()) for k, v in factors.items()}
        inputs["t"] = t
        terms = [(key, a, b) for key, a, b, weight in self.penalty_terms
                 if weight and self.critic_[key].has_critic]
        if not terms or t.unique().numel() < 2:
            return
        for _ in range(self.critic_steps):
            self.critic_optimizer_.zero_grad()
            losses = [self.critic_[key].learning_loss(inputs[a], inputs[b]) for key, a, b in terms]
            torch.stack(losses).sum().backward()
            self.critic_optimizer_.step()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        dev = y_pred["outcomes"].device
        t = X["t"].to(dev)
        w = X["w"].to(dev)
        y = y_true.to(dev)
        outcomes, prop = y_pred["outcomes"], y_pred["propensity"]
        fact = outcomes.gather(1, t[:, None]).squeeze(1)
        if self.outcome == "binary":
            per_unit = F.binary_cross_entropy_with_logits(fact, y, reduction="none")
        else:
            per_unit = (fact - y) ** 2

        weights = w
        if training and self.importance_weighting and prop is not None:
            weights = w * self._importance_weights(prop.detach(), t)
        loss = (weights * per_unit).sum() / weights.sum()

        if not training:  # the validation loss (early stopping) is the factual loss alone
            return loss
        if prop is not None and self.propensity_weight:
            ce = F.cross_entropy(prop, t, reduction="none")
            loss = loss + self.propensity_weight * (w * ce).sum() / w.sum()

        inputs = {k: _standardize(v) for k, v in y_pred["factors"].items()}
        inputs["t"] = t
        if t.unique().numel() > 1:  # a batch with one arm carries no dependence signal
            for key, a, b, weight in self.penalty_terms:
                if weight:
                    value = self.critic_[key](inputs[a], inputs[b])
                    self.history.record_batch(key, value.item())
                    # A dependence is never negative: a negative estimate is critic error,
                    # and minimizing it further would only chase the critic.
                    loss = loss + weight * value.clamp_min(0.0)
        if self.targeted_weight and prop is not None:
            g = torch.softmax(prop, dim=1)[:, 1].clamp(*_PROPENSITY_CLIP)
            tf = t.to(fact.dtype)
            h = tf / g - (1 - tf) / (1 - g)
            perturbed = fact + y_pred["epsilon"] * h
            loss = loss + self.targeted_weight * (w * (y - perturbed) ** 2).sum() / w.sum()
        return loss

    def _importance_weights(self, prop_logits, t):
        """CFR-ISW / DR-CFR weights 1 + [P(t)/(1-P(t))] [(1-pi(t|x))/pi(t|x)], mean 1."""
        pi_t = torch.softmax(prop_logits, dim=1).gather(1, t[:, None]).squeeze(1)
        pi_t = pi_t.clamp(*_PROPENSITY_CLIP)
        shares = torch.as_tensor(self.arm_shares, dtype=pi_t.dtype, device=pi_t.device)[t]
        w = 1.0 + shares / (1.0 - shares) * (1.0 - pi_t) / pi_t
        return w / w.mean()

    def infer(self, x, **fit_params):
        out = super().infer(x, **fit_params)
        out["epsilon"] = self.module_.epsilon
        return out


def _standardize(z, eps=1e-5):
    """Per-dimension batch standardization (no affine part) of a representation.

    Penalties see standardized factors, so the network cannot lower a dependence estimate by
    rescaling a factor (the Gaussian critic of CLUB, an RBF bandwidth, a transport cost).
    """
    return (z - z.mean(0, keepdim=True)) / (z.std(0, keepdim=True) + eps)
