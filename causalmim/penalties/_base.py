"""The :class:`Penalty` base class, input validation and the docstring helper."""

from __future__ import annotations

import inspect
import numbers

import torch
from torch import nn

_COMMON_PARAMS = """dim_a : int, optional
        Number of columns of ``a``. When the sizes of the inputs are given, a critic's parameters
        are built in ``__init__`` (so an optimizer can be built right after construction);
        otherwise they are built lazily on the first call, from the inputs. Inputs of other sizes
        raise a ValueError.
    dim_b : int, optional
        Number of columns of a float ``b`` (a continuous second variable). Give ``dim_b`` or
        ``n_classes``, not both.
    n_classes : int, optional
        Number of groups when ``b`` is a label vector (labels ``0..n_classes-1``). Inferred
        lazily as ``max(label) + 1`` on the first call when not given."""


def _doc(obj=None, /, **parts):
    """Fill the ``%(name)s`` placeholders of a docstring with shared paragraphs.

    ``parts`` maps names to paragraphs; ``%(common_params)s``, the parameters every penalty
    takes, is filled last, so a part may contain it. Use as ``@_doc`` or
    ``@_doc(name=text, ...)``, on a class or a function.
    """
    if obj is None:
        return lambda o: _doc(o, **parts)
    if obj.__doc__:
        for key, text in {**parts, "common_params": _COMMON_PARAMS}.items():
            obj.__doc__ = obj.__doc__.replace(f"%({key})s", text)
    return obj


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _as_tensor(x, name):
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{name} must be a torch.Tensor or an array-like of numbers; got {type(x).__name__}."
        ) from exc


def _check_a(a):
    a = _as_tensor(a, "a")
    if a.ndim != 2:
        raise ValueError(
            f"a must be a 2-D tensor of shape (n_samples, dim_a); got {a.ndim} dimension(s) "
            f"with shape {tuple(a.shape)}. Reshape a single feature with a.reshape(-1, 1)."
        )
    if not torch.is_floating_point(a):
        a = a.to(torch.get_default_dtype())
    if a.shape[0] < 2:
        raise ValueError(
            f"a dependence measure needs a batch of at least 2 samples; got {a.shape[0]}. "
            "Use a larger batch."
        )
    if not torch.isfinite(a).all():
        raise ValueError(
            "a contains NaN or infinite values; check the representation (e.g. a diverging "
            "network or a missing-value placeholder) before computing the penalty."
        )
    return a


def _check_weights(weights, n, ref):
    """Return per-sample weights as a 1-D tensor normalized to sum 1."""
    w = _as_tensor(weights, "weights")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(
            f"weights must be a 1-D tensor with one weight per sample ({n}); got shape "
            f"{tuple(w.shape)}."
        )
    w = w.to(device=ref.device, dtype=ref.dtype)
    if not torch.isfinite(w).all():
        raise ValueError("weights contain NaN or infinite values; pass finite weights.")
    if (w < 0).any():
        raise ValueError("weights must be non-negative; got a negative weight.")
    total = w.sum()
    if total <= 0:
        raise ValueError("weights sum to 0; pass at least one positive weight.")
    return w / total


class _Inputs:
    """Validated inputs: ``a`` (n, d_a) float; ``b`` (n, d_b) float or ``labels`` (n,) long."""

    __slots__ = ("a", "b", "labels")

    def __init__(self, a, b, labels):
        self.a = a
        self.b = b
        self.labels = labels

    @property
    def is_labels(self):
        return self.labels is not None


def _validate(a, b):
    """Check ``a`` and ``b`` and split ``b`` into a float batch or a label vector."""
    a = _check_a(a)
    b = _as_tensor(b, "b")
    n = a.shape[0]
    if b.ndim not in (1, 2):
        raise ValueError(
            f"b must be a 2-D float tensor of shape (n_samples, dim_b) or a 1-D vector of group "
            f"labels of shape (n_samples,); got {b.ndim} dimension(s) with shape "
            f"{tuple(b.shape)}."
        )
    if b.shape[0] != n:
        raise ValueError(
            f"a and b must have the same number of samples (rows); got {n} and {b.shape[0]}. "
            "Pass matching batches."
        )
    if b.ndim == 2:
        if not torch.is_floating_point(b):
            b = b.to(a.dtype)
        if not torch.isfinite(b).all():
            raise ValueError(
                "b contains NaN or infinite values; pass finite values (impute or drop the "
                "rows first)."
            )
        if b.device != a.device:
            b = b.to(a.device)
        return _Inputs(a, b, None)
    # 1-D: group labels.
    if b.dtype == torch.bool:
        labels = b.long()
    elif torch.is_floating_point(b):
        if not torch.isfinite(b).all():
            raise ValueError(
                "b contains NaN or infinite values; a 1-D b must hold group labels 0..K-1."
            )
        if not torch.equal(b, torch.round(b)):
            raise ValueError(
                "a 1-D b is read as a vector of group labels 0..K-1, but it holds non-integer "
                "values. Pass a continuous variable as a 2-D tensor of shape (n_samples, 1), "
                "e.g. b.reshape(-1, 1)."
            )
        labels = b.long()
    elif b.is_complex():
        raise ValueError("b must be real-valued; got a complex tensor.")
    else:
        labels = b.long()
    if (labels < 0).any():
        raise ValueError(
            "group labels must be the integers 0..K-1; got a negative label. Encode the groups "
            "first (e.g. with sklearn.preprocessing.LabelEncoder)."
        )
    labels = labels.to(a.device)
    if torch.unique(labels).numel() < 2:
        raise ValueError(
            "the label vector b holds a single group; a dependence measure between a and group "
            "labels needs at least two groups in the batch. Use larger or stratified batches."
        )
    return _Inputs(a, None, labels)


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------


@_doc
class Penalty(nn.Module):
    """Base class of the dependence penalties.

    Subclasses set the class attributes ``bound`` (``"upper"``, ``"lower"`` or ``"none"``) and
    ``_critic`` (whether the measure has a trainable critic), and implement ``_forward`` (and
    ``_learning_loss`` and ``_build`` for critic-based measures). The public methods validate
    the inputs and call these private hooks.

    Parameters
    ----------
    %(common_params)s
    """

    bound = "none"
    _critic = False
    #: defaults of :func:`fit_critic` for this penalty's critic
    _fit_defaults = {"lr": 5e-3, "patience": 50}
    #: whether the measure accepts a float 2-D ``b`` (False: group-based, labels only)
    _accepts_continuous = True

    def __init__(self, dim_a=None, dim_b=None, n_classes=None):
        super().__init__()
        self.dim_a = dim_a
        self.dim_b = dim_b
        self.n_classes = n_classes
        for name, value in (("dim_a", dim_a), ("dim_b", dim_b), ("n_classes", n_classes)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int or None; got {value!r}.")
        if n_classes is not None and n_classes < 2:
            raise ValueError(f"n_classes must be at least 2; got {n_classes}.")
        if dim_b is not None and n_classes is not None:
            raise ValueError(
                "give dim_b (a continuous b) or n_classes (a label vector b), not both."
            )
        # Fitted state (scikit-learn style trailing underscore).
        self.dim_a_ = None if dim_a is None else int(dim_a)
        self.dim_b_ = None if dim_b is None else int(dim_b)
        self.n_classes_ = None if n_classes is None else int(n_classes)
        self.built_ = False

    # -- introspection --------------------------------------------------------------------

    @property
    def has_critic(self):
        """bool: whether the measure has a trainable critic (and a ``learning_loss``)."""
        return type(self)._critic

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def get_params(self, deep=False):
        """Constructor arguments of this penalty, as a dict (scikit-learn style).

        ``deep`` is accepted for scikit-learn's signature and ignored: a penalty holds no
        nested estimators.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())

    # -- public API -------------------------------------------------------------------------

    def forward(self, a, b):
        """Estimate the dependence between ``a`` and ``b``.

        Parameters
        ----------
        a : torch.Tensor of shape (n_samples, dim_a)
            A batch of representations.
        b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
            A second float batch, or a vector of group labels ``0..K-1``.

        Returns
        -------
        torch.Tensor
            A differentiable scalar.
        """
        x = self._prepare(a, b)
        return self._forward(x)

    def learning_loss(self, a, b):
        """The critic's loss to minimize, or None for a closed-form measure.

        Parameters
        ----------
        a : torch.Tensor of shape (n_samples, dim_a)
            A batch of representations (detach it when fitting the critic alone).
        b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
            A second float batch, or a vector of group labels.

        Returns
        -------
        torch.Tensor or None
        """
        x = self._prepare(a, b)
        if not self.has_critic:
            return None
        return self._learning_loss(x)

    def build(self, a, b):
        """Build the critic's parameters for inputs like ``(a, b)`` if not built yet.

        Returns
        -------
        self
        """
        self._prepare(a, b)
        return self

    # -- validation and lazy building -----------------------------------------------------

    def _prepare(self, a, b):
        x = _validate(a, b)
        if not self._accepts_continuous and not x.is_labels:
            raise ValueError(
                f"{type(self).__name__} compares the groups of a that a label vector b defines; "
                f"b must be a 1-D vector of group labels 0..K-1, got a 2-D float b of shape "
                f"{tuple(x.b.shape)}."
            )
        d_a = x.a.shape[1]
        if self.dim_a_ is not None and d_a != self.dim_a_:
            raise ValueError(
                f"a has {d_a} columns but this {type(self).__name__} was built for "
                f"dim_a={self.dim_a_}. Pass inputs of the built size or build a new penalty."
            )
        if x.is_labels:
            if self.dim_b_ is not None and self.has_critic:
                raise ValueError(
                    f"b is a label vector but this {type(self).__name__} was built for a "
                    f"continuous b with dim_b={self.dim_b_}; pass a 2-D float b or build a new "
                    "penalty with n_classes."
                )
            k = int(x.labels.max().item()) + 1
            if self.n_classes_ is not None and k > self.n_classes_:
                raise ValueError(
                    f"b holds label {k - 1} but this {type(self).__name__} was built for "
                    f"n_classes={self.n_classes_} (labels 0..{self.n_classes_ - 1}). Pass "
                    "n_classes=K (the number of groups) at construction."
                )
        else:
            if self.n_classes_ is not None and self.has_critic:
                raise ValueError(
                    f"b is a 2-D float tensor but this {type(self).__name__} was built for a "
                    f"label vector with n_classes={self.n_classes_}; pass a 1-D label vector or "
                    "build a new penalty with dim_b."
                )
            d_b = x.b.shape[1]
            if self.dim_b_ is not None and d_b != self.dim_b_:
                raise ValueError(
                    f"b has {d_b} columns but this {type(self).__name__} was built for "
                    f"dim_b={self.dim_b_}. Pass inputs of the built size or build a new penalty."
                )
        if not self.built_ and self.has_critic:
            self.dim_a_ = d_a
            if x.is_labels:
                if self.n_classes_ is None:
                    self.n_classes_ = max(int(x.labels.max().item()) + 1, 2)
            elif self.dim_b_ is None:
                self.dim_b_ = x.b.shape[1]
            self._build()
            self.to(device=x.a.device, dtype=x.a.dtype)
            self.built_ = True
        if self.has_critic:
            p = next(self.parameters(), None)
            if p is not None and (x.a.dtype != p.dtype):
                x.a = x.a.to(p.dtype)
                if x.b is not None:
                    x.b = x.b.to(p.dtype)
        return x

    def _maybe_build_now(self):
        """Build the critic in ``__init__`` when the sizes are known."""
        if not self.has_critic:
            return
        if self.dim_a is not None and (self.dim_b is not None or self.n_classes is not None):
            self._build()
            self.built_ = True

    # -- hooks ----------------------------------------------------------------------------

    def _build(self):  # pragma: no cover - overridden by critic-based penalties
        pass

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _learning_loss(self, x):  # pragma: no cover - overridden by critic-based penalties
        return None
