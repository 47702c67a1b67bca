"""Parameters of the estimators as data: shared docs, constraints and component routing.

Every estimator declares its parameters in ``__init__`` (no ``**kwargs``, as scikit-learn
requires) and their allowed values in ``_parameter_constraints`` (scikit-learn's
``sklearn.utils._param_validation`` vocabulary), checked at the start of ``fit``.

A penalty's own constructor parameters travel in one dict parameter named after the penalty
(``mi_penalty_params``, ``balance_penalty_params``); ``set_params`` also takes them one by one
with the penalty's name as prefix (``mi_penalty__hidden=64``), as in a scikit-learn
``Pipeline``, so that ``GridSearchCV`` and the tuner can search them.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._nn import ACTIVATIONS

#: Old route prefixes (before 0.2) and the parameter they configure now.
DEPRECATED_ROUTES = {"critic": "mi_penalty", "balance": "balance_penalty"}


def _penalty_constraint():
    from .penalties import PENALTIES

    # A registry name, a Penalty class, or an instance (anything with ``forward``).
    return [StrOptions(set(PENALTIES)), type, HasMethods(["forward"])]


def positive_int():
    return Interval(Integral, 1, None, closed="left")


def non_negative(kind=Real):
    return Interval(kind, 0, None, closed="left")


COMMON_CONSTRAINTS = {
    "rep_units": [positive_int()],
    "rep_layers": [positive_int()],
    "head_units": [positive_int()],
    "head_layers": [non_negative(Integral)],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [non_negative()],
    "batch_size": [positive_int()],
    "epoch_size": [positive_int(), None],
    "max_epochs": [positive_int()],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "patience": [positive_int()],
    "ema_decay": [Interval(Real, 0, 1, closed="left")],
    "outcome": [StrOptions({"continuous", "binary"})],
    "control": "no_validation",
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "n_ensemble": [positive_int()],
    "bootstrap": ["boolean"],
    "verbose": ["verbose"],
    "callbacks": [list, tuple, None],
    "fairness_penalty": ["no_validation"],  # replaced below (needs the penalty registry)
    "fairness_penalty_params": [dict, None],
    "fairness_weight": [non_negative()],
    "critic_lr": [Interval(Real, 0, None, closed="neither")],
    "critic_steps": [positive_int()],
}


def penalty_constraints(name):
    """Constraints of a penalty parameter ``name`` and of its ``name + "_params"`` dict."""
    return {name: _penalty_constraint(), f"{name}_params": [dict, None]}


COMMON_CONSTRAINTS.update(penalty_constraints("fairness_penalty"))


COMMON_DOC = """
    rep_units : int
        Width of each representation (factor) network and of its output.
    rep_layers : int
        Hidden layers of each representation network (at least 1).
    head_units, head_layers : int
        Width and depth of each outcome head (one head per arm); 0 layers is a linear head.
    activation : {"elu", "relu", "tanh", "gelu"}
    dropout : float in [0, 1)
        Dropout rate in the hidden layers.
    learning_rate : float > 0
        Adam learning rate of the network. Training that diverges (a non-finite loss) stops
        with a ``TrainingDivergedError`` that suggests a smaller value.
    weight_decay : float
        L2 penalty (Adam's ``weight_decay``).
    batch_size : int
    epoch_size : int or None
        Rows per epoch. With more training rows than this, an epoch is the next
        ``epoch_size`` rows of an endless shuffled stream, and the validation loss is computed
        on at most ``10 * epoch_size`` validation rows drawn once: early stopping then checks
        at a fixed budget of steps however large the data (``patience`` counts these epochs).
        None: every epoch is a full pass.
    max_epochs : int
        Upper bound on the passes over the data; early stopping usually ends sooner.
    validation_fraction : float in [0, 1)
        Share of the training data held out (stratified by arm) for early stopping on the factual
        validation loss; 0 disables early stopping.
    patience : int
        Epochs without improvement of the validation loss before stopping; the best epoch's
        weights are restored.
    ema_decay : float in [0, 1)
        Weight averaging: with a value such as 0.99 the network keeps an exponential moving
        average of its weights over the training steps (decay ``min(ema_decay,
        (1 + k) / (10 + k))`` at step k), and early stopping validates and keeps the averaged
        weights; the model ends with the best epoch's averaged weights (the last epoch's
        without early stopping). 0 (the default) switches it off.
    outcome : {"continuous", "binary"}
        ``"binary"`` trains the outcome heads with log-loss on 0/1 outcomes (conversions); effects
        are then differences of probabilities.
    control : label, optional
        The control arm; by default the first sorted arm label.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device
        Where to train; ``"auto"`` takes the GPU when one is there. An unavailable device is a
        ValueError at the start of ``fit`` that lists the devices this machine has.
    random_state : int, RandomState or None
        Seeds weight initialization, batching, the validation split and penalty sampling. The
        same integer gives the same predictions on the CPU; the global torch and numpy random
        states are left untouched.
    n_ensemble : int
        Members of the network: M independently initialized copies trained together, in one
        forward and one backward pass per batch, each with its own validation split, its own
        early stopping (it keeps its best epoch's weights) and its own penalty critics. Every
        prediction averages the members; averaging cuts the variance of the effect estimates.
    bootstrap : bool
        Give each member its own Poisson(1) resampling weights of the training rows, so that
        the members form a bagged ensemble; needed by the ``*_interval`` methods.
    verbose : int
        0 silent, 1 a table per epoch, 2 also a progress bar per epoch.
    callbacks : list of skorch callbacks, optional
        Extra callbacks for the internal skorch net (e.g. Optuna's ``SkorchPruningCallback``).
    fairness_penalty : str, class or Penalty instance
        Dependence measure between the representation the outcome heads read and the
        sensitive attribute ``s`` of ``fit(..., sensitive=s)``; default ``"iwclub"``
        (importance-weighted CLUB, with weights that give every group of ``s`` an equal share).
    fairness_penalty_params : dict, optional
        Its constructor parameters (``fairness_penalty__<name>`` in ``set_params``).
    fairness_weight : float
        Weight of the fairness penalty; 0 (the default) switches it off.
    critic_lr : float
        Learning rate of the critics' own Adam optimizer: the variational critics of the
        penalties that have one (vCLUB-S, CLUB, iwclub; the MI, balance or fairness penalty).
        A critic that learns too slowly lags the network and its estimate says little;
        ``1e-2`` with ``critic_steps=5`` follows it more closely, at a cost in time.
    critic_steps : int
        Critic updates per network update.
"""

#: Shared blocks of preset docstrings, by their ``{name}`` in the docstring.
DOC_BLOCKS = {
    "mi": """    mi_weight : float
        Weight of the summed pairwise MI estimates.
""",
}

ATTRS_DOC = """
    Attributes
    ----------
    classes_ : ndarray
        The arm labels, control first.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    net_ : skorch.NeuralNet
        The trained internal net; its module holds all ``n_ensemble`` members.
    history_ : skorch.History
        ``net_.history``: per epoch, ``train_loss`` and ``valid_loss`` (means over members),
        ``valid_losses`` (one per member) and each penalty term's mean estimate.
    best_epochs_ : ndarray of shape (n_ensemble,)
        The epoch whose weights each member kept (the last epoch without early stopping).
"""


def split_routed(est, params):
    """Split ``set_params`` arguments into plain ones and routed penalty parameters.

    Returns ``(plain, routed)`` with ``routed`` mapping a penalty parameter name (e.g.
    ``"mi_penalty"``) to the dict of its constructor parameters to update.
    """
    names = est._get_param_names()
    plain, routed = {}, {}
    for key, value in params.items():
        if "__" not in key:
            plain[key] = value
            continue
        prefix, sub = key.split("__", 1)
        if prefix in DEPRECATED_ROUTES and f"{DEPRECATED_ROUTES[prefix]}_params" in names:
            new = DEPRECATED_ROUTES[prefix]
            warnings.warn(f"The route {prefix}__{sub} is renamed {new}__{sub}; the old name "
                          "will be removed in causalmim 0.3.", FutureWarning, stacklevel=3)
            prefix = new
        if f"{prefix}_params" not in names:
            routes = sorted(n[:-len("_params")] + "__<param>" for n in names
                            if n.endswith("_penalty_params"))
            raise ValueError(
                f"Invalid parameter {key!r} for estimator {type(est).__name__}. Valid "
                f"parameters are {sorted(names)}; routed penalty parameters: "
                f"{', '.join(routes) or 'none'}.")
        routed.setdefault(prefix, {})[sub] = value
    return plain, routed
