import pickle

import pytest
import torch
from mmengine.logging import MessageHub

from mmkd.utils import load_checkpoint_file


class NotAllowed:
    pass


def test_safe_checkpoints_load_as_they_are(tmp_path, recwarn):
    path = tmp_path / 'weights.pth'
    torch.save(
        dict(state_dict=dict(w=torch.ones(2)), meta=dict(epoch=1)), path)
    assert load_checkpoint_file(str(path))['meta'] == dict(epoch=1)
    assert not [w for w in recwarn if 'mmengine' in str(w.message)]


def test_plain_mmengine_training_checkpoint_loads_with_a_warning(tmp_path):
    hub = MessageHub.get_instance('mmkd_checkpoint_test')
    hub.update_scalar('train/loss', 1.5)
    path = tmp_path / 'iter_2.pth'
    torch.save(
        dict(state_dict=dict(w=torch.ones(2)), message_hub=hub.state_dict()),
        path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # what mmengine 0.10 does on torch >= 2.6
    with pytest.warns(UserWarning, match="mmengine's message-hub types"):
        ckpt = load_checkpoint_file(str(path))
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 1.5


def test_other_globals_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=NotAllowed()), path)
    with pytest.raises(pickle.UnpicklingError, match='NotAllowed'):
        load_checkpoint_file(str(path))
