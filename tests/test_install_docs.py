"""The documented installs use a torch whose torch.load is safe by default,
and the Python floor is one that torch runs on."""
import os.path as osp
import re

from tiny_setups import REPO

SAFE_TORCH = (2, 6)  # torch.load defaults to weights_only=True
TORCH_2_6_PYTHON = (3, 9)  # the oldest Python torch 2.6 supports


def read(name):
    with open(osp.join(REPO, name)) as f:
        return f.read()


def test_documented_torch_versions_load_safely():
    for name in ('README.md', 'tools/install.sh'):
        pins = re.findall(r'torch==(\d+)\.(\d+)', read(name))
        assert pins, name
        for major, minor in pins:
            version = (int(major), int(minor))
            assert version >= SAFE_TORCH, (name, version)


def test_python_floor_runs_that_torch():
    floor = re.search(r"python_requires='>=(\d+)\.(\d+)'", read('setup.py'))
    assert tuple(map(int, floor.groups())) == TORCH_2_6_PYTHON
    readme = re.search(r'Python (\d+)\.(\d+)–', read('README.md'))
    assert tuple(map(int, readme.groups())) == TORCH_2_6_PYTHON
