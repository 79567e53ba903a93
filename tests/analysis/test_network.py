"""The MLP: the course's worked example to 8 decimals, then training for real data."""

from __future__ import annotations

import numpy as np
import pytest

from posterlab.analysis import MLP, TrainingHistory, TrainingOptions

# The course's 2-2-2 example: w1, w2 into h1; w3, w4 into h2; w5, w6 into o1; w7, w8 into o2.
# Our weights are (n_in, n_out), so column j holds the weights INTO unit j.
W1 = np.array([[0.15, 0.25], [0.20, 0.30]])
W2 = np.array([[0.40, 0.50], [0.45, 0.55]])
INPUT = np.array([0.05, 0.10])
TARGET = np.array([0.01, 0.99])
# The course prints 9 significant digits; a correct result differs from them by rounding only.
ROUNDING = 5e-9


def course_network() -> MLP:
    net = MLP((2, 2, 2), hidden_activation="sigmoid", output_activation="sigmoid")
    net.weights = [W1.copy(), W2.copy()]
    net.biases = [np.full(2, 0.35), np.full(2, 0.60)]  # b1, b2 shared within a layer
    return net


def test_forward_pass_reproduces_the_course_hidden_and_output_values() -> None:
    net = course_network()
    hidden = net.layer_outputs(INPUT[np.newaxis])[1][0]
    np.testing.assert_allclose(hidden, [0.593269992, 0.596884378], rtol=0, atol=ROUNDING)
    np.testing.assert_allclose(net.forward(INPUT), [0.75136507, 0.772928465], rtol=0, atol=1e-8)
    assert net.error(INPUT, TARGET) == pytest.approx(0.298371109, rel=0, abs=ROUNDING)


def test_one_step_with_fixed_biases_reproduces_the_course_weights() -> None:
    net = course_network()
    error_before = net.fit_step(INPUT, TARGET, 0.5, update_biases=False)
    assert error_before == pytest.approx(0.298371109, rel=0, abs=ROUNDING)
    w5, w6, w7, w8 = 0.35891648, 0.408666186, 0.511301270, 0.561370121
    w1, w2, w3, w4 = 0.149780716, 0.19956143, 0.24975114, 0.29950229
    np.testing.assert_allclose(net.weights[1], [[w5, w7], [w6, w8]], rtol=0, atol=1e-8)
    np.testing.assert_allclose(net.weights[0], [[w1, w3], [w2, w4]], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(net.biases[0], [0.35, 0.35])
    np.testing.assert_array_equal(net.biases[1], [0.60, 0.60])


def test_a_step_on_a_batch_equals_the_sum_of_per_sample_gradients() -> None:
    rng = np.random.default_rng(1)
    X, Y = rng.uniform(size=(5, 3)), rng.uniform(size=(5, 2))
    batch, single = MLP((3, 4, 2), "tanh", seed=3), MLP((3, 4, 2), "tanh", seed=3)
    batch.fit_step(X, Y, 0.1)
    start = [w.copy() for w in single.weights]
    total = [np.zeros_like(w) for w in start]
    for x, y in zip(X, Y, strict=True):
        probe = MLP((3, 4, 2), "tanh", seed=3)
        probe.fit_step(x, y, 0.1)
        for t, w, w0 in zip(total, probe.weights, start, strict=True):
            t += w - w0
    for w, w0, t in zip(batch.weights, start, total, strict=True):
        np.testing.assert_allclose(w - w0, t, atol=1e-12)


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("output", ["identity", "sigmoid"])
def test_gradients_match_finite_differences_for_every_activation(hidden: str, output: str) -> None:
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(6, 3)), rng.uniform(0.1, 0.9, size=(6, 2))
    net = MLP((3, 5, 4, 2), hidden, output, seed=4)
    grad_w, grad_b = net.gradients(net.layer_outputs(X), Y)
    eps = 1e-6
    for params, grads in ((net.weights, grad_w), (net.biases, grad_b)):
        for p, g in zip(params, grads, strict=True):
            numeric = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                keep = p[idx]
                p[idx] = keep + eps
                up = net.error(X, Y)
                p[idx] = keep - eps
                down = net.error(X, Y)
                p[idx] = keep
                numeric[idx] = (up - down) / (2 * eps)
            np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)


def test_the_same_seed_gives_the_same_network_and_the_same_training() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, -2.0, 0.5]
    a, b = MLP((3, 8, 1), seed=7), MLP((3, 8, 1), seed=7)
    ha = a.fit(X, y, TrainingOptions(epochs=20, validation_fraction=0.2))
    hb = b.fit(X, y, TrainingOptions(epochs=20, validation_fraction=0.2))
    assert ha == hb
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(MLP((3, 8, 1), seed=8).weights[0], a.weights[0])


def test_course_initialisation_draws_weights_and_biases_in_minus_one_to_one() -> None:
    net = MLP((30, 20, 1), seed=0, init="uniform")
    values = np.concatenate([p.ravel() for p in net.weights + net.biases])
    assert values.min() >= -1 and values.max() <= 1 and values.std() > 0.5


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_both_optimisers_learn_a_smooth_function(optimizer: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 2))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2
    net = MLP((2, 16, 1), "tanh", seed=0)
    history = net.fit(X, y, TrainingOptions(epochs=150, optimizer=optimizer, learning_rate=0.02))
    assert isinstance(history, TrainingHistory)
    assert history.train_error[-1] < 0.1 * history.train_error[0]
    assert np.mean((net.predict(X) - y) ** 2) < 0.02


def test_sigmoid_output_learns_a_separable_classification() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(float)
    net = MLP((2, 4, 1), "relu", "sigmoid", seed=0)
    net.fit(X, y, TrainingOptions(epochs=60))
    assert np.mean((net.predict(X) > 0.5) == y) > 0.95


def test_each_stopping_rule_is_reported() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = 0.5 * X[:, 0]
    assert MLP((2, 3, 1), seed=0).fit(X, y, TrainingOptions(epochs=5)).stopped == "max_epochs"
    stopped = MLP((2, 3, 1), seed=0).fit(X, y, TrainingOptions(epochs=500, tol_error=1e-2))
    assert stopped.stopped == "error_below_threshold" and stopped.train_error[-1] < 1e-2
    frozen = MLP((2, 3, 1), seed=0).fit(X, y, TrainingOptions(epochs=500, tol_update=1.0))
    assert frozen.stopped == "updates_below_threshold" and frozen.epochs == 1
    noise = rng.normal(size=200)  # nothing to learn: validation error stops improving
    early = MLP((2, 32, 1), seed=0).fit(
        X, noise,
        TrainingOptions(epochs=500, validation_fraction=0.3, patience=5, learning_rate=0.05),
    )
    assert early.stopped == "early_stopping"
    assert early.epochs == early.best_epoch + 5
    assert len(early.validation_error) == early.epochs


def test_early_stopping_restores_the_weights_of_the_best_validation_epoch() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(120, 2)), rng.normal(size=120)
    X_val, y_val = rng.normal(size=(60, 2)), rng.normal(size=60)
    net = MLP((2, 32, 1), seed=0)
    history = net.fit(
        X, y, TrainingOptions(epochs=300, patience=8, learning_rate=0.05),
        validation_data=(X_val, y_val),
    )
    best = min(history.validation_error)
    assert history.validation_error[history.best_epoch - 1] == best
    assert 0.5 * np.mean((net.predict(X_val) - y_val) ** 2) == pytest.approx(best)


def test_l2_penalty_shrinks_the_weights() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X @ [2.0, -1.0, 0.0, 0.5]
    plain, shrunk = MLP((4, 8, 1), seed=0), MLP((4, 8, 1), seed=0)
    plain.fit(X, y, TrainingOptions(epochs=50))
    shrunk.fit(X, y, TrainingOptions(epochs=50, l2=0.1))
    assert np.linalg.norm(shrunk.weights[0]) < np.linalg.norm(plain.weights[0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"layer_sizes": (3,)}, "layer_sizes"),
        ({"layer_sizes": (3, 0, 1)}, "layer_sizes"),
        ({"layer_sizes": (3, 1), "hidden_activation": "softplus"}, "hidden_activation"),
        ({"layer_sizes": (3, 1), "output_activation": "relu"}, "output_activation"),
        ({"layer_sizes": (3, 1), "init": "he"}, "init"),
    ],
)
def test_invalid_construction_raises_value_error_naming_the_parameter(
    kwargs: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        MLP(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"l2": -1.0}, "l2"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_invalid_training_arguments_raise_value_error_naming_them(
    kwargs: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        MLP((2, 1), seed=0).fit(np.zeros((10, 2)), np.zeros(10), TrainingOptions(**kwargs))  # type: ignore[arg-type]


def test_inputs_of_the_wrong_shape_or_with_nan_are_rejected() -> None:
    net = MLP((2, 1), seed=0)
    with pytest.raises(ValueError, match="X must have 2 columns"):
        net.forward(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        net.fit_step([[np.nan, 0.0]], [[1.0]], 0.1)
    with pytest.raises(ValueError, match="rows"):
        net.fit(np.zeros((4, 2)), np.zeros(3))
