"""Weight averaging (``ema_decay``): an exponential moving average of the network's weights
over the training steps, validated and kept by early stopping, member by member."""

import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from causalmim import CausalMIMRegressor, TARNetRegressor, load
from causalmim.datasets import make_disentangled

TINY = dict(rep_units=8, rep_layers=1, head_units=8, head_layers=1, batch_size=64,
            random_state=0, device="cpu")


@pytest.fixture(scope="module")
def data():
    d = make_disentangled(n=300, n_instrumental=2, n_confounding=2, n_adjustment=2,
                          random_state=0)
    return np.asarray(d.X, dtype=np.float32), d.t, d.y


class _Recorder(Callback):
    """Copies of the network's weights after every training step, and of the averaged
    weights at the end of every epoch (after early stopping has looked at them)."""

    def initialize(self):
        self.steps, self.epoch_averages = [], []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.steps.append([p.detach().clone() for p in net.module_.parameters()])

    def on_epoch_end(self, net, **kwargs):
        self.epoch_averages.append([p.clone() for p in net._ema])


def _average(initial, steps, decay):
    """The documented average, step by step, in float64."""
    ema = [p.double() for p in initial]
    for k, params in enumerate(steps, start=1):
        d = min(decay, (1.0 + k) / (10.0 + k))
        ema = [d * e + (1.0 - d) * p.double() for e, p in zip(ema, params, strict=True)]
    return ema


def test_without_early_stopping_the_model_ends_with_the_average(data):
    """The fitted weights are the documented average of the weights after each step,
    started at the initial weights."""
    X, t, y = data

    class _Start(_Recorder):
        def on_train_begin(self, net, **kwargs):
            self.start = [p.detach().clone() for p in net.module_.parameters()]

    rec = _Start()
    est = TARNetRegressor(**TINY, max_epochs=3, validation_fraction=0.0, ema_decay=0.95,
                          callbacks=[rec]).fit(X, t, y)
    assert len(rec.steps) == 3 * 5  # 300 rows in batches of at most 64
    expected = _average(rec.start, rec.steps, 0.95)
    last = rec.steps[-1]
    assert any(not torch.allclose(f, r) for f, r in
               zip(est.net_.module_.parameters(), last, strict=True))
    for f, e in zip(est.net_.module_.parameters(), expected, strict=True):
        assert torch.allclose(f.double(), e, atol=1e-5)


def test_each_member_keeps_the_average_of_its_own_best_epoch(data):
    X, t, y = data
    rec = _Recorder()
    est = CausalMIMRegressor(**TINY, trunk_units=8, mi_penalty_params={"hidden": 8},
                             n_ensemble=2, max_epochs=12, patience=3, ema_decay=0.9,
                             callbacks=[rec]).fit(X, t, y)
    best = est.best_epochs_
    assert len(best) == 2
    for p, *epochs in zip(est.net_.module_.parameters(), *rec.epoch_averages, strict=True):
        per_member = p.detach().view(2, -1)
        for m in range(2):
            kept = epochs[best[m] - 1].view(2, -1)[m]
            assert torch.equal(per_member[m], kept)
    # the averaged weights were validated: the recorded validation losses are theirs
    assert np.isfinite(est.history_[:, "valid_loss"]).all()


def test_averaging_changes_the_fit_and_leaves_no_copy_behind(data, tmp_path):
    X, t, y = data
    plain = TARNetRegressor(**TINY, max_epochs=6).fit(X, t, y)
    averaged = TARNetRegressor(**TINY, max_epochs=6, ema_decay=0.9).fit(X, t, y)
    assert np.all(np.isfinite(averaged.predict(X)))
    assert not np.allclose(plain.predict(X), averaged.predict(X))
    assert not hasattr(averaged.net_, "_ema")
    again = pickle.loads(pickle.dumps(averaged))
    np.testing.assert_array_equal(again.predict(X), averaged.predict(X))
    averaged.save(tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt")
    assert loaded.ema_decay == 0.9
    np.testing.assert_array_equal(loaded.predict(X), averaged.predict(X))


def test_zero_is_off(data):
    X, t, y = data
    a = TARNetRegressor(**TINY, max_epochs=4).fit(X, t, y)
    b = TARNetRegressor(**TINY, max_epochs=4, ema_decay=0.0).fit(X, t, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1])
def test_bad_decay_is_a_clear_error(data, bad):
    X, t, y = data
    with pytest.raises(ValueError, match="ema_decay"):
        TARNetRegressor(**TINY, max_epochs=1, ema_decay=bad).fit(X, t, y)
