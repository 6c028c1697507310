import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mmkd.utils import (CorruptCheckpointError, load_checkpoint_file,
                        tensor_checksum)
from mmkd.utils.checkpoint import CHECKSUM


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


class Reduce:
    """Pickles as ``fn(*args)``: how a crafted file calls what it names."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def flip_middle(path, count=4096):
    data = bytearray(open(path, 'rb').read())
    start = len(data) // 2 - count // 2
    for i in range(start, start + count):
        data[i] ^= 0xFF
    open(path, 'wb').write(bytes(data))


def test_bit_flips_fail_the_checksum_naming_file_and_previous(tmp_path):
    ckpt = dict(state_dict=dict(w=torch.arange(65536.)), meta=dict(iter=4))
    ckpt[CHECKSUM] = tensor_checksum(ckpt)
    torch.save(ckpt, tmp_path / 'iter_2.pth')
    torch.save(ckpt, tmp_path / 'iter_4.pth')
    assert load_checkpoint_file(str(tmp_path / 'iter_4.pth'))['meta'] == \
        dict(iter=4)
    flip_middle(tmp_path / 'iter_4.pth')
    torch.load(tmp_path / 'iter_4.pth')  # torch itself does not notice
    with pytest.raises(CorruptCheckpointError) as err:
        load_checkpoint_file(str(tmp_path / 'iter_4.pth'))
    assert f"{tmp_path / 'iter_4.pth'} is corrupted" in str(err.value)
    assert f"--resume {tmp_path / 'iter_2.pth'}" in str(err.value)


def test_empty_and_truncated_files_name_themselves(tmp_path):
    path = tmp_path / 'iter_4.pth'
    torch.save(dict(state_dict=dict(w=torch.arange(65536.))), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError,
                       match=f'{path} .* is truncated or corrupted'):
        load_checkpoint_file(str(path))
    path.write_bytes(b'')
    with pytest.raises(CorruptCheckpointError,
                       match=rf'{path} is empty \(0 bytes\)'):
        load_checkpoint_file(str(path))


def test_payload_runs_nothing_under_the_old_torch_default(
        tmp_path, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 restores torch < 2.6's default
    (weights_only=False) wherever a call does not pass weights_only."""
    marker = tmp_path / 'created_by_payload'
    path = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict={}, x=Reduce(open, str(marker), 'w')), path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(pickle.UnpicklingError) as err:
        load_checkpoint_file(str(path))
    assert not marker.exists()
    assert str(path) in str(err.value)
    assert 'weights_only=False' not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_fallback_allows_no_general_getattr(tmp_path):
    """The message-hub fallback rebuilds HistoryBuffers and nothing else:
    getattr reaches only HistoryBuffer's statistics methods."""
    reach = Reduce(getattr, Reduce(getattr, HistoryBuffer, '__init__'),
                   '__globals__')
    hub = MessageHub.get_instance('mmkd_getattr_test')
    hub.update_scalar('train/loss', 1.5)
    path = tmp_path / 'iter_2.pth'
    torch.save(dict(message_hub=hub.state_dict(), x=reach), path)
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        load_checkpoint_file(str(path))


@pytest.mark.parametrize('entry', ['teacher', 'export'])
def test_payload_as_teacher_or_export_runs_nothing(entry, det_files, tmp_path,
                                                   monkeypatch):
    from mmengine.registry import init_default_scope

    from mmkd.models.distillers.builder import build_teacher
    from mmkd.utils import export_student
    marker = tmp_path / 'created_by_payload'
    path = tmp_path / 'distiller.pth'
    torch.save(
        dict(state_dict={'student.w': torch.ones(1)},
             x=Reduce(open, str(marker), 'w')), path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    init_default_scope('mmdet')
    with pytest.raises(pickle.UnpicklingError, match=str(path)):
        if entry == 'teacher':
            build_teacher(dict(config=det_files['teacher'],
                               checkpoint=str(path)))
        else:
            export_student(str(path), str(tmp_path / 'student.pth'))
    assert not marker.exists()


def test_downloads_load_like_local_files(tmp_path):
    from mmkd.utils.checkpoint import load_from_http
    good, bad = tmp_path / 'good.pth', tmp_path / 'bad.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(2))), good)
    torch.save(dict(x=Reduce(open, str(tmp_path / 'marker'), 'w')), bad)
    cache = tmp_path / 'cache'
    # a file:// URL stands for a download: nothing leaves the machine
    ckpt = load_from_http(good.as_uri(), model_dir=str(cache))
    torch.testing.assert_close(ckpt['state_dict']['w'], torch.ones(2))
    assert (cache / 'good.pth').exists()
    with pytest.raises(pickle.UnpicklingError, match=str(cache / 'bad.pth')):
        load_from_http(bad.as_uri(), model_dir=str(cache))
    assert not (tmp_path / 'marker').exists()
