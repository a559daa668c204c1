"""Energy and CO₂ of a piece of work (§8.2 ②): measured where the machine lets us, estimated
otherwise, and always said which.

Measured: the CPU packages' RAPL energy counters in `/sys/class/powercap`
(Intel, and AMD since Zen through the same interface), read before and
after. They count the whole package, so work of other processes on it is
counted too. Estimated, where the counters are missing or unreadable (most
virtual machines, this one included): the CPU time of this process and the
processes it started, times a power per busy core. That is how CodeCarbon
estimates without counters: a processor's rated power (TDP), here shared
over its hardware threads. CO₂ is the energy times the grid's intensity.

Both figures can be set in the environment:

    VLM_TF_WATTS_PER_CORE   watts per busy core for the estimate (default 3.0: a server CPU's
                            rated power over its threads, e.g. 280 W / 128 for an AMD EPYC 7763,
                            350 W / 112 for an Intel Xeon 8480+)
    VLM_TF_GRID_INTENSITY   grams of CO₂ per kWh (default 475, CodeCarbon's world average)

Memory, disks and the rest of the machine are not counted either way.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import time

RAPL_ROOT = "/sys/class/powercap"
WATTS_ENV = "VLM_TF_WATTS_PER_CORE"
GRID_ENV = "VLM_TF_GRID_INTENSITY"
DEFAULT_WATTS_PER_CORE = 3.0
DEFAULT_GRID_INTENSITY = 475.0
_JOULES_PER_KWH = 3.6e6


def _setting(name, default):
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name}={text!r}: expected a positive number")
    return value


def rapl_packages(root=RAPL_ROOT):
    """The RAPL package domains whose counters this process can read: `[(energy_uj path, wrap)]`.

    Sub-domains (`intel-rapl:0:0`, the cores of package 0) are inside
    their package's count and left out.
    """
    found = []
    for domain in sorted(glob.glob(os.path.join(root, "*rapl:*"))):
        if not re.search(r"rapl:\d+$", domain):
            continue
        counter = os.path.join(domain, "energy_uj")
        try:
            with open(counter) as f:
                int(f.read())
            with open(os.path.join(domain, "max_energy_range_uj")) as f:
                wrap = int(f.read())
        except (OSError, ValueError):
            continue
        found.append((counter, wrap))
    return found


def _read_counters(packages):
    values = []
    for counter, _ in packages:
        with open(counter) as f:
            values.append(int(f.read()))
    return values


def _cpu_seconds():
    """CPU time of this process (every thread) and of its finished children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclasses.dataclass(frozen=True)
class Energy:
    """The energy of some work: `method` is `"measured"` (RAPL) or `"estimated"` (CPU time)."""

    joules: float
    method: str
    grid_intensity: float
    # The power per busy core an estimate used; None when measured.
    watts_per_core: float | None
    # The clips the work handled, for the energy of one; None when it does not apply.
    clips: int | None = None
    # Wall-clock and CPU seconds of the work, where one meter saw all of it.
    seconds: float | None = None
    cpu_seconds: float | None = None

    @property
    def watts(self):
        """Mean power over the work."""
        return self.joules / self.seconds if self.seconds else 0.0

    @property
    def co2_grams(self):
        return self.joules / _JOULES_PER_KWH * self.grid_intensity

    def to_dict(self):
        """As JSON: joules (and per clip), kWh, grams of CO₂, and how they were got."""
        values = {
            "joules": self.joules,
            "joules_per_clip": self.joules / self.clips if self.clips else None,
            "kwh": self.joules / _JOULES_PER_KWH,
            "co2_grams": self.co2_grams,
            "method": self.method,
            "grid_intensity_g_per_kwh": self.grid_intensity,
            "watts_per_core": self.watts_per_core,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
        }
        return {key: value for key, value in values.items() if value is not None}

    def line(self):
        """One line for people: total, per clip, CO₂, and how it was got."""
        how = (
            "measured by RAPL"
            if self.method == "measured"
            else f"estimated from CPU time at {self.watts_per_core:g} W a busy core"
        )
        each = f" ({self.joules / self.clips:.2f} J a clip)" if self.clips else ""
        return (
            f"energy {self.joules / 1000:.3f} kJ{each}, {self.co2_grams:.3f} g CO2 at "
            f"{self.grid_intensity:g} g/kWh, {how}"
        )


class EnergyMeter:
    """Energy from `start()` to each `read()`.

    Args:
        watts_per_core, grid_intensity: override the environment's settings
            (`VLM_TF_WATTS_PER_CORE`, `VLM_TF_GRID_INTENSITY`) and the defaults.
        rapl_root: where the RAPL counters are (a test points it elsewhere).
    """

    def __init__(self, *, watts_per_core=None, grid_intensity=None, rapl_root=RAPL_ROOT):
        self.watts_per_core = watts_per_core or _setting(WATTS_ENV, DEFAULT_WATTS_PER_CORE)
        self.grid_intensity = grid_intensity or _setting(GRID_ENV, DEFAULT_GRID_INTENSITY)
        self.packages = rapl_packages(rapl_root)

    @property
    def method(self):
        return "measured" if self.packages else "estimated"

    def start(self):
        self._wall = time.perf_counter()
        self._cpu = _cpu_seconds()
        self._counters = _read_counters(self.packages)
        return self

    def read(self, clips=None):
        """The `Energy` since `start()`, of work on `clips` clips if given."""
        seconds = time.perf_counter() - self._wall
        cpu = _cpu_seconds() - self._cpu
        if self.packages:
            joules = 0.0
            for (_, wrap), before, after in zip(
                self.packages, self._counters, _read_counters(self.packages)
            ):
                # A counter that passed its maximum started again from zero.
                joules += ((after - before) % wrap if wrap else after - before) / 1e6
        else:
            joules = cpu * self.watts_per_core
        return self.energy(joules, clips=clips, seconds=seconds, cpu_seconds=cpu)

    def energy(self, joules, *, clips=None, seconds=None, cpu_seconds=None):
        """`joules` got this meter's way, as an `Energy` (a total of several readings)."""
        return Energy(
            joules,
            self.method,
            self.grid_intensity,
            None if self.packages else self.watts_per_core,
            clips,
            seconds,
            cpu_seconds,
        )
