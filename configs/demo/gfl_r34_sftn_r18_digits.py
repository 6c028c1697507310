# SFTN (Park et al., NeurIPS 2021) on the digits GFL pair: the R34 teacher
# trained with R18 student branches after its stages 1-3 (each branch runs
# the student's later stages, FPN and head; see mmkd.SFTNTeacher), on the
# teacher's data and schedule. work_dir/teacher.pth (+ teacher_config.py) is
# then a teacher for any gfl_r34_to_r18_digits_* config
# (--cfg-options model.teacher.checkpoint=.../teacher.pth).
_base_ = ['./gfl_r34_digits.py', '../_base_/sftn_runtime.py']
model = dict(
    _delete_=True,
    type='mmkd.SFTNTeacher',
    teacher='{{fileDirname}}/gfl_r34_digits.py',
    student='{{fileDirname}}/gfl_r18_digits.py',
    branch_points=(1, 2, 3),
    # (1, 3, 1) and T 1 as the public reimplementation (kimyuji/SFTN_kd);
    # the paper's own values are unverified (docs/method_notes.md, SFTN)
    lambda_teacher=1.0, lambda_kl=3.0, lambda_ce=1.0, temperature=1.0)
