"""SFTN: train a teacher with student branches so that it is easier to
distil from (Park et al., NeurIPS 2021)."""
from .det_branch import DetectorBranch, dense_branch_kl
from .export import export_sftn_teacher, sftn_teacher_config
from .kl import student_branch_kl
from .seg_branch import SegmentorBranch
from .sftn_teacher import SFTNTeacher

__all__ = [
    'SFTNTeacher', 'SegmentorBranch', 'DetectorBranch', 'dense_branch_kl',
    'export_sftn_teacher', 'sftn_teacher_config', 'student_branch_kl'
]
