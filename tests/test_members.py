"""Members in one network: ensembles, per-member early stopping, bootstrap intervals."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from causalmim import CausalMIMRegressor, TARNetRegressor, load, penalties
from causalmim._members import LoopedPenalty, StackedCLUB, StackedMMD, member_penalty
from causalmim.datasets import make_disentangled

TINY = dict(rep_units=8, rep_layers=1, head_units=8, head_layers=1, max_epochs=6,
            batch_size=64, patience=2, random_state=0, device="cpu")
MIM = dict(TINY, trunk_units=8, mi_penalty_params={"hidden": 8})


def world(n, seed=0):
    return make_disentangled(n=n, n_instrumental=2, n_confounding=2, n_adjustment=2,
                             n_noise=1, random_state=seed)


@pytest.fixture(scope="module")
def data():
    return world(240)


@pytest.fixture(scope="module")
def boot(data):
    return CausalMIMRegressor(**MIM, n_ensemble=4, bootstrap=True).fit(data.X, data.t, data.y)


def test_members_differ_and_the_prediction_is_their_mean(boot, data):
    Xs = boot._standardize(data.X)
    members = boot._member_outcomes(Xs)
    assert members.shape == (4, len(data.X), 2)
    effects = members[:, :, 1] - members[:, :, 0]
    for i in range(4):
        for j in range(i):
            assert not np.allclose(effects[i], effects[j])
    np.testing.assert_allclose(boot.predict(data.X.to_numpy()), effects.mean(axis=0))
    np.testing.assert_allclose(boot.ate(), effects.mean(), rtol=1e-6)


def test_one_network_holds_every_member(boot):
    module = boot.net_.module_
    assert module.n_members == 4
    assert module.trunk.net[0].weight.shape[0] == 4
    assert module.factors.net[0].weight.shape[0] == 4 * 3
    assert module.outcome_heads.net[0].weight.shape[0] == 4 * 2
    critic = boot.net_.critic_["mi_gamma_delta__mi_delta_upsilon__mi_gamma_upsilon"]
    assert isinstance(critic, StackedCLUB)
    assert critic.mean.linear.weight.shape[0] == 3 * 4  # 3 MI pairs x 4 members, one critic


def test_each_member_keeps_its_own_best_epoch(data):
    est = CausalMIMRegressor(**dict(MIM, max_epochs=25, patience=3), n_ensemble=3)
    est._check_params()
    Xs = data.X.to_numpy()
    t = np.asarray(data.t)
    wm, vm = est._member_weights(t, np.ones(len(t)), np.random.RandomState(0))
    # Each member holds out its own rows; a row is never in both parts of one member.
    assert not np.array_equal(vm[:, 0], vm[:, 1])
    assert not ((wm > 0) & (vm > 0)).any()
    est.classes_ = np.array([0, 1])
    net = est._build_net(Xs.shape[1], [0.5, 0.5], early_stopping=True)
    y = np.asarray(data.y, dtype=np.float32)
    net.fit({"x": Xs.astype(np.float32), "t": t, "wm": wm, "vm": vm}, (y - y.mean()) / y.std())
    losses = np.array(net.history[:, "valid_losses"])
    assert losses.shape == (len(net.history), 3)
    best = losses.min(axis=0)
    np.testing.assert_array_equal(losses[net.best_epochs_ - 1, np.arange(3)], best)
    # The restored weights are each member's best ones.
    np.testing.assert_allclose(net.member_validation_loss().numpy(), best, rtol=1e-5)


def test_same_random_state_same_members(boot, data):
    again = CausalMIMRegressor(**MIM, n_ensemble=4, bootstrap=True).fit(data.X, data.t, data.y)
    lo, hi = boot.effect_interval(data.X)
    lo2, hi2 = again.effect_interval(data.X)
    np.testing.assert_array_equal(lo, lo2)
    np.testing.assert_array_equal(hi, hi2)


def test_intervals_contain_the_estimate_and_speak_pandas(boot, data):
    est = boot.effect(data.X)
    lo, hi = boot.effect_interval(data.X, alpha=0.1)
    assert isinstance(lo, pd.Series) and lo.index.equals(data.X.index)
    assert (lo.to_numpy() <= est).all() and (est <= hi.to_numpy()).all()
    assert (hi - lo > 0).all()
    lo99, hi99 = boot.effect_interval(data.X, alpha=0.01)
    assert ((hi99 - lo99) > (hi - lo)).all()
    clo, chi = boot.const_marginal_effect_interval(data.X.to_numpy())
    np.testing.assert_allclose(clo, boot.effect_interval(data.X)[0].to_numpy())
    a_lo, a_hi = boot.ate_interval()
    assert isinstance(a_lo, float) and a_lo < boot.ate() < a_hi
    x_lo, x_hi = boot.ate_interval(data.X)
    assert x_lo < boot.ate(data.X) < x_hi


def test_intervals_narrow_with_more_data():
    widths = []
    for n in (200, 2000):
        d = world(n, seed=1)
        est = CausalMIMRegressor(**dict(MIM, max_epochs=10), n_ensemble=6,
                                 bootstrap=True).fit(d.X, d.t, d.y)
        lo, hi = est.ate_interval()
        widths.append(hi - lo)
    assert widths[1] < 0.6 * widths[0]


def test_pickle_and_save_load_keep_members_and_intervals(boot, data, tmp_path):
    lo, hi = boot.effect_interval(data.X)
    restored = pickle.loads(pickle.dumps(boot))
    path = tmp_path / "boot.pt"
    boot.save(path)
    loaded = load(path)
    for other in (restored, loaded):
        assert other.net_.module_.n_members == 4
        lo2, hi2 = other.effect_interval(data.X)
        np.testing.assert_array_equal(lo2, lo)
        np.testing.assert_array_equal(hi2, hi)
        assert other.ate_interval() == boot.ate_interval()
        np.testing.assert_array_equal(other.best_epochs_, boot.best_epochs_)


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, "0.05", None])
def test_alpha_outside_the_unit_interval(boot, data, alpha):
    with pytest.raises(ValueError, match="alpha must be a number in"):
        boot.effect_interval(data.X, alpha=alpha)


def test_intervals_need_bootstrap_members(data):
    est = TARNetRegressor(**TINY, n_ensemble=3).fit(data.X, data.t, data.y)
    for call in (lambda: est.effect_interval(data.X), lambda: est.ate_interval(),
                 lambda: est.const_marginal_effect_interval(data.X)):
        with pytest.raises(ValueError, match="bootstrap=True"):
            call()


def test_bootstrap_needs_two_members(data):
    with pytest.raises(ValueError, match="at least 2 members"):
        TARNetRegressor(**TINY, bootstrap=True).fit(data.X, data.t, data.y)
    with pytest.raises(ValueError, match="'bootstrap' parameter of TARNetRegressor must be"):
        TARNetRegressor(**TINY, n_ensemble=2, bootstrap="yes").fit(data.X, data.t, data.y)


def test_any_registry_penalty_runs_per_member(data):
    est = CausalMIMRegressor(**dict(TINY, trunk_units=8), mi_penalty="hsic", n_ensemble=2,
                             balance_penalty="wasserstein",
                             balance_penalty_params={"n_iter": 5})
    est.fit(data.X, data.t, data.y)
    assert isinstance(est.net_.critic_["mi_gamma_delta"], LoopedPenalty)
    assert isinstance(est.net_.critic_["balance"], LoopedPenalty)
    assert np.isfinite(est.predict(data.X)).all()
    assert "mi_gamma_delta" in est.history_[-1]


# ------------------------------------------------------------------ batched penalties


def test_stacked_mmd_equals_the_reference_per_member():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 50, 4, generator=g)
    labels = (torch.rand(50, generator=g) < 0.4).long()
    for kernel in ("rbf", "linear"):
        stacked = member_penalty(lambda k=kernel: penalties.MMD(kernel=k), 3, 4, n_classes=2)
        assert isinstance(stacked, StackedMMD)
        ref = torch.stack([penalties.MMD(kernel=kernel)(a[m], labels) for m in range(3)])
        torch.testing.assert_close(stacked(a, labels), ref)
    # A batch with a single arm carries no dependence: 0, not NaN.
    assert stacked(a, torch.zeros(50, dtype=torch.long)).abs().max() == 0


@pytest.mark.parametrize("name", ["club", "vclub_s"])
def test_stacked_club_equals_the_reference_critic(name):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 64, 3, generator=g)
    b = 0.8 * a + 0.6 * torch.randn(2, 64, 3, generator=g)
    refs = [penalties.get_penalty(name, dim_a=3, dim_b=3, hidden=5) for _ in range(2)]
    stacked = member_penalty(lambda: penalties.get_penalty(name, dim_a=3, dim_b=3, hidden=5),
                             2, 3, dim_b=3)
    with torch.no_grad():
        for m, ref in enumerate(refs):
            for p in ref.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))  # non-trivial weights
            q = ref.q
            stacked.mean.linear.weight[m] = q.mean.linear.weight.T
            stacked.mean.linear.bias[m, 0] = q.mean.linear.bias
            stacked.mean.hidden.weight[m] = q.mean.mlp[0].weight.T
            stacked.mean.hidden.bias[m, 0] = q.mean.mlp[0].bias
            stacked.mean.out.weight[m] = q.mean.mlp[2].weight.T
            stacked.mean.out.bias[m, 0] = q.mean.mlp[2].bias
            stacked.logvar_bias[m, 0] = q.logvar_bias
            stacked.logvar_mlp.hidden.weight[m] = q.logvar_mlp[0].weight.T
            stacked.logvar_mlp.hidden.bias[m, 0] = q.logvar_mlp[0].bias
            stacked.logvar_mlp.out.weight[m] = q.logvar_mlp[2].weight.T
            stacked.logvar_mlp.out.bias[m, 0] = q.logvar_mlp[2].bias
    expected = torch.stack([r.learning_loss(a[m], b[m]) for m, r in enumerate(refs)]).sum()
    torch.testing.assert_close(stacked.learning_loss(a, b), expected)
    if name == "club":
        expected = torch.stack([r(a[m], b[m]) for m, r in enumerate(refs)])
        torch.testing.assert_close(stacked(a, b), expected)
    else:  # one random negative per row: equal to the reference under the same permutation
        torch.manual_seed(3)
        got = stacked(a, b)
        expected = []
        for m, r in enumerate(refs):
            torch.manual_seed(3)
            expected.append(r(a[m], b[m]))
        torch.testing.assert_close(got, torch.stack(expected))


def test_prediction_path_equals_the_training_forward(boot, data):
    module = boot.net_.module_
    module.eval()
    x = torch.as_tensor(boot._standardize(data.X), dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(module.predict_outcomes(x), module(x)["outcomes"])


def test_epoch_size_streams_large_data(data):
    est = TARNetRegressor(**dict(TINY, batch_size=32), epoch_size=64).fit(data.X, data.t, data.y)
    assert [h["train_batch_count"] for h in est.history_] == [2] * len(est.history_)
    assert len(est.net_._valid_rows) == 48  # 20% of 240 rows: under the cap, all of them
    capped = TARNetRegressor(**dict(TINY, batch_size=32), epoch_size=4).fit(
        data.X, data.t, data.y)
    assert len(capped.net_._valid_rows) == 40  # 10 x epoch_size
    full = TARNetRegressor(**dict(TINY, batch_size=32), epoch_size=None).fit(
        data.X, data.t, data.y)
    assert full.history_[0]["train_batch_count"] == 6  # 192 training rows, 6 batches of 32


@pytest.mark.parametrize("bad", [0, -5, 2.5, "big", True])
def test_epoch_size_must_be_a_positive_integer(bad, data):
    with pytest.raises(ValueError, match="'epoch_size' parameter of TARNetRegressor must be"):
        TARNetRegressor(**TINY, epoch_size=bad).fit(data.X, data.t, data.y)
