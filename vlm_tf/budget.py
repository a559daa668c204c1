"""Memory budgets checked before work: a setting that cannot fit is refused in one line, before it
costs the machine.

Without this, `train --frames 10000` was killed by the kernel's OOM killer
at 24 GB during `--precision auto`'s measurement, and `--size 100000` or
`--batch-size 99999999999` ended in NumPy allocation tracebacks. The
estimates are lower bounds (what the clips and the activations alone
take), so a refusal is never a false alarm; a setting that passes can
still be too large for what else the machine runs.
"""

from __future__ import annotations

import os

FLOAT32_BYTES = 4
GIB = 1024**3


def available_memory():
    """Bytes this process can still allocate: the kernel's MemAvailable, or the cgroup's limit
    (a container's) less what the group uses, whichever is lower.
    """
    candidates = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except OSError:
        candidates.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            used = int(f.read())
        if limit != "max":
            candidates.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(candidates)


def clip_bytes(*, batch_size, num_frames, height, width, views=1):
    """Bytes of one batch of float32 RGB clips (`views` clips per sample)."""
    return batch_size * views * num_frames * height * width * 3 * FLOAT32_BYTES


def require_memory(needed, what, advice):
    """Raises a one-line ValueError when `needed` bytes exceed what is available.

    `what` names the setting ("8 clips of 10000 frames of 64x64 and their
    activations"), `advice` what to lower.
    """
    available = available_memory()
    if needed > available:
        raise ValueError(
            f"{what} need at least {needed / GIB:.1f} GiB; this machine has "
            f"{available / GIB:.1f} GiB available ({advice})"
        )
