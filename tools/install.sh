#!/usr/bin/env bash
# Install mmkd and the OpenMMLab stack it runs on, pinned, in this order:
# mmcv builds its C++/CUDA ops against the torch that is already installed.
#   bash tools/install.sh          # CPU torch (what CI and the tests use)
#   TORCH="torch==2.6.0 --index-url https://download.pytorch.org/whl/cu124" \
#     bash tools/install.sh        # a CUDA build; mmcv then builds CUDA ops
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --disable-pip-version-check"

$PIP ${TORCH:-torch==2.13.0}
# Before 2.6 torch.load runs pickled code unless told weights_only=True.
python -c "import sys, torch; v = tuple(int(x) for x in \
torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 6) and \
f'torch {torch.__version__} is too old: mmkd needs torch >= 2.6, whose '
'torch.load refuses pickled code by default')"
$PIP mmengine==0.10.7 "setuptools<70" wheel
# mmcv 2.1.0 has no wheel for recent torch: it builds from source (most of
# a cold install's 21 min on 2 cores; pip caches the wheel). Its setup.py
# needs pkg_resources.
python -c "import mmcv.ops" 2>/dev/null || \
    MMCV_WITH_OPS=1 $PIP --no-build-isolation mmcv==2.1.0
$PIP mmdet==3.3.0 mmsegmentation==1.2.2 pycocotools==2.0.11 ftfy regex \
    scikit-learn==1.7.2 \
    pytest flake8 isort
$PIP --no-build-isolation --no-deps -e .
