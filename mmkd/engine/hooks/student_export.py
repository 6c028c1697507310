"""Write a student-only checkpoint when training ends."""
import os.path as osp

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmkd.registry import HOOKS
from mmkd.utils.export import export_student


@HOOKS.register_module()
class StudentExportHook(Hook):
    """Save the trained student alone, loadable by plain mmdet/mmseg.

    After training, writes ``<work_dir>/<filename>`` with the student's
    weights (no teacher, no adapters) and the dataset meta, and the student's
    own config beside it as ``<stem>_config.py``; ``init_detector`` /
    ``init_model`` load the pair without mmkd.

    Args:
        filename (str): Name of the checkpoint in the work dir. Defaults to
            'student.pth'.

    Example:
        >>> hook = StudentExportHook(filename='student_final.pth')
        >>> hook.filename
        'student_final.pth'
    """

    priority = 'VERY_LOW'
    #: the function that writes the part and its config
    export = staticmethod(export_student)
    #: what the log calls the part
    part = 'Student'

    def __init__(self, filename: str = 'student.pth') -> None:
        if not filename.endswith('.pth'):
            raise ValueError(f'{type(self).__name__}.filename={filename!r} '
                             "must end with '.pth'")
        self.filename = filename

    @master_only
    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        meta = dict(epoch=runner.epoch, iter=runner.iter, seed=runner.seed)
        dataset = getattr(runner.train_dataloader, 'dataset', None)
        if hasattr(dataset, 'metainfo'):
            meta['dataset_meta'] = dataset.metainfo
        out = osp.join(runner.work_dir, self.filename)
        self.export(
            dict(state_dict=model.state_dict(), meta=meta), out, runner.cfg)
        runner.logger.info(f'{self.part} exported to {out}')
