# PKD (Cao et al., NeurIPS 2022) as its official configs in mmrazor set it
# for Faster R-CNN (pkd_fpn_frcnn_r101_frcnn_r50_2x_coco.py): the four FPN
# outputs P2-P5 (not the max-pooled P6), weight 6 each; the student's map
# is resized to the teacher's where they differ.
pkd = dict(
    losses={
        f'pkd_fpn{i}': dict(type='mmkd.PKDLoss',
                            student=f'neck.fpn_convs.{i}',
                            teacher=f'neck.fpn_convs.{i}', loss_weight=6.0)
        for i in range(4)
    })
