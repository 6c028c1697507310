"""What the 2-process CPU DDP tests share: a hook that dumps each rank's
weights, and a free port for the process group."""
import socket

DUMP_HOOK = '''
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankWeights(Hook):
    def after_train(self, runner):
        model = runner.model
        assert is_model_wrapper(model), 'not wrapped in DDP'
        with open(f'{runner.work_dir}/wrapper{runner.rank}.txt', 'w') as f:
            f.write(type(model).__name__)
        params = {k: p.detach().clone()
                  for k, p in model.module.named_parameters()}
        from mmkd.models.distillers.single_teacher import distiller_of
        for name, value in distiller_of(model).constants.items():
            params[f'const.{name}'] = value.cpu()
        torch.save(params, f'{runner.work_dir}/rank{runner.rank}.pth')

    def before_train(self, runner):
        self.after_train(runner)
        import os
        os.replace(f'{runner.work_dir}/rank{runner.rank}.pth',
                   f'{runner.work_dir}/init{runner.rank}.pth')
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
