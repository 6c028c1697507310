# The PSPNet pair on the digits set: the R18 student (its data and schedule
# too) and the R34 teacher, trained first with
#   python tools/train.py configs/demo/pspnet_r34_digits.py
_base_ = ['../pspnet_r18_digits.py', '../../_base_/distill_runtime.py']
teacher = dict(
    config='{{fileDirname}}/../pspnet_r34_digits.py',
    checkpoint='work_dirs/pspnet_r34_digits/iter_400.pth')
