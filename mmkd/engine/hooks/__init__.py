from .exact_resume import ExactResumeHook
from .loss_weight_schedule import DistillLossWeightHook
from .student_export import StudentExportHook
from .teacher_centroids import TeacherCentroidHook

__all__ = [
    'DistillLossWeightHook', 'ExactResumeHook', 'StudentExportHook',
    'TeacherCentroidHook'
]
