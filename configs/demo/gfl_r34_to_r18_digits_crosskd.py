# CrossKD (configs/_base_/methods/crosskd.py) on the GFL pair. The digits
# heads stack 2 convs, not 4: the teacher's last conv is reused, as the
# official setting (3 of 4) does.
_base_ = [
    './_base_/gfl_r34_to_r18_digits.py', '../_base_/methods/crosskd.py'
]
model = _base_.pop('crosskd')
model.pairings.cross.reused_teacher_head_idx = 1
