import subprocess

import pytest


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(size)`: a folder on a tmpfs of `size` bytes, a disk that fills;
    `small_disk.grow(disk, size)` makes it larger in place, keeping what it holds (the disk was
    freed). Mounting needs root, as CI and this machine have.
    """
    mounted = []

    def mount(size):
        disk = tmp_path / f"disk{len(mounted)}"
        disk.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(disk)
        return disk

    mount.grow = _grow
    yield mount
    for disk in mounted:
        subprocess.run(["umount", str(disk)], check=True)


def _grow(disk, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)
