from .exact_resume import ExactResumeHook
from .finite_loss import FiniteLossHook
from .loss_weight_schedule import DistillLossWeightHook
from .student_export import StudentExportHook
from .teacher_centroids import TeacherCentroidHook

__all__ = [
    'DistillLossWeightHook', 'ExactResumeHook', 'FiniteLossHook',
    'StudentExportHook', 'TeacherCentroidHook'
]
