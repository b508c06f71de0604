"""The model harness: every zoo model goes through one, ``check_model``.

The model-level twin of ``layers.testing.check_flow_layer``. ``check_model``
runs, on one preset (or one built ``zoo.GenerativeModel``) and one dataset
name, every check of the ``GenerativeModel`` contract, in this order, and
reports each by name:

``train``
    A few steps through ``zoo.train`` (the code path of ``python -m
    zoo.train``) on a slice of the dataset at a higher learning rate: every
    step's loss is finite and it falls within each stage of the objective (a
    multi-phase model, the M-flow, is judged phase by phase): the
    least-squares slope of the per-step losses is more than two standard
    errors below zero, so batch-to-batch noise of a model that learns nothing
    does not pass; each history entry has ``loss`` and ``val_loss``, and
    ``bits_per_dim`` / ``val_bits_per_dim`` exactly when the model has a
    ``likelihood_term`` (so do ``fit``'s logs); the run directory holds
    ``final/``, ``best/``, ``history.json`` and a PNG sample grid.
``contract``
    ``describe()`` states the model's facts; the dataset, converted by
    ``as_model_input``, passes ``validate`` / ``check_dataset``; ``log_prob``,
    ``bits_per_dim``, ``encode``, ``decode``, ``sample``, ``generate`` return
    finite values of the stated shapes and dtypes; ``bits_per_dim`` is
    ``-log_prob / (D ln 2)``; ``model(x)`` is a dict of finite per-example
    terms (the ``likelihood_term`` among them) and ``compute_loss`` their mean
    sum plus weight penalties over ``D ln 2``; ``sample(n, t, seed=s)`` equals
    ``generate`` on ``layers.draw_noise(noise_shapes, n, s)``; ``fit_priors``
    returns a dict.
``evaluate``
    ``zoo.evaluate`` with ``bpd`` and ``recon``: finite numbers with their
    provenance, every picture a PNG file, ``report.json`` written.
``round_trip``
    ``.keras`` and preset-directory (``save_to_preset`` + ``zoo.get(dir)``)
    round trips give identical ``log_prob``, ``encode``, ``decode``, seeded
    ``sample`` (and, where they exist, noisy and stochastic) outputs and
    evaluation-mode objective terms; two calls of the original agree first
    (so a difference means the save, not a non-deterministic call).
``reload_fit``
    Both reloaded models come back compiled, with the optimizer they were
    saved with, and the ``.keras`` one trains on with plain ``fit`` (no
    second ``compile``): a finite loss, ``bits_per_dim`` logged where
    defined, changed weights.
``saved_model``
    (with ``exporters``) the SavedModel, served by ``serve`` (for the tests:
    a process that cannot import the project), agrees with Keras on
    ``log_prob``, ``bits_per_dim``, ``encode``, ``decode``, ``sample`` and
    ``generate``; ``noise_scale`` / ``observation_noise`` / ``decode``'s
    ``seed`` are inputs exactly when the model has observation noise.
``litert``
    (with ``exporters``) the LiteRT sampler's ``generate`` agrees with the
    SavedModel's ``generate`` on the same noise; its seeded ``sample`` is
    reproducible and depends on the seed.
``arguments``
    Every argument of the shared API is honoured or refused with a
    ``ValueError``, never ignored: ``temperature`` changes samples,
    ``noise_scale`` changes samples and decodes only where
    ``has_observation_noise`` (refused otherwise, as are ``decode``'s
    ``seed`` / ``noise`` and ``generate``'s ``observation_noise``),
    ``stochastic=True`` encodes differ between seeds only where
    ``stochastic_encoder`` (refused otherwise; a ``seed`` without it is
    refused), seeds reproduce, ``output`` gives uint8 or floats in range, bad
    ``num_samples`` / ``temperature`` / ``noise_scale`` / ``output`` values
    are refused.
``bad_input``
    Wrong example shapes, wrong dtypes, NaN and values outside
    ``value_range`` (``log_prob``, ``bits_per_dim``, ``encode``, ``fit``),
    bad latents and noise (``decode``, ``generate``) get the model's own
    ``ValueError``, which names the model.

A class-conditional model (``num_classes``) goes through the same checks
with labels: the dataset's labels wherever examples enter (training, log
densities, reloads, the served ``log_prob``), every class in turn wherever
samples are drawn (``sample``, ``generate``, the SavedModel and LiteRT
samplers); ``contract`` adds ``classify`` and ``class_log_likelihoods``
(``log p(x | y)`` per class, equal to ``log_prob(x, labels=y)``) and
``arguments`` the refusal of labels of the wrong length, dtype or range, and
of a draw without labels (an unconditional model refuses any labels).

All checks run even when an earlier one fails (a failed ``train`` leaves a
freshly built, act-norm-initialized model for the rest); the
``AssertionError`` at the end names every failed check. This module never
imports ``export`` (``zoo`` does not depend on it): the caller passes the
exporters in (``exporters=export``) and, for serving without the project, a
``serve`` callable (the default serves in this process).

``smoke_check`` is the backend-neutral part (build, one ``fit`` step,
sampling) that the tests also run under ``KERAS_BACKEND=jax``.

Example:

>>> import export
>>> from zoo.testing import check_model
>>> check_model("nf_digits", "digits", "/tmp/harness", overrides={"steps_per_level": 1, "hidden_channels": 8},
...             exporters=export)
"""

import json
import math
import os
import time
import traceback

import keras
import numpy as np
from keras import ops

from layers.seeds import draw_noise
from zoo.models.base import GenerativeModel

CHECKS = ("train", "contract", "evaluate", "round_trip", "reload_fit", "saved_model", "litert", "arguments",
          "bad_input")
HARNESS_TRAINING = {"learning_rate": 3e-3, "warmup_steps": 0, "decay": "none"}
"""The few-step runs of the harness: a constant, higher learning rate (``zoo.train``'s ``training=``)."""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ helpers
def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


def _refused(call, owner, what, exception=ValueError):
    """Asserts ``call()`` raises ``exception`` whose message names ``owner``; returns the message."""
    try:
        call()
    except exception as error:
        message = str(error)
        assert owner in message, f"{what}: the {type(error).__name__} does not name the model {owner!r}: {message}"
        return message
    except Exception as error:  # noqa: BLE001 (the harness reports what it got)
        raise AssertionError(f"{what}: expected a {exception.__name__} naming {owner!r}, got "
                             f"{type(error).__name__}: {str(error)[:300]}") from error
    raise AssertionError(f"{what}: accepted silently (expected a {exception.__name__} naming {owner!r}).")


def _assert_same(actual, expected, what, rtol=1e-6, atol=1e-6):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if actual.dtype == np.uint8:
        assert np.array_equal(actual, expected), f"{what}: {np.mean(actual != expected):.1%} of the pixels differ"
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def _assert_agree(served, expected, what, rtol=1e-4, atol=1e-4):
    """Served vs Keras: float32 rounding apart (uint8: at most 1% of pixels one level apart)."""
    served, expected = np.asarray(served), np.asarray(expected)
    assert served.shape == expected.shape, f"{what}: shape {served.shape} != {expected.shape}"
    if expected.dtype == np.uint8:
        assert served.dtype == np.uint8, f"{what}: dtype {served.dtype}, expected uint8"
        differ = np.mean(served != expected)
        assert differ <= 0.01, f"{what}: {differ:.1%} of the pixels differ"
        assert np.abs(served.astype(int) - expected.astype(int)).max() <= 255 // 8 + 1, f"{what}: pixels far apart"
    else:
        np.testing.assert_allclose(served, expected, rtol=rtol, atol=atol, err_msg=what)


def _changes(a, b, what):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} and {b.shape}"
    assert not np.array_equal(a, b), f"{what}: no effect (identical outputs)"


def _finite(value, what):
    value = _np(value)
    assert np.all(np.isfinite(value.astype(np.float64))), f"{what}: non-finite values"
    return value


def _weights(model):
    return [_np(w.value) for w in model.trainable_weights]


def _load_examples(dataset, split, count, seed=0, labels=False):
    """The first ``count`` examples of ``split`` as the dataset gives them (``labels=True``: and their labels)."""
    from zoo.training.data import load_training_data

    loaded = load_training_data(dataset, split, None if split == "test" else count, seed, labels=labels)
    if labels:
        return np.asarray(loaded[0])[:count], np.asarray(loaded[1])[:count]
    return np.asarray(loaded)[:count]


def _given(labels):
    """``{"labels": labels}``, or ``{}`` for an unconditional model's None (``**`` into the model's calls)."""
    return {} if labels is None else {"labels": labels}


def _model_inputs(x, labels):
    """What ``model(...)`` / ``compute_loss(x=...)`` take: ``x``, or ``(x, labels)`` for a class-conditional model."""
    return x if labels is None else (x, labels)


def _fingerprint(model, x, seed=7, labels=None):
    """Outputs that two copies of one model must share (deterministic calls only); ``labels``: those of ``x``."""
    latent = model.encode(x)
    drawn = _given(model.every_class(3))
    prints = {"log_prob": _np(model.log_prob(x, **_given(labels))), "encode": _np(latent),
              "decode": _np(model.decode(latent)), "sample": _np(model.sample(3, temperature=0.8, seed=seed, **drawn))}
    if model.has_observation_noise:
        prints["sample_noisy"] = _np(model.sample(3, temperature=0.8, noise_scale=0.5, seed=seed, **drawn))
        prints["decode_noisy"] = _np(model.decode(latent, noise_scale=0.5, seed=seed))
    if model.stochastic_encoder:
        prints["encode_stochastic"] = _np(model.encode(x, stochastic=True, seed=seed))
    for term, value in model(_model_inputs(x, labels), training=False).items():  # evaluation-mode objective
        prints[f"objective term {term}"] = _np(value)
    return prints


class _StepLosses(keras.callbacks.Callback):
    """Per-step training losses (from Keras's running epoch means), per ``fit`` call, with the objective's terms."""

    def __init__(self, probe):
        super().__init__()
        self.probe = probe  # model -> (a few examples as the dataset gives them, their labels or None)
        self.fits = []
        self.epoch_logs = []

    def on_train_begin(self, logs=None):
        raw, labels = self.probe(self.model)
        terms = tuple(sorted(self.model(_model_inputs(self.model.as_model_input(raw), labels), training=False)))
        self.fits.append({"terms": terms, "running": []})

    def on_train_batch_end(self, batch, logs=None):
        self.fits[-1]["running"].append(float((logs or {}).get("loss", math.nan)))

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs.append({k: float(v) for k, v in (logs or {}).items()})

    def stages(self):
        """Per-step losses grouped by objective (consecutive ``fit`` calls with the same terms)."""
        stages = []
        for fit in self.fits:
            running = fit["running"]
            steps = [running[0]] + [(i + 1) * running[i] - i * running[i - 1] for i in range(1, len(running))] \
                if running else []
            if stages and stages[-1][0] == fit["terms"]:
                stages[-1][1].extend(steps)
            else:
                stages.append((fit["terms"], list(steps)))
        return stages


class CheckResults(dict):
    """check name -> ``"passed"`` / ``"skipped: ..."`` / ``"failed: ..."``.

    ``seconds``: check name -> wall time; ``trends``: per objective stage of the
    harness run, the training loss's slope per step and its t-value (``train``).
    """

    seconds = None
    trends = None


# ------------------------------------------------------------------ serving
def serve_in_process(requests):
    """Runs SavedModel / LiteRT signature calls in this process (``serve``'s default; see ``check_model``).

    Each request is a dict: ``kind`` (``"saved_model"``, ``"tflite"`` or
    ``"inputs"``: the input names of a SavedModel signature), ``path``,
    ``signature`` and ``inputs`` (name -> NumPy array). Returns one dict of
    NumPy outputs per request (``"inputs"``: ``{"names": array of str}``).
    """
    import tensorflow as tf

    loaded = {}
    results = []
    for request in requests:
        kind, path, signature = request["kind"], request["path"], request["signature"]
        if kind == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            runner = Interpreter(model_path=path).get_signature_runner(signature)
            results.append({k: np.asarray(v) for k, v in runner(**request.get("inputs", {})).items()})
            continue
        if path not in loaded:
            loaded[path] = tf.saved_model.load(path)
        function = loaded[path].signatures[signature]
        if kind == "inputs":
            results.append({"names": np.array(sorted(function.structured_input_signature[1]))})
        else:
            outputs = function(**{k: tf.constant(v) for k, v in request.get("inputs", {}).items()})
            results.append({k: v.numpy() for k, v in outputs.items()})
    return results


# ------------------------------------------------------------------ the harness
def check_model(model_or_preset_name, data, tmp_dir, overrides=None, epochs=2, batch_size=16, num_examples=128,
                validation_examples=None, training=None, eval_examples=40, exporters=None, serve=None, checks=CHECKS,
                seed=0, raise_on_failure=True):
    """Runs every check of the model contract (see the module docstring) on one model.

    Args:
        model_or_preset_name: a registered preset name (trained through
            ``zoo.train``) or a built ``zoo.GenerativeModel`` (trained with
            ``compile`` + ``fit``; ``zoo.train`` takes preset names only).
        data: a dataset name of ``zoo.train`` / ``zoo.evaluate`` (``digits``,
            a synthetic manifold such as ``spiral``, ``sin``,
            ``fading_squares``).
        tmp_dir: a writable directory (run, reports, exports).
        overrides: builder arguments for ``zoo.get`` (``model_overrides``), to
            shrink the preset.
        epochs: epochs of the harness run (a two-phase model needs >= 2).
        batch_size: training batch size.
        num_examples: training examples (``num_examples // batch_size`` steps
            per epoch).
        validation_examples: None: ``zoo.train`` loads ``data`` by name (and
            validates on its whole test split); an int: the harness passes
            ``zoo.train`` the arrays ``(train slice, first validation_examples
            test examples)`` instead (for datasets with a large test split).
        training: ``zoo.train`` settings over ``HARNESS_TRAINING``.
        eval_examples: examples for ``zoo.evaluate`` and the API checks.
        exporters: an object with ``saved_model(model, path)`` and
            ``tflite_sampler(model, path, batch_size)`` (the ``export``
            package), or None to skip ``saved_model`` and ``litert``.
        serve: ``serve(requests) -> outputs`` (``serve_in_process``'s
            protocol); default ``serve_in_process``.
        checks: the names of the checks to run (default: all of ``CHECKS``).
        seed: seed of the run, the data order and the draws.
        raise_on_failure: raise an ``AssertionError`` naming every failed check.

    Returns:
        A ``CheckResults``: dict check name -> ``"passed"``, ``"skipped: ..."``
        or ``"failed: ..."``, with the checks' wall times in ``.seconds``.

    Raises:
        AssertionError: when a check failed (``raise_on_failure``).
    """
    from zoo.presets import registry, weights

    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"check_model: unknown check(s) {sorted(unknown)}; known: {CHECKS}.")
    os.makedirs(tmp_dir, exist_ok=True)
    serve = serve or serve_in_process
    preset_name = model_or_preset_name if isinstance(model_or_preset_name, str) else None
    if preset_name is None and not isinstance(model_or_preset_name, GenerativeModel):
        raise TypeError(f"check_model takes a preset name or a zoo.GenerativeModel; received "
                        f"{type(model_or_preset_name).__name__}.")
    state = {"model": None if preset_name else model_or_preset_name}
    results, seconds = {}, {}

    def fresh():
        model = registry.get(preset_name, **dict(overrides or {}))
        model.initialize(model.as_model_input(_load_examples(data, "train", max(batch_size, 16), seed)))
        return model

    def model():
        if state["model"] is None:
            state["model"] = fresh()
        return state["model"]

    def labelled(count=None, split="test"):
        """``(examples in the model's input form, their labels or None for an unconditional model)``, one load."""
        raw, labels = _examples_and_labels(model(), data, split, count or eval_examples, seed)
        return model().as_model_input(raw), labels

    def examples(count=None):
        return labelled(count)[0]

    def classes(count):
        """``{"labels": every class in turn}`` for a class-conditional model's draws, ``{}`` otherwise."""
        return _given(model().every_class(count))

    def one_class():
        """``{"labels": 0}`` (class 0 for every draw) for a class-conditional model, ``{}`` otherwise."""
        return _given(None if model().num_classes is None else 0)

    def run(name, check):
        if name not in checks:
            results[name] = "skipped: not requested"
            return
        start = time.time()
        try:
            outcome = check()
            results[name] = "passed" if outcome is None else f"skipped: {outcome}"
        except Exception as error:  # noqa: BLE001 (every check runs; all failures are reported)
            where = traceback.extract_tb(error.__traceback__)[-1]
            results[name] = (f"failed: {type(error).__name__}: {str(error).strip()[:1500]} "
                             f"(at {os.path.basename(where.filename)}:{where.lineno})")
        seconds[name] = round(time.time() - start, 1)

    # ------------------------------------------------------------- train
    def check_train():
        from zoo.training.trainer import train

        settings = dict(HARNESS_TRAINING, **(training or {}))
        if preset_name is None:
            stages = _train_instance(model(), data, epochs, batch_size, num_examples, settings, seed)
            state["trends"] = _trends(stages)
            _check_losses_fall(stages)
            return None
        recorder = _StepLosses(lambda net: _examples_and_labels(net, data, "test", 4, seed))
        out = os.path.join(tmp_dir, "run")
        dataset = data if validation_examples is None else (
            _load_examples(data, "train", num_examples, seed), _load_examples(data, "test", validation_examples, seed))
        result = train(model=preset_name, dataset=dataset, epochs=epochs, batch_size=batch_size, out=out, seed=seed,
                       training=settings, model_overrides=dict(overrides or {}), num_examples=num_examples,
                       checkpoint_every=0, sample_every=epochs, tensorboard=False, verbose=0, callbacks=[recorder])
        net = result.model
        state["model"] = net
        assert isinstance(net, GenerativeModel), f"zoo.train returned a {type(net).__name__}"
        assert net.is_initialized, "the trained model is not initialized"
        state["trends"] = _trends(recorder.stages())
        _check_losses_fall(recorder.stages())
        assert len(result.history) == epochs, f"history has {len(result.history)} entries for {epochs} epochs"
        for entry in result.history:  # the monitored value (what the best-model export follows) and the diagnostics
            for key in ("loss", "val_loss", net.monitor, *net.diagnostics, *("val_" + d for d in net.diagnostics)):
                assert key in entry and math.isfinite(entry[key]), f"history entry {entry} lacks a finite {key!r}"
        likelihood = net.likelihood_term is not None
        for logs in recorder.epoch_logs:
            for key in ("bits_per_dim", "val_bits_per_dim"):
                assert (key in logs) == likelihood, (
                    f"fit logs {sorted(logs)}: {key!r} must be logged exactly when the model has a likelihood_term "
                    f"(likelihood_term={net.likelihood_term!r})")
                if likelihood:
                    assert math.isfinite(logs[key]), f"{key} = {logs[key]}"
        for entry in result.history:
            for key in ("bits_per_dim", "val_bits_per_dim"):
                assert (key in entry) == likelihood, (
                    f"history entry {sorted(entry)}: {key!r} must be recorded exactly when the model has a "
                    f"likelihood_term (likelihood_term={net.likelihood_term!r})")
        for part in ("final", "best"):
            assert weights.is_preset_dir(os.path.join(out, part)), f"zoo.train wrote no {part}/ preset directory"
        with open(os.path.join(out, "history.json")) as f:
            assert len(json.load(f)["history"]) == epochs, "history.json has the wrong number of epochs"
        grid = os.path.join(out, "samples", f"epoch_{epochs:04d}.png")
        assert os.path.isfile(grid) and _is_png(grid), f"no PNG sample grid at {grid}"

    # ------------------------------------------------------------- contract
    def check_contract():
        net = model()
        x, labels = labelled(8)
        given = _given(labels)
        facts = net.describe()
        assert isinstance(json.loads(json.dumps(facts)), dict), "describe() is not plain data"
        expected = {"data_kind": net.data_kind, "n_bits": net.n_bits, "example_shape": list(net.example_shape),
                    "latent_shape": list(net.latent_shape), "likelihood_term": net.likelihood_term,
                    "density": net.density, "stochastic_encoder": net.stochastic_encoder, "name": net.name}
        for key, value in expected.items():
            assert facts[key] == value, f"describe()[{key!r}] = {facts[key]!r}, the model says {value!r}"
        assert facts["noise_shapes"] == [None if s is None else list(s) for s in net.noise_shapes]
        assert net.data_kind in ("pixels", "float") and net.density in ("ambient", "manifold")
        assert str(x.dtype) == net.input_dtype, f"as_model_input gave {x.dtype}, the model takes {net.input_dtype}"
        net.check_dataset(x)
        net.validate(x)
        n = len(x)
        log_prob = _finite(net.log_prob(x, **given), "log_prob")
        assert log_prob.shape == (n,), f"log_prob shape {log_prob.shape}"
        bpd = _finite(net.bits_per_dim(x, **given), "bits_per_dim")
        np.testing.assert_allclose(bpd, -log_prob / (net.num_dims * math.log(2.0)), rtol=1e-5, atol=1e-5,
                                   err_msg="bits_per_dim != -log_prob / (D ln 2)")
        latent = _finite(net.encode(x), "encode")
        assert latent.shape == (n,) + tuple(net.latent_shape), (
            f"encode returns {latent.shape[1:]} per example; latent_shape says {tuple(net.latent_shape)}")
        decoded = _finite(net.decode(latent), "decode")
        assert decoded.shape == (n,) + net.example_shape, f"decode shape {decoded.shape}"
        wanted = np.uint8 if net.default_output == "uint8" else np.float32
        assert decoded.dtype == wanted, f"decode dtype {decoded.dtype}, the default output is {net.default_output}"
        samples = _finite(net.sample(4, seed=1, **classes(4)), "sample")
        assert samples.shape == (4,) + net.example_shape, f"sample shape {samples.shape}"
        assert samples.dtype == decoded.dtype, f"sample dtype {samples.dtype}"
        noise = draw_noise(net.noise_shapes, 4, 1)
        _assert_same(net.generate(*noise, temperature=1.0, **classes(4)), samples,
                     "sample(seed) != generate(draw_noise(seed))")
        terms = net(_model_inputs(x, labels), training=False)
        assert isinstance(terms, dict) and terms, "model(x) must return a dict of per-example terms"
        for key, value in terms.items():
            assert _finite(value, f"term {key}").shape == (n,), f"term {key!r} is not per example"
        if net.likelihood_term is not None:
            assert net.likelihood_term in terms, f"likelihood_term {net.likelihood_term!r} not in {sorted(terms)}"
        loss = float(_np(net.compute_loss(x=_model_inputs(x, labels), y_pred=terms, training=False)))
        assert set(net.diagnostics) <= set(terms), f"diagnostics {net.diagnostics} not all in {sorted(terms)}"
        total = float(np.mean(sum(_np(v) for k, v in terms.items() if k not in net.diagnostics)))
        penalties = float(sum(_np(p) for p in net.losses)) if net.losses else 0.0
        np.testing.assert_allclose(loss, (total + penalties) / (net.num_dims * math.log(2.0)), rtol=1e-5, atol=1e-6,
                                   err_msg="compute_loss != mean(sum of terms) / (D ln 2)")
        # The training data again (zoo.train fitted the post-hoc priors on it): the same priors, or a no-op {}.
        train_x, train_labels = labelled(num_examples, "train")
        fitted = net.fit_priors(train_x, seed=seed, **_given(train_labels))
        assert isinstance(fitted, dict), f"fit_priors returned a {type(fitted).__name__}, not a dict"
        assert facts.get("num_classes") == net.num_classes, f"describe()['num_classes'] = {facts.get('num_classes')}"
        if net.num_classes is None:
            _refused(lambda: net.classify(x), net.name, "classify of an unconditional model")
            return
        # The Bayes classifier: log p(x | y) per class, its column y = log_prob(x, labels=y), argmax with log p(y).
        per_class = _finite(net.class_log_likelihoods(x), "class_log_likelihoods")
        assert per_class.shape == (n, net.num_classes), f"class_log_likelihoods shape {per_class.shape}"
        _assert_agree(per_class[np.arange(n), labels], log_prob, "class_log_likelihoods at the labels vs log_prob")
        prior = np.asarray(net.class_log_prior, np.float64)
        assert prior.shape == (net.num_classes,) and abs(np.exp(prior).sum() - 1) < 1e-5, f"class_log_prior {prior}"
        predicted, log_posterior = net.classify(x, return_log_posterior=True)
        assert predicted.shape == (n,) and predicted.dtype == np.int32, (
            f"classify gave {predicted.dtype} {predicted.shape}")
        np.testing.assert_array_equal(predicted, (per_class + prior).argmax(-1), err_msg="classify != argmax")
        np.testing.assert_allclose(np.exp(log_posterior).sum(-1), 1.0, rtol=1e-5, err_msg="classify's posterior")
        _refused(lambda: net.log_prob(x), net.name, "log_prob without labels of a class-conditional model")

    # ------------------------------------------------------------- evaluate
    def check_evaluate():
        from zoo.evaluation.report import evaluate

        net = model()
        out = os.path.join(tmp_dir, "evaluation")
        conditional = net.num_classes is not None  # and the Bayes classifier's accuracy on the split's labels
        report = evaluate(net, data, out, metrics=("bpd", "recon") + (("classify",) if conditional else ()),
                          max_examples=eval_examples, num_samples=eval_examples, seed=seed, progress=False)
        metrics = report["metrics"]
        if conditional:
            accuracy = metrics["classification_accuracy"]
            assert 0.0 <= accuracy["value"] <= 1.0 and accuracy["examples"] == report["examples"], (
                f"classification accuracy {accuracy}")
            assert report["num_classes"] == net.num_classes, f"report num_classes {report.get('num_classes')}"
        bpd = metrics["bits_per_dim"]
        assert math.isfinite(bpd["value"]), f"bits/dim {bpd['value']}"
        assert bpd["density"] == net.density and bpd["n_bits"] == net.n_bits, f"bits/dim provenance {bpd}"
        recon = metrics["reconstruction_error"]
        assert math.isfinite(recon["value"]) and recon["value"] >= 0, f"reconstruction error {recon['value']}"
        assert recon["examples"] == report["examples"] > 0, f"reconstruction error over {recon['examples']} examples"
        assert report["pictures"], "zoo.evaluate drew no picture"
        for what, path in report["pictures"].items():
            assert os.path.isfile(path) and _is_png(path), f"picture {what}: {path} is not a PNG file"
        assert os.path.isfile(os.path.join(out, "report.json")), "no report.json"

    # ------------------------------------------------------------- round trips
    def check_round_trip():
        net = model()
        x, labels = labelled(6)
        reference = _fingerprint(net, x, labels=labels)
        again = _fingerprint(net, x, labels=labels)
        for key in reference:
            _assert_same(again[key], reference[key], f"{key} of the same model twice (not deterministic)")
        path = os.path.join(tmp_dir, f"{net.name}.keras")
        net.save(path)
        loaded = keras.saving.load_model(path)
        directory = os.path.join(tmp_dir, "preset")
        net.save_to_preset(directory, metadata={"harness": True}, overwrite=True)
        rebuilt = registry.get(directory)
        for what, other in ((".keras", loaded), ("preset directory", rebuilt)):
            assert type(other) is type(net), f"{what}: reloaded a {type(other).__name__}"
            assert other.describe() == net.describe(), f"{what}: describe() differs"
            prints = _fingerprint(other, x, labels=labels)
            for key in reference:
                _assert_same(prints[key], reference[key], f"{what} round trip: {key} differs")
        state["reloaded"] = {".keras": loaded, "preset directory": rebuilt}

    def check_reload_fit():
        reloaded = state.get("reloaded")
        if not model().compiled:  # train did not run (or failed early): compile as zoo.train would
            model().compile(optimizer=keras.optimizers.Adam(1e-3))
            reloaded = None
        if reloaded is None:
            path = os.path.join(tmp_dir, "reload.keras")
            model().save(path)
            directory = os.path.join(tmp_dir, "reload_preset")
            model().save_to_preset(directory, overwrite=True)
            reloaded = {".keras": keras.saving.load_model(path), "preset directory": registry.get(directory)}
        x, labels = labelled(batch_size, "train")
        optimizer = model().optimizer.get_config() if getattr(model(), "optimizer", None) is not None else None
        for what, other in reloaded.items():
            assert other.compiled and getattr(other, "optimizer", None) is not None, (
                f"{what}: the reloaded model is not compiled (compiled={other.compiled}, no optimizer)")
            assert optimizer is None or other.optimizer.get_config() == optimizer, f"{what}: another optimizer"
            if what != ".keras":  # one fit step: both reloads re-compile in deserialize -> compile_from_config
                continue
            before = _weights(other)
            history = other.fit(x, labels, batch_size=batch_size, epochs=1, verbose=0)
            loss = history.history["loss"][-1]
            assert math.isfinite(loss), f"{what}: fit after reload gave loss {loss}"
            if other.likelihood_term is not None:
                assert "bits_per_dim" in history.history, f"{what}: fit after reload logs no bits_per_dim"
            changed = sum(not np.array_equal(a, b) for a, b in zip(before, _weights(other)))
            assert changed, f"{what}: fit after reload changed no weight"

    # ------------------------------------------------------------- exports
    def check_saved_model():
        if exporters is None:
            return "no exporters given"
        net = model()
        x, labels = labelled(5)
        given = _given(labels)
        path = exporters.saved_model(net, os.path.join(tmp_dir, "saved_model"), overwrite=True)
        state["saved_model"] = path
        latent = _np(net.encode(x))
        noisy = net.has_observation_noise
        latent_noise, observation_noise = (None if n is None else _np(n) for n in draw_noise(net.noise_shapes, 4, 5))
        f32, i64 = np.float32, np.int64
        decode_in = {"latent": latent, **({"noise_scale": f32(0.5), "seed": i64(11)} if noisy else {})}
        sample_in = {"num_samples": np.int32(5), "temperature": f32(0.8), "seed": i64(3),
                     **({"noise_scale": f32(0.5)} if noisy else {}), **classes(5)}
        generate_in = {"latent_noise": latent_noise, "temperature": f32(0.8),
                       **({"observation_noise": observation_noise, "noise_scale": f32(0.5)} if noisy else {}),
                       **classes(4)}
        calls = {"log_prob": {"x": x, **given}, "bits_per_dim": {"x": x, **given}, "encode": {"x": x},
                 "decode": decode_in, "sample": sample_in, "generate": generate_in}
        if net.num_classes is not None:
            calls["classify"] = {"x": x}
        requests = [{"kind": "inputs", "path": path, "signature": s, "inputs": {}} for s in calls]
        requests += [{"kind": "saved_model", "path": path, "signature": s, "inputs": v} for s, v in calls.items()]
        served = dict(zip([f"inputs/{s}" for s in calls] + list(calls), serve(requests)))
        for signature, inputs in calls.items():
            names = sorted(str(n) for n in served[f"inputs/{signature}"]["names"])
            assert names == sorted(inputs), f"SavedModel {signature} takes {names}; expected {sorted(inputs)}"
        expected_pixels = {
            "decode": net.decode(latent, **({"noise_scale": 0.5, "seed": 11} if noisy else {})),
            "sample": net.sample(5, temperature=0.8, seed=3, **({"noise_scale": 0.5} if noisy else {}), **classes(5)),
            "generate": net.generate(latent_noise, observation_noise, 0.8, 0.5 if noisy else None, **classes(4)),
        }
        _assert_agree(served["log_prob"]["log_prob"], _np(net.log_prob(x, **given)), "served log_prob", 1e-4, 1e-3)
        _assert_agree(served["bits_per_dim"]["bits_per_dim"], _np(net.bits_per_dim(x, **given)),
                      "served bits_per_dim", 1e-4, 1e-5)
        if net.num_classes is not None:
            np.testing.assert_array_equal(served["classify"]["label"], net.classify(x), err_msg="served classify")
        _assert_agree(served["encode"]["latent"], latent, "served encode", 1e-4, 1e-4)
        key = "images" if net.data_kind == "pixels" else "samples"
        for signature, value in expected_pixels.items():
            outputs = served[signature]
            wanted = {"images", "images_float"} if key == "images" else {"samples"}
            assert set(outputs) == wanted, f"served {signature} outputs {sorted(outputs)}; expected {sorted(wanted)}"
            _assert_agree(outputs[key], _np(value), f"served {signature}")
            if key == "images":
                np.testing.assert_allclose(outputs["images_float"], _np(value) / 255.0, atol=1 / 255 + 1e-6,
                                           err_msg=f"served {signature} images_float")

    def check_litert():
        if exporters is None:
            return "no exporters given"
        net = model()
        batch = 3
        info = exporters.tflite_sampler(net, os.path.join(tmp_dir, "sampler.tflite"), batch_size=batch,
                                        overwrite=True)
        assert info["bytes"] == os.path.getsize(info["path"]) > 0, f"LiteRT file {info}"
        saved = state.get("saved_model") or exporters.saved_model(net, os.path.join(tmp_dir, "saved_model"),
                                                                  overwrite=True)
        noisy = net.has_observation_noise
        latent_noise, observation_noise = (None if n is None else _np(n)
                                           for n in draw_noise(net.noise_shapes, batch, 9))
        inputs = {"latent_noise": latent_noise, "temperature": np.float32(0.7),
                  **({"observation_noise": observation_noise, "noise_scale": np.float32(0.5)} if noisy else {}),
                  **classes(batch)}
        knobs = {"temperature": np.float32(0.8), **({"noise_scale": np.float32(1.0)} if noisy else {}),
                 **classes(batch)}  # LiteRT's sample: a label per sample of its fixed batch
        lite, reference, first, again, other = serve([
            {"kind": "tflite", "path": info["path"], "signature": "generate", "inputs": inputs},
            {"kind": "saved_model", "path": saved, "signature": "generate", "inputs": inputs},
            {"kind": "tflite", "path": info["path"], "signature": "sample", "inputs": dict(knobs, seed=np.int32(5))},
            {"kind": "tflite", "path": info["path"], "signature": "sample", "inputs": dict(knobs, seed=np.int32(5))},
            {"kind": "tflite", "path": info["path"], "signature": "sample", "inputs": dict(knobs, seed=np.int32(6))},
        ])
        key = "images" if net.data_kind == "pixels" else "samples"
        assert set(lite) == set(reference), f"LiteRT generate outputs {sorted(lite)}, SavedModel {sorted(reference)}"
        _assert_agree(lite[key], reference[key], "LiteRT generate vs SavedModel generate")
        if key == "images":
            np.testing.assert_allclose(lite["images_float"], reference["images_float"], atol=1 / 255 + 1e-6,
                                       err_msg="LiteRT generate images_float")
        assert lite[key].shape == (batch,) + net.example_shape, f"LiteRT generate shape {lite[key].shape}"
        _finite(first[key], "LiteRT sample")
        assert np.array_equal(first[key], again[key]), "LiteRT sample with equal seeds differs"
        assert not np.array_equal(first[key], other[key]), "LiteRT sample ignores its seed"

    # ------------------------------------------------------------- arguments
    def check_arguments():
        net = model()
        name = net.name
        x = examples(4)
        draw = one_class()

        def sample(*args, **kwargs):
            return net.sample(*args, **draw, **kwargs)

        def generate(*args, **kwargs):
            return net.generate(*args, **draw, **kwargs)

        floats = "float"
        base = _np(sample(4, seed=3, output=floats))
        _assert_same(_np(sample(4, seed=3, output=floats)), base, "sample with equal seeds")
        _changes(sample(4, seed=4, output=floats), base, "sample's seed")
        _changes(sample(4, temperature=0.5, seed=3, output=floats), base, "sample's temperature")
        _finite(sample(2, temperature=0.0, seed=3), "sample at temperature 0")
        noise = draw_noise(net.noise_shapes, 4, 3)
        _changes(generate(*noise, temperature=0.5, output=floats), generate(*noise, output=floats),
                 "generate's temperature")
        for bad in (0, -3, 2.7, True, "2", None):
            _refused(lambda: sample(bad), name, f"sample({bad!r})")
        for bad in (math.nan, -1.0, math.inf, "hot"):
            _refused(lambda: sample(2, temperature=bad), name, f"sample(temperature={bad!r})")
            _refused(lambda: generate(*noise, temperature=bad), name, f"generate(temperature={bad!r})")
        _refused(lambda: sample(2, output="png"), name, "sample(output='png')")
        _refused(lambda: net.decode(net.encode(x), output="int8"), name, "decode(output='int8')")
        pixels = sample(4, seed=3, output="float")
        assert _np(pixels).dtype == np.float32, f"output='float' gave {_np(pixels).dtype}"
        if net.is_image_model:
            images = _np(sample(4, seed=3, output="uint8"))
            assert images.dtype == np.uint8, f"output='uint8' gave {images.dtype}"
            values = _np(pixels)
            if net.data_kind == "pixels":  # pixels / 255
                assert values.min() >= 0 and values.max() <= 1, (
                    f"output='float' images in [{values.min()}, {values.max()}], not [0, 1]")
            else:  # float images in [0, 1]: the pixels show them clipped to [0, 1]
                values = np.clip(values, 0.0, 1.0)
            np.testing.assert_allclose(images / 255.0, values, atol=0.5 / 255 + 1e-6,
                                       err_msg="output='uint8' and output='float' disagree")
        else:
            _refused(lambda: sample(2, output="uint8"), name, "sample(output='uint8') of a vector model")
        latent = net.encode(x)
        if net.has_observation_noise:
            _changes(sample(4, noise_scale=0.0, seed=3, output=floats), base, "sample's noise_scale")
            on = _np(net.decode(latent, output=floats))
            _assert_same(_np(net.decode(latent, noise_scale=0.0, seed=2, output=floats)), on,
                         "decode at noise_scale=0 (on the manifold)")
            noisy = _np(net.decode(latent, noise_scale=1.0, seed=2, output=floats))
            _changes(noisy, on, "decode's noise_scale")
            _assert_same(_np(net.decode(latent, noise_scale=1.0, seed=2, output=floats)), noisy, "decode's seed")
            _changes(net.decode(latent, noise_scale=1.0, seed=5, output=floats), noisy, "decode's seed")
            given = keras.random.normal((len(x),) + tuple(net.noise_shapes[1]), seed=8)
            _changes(net.decode(latent, noise_scale=1.0, noise=given, output=floats), noisy, "decode's noise")
            _changes(generate(noise[0], noise[1] * 0.0, output=floats), generate(*noise, output=floats),
                     "generate's observation_noise")
            _refused(lambda: generate(noise[0]), name, "generate without observation_noise")
            for bad in (-1.0, math.nan):
                _refused(lambda: sample(2, noise_scale=bad), name, f"sample(noise_scale={bad!r})")
                _refused(lambda: net.decode(latent, noise_scale=bad), name, f"decode(noise_scale={bad!r})")
        else:
            _refused(lambda: sample(2, noise_scale=0.5), name, "sample(noise_scale=) without observation noise")
            _refused(lambda: sample(2, noise_scale=0.0), name, "sample(noise_scale=0) without observation noise")
            _refused(lambda: generate(*noise, noise_scale=1.0), name, "generate(noise_scale=)")
            _refused(lambda: net.decode(latent, noise_scale=0.5), name, "decode(noise_scale=)")
            _refused(lambda: net.decode(latent, seed=1), name, "decode(seed=) without observation noise")
            _refused(lambda: net.decode(latent, noise=latent), name, "decode(noise=) without observation noise")
            _refused(lambda: generate(noise[0], noise[0]), name, "generate(observation_noise=)")
        deterministic = _np(latent)
        _assert_same(_np(net.encode(x)), deterministic, "encode twice")
        if net.stochastic_encoder:
            draw = _np(net.encode(x, stochastic=True, seed=1))
            assert draw.shape == deterministic.shape, f"stochastic encode shape {draw.shape}"
            _assert_same(_np(net.encode(x, stochastic=True, seed=1)), draw, "stochastic encode with equal seeds")
            _changes(net.encode(x, stochastic=True, seed=2), draw, "stochastic encode's seed")
            _changes(draw, deterministic, "encode's stochastic=True")
        else:
            _refused(lambda: net.encode(x, stochastic=True), name, "encode(stochastic=True) of a deterministic encoder")
        _refused(lambda: net.encode(x, seed=1), name, "encode(seed=) without stochastic=True")
        if net.num_classes is None:  # labels are refused, not ignored
            _refused(lambda: net.sample(2, seed=0, labels=0), name, "sample(labels=) of an unconditional model")
            _refused(lambda: net.log_prob(x, labels=np.zeros(len(x), np.int32)), name,
                     "log_prob(labels=) of an unconditional model")
            return
        k = net.num_classes
        _refused(lambda: net.sample(2, seed=0), name, "sample without labels of a class-conditional model")
        _refused(lambda: net.generate(*draw_noise(net.noise_shapes, 2, 0)), name, "generate without labels")
        for labels, what in ((np.zeros(3, np.int32), "three labels for two samples"),
                             (np.array([0.0, 1.0], np.float32), "float labels"),
                             (np.array([0, k], np.int32), f"label {k} of {k} classes"),
                             (np.array([-1, 0], np.int32), "a negative label"),
                             (np.zeros((2, 1), np.int32), "labels of shape (2, 1)")):
            _refused(lambda: net.sample(2, seed=0, labels=labels), name, f"sample with {what}")
        _refused(lambda: net.log_prob(x, labels=np.zeros(len(x) + 1, np.int32)), name, "log_prob with a label too many")
        _refused(lambda: net.log_prob(x, labels=k), name, f"log_prob(labels={k}) of {k} classes")

    # ------------------------------------------------------------- bad input
    def check_bad_input():
        net = model()
        name = net.name
        x, labels = labelled(4)
        given, draw = _given(labels), one_class()
        entry_points = {"log_prob": lambda v: net.log_prob(v, **given),
                        "bits_per_dim": lambda v: net.bits_per_dim(v, **given), "encode": net.encode}
        wider = np.concatenate([x, x[..., :1]], axis=-1)
        bad = {"an example shape with one more channel": wider, "an extra axis": x[:, None]}
        if net.data_kind == "pixels":
            bad["float pixels"] = x.astype(np.float32)
            bad["int32 pixels"] = x.astype(np.int32)
        else:
            bad["integer data"] = np.round(x).astype(np.int32)
            nan = x.copy()
            nan.flat[1] = np.nan
            bad["NaN"] = nan
            inf = x.copy()
            inf.flat[0] = np.inf
            bad["inf"] = inf
            if net.value_range is not None:
                low, high = net.value_range
                above, below = x.copy(), x.copy()
                above.flat[0] = high + 0.5
                below.flat[-1] = low - 0.5
                bad["a value above value_range"] = above
                bad["a value below value_range"] = below
        bad["no examples"] = x[:0]  # refused on both backends alike
        for entry, call in entry_points.items():  # nested Python lists are arrays (as TFP and Keras take them)
            if net.data_kind == "pixels":  # ints: an int64 array, refused as pixels are (uint8 only)
                _refused(lambda: call(x.tolist()), name, f"{entry} of a nested list of pixel values")
            else:
                _assert_same(_np(call(x.tolist())), _np(call(x)), f"{entry} of a nested list")
        for what, value in bad.items():
            for entry, call in entry_points.items():
                _refused(lambda: call(value), name, f"{entry} of {what}")
            if what not in ("NaN", "inf") and "value_range" not in what:
                _refused(lambda: net.fit(value, labels, batch_size=len(value), epochs=1, verbose=0), name,
                         f"fit on {what}")
        latent = _np(net.encode(x))
        wrong = np.concatenate([latent, latent[:, :1]], axis=-1)
        _refused(lambda: net.decode(wrong), name, "decode of a latent of the wrong shape")
        nan_latent = latent.copy()
        nan_latent.flat[0] = np.nan
        _refused(lambda: net.decode(nan_latent), name, "decode of a NaN latent")
        noise = [None if n is None else _np(n) for n in draw_noise(net.noise_shapes, 2, 0)]
        wrong_noise = np.concatenate([noise[0], noise[0][:, :1]], axis=-1)
        _refused(lambda: net.generate(wrong_noise, noise[1], **draw), name,
                 "generate with latent noise of the wrong shape")
        nan_noise = noise[0].copy()
        nan_noise.flat[0] = np.nan
        _refused(lambda: net.generate(nan_noise, noise[1], **draw), name, "generate with NaN latent noise")

    run("train", check_train)
    run("contract", check_contract)
    run("evaluate", check_evaluate)
    run("round_trip", check_round_trip)
    run("reload_fit", check_reload_fit)
    run("saved_model", check_saved_model)
    run("litert", check_litert)
    run("arguments", check_arguments)
    run("bad_input", check_bad_input)
    results = CheckResults((name, results[name]) for name in CHECKS)
    results.seconds = {name: seconds.get(name, 0.0) for name in CHECKS}
    results.trends = state.get("trends")
    failed = {k: v for k, v in results.items() if v.startswith("failed")}
    if failed and raise_on_failure:
        label = preset_name or model().name
        raise AssertionError(f"{label}: {len(failed)} of {len(CHECKS)} checks failed:\n"
                             + "\n".join(f"[{k}] {v[len('failed: '):]}" for k, v in failed.items()))
    return results


def _check_losses_fall(stages):
    """Every step loss is finite and, per objective stage, falls: a negative least-squares slope over the steps,
    at least two standard errors below zero (so batch-to-batch noise alone does not pass)."""
    assert stages and all(steps for _, steps in stages), "no training step was recorded"
    for terms, steps in stages:
        assert all(math.isfinite(s) for s in steps), f"non-finite training loss in stage {terms}: {steps}"
        assert len(steps) >= 4, f"stage {terms} has {len(steps)} steps; the harness needs >= 4 to judge the loss"
        slope, t_value = _trend(steps)
        assert t_value < -2.0, (
            f"the training loss did not fall in stage {terms}: slope {slope:.4g} per step, {t_value:.2f} standard "
            f"errors (needs < -2; steps {[round(s, 4) for s in steps]})")


def _trends(stages):
    return [{"terms": list(terms), "steps": len(steps), "slope": _trend(steps)[0], "t_value": _trend(steps)[1]}
            for terms, steps in stages if len(steps) > 2]


def _trend(values):
    """Least-squares slope of ``values`` against their index and its t-value (slope / standard error)."""
    y = np.asarray(values, np.float64)
    t = np.arange(len(y), dtype=np.float64)
    slope, intercept = np.polyfit(t, y, 1)
    residual = y - (slope * t + intercept)
    spread = math.sqrt(float(np.sum(residual**2)) / max(len(y) - 2, 1) / float(np.sum((t - t.mean()) ** 2)))
    return float(slope), (float(slope) / spread if spread > 0 else (-math.inf if slope < 0 else math.inf))


def _examples_and_labels(model, dataset, split, count, seed):
    """``(examples, labels)`` for a class-conditional model, ``(examples, None)`` otherwise."""
    if model.num_classes is None:
        return _load_examples(dataset, split, count, seed), None
    return _load_examples(dataset, split, count, seed, labels=True)


def _train_instance(model, data, epochs, batch_size, num_examples, settings, seed):
    """``compile`` + ``fit`` for a model given as an instance (``zoo.train`` builds presets by name)."""
    from zoo.training.optimizers import make_optimizer, training_settings

    raw, labels = _examples_and_labels(model, data, "train", num_examples, seed)
    x = model.as_model_input(raw)
    steps = len(x) // batch_size
    model.compile(optimizer=make_optimizer(training_settings(None, settings), steps * epochs))
    recorder = _StepLosses(lambda _: (raw[:4], None if labels is None else labels[:4]))
    for epoch in range(epochs):
        model.begin_training_epoch(epoch, epochs)
        model.fit(x[: steps * batch_size], None if labels is None else labels[: steps * batch_size],
                  batch_size=batch_size, epochs=1, verbose=0, shuffle=False, callbacks=[recorder])
    return recorder.stages()


# ------------------------------------------------------------------ any backend
def smoke_check(model_or_preset_name, data, overrides=None, batch_size=16, seed=0):
    """Builds, fits one step and samples, on whichever Keras backend runs (the tests run it under JAX).

    Args:
        model_or_preset_name: a preset name or a built ``zoo.GenerativeModel``.
        data: a dataset name (as ``check_model``'s).
        overrides: builder arguments for ``zoo.get``.
        batch_size: the one step's batch.
        seed: seed of the data and the samples.

    Returns:
        dict with the step's ``loss`` and the ``backend``.

    Raises:
        AssertionError: naming what failed.
    """
    from zoo.presets import registry

    keras.utils.set_random_seed(seed)
    model = (registry.get(model_or_preset_name, **dict(overrides or {}))
             if isinstance(model_or_preset_name, str) else model_or_preset_name)
    assert isinstance(model, GenerativeModel), f"built a {type(model).__name__}"
    raw, labels = _examples_and_labels(model, data, "train", batch_size, seed)
    x = model.as_model_input(raw)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = _weights(model)
    history = model.fit(x, labels, batch_size=batch_size, epochs=1, verbose=0)
    loss = history.history["loss"][-1]
    assert math.isfinite(loss), f"{model.name}: loss {loss} after one step"
    assert model.is_initialized, f"{model.name}: fit did not initialize the model"
    assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(model))), f"{model.name}: no weight changed"
    drawn = _given(model.every_class(3))
    samples = _finite(model.sample(3, temperature=0.8, seed=seed, **drawn), f"{model.name}: samples")
    assert samples.shape == (3,) + model.example_shape, f"{model.name}: sample shape {samples.shape}"
    _assert_same(_np(model.sample(3, temperature=0.8, seed=seed, **drawn)), samples, f"{model.name}: seeded samples")
    return {"loss": float(loss), "backend": keras.backend.backend()}
