"""tools/loss_gradients.py: each loss's value and the gradient norm it
sends into each part of the student, on real batches of the config."""
import os.path as osp

from tiny_setups import distill_config, run_script


def table(proc) -> dict:
    """``{loss: {column: float}}`` from the printed Markdown table."""
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith('|')]
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip('|').split('|')]
        rows[cells[0]] = dict(zip(header[1:], map(float, cells[1:])))
    return rows


def test_gradient_norms_per_part_scale_with_the_weight(seg_files, tmp_path):
    rows = []
    for weight in (1.0, 2.0):
        cfg = distill_config(seg_files, tap='decode_head.bottleneck',
                             loss_weight=weight)
        path = osp.join(tmp_path, f'hint_{weight}.py')
        cfg.dump(path)
        rows.append(table(run_script('tools/loss_gradients.py', path,
                                     '--batches', '2')))
    once, twice = rows
    assert {'decode.loss_ce', 'aux.loss_ce', 'distill.hint'} <= set(once)
    hint = once['distill.hint']
    # the hint reaches the backbone and the decode head, not the auxiliary
    # head (which it does not read), and trains the adapter
    assert hint['grad norm: backbone'] > 0
    assert hint['grad norm: decode_head'] > 0
    assert hint['grad norm: auxiliary_head'] == 0
    assert hint['grad norm: adapters'] > 0
    # the task loss is untouched by the weight; the hint's gradient doubles
    assert once['decode.loss_ce'] == twice['decode.loss_ce']
    for column, value in hint.items():
        ratio = twice['distill.hint'][column] / value if value else 2.0
        assert abs(ratio - 2.0) < 0.01, (column, value)
