# What every SFTN teacher config adds to the teacher's own runtime: mmkd,
# exact resume, and the teacher alone written as work_dir/teacher.pth (+
# teacher_config.py, loadable without mmkd) when training ends.
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
custom_hooks = [
    dict(type='mmkd.ExactResumeHook'),
    dict(type='mmkd.SFTNTeacherExportHook')
]
