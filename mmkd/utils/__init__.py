from .checkpoint import load_checkpoint_file
from .dist import setup_cpu_distributed
from .export import export_student, student_config, student_state_dict

__all__ = [
    'load_checkpoint_file', 'setup_cpu_distributed', 'export_student',
    'student_config', 'student_state_dict'
]
