"""Composable torch building blocks for the causal networks.

Every layer carries a leading *member* dimension: a ``MemberLinear`` with ``n_members=M`` holds M
independent weight matrices and maps a (M, n, d_in) batch to (M, n, d_out) in one batched matrix
product. The outcome heads use it (one member per arm), the factor networks use it (one member per
factor), and an ensemble or parallel-path model can use it for its paths, all in one forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"elu": nn.ELU, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MemberLinear(nn.Module):
    """A linear layer with a leading member dimension: (M, n, d_in) -> (M, n, d_out)."""

    def __init__(self, in_features, out_features, n_members=1):
        super().__init__()
        self.in_features, self.out_features, self.n_members = in_features, out_features, n_members
        self.weight = nn.Parameter(torch.empty(n_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)
        # The same init as torch.nn.Linear (kaiming-uniform with a=sqrt(5)), per member.
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x, members=None):
        """``members``: an index of the members to compute (all by default)."""
        if members is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[members], x, self.weight[members])

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, members={self.n_members}"


class MemberMLP(nn.Module):
    """``n_layers`` hidden layers of ``units`` (activation after each), then an optional output
    layer of size ``out_features`` (no activation). All layers carry ``n_members`` members."""

    def __init__(self, in_features, units, n_layers, out_features=None, n_members=1,
                 activation="elu", dropout=0.0):
        super().__init__()
        layers, d = [], in_features
        for _ in range(n_layers):
            layers += [MemberLinear(d, units, n_members), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = units
        if out_features is not None:
            layers.append(MemberLinear(d, out_features, n_members))
            d = out_features
        self.net = nn.Sequential(*layers)
        self.out_features = d

    def forward(self, x, members=None):
        """``members``: an index of the members to compute (all by default)."""
        if members is None:
            return self.net(x)
        for layer in self.net:
            x = layer(x, members) if isinstance(layer, MemberLinear) else layer(x)
        return x


class CausalNetwork(nn.Module):
    """The one network of the model family, configured by its parts.

    ``x -> [shared trunk] -> factor representations -> heads``, for ``n_members`` independent
    members (ensemble members, or parallel paths) computed in one pass:

    * ``factors``: names of the representations (``("phi",)`` for TARNet/CFRNet/DragonNet,
      ``("gamma", "delta", "upsilon")`` for DR-CFR and MIM-DRCFR), one member each of one
      batched MLP.
    * ``trunk_layers``: a shared trunk before the factor networks (multi-task sharing).
    * ``outcome_inputs``: the factors concatenated into the outcome heads (one member per arm).
    * ``propensity_inputs``: the factors concatenated into the propensity head (or None).
    * ``linear_skip``: a linear map of ``x`` added to each arm's outcome.

    Every parameter has a leading dimension ordered member-major (member ``m`` owns the rows
    ``m * k : (m + 1) * k`` of a parameter with ``n_members * k`` rows), so that
    ``p.view(n_members, -1)[m]`` is member ``m``'s share of any parameter ``p``.

    ``forward(x)`` returns a dict: ``factors`` (name -> (M, n, rep_units)), ``outcomes``
    (M, n, K) (raw outputs: the outcome on the standardized scale, or logits), ``propensity``
    (M, n, K) logits or None, and ``epsilon`` (M,) (DragonNet's targeted-regularization
    parameter) or None.
    """

    def __init__(self, n_features, n_arms, *, factors=("phi",), outcome_inputs=("phi",),
                 propensity_inputs=None, trunk_units=0, trunk_layers=0, rep_units=200,
                 rep_layers=2, head_units=100, head_layers=2, activation="elu", dropout=0.0,
                 propensity_layers=0, targeted_epsilon=False, linear_skip=False, n_members=1):
        super().__init__()
        self.factor_names = tuple(factors)
        self.outcome_inputs = tuple(outcome_inputs)
        self.propensity_inputs = tuple(propensity_inputs) if propensity_inputs else None
        self.n_arms = n_arms
        self.n_members = n_members
        n_factors = len(self.factor_names)
        d = n_features
        self.trunk = None
        if trunk_layers:
            self.trunk = MemberMLP(d, trunk_units, trunk_layers, n_members=n_members,
                                   activation=activation, dropout=dropout)
            d = self.trunk.out_features
        self.factors = MemberMLP(d, rep_units, rep_layers, n_members=n_members * n_factors,
                                 activation=activation, dropout=dropout)
        d_out = rep_units * len(self.outcome_inputs)
        self.outcome_heads = MemberMLP(d_out, head_units, head_layers, out_features=1,
                                       n_members=n_members * n_arms, activation=activation,
                                       dropout=dropout)
        self.propensity_head = None
        if self.propensity_inputs:
            d_prop = rep_units * len(self.propensity_inputs)
            self.propensity_head = MemberMLP(d_prop, head_units, propensity_layers,
                                             out_features=n_arms, n_members=n_members,
                                             activation=activation)
        self.epsilon = nn.Parameter(torch.zeros(n_members)) if targeted_epsilon else None
        # A linear path from the inputs to each arm's outcome, added to the head's output: the
        # outcome surface extrapolates linearly beyond the training rows.
        self.skip = MemberLinear(n_features, 1, n_members * n_arms) if linear_skip else None

    def _skip(self, x, outcomes):
        if self.skip is None:
            return outcomes
        m, k, n = self.n_members, self.n_arms, x.shape[0]
        lin = self.skip(x.unsqueeze(0).expand(m * k, -1, -1)).view(m, k, n).transpose(1, 2)
        return outcomes + lin

    def predict_outcomes(self, x):
        """The outcomes alone (M, n, K): only the factors that the outcome heads read, no
        propensity head (prediction)."""
        m, n = self.n_members, x.shape[0]
        h = x.unsqueeze(0).expand(m, -1, -1)
        if self.trunk is not None:
            h = self.trunk(h)
        needed = [self.factor_names.index(f) for f in self.outcome_inputs]
        n_all, n_used = len(self.factor_names), len(needed)
        members = None
        if needed != list(range(n_all)):
            members = (torch.arange(m, device=x.device)[:, None] * n_all
                       + torch.as_tensor(needed, device=x.device)).reshape(-1)
        h = h.unsqueeze(1).expand(-1, n_used, -1, -1).reshape(m * n_used, n, -1)
        reps = self.factors(h, members).view(m, n_used, n, -1)
        z = reps.permute(0, 2, 1, 3).reshape(m, n, -1)
        z = z.unsqueeze(1).expand(-1, self.n_arms, -1, -1).reshape(m * self.n_arms, n, -1)
        return self._skip(x, self.outcome_heads(z).view(m, self.n_arms, n).transpose(1, 2))

    def forward(self, x):
        m, n = self.n_members, x.shape[0]
        h = x.unsqueeze(0).expand(m, -1, -1)
        if self.trunk is not None:
            h = self.trunk(h)
        n_factors = len(self.factor_names)
        h = h.unsqueeze(1).expand(-1, n_factors, -1, -1).reshape(m * n_factors, n, -1)
        reps = self.factors(h).view(m, n_factors, n, -1)
        factors = dict(zip(self.factor_names, reps.unbind(1), strict=True))
        z = torch.cat([factors[f] for f in self.outcome_inputs], dim=-1)
        z = z.unsqueeze(1).expand(-1, self.n_arms, -1, -1).reshape(m * self.n_arms, n, -1)
        outcomes = self._skip(x, self.outcome_heads(z).view(m, self.n_arms, n).transpose(1, 2))
        out = {"factors": factors, "outcomes": outcomes, "propensity": None,
               "epsilon": self.epsilon}
        if self.propensity_head is not None:
            zp = torch.cat([factors[f] for f in self.propensity_inputs], dim=-1)
            out["propensity"] = self.propensity_head(zp)
        return out


class ParallelNetwork(nn.Module):
    """Parallel representation paths of one shared network (``ParallelMIMRegressor``).

    ``x -> [shared trunk] -> condition_k(h) -> shared representation network -> path k``,
    then per-path outcome heads (one per arm). ``conditioning`` says how path ``k`` is told
    apart (its only difference from the other paths):

    * ``"prefix"``: ``concat(h, prefix_k)`` with a learnable vector of ``prefix_units``. Into the
      first layer of the shared network this is a per-path bias only.
    * ``"film"``: ``h * (1 + scale_k) + shift_k`` with a learnable scale and shift per feature of
      ``h`` (feature-wise modulation, Perez et al., AAAI 2018), so that a path can weigh, mute
      or flip the features it reads (``prefix_units`` unused).

    All paths of all ``n_members`` members are computed in one pass (the paths ride along the
    rows of one batched product).

    ``forward(x)`` returns the dict of :class:`CausalNetwork` with ``factors`` holding each
    path's representation (``"path0"``, ...), ``outcomes`` the average over the paths (what
    the model predicts), and ``path_outcomes`` (M, P, n, K), each path's own outcomes, which
    the engine supervises path by path.
    """

    def __init__(self, n_features, n_arms, *, n_paths=4, prefix_units=8, trunk_units=100,
                 trunk_layers=1, rep_units=100, rep_layers=2, head_units=100, head_layers=2,
                 activation="elu", dropout=0.0, n_members=1, outcome_inputs=None,
                 conditioning="prefix"):
        super().__init__()
        if conditioning not in ("prefix", "film"):
            raise ValueError(f"conditioning must be 'prefix' or 'film', got {conditioning!r}")
        self.n_arms, self.n_members, self.n_paths = n_arms, n_members, n_paths
        self.conditioning = conditioning
        self.factor_names = tuple(f"path{k}" for k in range(n_paths))
        self.outcome_inputs = self.factor_names
        self.propensity_inputs = None
        d = n_features
        self.trunk = None
        if trunk_layers:
            self.trunk = MemberMLP(d, trunk_units, trunk_layers, n_members=n_members,
                                   activation=activation, dropout=dropout)
            d = trunk_units
        if conditioning == "prefix":
            self.prefix = nn.Parameter(torch.randn(n_members, n_paths, prefix_units))
            d_in = d + prefix_units
        else:
            # Scale and shift start at N(0, 0.5^2) per feature: distinct paths from the start.
            self.film_scale = nn.Parameter(0.5 * torch.randn(n_members, n_paths, 1, d))
            self.film_shift = nn.Parameter(0.5 * torch.randn(n_members, n_paths, 1, d))
            d_in = d
        self.paths = MemberMLP(d_in, rep_units, rep_layers, n_members=n_members,
                               activation=activation, dropout=dropout)
        self.outcome_heads = MemberMLP(rep_units, head_units, head_layers, out_features=1,
                                       n_members=n_members * n_paths * n_arms,
                                       activation=activation, dropout=dropout)
        self.epsilon = None

    def forward(self, x):
        m, p, n, k = self.n_members, self.n_paths, x.shape[0], self.n_arms
        h = x.unsqueeze(0).expand(m, -1, -1)
        if self.trunk is not None:
            h = self.trunk(h)
        if self.conditioning == "prefix":
            prefix = self.prefix[:, :, None, :].expand(-1, -1, n, -1)
            h = torch.cat([h.unsqueeze(1).expand(-1, p, -1, -1), prefix], dim=-1)
        else:
            h = h.unsqueeze(1) * (1.0 + self.film_scale) + self.film_shift
        reps = self.paths(h.reshape(m, p * n, -1)).view(m, p, n, -1)
        z = reps.unsqueeze(2).expand(-1, -1, k, -1, -1).reshape(m * p * k, n, -1)
        path_outcomes = self.outcome_heads(z).view(m, p, k, n).transpose(2, 3)
        return {"factors": dict(zip(self.factor_names, reps.unbind(1), strict=True)),
                "outcomes": path_outcomes.mean(1), "path_outcomes": path_outcomes,
                "propensity": None, "epsilon": None}

    def predict_outcomes(self, x):
        """The outcomes averaged over the paths (M, n, K)."""
        return self.forward(x)["outcomes"]
