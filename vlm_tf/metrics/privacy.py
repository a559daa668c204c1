"""The privacy budget of DP-SGD: ε at a given δ, from Google's `dp-accounting` package (RDP).

DP-SGD is the Gaussian mechanism on a sample of the training clips, one
per step; the Rényi-DP accountant composes the steps and converts the
result to (ε, δ). It assumes each clip is drawn into each batch on its own
with probability q = batch / clips (Poisson sampling). vlm_tf's batches are
fixed-size slices of a shuffled epoch, as TensorFlow Privacy's and Opacus'
default loaders are; accounting them as Poisson-sampled is the usual
approximation, and docs/design.md ("Differential privacy") says so.
"""

from __future__ import annotations

import logging

# The δ a run states unless told otherwise: below 1/clips for any dataset of under 100,000 clips.
DEFAULT_DELTA = 1e-5


def accountant_modules():
    """dp-accounting's `dp_event` and `rdp` modules; a one-line ValueError without the package."""
    try:
        from dp_accounting import dp_event, rdp
    except ImportError:
        raise ValueError(
            "differentially private training states ε by Google's accountant, which is not "
            "installed: pip install dp-accounting"
        ) from None
    return dp_event, rdp


def dp_sgd_epsilon(*, noise_multiplier, sampling_probability, steps, delta=DEFAULT_DELTA):
    """ε of `steps` DP-SGD steps at noise multiplier σ and sampling rate q, at `delta`.

    Infinite for σ = 0 (clipping alone hides nothing); 0 before the first step.
    """
    dp_event, rdp = accountant_modules()
    if steps == 0:
        return 0.0
    # The accountant logs a warning for each order it cannot bound and leaves out; the others
    # still give a valid ε.
    quiet = logging.getLogger("absl")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        accountant = rdp.RdpAccountant()
        accountant.compose(
            dp_event.PoissonSampledDpEvent(
                sampling_probability, dp_event.GaussianDpEvent(noise_multiplier)
            ),
            int(steps),
        )
        return float(accountant.get_epsilon(delta))
    finally:
        quiet.setLevel(level)
