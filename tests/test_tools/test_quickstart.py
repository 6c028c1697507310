"""tools/quickstart.py --fast: data, three trainings, table and plots."""
import os.path as osp

from PIL import Image

from tiny_setups import REPO, run_script


def test_fast_quickstart_end_to_end(tmp_path):
    work = tmp_path / 'qs'
    proc = run_script(osp.join(REPO, 'tools', 'quickstart.py'), '--fast',
                      '--work-dir', str(work), '--data',
                      str(tmp_path / 'digits'))
    table = (work / 'results.md').read_text()
    for row in ('| teacher |', '| student |', '| distilled |', '| gain'):
        assert row in table
    assert 'gain (distilled - student)' in proc.stdout
    for name in ('curves.png', 'bars.png'):
        with Image.open(work / name) as img:
            assert img.format == 'PNG' and img.size[0] > 100
    assert (work / 'teacher' / 'teacher.pth').exists()
    assert (work / 'distilled' / 'student.pth').exists()
    assert 'faster_rcnn_r34_to_r18_digits_hint.py' in table
    # the backbones were pretrained (a few iterations) next to the data
    for name in ('resnet18_w16.pth', 'resnet34_w32.pth'):
        assert (tmp_path / 'digits' / 'pretrained' / name).exists()
    assert 'val accuracy' in proc.stdout


def test_fast_quickstart_with_a_centroid_hook(tmp_path):
    # --distill takes any demo config; its centroid hook gets 2 batches
    work = tmp_path / 'qs'
    run_script(
        osp.join(REPO, 'tools', 'quickstart.py'), '--fast', '--work-dir',
        str(work), '--data', str(tmp_path / 'digits'), '--distill',
        osp.join(REPO, 'configs', 'demo',
                 'faster_rcnn_r34_to_r18_digits_nd.py'))
    assert (work / 'distilled' / 'roi_centers.pth').exists()
    assert 'digits_nd.py' in (work / 'results.md').read_text()


def test_fast_quickstart_from_scratch(tmp_path):
    work = tmp_path / 'qs'
    run_script(
        osp.join(REPO, 'tools', 'quickstart.py'), '--fast', '--scratch',
        '--work-dir', str(work), '--data', str(tmp_path / 'digits'))
    assert not (tmp_path / 'digits' / 'pretrained').exists()
    assert '| gain' in (work / 'results.md').read_text()


def test_fast_runs_ask_hooks_for_their_smoke_settings():
    """No hook names in the tool: the hooks that provide constants give
    their own smoke-run settings (the centroids of 2 batches)."""
    import sys
    sys.path.insert(0, osp.join(REPO, 'tools'))
    from quickstart import fast_options
    demo = osp.join(REPO, 'configs', 'demo')
    nd = fast_options(osp.join(demo, 'faster_rcnn_r34_to_r18_digits_nd.py'))
    assert 'custom_hooks.3.num_iters=2' in nd
    hint = fast_options(
        osp.join(demo, 'faster_rcnn_r34_to_r18_digits_hint.py'))
    assert not [o for o in hint if o.startswith('custom_hooks')]
