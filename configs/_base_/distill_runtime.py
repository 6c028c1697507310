# What every mmkd config adds to the student's own runtime.
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
custom_hooks = [
    # --resume under torch's safe loading, with RNG states: exact resume
    dict(type='mmkd.ExactResumeHook'),
    # work_dir/student.pth + student_config.py, loadable without mmkd
    dict(type='mmkd.StudentExportHook'),
]
