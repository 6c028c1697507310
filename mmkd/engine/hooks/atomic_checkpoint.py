"""Checkpoints that a kill at any moment of their saving cannot lose."""
import glob
import os
import os.path as osp
from typing import List

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmkd.registry import HOOKS
from mmkd.utils.atomic import PARTIAL, publish, write_bytes_atomically


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with saves that never lose a run.

    mmengine removes the oldest kept checkpoint *before* writing the new one
    into its final name, so a kill during the save leaves, with
    ``max_keep_ckpts=1``, no usable checkpoint and a ``last_checkpoint``
    naming a deleted file. Here each save

    1. writes ``<name>.partial`` and flushes it to disk,
    2. renames it to ``<name>`` (atomic: the name holds a complete file or
       does not exist),
    3. then points ``last_checkpoint`` at it (written the same way),
    4. and only then removes the checkpoints beyond ``max_keep_ckpts``.

    A kill at any step leaves ``last_checkpoint`` naming a complete file;
    ``--resume`` continues from it. Leftover ``.partial`` files are removed
    when training starts. Arguments are ``CheckpointHook``'s; other storage
    backends than local files save as mmengine does. ``tools/train.py`` uses
    it in place of ``CheckpointHook``.

    Example:
        >>> hook = AtomicCheckpointHook(interval=2, max_keep_ckpts=1)
        >>> hook.interval, hook.max_keep_ckpts
        (2, 1)
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and self._atomic():
            for partial in glob.glob(osp.join(self.out_dir, f'*{PARTIAL}')):
                os.remove(partial)

    def _atomic(self) -> bool:
        return type(self.file_backend) is LocalBackend

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not self._atomic():
            return super()._save_checkpoint_with_step(runner, step, meta)
        stale = self._advance_kept(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = osp.join(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename + PARTIAL,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        self._publish(self.last_ckpt)
        self._point_to(runner, self.last_ckpt)
        self._remove(stale)

    def _advance_kept(self, runner, step: int) -> List[str]:
        """Record ``step`` among the kept checkpoints (the record is saved
        in this checkpoint); return the paths it supersedes."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return []
        stale = []
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            stale.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return [
            osp.join(self.out_dir, self.filename_tmpl.format(s)) for s in stale
        ]

    def _publish(self, path: str) -> None:
        publish(path + PARTIAL, path)

    def _point_to(self, runner, path: str) -> None:
        write_bytes_atomically(path.encode(),
                               osp.join(runner.work_dir, 'last_checkpoint'))

    def _remove(self, paths: List[str]) -> None:
        for path in paths:
            if osp.isfile(path):
                os.remove(path)
