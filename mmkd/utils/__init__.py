from .atomic import save_atomically
from .checkpoint import (CorruptCheckpointError, load_checkpoint_file,
                         tensor_checksum)
from .dist import setup_cpu_distributed
from .export import export_student, student_config, student_state_dict
from .rng import rng_kept

__all__ = [
    'CorruptCheckpointError', 'load_checkpoint_file', 'save_atomically',
    'setup_cpu_distributed', 'export_student', 'student_config',
    'student_state_dict', 'tensor_checksum', 'rng_kept'
]
