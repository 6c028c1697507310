from .atomic_checkpoint import AtomicCheckpointHook
from .constants import ConstantHook
from .exact_resume import ExactResumeHook
from .finite_loss import FiniteLossHook
from .loss_weight_schedule import DistillLossWeightHook
from .netaug import NetAugHook
from .sftn_teacher_export import SFTNTeacherExportHook
from .student_export import StudentExportHook
from .teacher_centroids import TeacherCentroidHook
from .teacher_check import TeacherCheckHook

__all__ = [
    'AtomicCheckpointHook', 'ConstantHook', 'DistillLossWeightHook',
    'ExactResumeHook', 'FiniteLossHook', 'NetAugHook', 'SFTNTeacherExportHook',
    'StudentExportHook', 'TeacherCentroidHook', 'TeacherCheckHook'
]
