"""A fused CPU kernel for `keras.layers.LSTM`, the batch cut in halves that run on two cores.

Why: the paper's LSTM(64) over 187 steps decides the protocol's wall time on a CPU. Keras runs
it as a loop of small ops (or, unrolled, 187 copies of them) on one core. TensorFlow's
`BlockLSTMV2` runs the whole loop in one op; cut the batch into independent shards and
TensorFlow runs the shards on different cores: the same maths, 1.5-1.7x the samples/s of the
unrolled Keras LSTM in pretraining (benchmarks/bench_lstm.py, docs/models.md).

How: Keras' LSTM asks its backend for a fused implementation (`backend.lstm`, the hook it uses
for cuDNN) and falls back to its own loop when that raises NotImplementedError. `install()`
wraps that hook: on the TensorFlow backend, for what BlockLSTMV2 computes (tanh/sigmoid, a bias,
no mask, batch-major input), it answers with the fused kernel; anything else goes to Keras
as before. Models stay stock `keras.layers.LSTM`: the same weights and configs, saved and served
without this module. TensorFlow registers the V1 gradient for BlockLSTMV2 (another gate order),
so the gradient here calls BlockLSTMGradV2 itself; outputs and gradients match Keras' loop to
float32 rounding (tests/models/test_lstm_kernel.py).

It hooks private symbols (HOOKED), checked at install: where a Keras or TensorFlow release lacks one,
`install()` leaves Keras' own LSTM in place and says so in one warning line. Verified on Keras 3.15.1 and
TensorFlow 2.21.0 (the versions requirements.lock pins; docs/models.md).

Keep tf.data autotuning off around it (steps/training.py: `untuned`): with autotuning on,
TensorFlow ran the shards one after the other in about half the epochs.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import keras

log = logging.getLogger(__name__)
SHARDS = 2  # cores the batch is cut for; results do not depend on it beyond float rounding


# (module, attribute) of every private symbol this kernel hooks or calls.
HOOKED: tuple[tuple[str, str], ...] = (
    ("keras.src.backend", "lstm"),
    ("tensorflow.python.ops.gen_rnn_ops", "block_lstmv2"),
    ("tensorflow.python.ops.gen_rnn_ops", "block_lstm_grad_v2"),
)


def missing_symbols() -> list[str]:
    """The HOOKED symbols this Keras/TensorFlow does not have (an empty list: the kernel can run)."""
    missing = []
    for module, name in HOOKED:
        try:
            found = hasattr(importlib.import_module(module), name)
        except ImportError:
            found = False
        if not found:
            missing.append(f"{module}.{name}")
    return missing


def install(shards: int = SHARDS) -> bool:
    """Route Keras' fused-LSTM hook to `fused_lstm` on the TensorFlow backend (idempotent).

    Returns whether the fused kernel is in place; False, with one warning line, when a hooked symbol is
    missing in this Keras or TensorFlow (the LSTM then runs Keras' own loop: the same maths, slower).
    """
    if keras.backend.backend() != "tensorflow":
        return False
    if missing := missing_symbols():
        log.warning(
            "fused LSTM kernel off: %s not found in Keras %s / TensorFlow %s; the LSTM runs Keras' own loop",
            ", ".join(missing),
            keras.__version__,
            importlib.import_module("tensorflow").__version__,
        )
        return False
    from keras.src import backend

    if getattr(backend.lstm, "fused_shards", None) == shards:
        return True
    original = getattr(backend.lstm, "keras_lstm", backend.lstm)

    def lstm(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)  # cuDNN when Keras can use it
        except NotImplementedError:
            return fused_lstm(*args, shards=shards, **kwargs)

    lstm.keras_lstm, lstm.fused_shards = original, shards
    backend.lstm = lstm
    return True


def uninstall() -> None:
    """Give Keras its own hook back (tests compare against Keras' loop with this)."""
    from keras.src import backend

    backend.lstm = getattr(backend.lstm, "keras_lstm", backend.lstm)


def fused_lstm(
    inputs: Any,
    initial_state_h: Any,
    initial_state_c: Any,
    mask: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any,
    activation: Callable,
    recurrent_activation: Callable,
    return_sequences: bool = False,
    go_backwards: bool = False,
    unroll: bool = False,
    time_major: bool = False,
    shards: int = SHARDS,
) -> tuple[Any, Any, list[Any]]:
    """Keras' `backend.lstm` contract on BlockLSTMV2: (last output, outputs, [h, c]).

    `unroll` is irrelevant to a fused loop. Raises NotImplementedError (Keras then runs its own
    loop) for a mask, time-major input, no bias, activations other than tanh and sigmoid, or other
    numbers than float32 (a mixed-precision policy).
    """
    import tensorflow as tf

    if (
        mask is not None
        or keras.backend.standardize_dtype(inputs.dtype) != "float32"
        or time_major
        or bias is None
        or activation is not keras.activations.tanh
        or recurrent_activation is not keras.activations.sigmoid
    ):
        raise NotImplementedError
    x = tf.transpose(tf.convert_to_tensor(inputs), [1, 0, 2])  # (steps, batch, features)
    if go_backwards:
        x = tf.reverse(x, [0])
    weights = tf.concat([tf.convert_to_tensor(kernel), tf.convert_to_tensor(recurrent_kernel)], 0)
    h_all, c_all = _block_lstm(x, initial_state_h, initial_state_c, weights, tf.convert_to_tensor(bias), shards)
    last = h_all[-1]
    outputs = tf.transpose(h_all, [1, 0, 2]) if return_sequences else last[:, None, :]
    return last, outputs, [last, c_all[-1]]


# BlockLSTMV2's outputs, in order: the gradient op takes them back by these names.
BLOCK_OUTPUTS = ("i", "cs", "f", "o", "ci", "co", "h")


def _block_lstm(x: Any, h0: Any, c0: Any, weights: Any, bias: Any, shards: int) -> tuple[Any, Any]:
    """h and c of every step, (steps, batch, units) each, the batch cut into `shards` independent ops."""
    import tensorflow as tf
    from tensorflow.python.ops import gen_rnn_ops

    units = tf.shape(bias)[0] // 4
    batch = tf.shape(x)[1]
    # Shard sizes that add up to any batch (the last batch of an epoch is often smaller).
    sizes = [(batch + k) // shards for k in range(shards)]
    no_peephole = tf.zeros([units])

    @tf.custom_gradient
    def run(x, h0, c0, weights, bias):
        common = dict(
            seq_len_max=tf.cast(tf.shape(x)[0], tf.int64),
            w=weights,
            b=bias,
            use_peephole=False,
            wci=no_peephole,
            wcf=no_peephole,
            wco=no_peephole,
        )
        parts = list(zip(tf.split(x, sizes, 1), tf.split(h0, sizes), tf.split(c0, sizes), strict=True))
        outs = [gen_rnn_ops.block_lstmv2(x=xs, cs_prev=cs, h_prev=hs, cell_clip=0.0, **common) for xs, hs, cs in parts]
        h_all, c_all = tf.concat([o[6] for o in outs], 1), tf.concat([o[1] for o in outs], 1)

        def grad(h_grad, c_grad):
            h_grad, c_grad = (tf.zeros_like(h_all) if g is None else g for g in (h_grad, c_grad))
            grads = [
                gen_rnn_ops.block_lstm_grad_v2(
                    x=xs,
                    cs_prev=cs,
                    h_prev=hs,
                    cs_grad=cg,
                    h_grad=hg,
                    **dict(zip(BLOCK_OUTPUTS, o, strict=True)),
                    **common,
                )
                for (xs, hs, cs), o, hg, cg in zip(
                    parts, outs, tf.split(h_grad, sizes, 1), tf.split(c_grad, sizes, 1), strict=True
                )
            ]

            # BlockLSTMGradV2: (x, cs_prev, h_prev, w, wci, wcf, wco, b) gradients. A shard of no
            # rows (a batch smaller than `shards`) leaves its weight gradients unwritten: drop them.
            def weight_grad(index: int) -> Any:
                return tf.add_n([tf.where(size > 0, g[index], 0.0) for g, size in zip(grads, sizes, strict=True)])

            return (
                tf.concat([g[0] for g in grads], 1),
                tf.concat([g[2] for g in grads], 0),
                tf.concat([g[1] for g in grads], 0),
                weight_grad(3),
                weight_grad(7),
            )

        return (h_all, c_all), grad

    return run(x, h0, c0, weights, bias)
