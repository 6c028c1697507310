# What every mmkd config adds to the student's own runtime.
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
custom_hooks = [
    # --resume under torch's safe loading, with RNG states: exact resume
    dict(type='mmkd.ExactResumeHook'),
    # work_dir/student.pth + student_config.py, loadable without mmkd
    dict(type='mmkd.StudentExportHook'),
    # the teacher scored with the run's metric on a few validation batches
    # before training; a warning at 0 (floor=..., action='error' to stop)
    dict(type='mmkd.TeacherCheckHook'),
]
# DDP of the kind the distiller asks for (plain, or per child where a
# critic has its own optimizer)
model_wrapper_cfg = dict(type='mmkd.DistillerDataParallel')
