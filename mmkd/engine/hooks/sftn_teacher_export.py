"""Write the SFTN-trained teacher alone when training ends."""
from mmkd.models.sftn.export import export_sftn_teacher
from mmkd.registry import HOOKS
from .student_export import StudentExportHook


@HOOKS.register_module()
class SFTNTeacherExportHook(StudentExportHook):
    """Save the teacher of :class:`~mmkd.models.SFTNTeacher` alone, loadable
    by plain mmseg or mmdet.

    `Learning Student-Friendly Teacher Networks for Knowledge Distillation
    <https://arxiv.org/abs/2102.07650>`_ keeps the teacher and drops the
    student branches after training. This hook writes
    ``<work_dir>/<filename>`` with the teacher's weights (no branches, no
    ``T_i``) and the dataset meta, and the teacher's own config beside it as
    ``<stem>_config.py``; ``mmseg.apis.init_model`` (or mmdet's
    ``init_detector``) loads the pair without mmkd, as the teacher of a
    later distillation, for example.

    Args:
        filename (str): Name of the checkpoint in the work dir. Defaults to
            'teacher.pth'.

    Example:
        >>> SFTNTeacherExportHook().filename
        'teacher.pth'
    """

    export = staticmethod(export_sftn_teacher)
    part = 'SFTN teacher'

    def __init__(self, filename: str = 'teacher.pth') -> None:
        super().__init__(filename)
