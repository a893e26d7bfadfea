"""Metrics: ``metric(readout, targets) -> scalar``, reported beside the loss."""

from __future__ import annotations

import jax.numpy as jnp

from .losses import _check_time_major

__all__ = ["spike_count_accuracy", "max_membrane_accuracy", "final_membrane_accuracy",
           "count_agreement", "spike_agreement"]


def _accuracy(logits, labels):
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        labels = labels.argmax(-1)
    return jnp.mean(logits.argmax(-1) == labels)


def spike_count_accuracy(spikes, labels, *, start: int = 0):
    """Fraction of samples whose most active output neuron is the label (ties: lowest index)."""
    return _accuracy(_check_time_major("spike_count_accuracy", spikes, 3)[start:].sum(0), labels)


def max_membrane_accuracy(v, labels, *, start: int = 0):
    """Fraction of samples whose readout neuron with the highest peak membrane is the label."""
    return _accuracy(_check_time_major("max_membrane_accuracy", v, 3)[start:].max(0), labels)


def final_membrane_accuracy(v, labels):
    """Fraction of samples whose readout neuron with the highest final membrane is the label."""
    return _accuracy(_check_time_major("final_membrane_accuracy", v, 3)[-1], labels)


def count_agreement(student, teacher, *, start: int = 0):
    """Fraction of samples on which student and teacher have the same most active neuron."""
    s = _check_time_major("count_agreement", student, 3)[start:].sum(0)
    return _accuracy(s, jnp.asarray(teacher)[start:].sum(0).argmax(-1))


def spike_agreement(student, teacher):
    """Fraction of (step, sample, neuron) entries where the two spike trains agree."""
    return jnp.mean(jnp.asarray(student) == jnp.asarray(teacher))
