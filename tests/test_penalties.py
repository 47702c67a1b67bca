"""Tests of causalmim.penalties: the registry, the interface, accuracy on Gaussian data, inputs."""

import doctest
import importlib
import inspect
import math
import pkgutil

import pytest
import torch

import causalmim.penalties as pen_mod
from causalmim.penalties import (
    CLUB,
    IWCLUB,
    MMD,
    PENALTIES,
    DistanceCorrelation,
    Penalty,
    VCLUBSample,
    Wasserstein,
    fit_critic,
    get_penalty,
)

ALL = sorted(PENALTIES)
CRITIC = [n for n in ALL if PENALTIES[n]._critic]
CLOSED = [n for n in ALL if not PENALTIES[n]._critic]
GROUP = ["mmd", "mmd_linear", "mmd_rbf", "wasserstein"]
CONTINUOUS = [n for n in ALL if n not in GROUP]
UPPER = ["club", "vclub_s", "l1out", "iwclub"]
LOWER = ["mine", "nwj", "infonce"]
# The CLUB family shares one variational q: fit it once, load it into each.
CLUB_FAMILY = UPPER

# Small critics for the interface tests; the accuracy tests use the defaults.
TINY = {n: {"hidden": 8} for n in CRITIC}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def gaussian(n, d, rho, seed):
    """Jointly Gaussian (a, b): b = rho a + sqrt(1 - rho^2) noise, per coordinate."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g)
    b = rho * a + math.sqrt(1.0 - rho**2) * torch.randn(n, d, generator=g)
    return a, b


def true_mi(d, rho):
    return -0.5 * d * math.log(1.0 - rho**2)


def club_population(d, rho):
    return d * rho**2 / (1.0 - rho**2)


def two_groups(n, d, shift, seed):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) % 2
    a = torch.randn(n, d, generator=g) + shift * t[:, None].float()
    return a, t


def small_inputs(name, n=16, d_a=3, d_b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d_a, generator=g)
    if name in GROUP:
        b = torch.arange(n) % 2
    else:
        b = torch.randn(n, d_b, generator=g)
    return a, b


# --------------------------------------------------------------------------------------------
# Registry and construction
# --------------------------------------------------------------------------------------------


def test_registry_names():
    assert set(PENALTIES) == {
        "club",
        "vclub_s",
        "l1out",
        "iwclub",
        "mine",
        "nwj",
        "infonce",
        "hsic",
        "dcor",
        "mmd",
        "mmd_linear",
        "mmd_rbf",
        "wasserstein",
    }


@pytest.mark.parametrize("name", ALL, ids=ALL)
def test_registry_classes(name):
    cls = PENALTIES[name]
    assert issubclass(cls, Penalty) and issubclass(cls, torch.nn.Module)
    assert cls.bound in {"upper", "lower", "none"}
    expected_bound = "upper" if name in UPPER else "lower" if name in LOWER else "none"
    assert cls.bound == expected_bound
    assert cls().has_critic is (name in CRITIC)


def test_get_penalty_unknown_name_lists_valid_names_sorted():
    with pytest.raises(ValueError) as err:
        get_penalty("clubb")
    msg = str(err.value)
    assert "clubb" in msg
    assert ", ".join(sorted(PENALTIES)) in msg


@pytest.mark.parametrize("name", ALL, ids=ALL)
def test_get_penalty_name_class_instance(name):
    by_name = get_penalty(name)
    assert type(by_name) is PENALTIES[name]
    by_class = get_penalty(PENALTIES[name])
    assert type(by_class) is PENALTIES[name]
    assert get_penalty(by_name) is by_name
    with pytest.raises(ValueError, match="instance"):
        get_penalty(by_name, dim_a=3)


def test_get_penalty_rejects_other_types():
    with pytest.raises(TypeError):
        get_penalty(3)
    with pytest.raises(TypeError):
        get_penalty(torch.nn.Linear)


def test_aliases_are_presets():
    assert get_penalty("mmd_linear").kernel == "linear"
    assert get_penalty("mmd_rbf").kernel == "rbf"
    assert get_penalty("mmd").kernel == "rbf"
    with pytest.raises(ValueError, match="kernel"):
        MMD(kernel="poly")


@pytest.mark.parametrize("name", ALL, ids=ALL)
def test_constructor_args_are_attributes(name):
    cls = PENALTIES[name]
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert {"dim_a", "dim_b", "n_classes"} <= set(params)
    obj = cls()
    for p in params:
        assert hasattr(obj, p), p
    assert set(obj.get_params()) == set(params)
    if name in CRITIC:
        assert "hidden" in params
        assert get_penalty(name, hidden=16).hidden == 16


@pytest.mark.parametrize("name", CRITIC, ids=CRITIC)
def test_lazy_build_without_sizes(name):
    p = get_penalty(name, **TINY[name])
    assert len(list(p.parameters())) == 0
    a, b = small_inputs(name)
    value = p(a, b)
    assert value.ndim == 0 and torch.isfinite(value)
    assert len(list(p.parameters())) > 0
    assert p.dim_a_ == 3 and p.dim_b_ == 2
    assert p.dim_a is None  # the constructor argument is left untouched


@pytest.mark.parametrize("name", CRITIC, ids=CRITIC)
@pytest.mark.parametrize("labels", [False, True], ids=["float_b", "labels"])
def test_sizes_given_build_parameters_in_init(name, labels):
    size = {"n_classes": 3} if labels else {"dim_b": 2}
    p = get_penalty(name, dim_a=4, **size, **TINY[name])
    params = list(p.parameters())
    assert len(params) > 0
    opt = torch.optim.Adam(p.parameters(), lr=1e-3)  # the engine builds it right away
    g = torch.Generator().manual_seed(0)
    a = torch.randn(32, 4, generator=g)
    b = torch.arange(32) % 3 if labels else torch.randn(32, 2, generator=g)
    loss = p.learning_loss(a, b)
    opt.zero_grad()
    loss.backward()
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in params)
    opt.step()
    assert list(p.parameters())[0] is params[0]  # no rebuild on the first call
    assert torch.isfinite(p(a, b))


@pytest.mark.parametrize("name", CLOSED, ids=CLOSED)
def test_closed_form_has_no_learning_loss(name):
    p = get_penalty(name)
    a, b = small_inputs(name)
    assert p.learning_loss(a, b) is None
    assert fit_critic(p, a, b) == []
    assert len(list(p.parameters())) == 0


def test_both_dim_b_and_n_classes_rejected():
    with pytest.raises(ValueError, match="not both"):
        CLUB(dim_a=2, dim_b=2, n_classes=2)


def test_docstring_examples():
    # The package and each of its modules (the classes live in the submodules).
    modules = [pen_mod] + [
        importlib.import_module(f"{pen_mod.__name__}.{info.name}")
        for info in pkgutil.iter_modules(pen_mod.__path__)
    ]
    results = [doctest.testmod(m, optionflags=doctest.ELLIPSIS, verbose=False) for m in modules]
    assert sum(r.attempted for r in results) >= 5
    assert sum(r.failed for r in results) == 0


# --------------------------------------------------------------------------------------------
# Accuracy on jointly Gaussian data
# --------------------------------------------------------------------------------------------

D = 5
RHOS = (0.0, 0.5, 0.8)
N_TRAIN = 1024
N_EVAL = 512
N_EVAL_BATCHES = 4


def _eval_batches(d, rho, seed):
    return [gaussian(N_EVAL, d, rho, seed + 1000 + k) for k in range(N_EVAL_BATCHES)]


def _fit_club_q(d, rho, seed):
    a, b = gaussian(N_TRAIN, d, rho, seed)
    q = CLUB()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fit_critic(q, a, b)
    return q


def _mean_estimate(p, batches):
    with torch.no_grad():
        return sum(float(p(a, b)) for a, b in batches) / len(batches)


@pytest.fixture(scope="module")
def gaussian_estimates():
    """Every measure's mean estimate on fresh batches, for d=5 and each rho (fit once)."""
    out = {}
    for i, rho in enumerate(RHOS):
        seed = 10 * i
        batches = _eval_batches(D, rho, seed)
        q = _fit_club_q(D, rho, seed)
        for name in CLUB_FAMILY:
            p = get_penalty(name)
            p.build(*batches[0])
            p.load_state_dict(q.state_dict())
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                out[name, rho] = _mean_estimate(p, batches)
        a, b = gaussian(N_TRAIN, D, rho, seed)
        for name in LOWER:
            p = get_penalty(name)
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                fit_critic(p, a, b, batch_size=256)
            out[name, rho] = _mean_estimate(p, batches)
        for name in CLOSED:
            if name in GROUP:
                continue
            out[name, rho] = _mean_estimate(get_penalty(name), batches)
    return out


@pytest.mark.parametrize(
    "d, rho",
    [(5, 0.8), (5, 0.5), (20, 0.9), (20, 0.5)],
    ids=["d5-r0.8", "d5-r0.5", "d20-r0.9", "d20-r0.5"],
)
@pytest.mark.parametrize("name", ["club", "vclub_s"], ids=["club", "vclub_s"])
def test_club_matches_population_value(name, d, rho):
    seed = 7
    q = _fit_club_q(d, rho, seed)
    p = get_penalty(name)
    batches = _eval_batches(d, rho, seed)
    p.build(*batches[0])
    p.load_state_dict(q.state_dict())
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        est = _mean_estimate(p, batches)
    target = club_population(d, rho)
    assert abs(est - target) <= 0.15 * target, (est, target)


def test_club_fitted_on_one_batch_of_512():
    """fit_critic's defaults hold on a single batch of 512, evaluated in-sample."""
    a, b = gaussian(512, 5, 0.8, seed=3)
    p = CLUB()
    with torch.random.fork_rng():
        torch.manual_seed(3)
        fit_critic(p, a, b)
    target = club_population(5, 0.8)
    with torch.no_grad():
        assert abs(float(p(a, b)) - target) <= 0.15 * target


@pytest.mark.parametrize("name", ["club", "l1out"], ids=["club", "l1out"])
@pytest.mark.parametrize("in_sample", [True, False], ids=["in-sample", "fresh"])
def test_critic_near_zero_on_independent_high_dim_samples(name, in_sample):
    """The ridge initialization keeps noise-only coefficients near 0 (d=20, 512 rows)."""
    a, b = gaussian(512, 20, 0.0, seed=4)
    q = CLUB()
    with torch.random.fork_rng():
        torch.manual_seed(4)
        fit_critic(q, a, b)
    p = get_penalty(name)
    p.build(a, b)
    p.load_state_dict(q.state_dict())
    if not in_sample:
        a, b = gaussian(512, 20, 0.0, seed=5)
    with torch.no_grad():
        assert abs(float(p(a, b))) < 0.1


@pytest.mark.parametrize("rho", RHOS, ids=[f"rho{r}" for r in RHOS])
@pytest.mark.parametrize("name", UPPER, ids=UPPER)
def test_upper_bounds_not_below_true_mi(gaussian_estimates, name, rho):
    mi = true_mi(D, rho)
    assert gaussian_estimates[name, rho] >= mi - (0.1 + 0.05 * mi)


@pytest.mark.parametrize("rho", RHOS, ids=[f"rho{r}" for r in RHOS])
@pytest.mark.parametrize("name", LOWER, ids=LOWER)
def test_lower_bounds_not_above_true_mi(gaussian_estimates, name, rho):
    mi = true_mi(D, rho)
    assert gaussian_estimates[name, rho] <= mi + (0.1 + 0.05 * mi)


NEAR_ZERO = {
    **{n: 0.1 for n in UPPER + LOWER},  # nats
    "hsic": 1e-3,
    "dcor": 0.02,
}


@pytest.mark.parametrize("name", sorted(NEAR_ZERO), ids=sorted(NEAR_ZERO))
def test_near_zero_on_independent_samples(gaussian_estimates, name):
    assert abs(gaussian_estimates[name, 0.0]) <= NEAR_ZERO[name]


@pytest.mark.parametrize("name", sorted(NEAR_ZERO), ids=sorted(NEAR_ZERO))
def test_grows_with_rho(gaussian_estimates, name):
    values = [gaussian_estimates[name, rho] for rho in RHOS]
    assert values[0] < values[1] < values[2], values


@pytest.mark.parametrize("name", GROUP, ids=GROUP)
@pytest.mark.parametrize("d", [1, 5, 20], ids=["d1", "d5", "d20"])
def test_group_measures_zero_for_identical_groups_and_grow_with_shift(name, d):
    p = get_penalty(name)
    values = [float(p(*two_groups(512, d, shift, seed=d))) for shift in (0.0, 0.25, 0.5, 1.0)]
    assert values[0] < values[1] < values[2] < values[3], values
    assert abs(values[0]) <= 0.1 * values[3], values


@pytest.mark.parametrize("name", GROUP, ids=GROUP)
def test_group_measures_grow_with_rho(name):
    values = []
    for rho in RHOS:
        a, b = gaussian(512, 5, rho, seed=1)
        values.append(float(get_penalty(name)(a, b[:, 0] > 0)))
    assert values[0] < values[1] < values[2], values


@pytest.mark.parametrize("cls", [MMD, Wasserstein], ids=["mmd", "wasserstein"])
def test_k_groups_average_over_pairs(cls):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(90, 3, generator=g)
    t = torch.arange(90) % 3
    a = a + t[:, None].float()
    p = cls(bandwidth=1.0) if cls is MMD else cls()
    three = float(p(a, t))
    pairs = []
    for k, m in [(0, 1), (0, 2), (1, 2)]:
        keep = (t == k) | (t == m)
        pairs.append(float(p(a[keep], (t[keep] == m).long())))
    # Wasserstein's epsilon is relative to the whole batch's mean cost, which differs between
    # the pooled batch and each pair: check that the value lies among the pairs' values.
    if cls is MMD:
        assert three == pytest.approx(sum(pairs) / 3, rel=1e-5)
    else:
        assert min(pairs) < three < max(pairs)


def test_k_groups_labels_absent_from_batch_are_skipped():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 2, generator=g)
    t = torch.where(torch.arange(40) % 2 == 0, 0, 2)  # label 1 absent
    t01 = (t == 2).long()
    assert float(MMD()(a, t)) == pytest.approx(float(MMD()(a, t01)))


def test_linear_mmd_is_squared_mean_difference():
    a, t = two_groups(64, 3, 0.7, seed=0)
    expected = ((a[t == 1].mean(0) - a[t == 0].mean(0)) ** 2).sum()
    assert float(get_penalty("mmd_linear")(a, t)) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("unbiased", [False, True], ids=["biased", "unbiased"])
def test_hsic_and_mmd_estimators(unbiased):
    a, b = gaussian(256, 3, 0.0, seed=2)
    hsic = get_penalty("hsic", unbiased=unbiased)(a, b)
    assert abs(float(hsic)) < 2e-3
    if not unbiased:
        assert float(hsic) >= 0
    a, t = two_groups(256, 3, 0.0, seed=2)
    mmd = get_penalty("mmd", unbiased=unbiased)(a, t)
    assert abs(float(mmd)) < 0.02


def test_dcor_v_statistic_in_unit_interval():
    a, b = gaussian(128, 3, 0.7, seed=0)
    v = float(DistanceCorrelation(bias_corrected=False)(a, b))
    assert 0.0 <= v <= 1.0
    assert float(DistanceCorrelation()(a, a)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["hsic", "dcor"], ids=["hsic", "dcor"])
def test_kernel_measures_one_hot_labels(name):
    a, b = gaussian(256, 3, 0.8, seed=0)
    t = (b[:, 0] > 0).long()
    p = get_penalty(name)
    one_hot = torch.nn.functional.one_hot(t, 2).float()
    assert float(p(a, t)) == pytest.approx(float(p(a, one_hot)), rel=1e-5)


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL, ids=ALL)
def test_gradients_reach_inputs(name):
    a, b = small_inputs(name, n=32)
    a.requires_grad_(True)
    if name not in GROUP:
        b.requires_grad_(True)
    p = get_penalty(name, **TINY.get(name, {}))
    p(a, b)  # lazy build
    torch.manual_seed(0)
    value = p(a, b)
    value.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    if name not in GROUP:
        assert b.grad is not None and torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0
    if name in CRITIC:
        assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in p.parameters())


@pytest.mark.parametrize("name", ["club", "vclub_s", "l1out", "iwclub", "mine"])
def test_gradients_with_labels(name):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(32, 3, generator=g, requires_grad=True)
    t = torch.arange(32) % 3
    p = get_penalty(name, hidden=8)
    p(a, t).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert p.n_classes_ == 3


def test_sinkhorn_gradient_is_the_transport_plan():
    """The gradient of the entropic OT value matches finite differences (fixed epsilon)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 2, generator=g, dtype=torch.float64)
    y = torch.randn(25, 2, generator=g, dtype=torch.float64) + 0.5

    def ot(x_):
        return pen_mod._entropic_ot(pen_mod._sq_dists(x_, y), 0.5, 2000, 1e-12)

    x_ = x.clone().requires_grad_(True)
    ot(x_).backward()
    h = 1e-5
    for i, k in [(0, 0), (3, 1), (10, 0)]:
        xp, xm = x.clone(), x.clone()
        xp[i, k] += h
        xm[i, k] -= h
        fd = (float(ot(xp)) - float(ot(xm))) / (2 * h)
        assert float(x_.grad[i, k]) == pytest.approx(fd, rel=1e-4, abs=1e-8)


# --------------------------------------------------------------------------------------------
# The CLUB family
# --------------------------------------------------------------------------------------------


def test_club_estimate_matches_definition():
    """forward = mean_i log q(b_i|a_i) - mean_ij log q(b_j|a_i); learning loss = -mean ll."""
    a, b = gaussian(20, 2, 0.5, seed=0)
    p = CLUB(hidden=8)
    p(a, b)
    with torch.no_grad():
        mu, logvar = p._mu_logvar(a)
        var = logvar.exp()

        def logq(bj, i):
            return float(
                (-0.5 * ((bj - mu[i]) ** 2 / var[i] + logvar[i] + math.log(2 * math.pi))).sum()
            )

        pos = sum(logq(b[i], i) for i in range(20)) / 20
        neg = sum(logq(b[j], i) for i in range(20) for j in range(20)) / 400
        assert float(p(a, b)) == pytest.approx(pos - neg, rel=1e-4, abs=1e-5)
        assert float(p.learning_loss(a, b)) == pytest.approx(-pos, rel=1e-5)


def test_club_categorical_estimate_matches_definition():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(30, 2, generator=g)
    t = torch.arange(30) % 3
    p = CLUB(hidden=8)
    p(a, t)
    with torch.no_grad():
        logq = torch.log_softmax(p.q(a), dim=1)  # logq[i, k] = log q(k | a_i)
        pos = logq[torch.arange(30), t].mean()
        neg = logq[:, t].mean()
        # pos and neg are means of log-probabilities of about -1.1 in float32; their difference
        # (a few hundredths) keeps their rounding, about 1e-7 absolute, which is more than rel=1e-5
        # of it on some CPUs (an Intel Xeon here): an absolute tolerance for the difference.
        assert float(p(a, t)) == pytest.approx(float(pos - neg), rel=1e-5, abs=1e-6)
        assert float(p.learning_loss(a, t)) == pytest.approx(float(-pos), rel=1e-5)


def test_vclub_s_uses_global_rng():
    a, b = gaussian(64, 3, 0.5, seed=0)
    p = VCLUBSample(hidden=8)
    p(a, b)
    with torch.random.fork_rng():
        torch.manual_seed(123)
        v1 = float(p(a, b).detach())
        torch.manual_seed(123)
        v2 = float(p(a, b).detach())
        torch.manual_seed(124)
        v3 = float(p(a, b).detach())
    assert v1 == v2
    assert v1 != v3


def test_vclub_s_does_not_reseed():
    """Each call draws from the global stream and never resets it."""
    a, b = gaussian(64, 3, 0.5, seed=0)
    p = VCLUBSample(hidden=8)
    p(a, b)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        state = torch.random.get_rng_state()
        v1 = float(p(a, b).detach())
        assert not torch.equal(state, torch.random.get_rng_state())
        v2 = float(p(a, b).detach())
    assert v1 != v2


def test_iwclub_weights():
    a, b = gaussian(40, 2, 0.5, seed=0)
    iw = IWCLUB(hidden=8)
    club = CLUB(hidden=8)
    iw(a, b)
    club(a, b)
    club.load_state_dict(iw.state_dict())
    with torch.no_grad():
        assert float(iw(a, b)) == pytest.approx(float(club(a, b)), rel=1e-6)
        uniform = torch.ones(40)
        assert float(iw(a, b, weights=uniform)) == pytest.approx(float(club(a, b)), rel=1e-5)
        w = torch.rand(40, generator=torch.Generator().manual_seed(1))
        assert float(iw(a, b, weights=w)) == pytest.approx(float(iw(a, b, weights=3 * w)))
        # sum_i w_i [log q(b_i|a_i) - (1/n) sum_j log q(b_j|a_i)], w normalized.
        terms = club._positive(pen_mod._validate(a, b)) - club._negative_all(
            pen_mod._validate(a, b)
        )
        assert float(iw(a, b, weights=w)) == pytest.approx(float((w / w.sum() * terms).sum()))
        ll = club._log_likelihood(pen_mod._validate(a, b))
        assert float(iw.learning_loss(a, b, weights=w)) == pytest.approx(
            float(-(w / w.sum() * ll).sum())
        )


@pytest.mark.parametrize(
    "weights, match",
    [
        (-torch.ones(10), "non-negative"),
        (torch.ones(9), "one weight per sample"),
        (torch.zeros(10), "sum to 0"),
        (torch.full((10,), float("nan")), "NaN"),
    ],
    ids=["negative", "wrong-length", "zero-sum", "nan"],
)
def test_iwclub_bad_weights(weights, match):
    a, b = gaussian(10, 2, 0.5, seed=0)
    with pytest.raises(ValueError, match=match):
        IWCLUB(hidden=8)(a, b, weights=weights)


def test_iwclub_weighted_fit_targets_reweighted_population():
    """Weights that select a subpopulation make q fit that subpopulation."""
    g = torch.Generator().manual_seed(0)
    n = 2000
    a = torch.randn(n, 1, generator=g)
    group = (torch.arange(n) % 2).bool()
    slope = torch.where(group, 0.9, 0.0)[:, None]
    b = slope * a + torch.where(group, math.sqrt(1 - 0.81), 1.0)[:, None] * torch.randn(
        n, 1, generator=g
    )
    w = group.float()
    p = IWCLUB(hidden=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        fit_critic(p, a, b, weights=w)
    with torch.no_grad():
        est = float(p(a[group], b[group]))
    assert est == pytest.approx(club_population(1, 0.9), rel=0.2)


# --------------------------------------------------------------------------------------------
# fit_critic
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CRITIC, ids=CRITIC)
def test_fit_critic_lowers_the_loss(name):
    a, b = gaussian(128, 2, 0.8, seed=0)
    p = get_penalty(name, hidden=16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        losses = fit_critic(p, a, b, n_steps=30, validation_fraction=0.0, init_least_squares=False)
    assert len(losses) == 30 and all(math.isfinite(v) for v in losses)
    assert min(losses[-5:]) < losses[0]


def test_fit_critic_reproducible_under_fork_rng():
    a, b = gaussian(128, 2, 0.8, seed=0)
    results = []
    for _ in range(2):
        p = CLUB(hidden=8)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            fit_critic(p, a, b, n_steps=20, batch_size=32)
        results.append(float(p(a, b).detach()))
    assert results[0] == results[1]


def test_fit_critic_weights_only_for_iwclub():
    a, b = gaussian(32, 2, 0.8, seed=0)
    with pytest.raises(ValueError, match="weights"):
        fit_critic(CLUB(hidden=8), a, b, weights=torch.ones(32))


def test_fit_critic_with_labels_and_minibatches():
    a, b = gaussian(200, 3, 0.8, seed=0)
    t = (b[:, 0] > 0).long()
    p = CLUB(hidden=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        losses = fit_critic(p, a, t, n_steps=50, batch_size=64)
    assert losses and p.n_classes_ == 2
    assert float(p(a, t).detach()) > 0


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        torch.tensor([0, 1] * 8),
        torch.tensor([False, True] * 8),
        torch.tensor([0.0, 1.0] * 8),
    ],
    ids=["int", "bool", "float"],
)
@pytest.mark.parametrize("name", ALL, ids=ALL)
def test_label_dtypes(name, labels):
    a = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    p = get_penalty(name, **TINY.get(name, {}))
    ref = get_penalty(name, **TINY.get(name, {}))
    p(a, labels)
    ref(a, labels.long())
    ref.load_state_dict(p.state_dict())
    torch.manual_seed(0)
    v = float(p(a, labels).detach())
    torch.manual_seed(0)
    assert v == pytest.approx(float(ref(a, labels.long()).detach()), rel=1e-5, abs=1e-7)


def test_n_classes_inferred_lazily_and_checked():
    a = torch.randn(12, 2)
    p = CLUB(hidden=8)
    p(a, torch.arange(12) % 2)
    assert p.n_classes_ == 2
    with pytest.raises(ValueError, match="n_classes"):
        p(a, torch.arange(12) % 3)
    p3 = CLUB(hidden=8, n_classes=4)
    p3(a, torch.arange(12) % 3)  # labels 0..2 within n_classes=4


def test_continuous_critic_rejects_labels_and_vice_versa():
    a = torch.randn(12, 2)
    with pytest.raises(ValueError, match="label"):
        CLUB(dim_a=2, dim_b=1, hidden=8)(a, torch.arange(12) % 2)
    with pytest.raises(ValueError, match="label vector"):
        CLUB(dim_a=2, n_classes=2, hidden=8)(a, torch.randn(12, 1))


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------


def _bad(case, name):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(16, 3, generator=g)
    b = (torch.arange(16) % 2) if name in GROUP else torch.randn(16, 2, generator=g)
    if case == "batch-sizes-differ":
        return a, b[:15], "same number of samples"
    if case == "nan-in-a":
        a[3, 1] = float("nan")
        return a, b, "NaN"
    if case == "inf-in-b":
        if name in GROUP:
            b = b.float()
            b[2] = float("inf")
        else:
            b[2, 0] = float("inf")
        return a, b, "NaN or infinite"
    if case == "single-group":
        return a, torch.zeros(16, dtype=torch.long), "single group"
    if case == "a-not-2d":
        return a[:, 0], b, "2-D"
    if case == "b-3d":
        return a, torch.randn(16, 2, 1), "1-D vector of group labels"
    if case == "batch-of-one":
        return a[:1], b[:1], "at least 2"
    if case == "non-integer-labels":
        return a, torch.linspace(0, 1, 16), "non-integer"
    if case == "negative-labels":
        return a, torch.tensor([-1, 0] * 8), "negative"
    raise AssertionError(case)


BAD_CASES = [
    "batch-sizes-differ",
    "nan-in-a",
    "inf-in-b",
    "single-group",
    "a-not-2d",
    "b-3d",
    "batch-of-one",
    "non-integer-labels",
    "negative-labels",
]


@pytest.mark.parametrize("case", BAD_CASES, ids=BAD_CASES)
@pytest.mark.parametrize("name", ALL, ids=ALL)
def test_bad_inputs_raise_value_error(name, case):
    a, b, match = _bad(case, name)
    p = get_penalty(name, **TINY.get(name, {}))
    with pytest.raises(ValueError, match=match):
        p(a, b)
    if name in CRITIC:
        with pytest.raises(ValueError, match=match):
            p.learning_loss(a, b)


@pytest.mark.parametrize("name", CRITIC, ids=CRITIC)
def test_dims_differing_from_built_critic_raise(name):
    p = get_penalty(name, dim_a=3, dim_b=2, **TINY[name])
    with pytest.raises(ValueError, match="dim_a=3"):
        p(torch.randn(8, 4), torch.randn(8, 2))
    with pytest.raises(ValueError, match="dim_b=2"):
        p.learning_loss(torch.randn(8, 3), torch.randn(8, 5))
    lazy = get_penalty(name, **TINY[name])
    lazy(torch.randn(8, 3), torch.randn(8, 2))
    with pytest.raises(ValueError, match="dim_a=3"):
        lazy(torch.randn(8, 4), torch.randn(8, 2))


@pytest.mark.parametrize("name", CLOSED, ids=CLOSED)
def test_declared_dims_checked_for_closed_form(name):
    p = get_penalty(name, dim_a=3)
    a, b = small_inputs(name, d_a=4)
    with pytest.raises(ValueError, match="dim_a=3"):
        p(a, b)
    # Without declared sizes a closed-form measure takes any size at every call.
    free = get_penalty(name)
    free(*small_inputs(name, d_a=4))
    free(*small_inputs(name, d_a=2))


@pytest.mark.parametrize("name", GROUP, ids=GROUP)
def test_group_measures_require_labels(name):
    a, b = gaussian(16, 2, 0.5, seed=0)
    with pytest.raises(ValueError, match="label"):
        get_penalty(name)(a, b)


@pytest.mark.parametrize("name", ALL, ids=ALL)
def test_float64_inputs(name):
    a, b = small_inputs(name, n=16)
    a = a.double()
    if name not in GROUP:
        b = b.double()
    value = get_penalty(name, **TINY.get(name, {}))(a, b)
    assert torch.isfinite(value)
